//! Names: workspace and service names as recipes may write them, and the systemd
//! unit names krill derives from them. Every program that looks a unit up by name
//! uses these functions, so a name is spelled in one place.
//!
//! Dashes make unit names readable (`systemctl status krill-robot-lidar`) but allow
//! collisions *across* workspaces (`a-b`/`c` and `a`/`b-c`); the generator rejects a
//! recipe whose units collide with an earlier one's.

/// krill-supervisor's service unit.
pub const SUPERVISOR_SERVICE: &str = "krill-supervisor.service";
/// krill-supervisor's heartbeat socket unit; it starts [`SUPERVISOR_SERVICE`].
pub const SUPERVISOR_SOCKET: &str = "krill-supervisor.socket";

/// Longest name accepted for a workspace or service, so that every derived unit name
/// stays well below systemd's 255-byte limit.
pub const MAX_NAME_LEN: usize = 100;

/// Whether `s` is a valid workspace or service name: `^[a-zA-Z0-9_-]+$` (length is
/// checked separately against [`MAX_NAME_LEN`]).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A dependency condition, and the kind of gate unit that implements it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// The dependency's process was spawned successfully (default).
    Started,
    /// The dependency passed its health check since its latest start.
    Healthy,
}

impl Condition {
    /// `started` or `healthy`, as written in recipes and in gate unit names.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Healthy => "healthy",
        }
    }
}

/// `krill-W.target`: the workspace; wants every service, stopping it stops all.
pub fn target(ws: &str) -> String {
    format!("krill-{ws}.target")
}

/// `krill-W.slice`, with `-` in the workspace name escaped so that `krill-a-b` is not
/// a child of `krill-a`.
pub fn slice(ws: &str) -> String {
    format!("krill-{}.slice", ws.replace('-', "\\x2d"))
}

/// `krill-W-S.slice`, a child of [`slice`]: where a docker service's container runs
/// (`docker run --cgroup-parent=`), since the engine, not systemd, starts it. `-` is
/// escaped in both names, so the slice is always exactly one level below the
/// workspace's.
pub fn container_slice(ws: &str, s: &str) -> String {
    format!(
        "krill-{}-{}.slice",
        ws.replace('-', "\\x2d"),
        s.replace('-', "\\x2d")
    )
}

/// `krill-W-S.service`.
pub fn service(ws: &str, s: &str) -> String {
    format!("krill-{ws}-{s}.service")
}

/// The gate instance for condition `c` on service `s`:
/// `krill-started@krill-W-S.service` or `krill-healthy@krill-W-S.service`.
pub fn gate(ws: &str, s: &str, c: Condition) -> String {
    format!("krill-{}@krill-{ws}-{s}.service", c.as_str())
}

/// The failure handler instance of service `s`: `krill-estop@…` for a critical
/// service, `krill-cascade@…` otherwise.
pub fn on_failure(ws: &str, s: &str, critical: bool) -> String {
    let kind = if critical { "estop" } else { "cascade" };
    format!("krill-{kind}@krill-{ws}-{s}.service")
}

/// `krill-logs@W.service`: writes the workspace's `log_dir:` files
/// ([`crate::runtime::logfiles`]). Its template is `PartOf=krill-%i.target`, so the
/// instance is the workspace name as written (a `-` needs no escaping in an instance).
pub fn log_writer(ws: &str) -> String {
    format!("krill-logs@{ws}.service")
}

/// The service unit a gate or handler instance is about
/// (`krill-healthy@krill-w-a.service` → `krill-w-a.service`).
pub fn instance_of(unit: &str) -> Option<&str> {
    unit.split_once('@').map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names() {
        assert_eq!(target("w"), "krill-w.target");
        assert_eq!(slice("a-b"), "krill-a\\x2db.slice");
        assert_eq!(service("w", "s"), "krill-w-s.service");
        assert_eq!(container_slice("a-b", "c-d"), "krill-a\\x2db-c\\x2dd.slice");
        assert_eq!(
            gate("w", "s", Condition::Healthy),
            "krill-healthy@krill-w-s.service"
        );
        assert_eq!(on_failure("w", "s", true), "krill-estop@krill-w-s.service");
        assert_eq!(
            instance_of("krill-started@krill-w-s.service"),
            Some("krill-w-s.service")
        );
        assert!(valid_name("a_b-1") && !valid_name("a.b") && !valid_name(""));
    }
}
