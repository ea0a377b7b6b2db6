//! The parts of systemd's D-Bus API the supervisor uses.

use zbus::zvariant::OwnedObjectPath;

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait Manager {
    fn subscribe(&self) -> zbus::Result<()>;
    fn kill_unit(&self, name: &str, whom: &str, signal: i32) -> zbus::Result<()>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    #[zbus(signal)]
    fn reloading(&self, active: bool) -> zbus::Result<()>;
}

const UNIT_PREFIX: &str = "/org/freedesktop/systemd1/unit/";

/// systemd's object path of a unit: the name with every byte that is not an ASCII
/// letter or digit written as `_xx` (so `krill-a.service` is `krill_2da_2eservice`).
pub fn unit_path(unit: &str) -> OwnedObjectPath {
    let mut p = String::from(UNIT_PREFIX);
    for b in unit.bytes() {
        if b.is_ascii_alphanumeric() {
            p.push(b as char);
        } else {
            p.push_str(&format!("_{b:02x}"));
        }
    }
    OwnedObjectPath::try_from(p).expect("escaped unit paths are valid object paths")
}

/// The unit name of an object path from [`unit_path`], if it is one.
pub fn unit_of_path(path: &str) -> Option<String> {
    let label = path.strip_prefix(UNIT_PREFIX)?.as_bytes();
    let mut out = Vec::with_capacity(label.len());
    let mut i = 0;
    while i < label.len() {
        if label[i] == b'_' {
            let hex = std::str::from_utf8(label.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(label[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A unit's state as the supervisor needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitState {
    pub active: String,
    pub sub: String,
    /// Hex InvocationID; empty if never started.
    pub invocation: String,
    pub main_pid: u32,
    pub restarts: u32,
    /// CLOCK_MONOTONIC µs of the current run's start.
    pub started_us: u64,
    pub result: String,
    /// CLOCK_MONOTONIC µs of the latest watchdog ping systemd received (or of
    /// entering `active`, which resets it).
    pub watchdog_us: u64,
    /// CLOCK_MONOTONIC µs of entering `active`.
    pub active_enter_us: u64,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads a unit's state over D-Bus: two `GetAll` calls, uncached, so always
/// systemd's current answer.
pub async fn read_state(
    conn: &zbus::Connection,
    path: &OwnedObjectPath,
) -> zbus::Result<UnitState> {
    use zbus::names::InterfaceName;
    use zbus::zvariant::OwnedValue;
    let props = properties(conn, path).await?;
    let unit = props
        .get_all(InterfaceName::from_static_str_unchecked(
            "org.freedesktop.systemd1.Unit",
        ))
        .await?;
    let svc = props
        .get_all(InterfaceName::from_static_str_unchecked(
            "org.freedesktop.systemd1.Service",
        ))
        .await?;
    fn s(m: &std::collections::HashMap<String, OwnedValue>, k: &str) -> String {
        m.get(k)
            .and_then(|v| String::try_from(v.clone()).ok())
            .unwrap_or_default()
    }
    fn u32_(m: &std::collections::HashMap<String, OwnedValue>, k: &str) -> u32 {
        m.get(k)
            .and_then(|v| u32::try_from(v.clone()).ok())
            .unwrap_or(0)
    }
    let inv: Vec<u8> = unit
        .get("InvocationID")
        .and_then(|v| Vec::<u8>::try_from(v.clone()).ok())
        .unwrap_or_default();
    Ok(UnitState {
        active: s(&unit, "ActiveState"),
        sub: s(&unit, "SubState"),
        invocation: hex(&inv),
        main_pid: u32_(&svc, "MainPID"),
        restarts: u32_(&svc, "NRestarts"),
        started_us: svc
            .get("ExecMainStartTimestampMonotonic")
            .and_then(|v| u64::try_from(v.clone()).ok())
            .unwrap_or(0),
        result: s(&svc, "Result"),
        watchdog_us: svc
            .get("WatchdogTimestampMonotonic")
            .and_then(|v| u64::try_from(v.clone()).ok())
            .unwrap_or(0),
        active_enter_us: unit
            .get("ActiveEnterTimestampMonotonic")
            .and_then(|v| u64::try_from(v.clone()).ok())
            .unwrap_or(0),
    })
}

/// A unit's ActiveState.
pub async fn active_state(conn: &zbus::Connection, path: &OwnedObjectPath) -> zbus::Result<String> {
    let props = properties(conn, path).await?;
    let v = props
        .get(
            zbus::names::InterfaceName::from_static_str_unchecked("org.freedesktop.systemd1.Unit"),
            "ActiveState",
        )
        .await?;
    Ok(String::try_from(v).unwrap_or_default())
}

/// An uncached Properties proxy for a systemd unit object.
async fn properties(
    conn: &zbus::Connection,
    path: &OwnedObjectPath,
) -> zbus::Result<zbus::fdo::PropertiesProxy<'static>> {
    zbus::fdo::PropertiesProxy::builder(conn)
        .destination("org.freedesktop.systemd1")?
        .path(path.clone())?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_are_systemds_bus_labels_and_round_trip() {
        let p = unit_path("krill-sp-quiet.service");
        assert_eq!(
            p.as_str(),
            "/org/freedesktop/systemd1/unit/krill_2dsp_2dquiet_2eservice"
        );
        assert_eq!(
            unit_of_path(p.as_str()).as_deref(),
            Some("krill-sp-quiet.service")
        );
        let odd = "krill-healthy@krill-w_x-a.service";
        assert_eq!(unit_of_path(unit_path(odd).as_str()).as_deref(), Some(odd));
        assert_eq!(unit_of_path("/org/freedesktop/systemd1/job/1"), None);
    }
}
