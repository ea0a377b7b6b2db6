//! The parts of systemd's D-Bus API the supervisor uses.

use zbus::zvariant::OwnedObjectPath;

pub use krill::runtime::bus::{
    unit_of_path, unit_path, unit_properties as properties, ManagerProxy,
};

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
    /// The unit's cgroup (`ControlGroup`, e.g. `/krill.slice/krill-w.slice/krill-w-a.service`);
    /// empty while it has no processes. Heartbeats authenticate against it.
    pub control_group: String,
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
        control_group: s(&svc, "ControlGroup"),
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
