//! Who sent a heartbeat: the peer's pid (SO_PEERCRED), then its cgroup, then the
//! systemd unit that cgroup belongs to.

/// The service unit of a cgroup path from `/proc/PID/cgroup` (cgroup v2 line `0::/path`).
/// The unit is the last path component ending in `.service` (a service may create
/// sub-cgroups below its own).
pub fn unit_of_cgroup(cgroup_file: &str) -> Option<String> {
    let path = cgroup_file.lines().find_map(|l| l.strip_prefix("0::"))?;
    path.split('/')
        .rev()
        .find(|c| c.ends_with(".service"))
        .map(str::to_owned)
}

/// The service unit of a running process, if any.
pub fn unit_of_pid(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    unit_of_cgroup(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_unit_of_a_cgroup() {
        assert_eq!(
            unit_of_cgroup("0::/krill.slice/krill-robot.slice/krill-robot-slam.service\n")
                .as_deref(),
            Some("krill-robot-slam.service")
        );
        assert_eq!(
            unit_of_cgroup("0::/krill.slice/krill-robot.slice/krill-robot-slam.service/worker\n")
                .as_deref(),
            Some("krill-robot-slam.service")
        );
        assert_eq!(
            unit_of_cgroup("0::/user.slice/user-0.slice/session-1.scope\n"),
            None
        );
        assert_eq!(unit_of_cgroup("garbage"), None);
    }
}
