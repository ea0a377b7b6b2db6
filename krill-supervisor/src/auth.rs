//! Who sent a heartbeat: the peer's pid (SO_PEERCRED), then its cgroup, which must be
//! the exact cgroup of a krill service unit or one below it.
//!
//! The cgroup of `krill-W-S.service` is `/krill.slice/<slice>/krill-W-S.service`,
//! because the generator puts every service of workspace W in `Slice=krill-W.slice`
//! (a child of `krill.slice`). A path is compared whole, component by component, so a
//! user's own `systemd --user` unit named `krill-W-S.service`
//! (`/user.slice/user-1000.slice/user@1000.service/app.slice/krill-W-S.service`) or a
//! child cgroup named after another service inside a krill service never matches.

/// The cgroup v2 path in the text of `/proc/PID/cgroup` (the `0::/path` line).
pub fn cgroup_in(cgroup_file: &str) -> Option<&str> {
    cgroup_file
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::trim_end)
}

/// The cgroup v2 path of a running process, if it can be read.
pub fn cgroup_of_pid(pid: i32) -> Option<String> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    cgroup_in(&text).map(str::to_owned)
}

/// The cgroup systemd gives `unit` in `slice` (a `krill-W.slice`, a child of
/// `krill.slice`), below the manager's own root ([`manager_root`]).
pub fn unit_cgroup(slice: &str, unit: &str) -> String {
    format!("{}/krill.slice/{slice}/{unit}", manager_root())
}

/// Where this process's manager keeps its units: `` for PID 1, and for a user
/// manager its `…/user@UID.service` cgroup, read once from our own cgroup.
pub fn manager_root() -> &'static str {
    static ROOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        if !krill::runtime::scope::is_user() {
            return String::new();
        }
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        user_manager_root(cgroup_in(&own).unwrap_or_default()).to_owned()
    })
}

/// The `…/user@UID.service` prefix of a cgroup path inside a user manager.
fn user_manager_root(path: &str) -> &str {
    self_and_ancestors(path)
        .find(|p| {
            p.rsplit('/')
                .next()
                .is_some_and(|c| c.starts_with("user@") && c.ends_with(".service"))
        })
        .unwrap_or("")
}

/// `path` itself, then each ancestor up to the root, longest first.
pub fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::once(path).chain(
        path.char_indices()
            .rev()
            .filter(|(_, c)| *c == '/')
            .map(move |(i, _)| &path[..i])
            .filter(|p| !p.is_empty()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_managers_units_are_below_its_service() {
        assert_eq!(
            user_manager_root(
                "/user.slice/user-1000.slice/user@1000.service/app.slice/krill-supervisor.service"
            ),
            "/user.slice/user-1000.slice/user@1000.service"
        );
        assert_eq!(
            user_manager_root("/system.slice/krill-supervisor.service"),
            ""
        );
    }

    #[test]
    fn reads_the_v2_path() {
        assert_eq!(
            cgroup_in("0::/krill.slice/krill-robot.slice/krill-robot-slam.service\n"),
            Some("/krill.slice/krill-robot.slice/krill-robot-slam.service")
        );
        assert_eq!(cgroup_in("garbage"), None);
    }

    #[test]
    fn ancestors_are_whole_components() {
        let v: Vec<&str> = self_and_ancestors("/a/b.service/c").collect();
        assert_eq!(v, ["/a/b.service/c", "/a/b.service", "/a"]);
        assert_eq!(
            unit_cgroup("krill-a\\x2db.slice", "krill-a-b-x.service"),
            "/krill.slice/krill-a\\x2db.slice/krill-a-b-x.service"
        );
    }
}
