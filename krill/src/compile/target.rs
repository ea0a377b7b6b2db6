//! The systemd that will load the rendered units. Directives newer than the oldest
//! supported systemd (247, Debian 11) are emitted only where the target knows them:
//! an unknown key makes systemd warn on every load, and a missing one loses behaviour.

use std::path::Path;

/// What the target systemd understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// systemd's major version, e.g. 252.
    pub systemd: u32,
    /// A user's `systemd --user` (default false: PID 1). Nobody can relay a watchdog
    /// ping to it on a service's behalf, so krill-supervisor enforces heartbeat
    /// timeouts itself there, and nothing else starts the user's supervisor, so each
    /// workspace pulls it in.
    pub user: bool,
}

/// Directories where distributions keep `libsystemd-shared-<version>.so`: Debian and
/// Ubuntu (multiarch), Fedora and Arch.
const SHARED_LIB_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/systemd",
    "/usr/lib/aarch64-linux-gnu/systemd",
    "/usr/lib/arm-linux-gnueabihf/systemd",
    "/usr/lib64/systemd",
    "/usr/lib/systemd",
];

impl Target {
    /// The oldest systemd krill supports: 247 (Debian 11). Units rendered for it load
    /// on every newer one.
    pub const OLDEST: Target = Target {
        systemd: 247,
        user: false,
    };

    /// This target for the process's scope ([`crate::runtime::scope`]).
    fn with_scope(self) -> Target {
        Target {
            user: crate::runtime::scope::is_user(),
            ..self
        }
    }

    /// systemd 257 and later: `RestartMode=direct` keeps an automatic restart from
    /// passing through `failed`, so `OnFailure=` fires once, at the final failure,
    /// and dependents are not stopped and restarted with the unit (design.md).
    pub fn restart_mode_direct(self) -> bool {
        self.systemd >= 257
    }

    /// Whether `ExecStopPost=` is safe on a `Type=exec` service. On 247 it is not: when
    /// the main process exits before systemd has read the exec notification (a
    /// missing binary, a crash at start), PID 1 spins forever on that pipe ("Looping
    /// too fast") and stops serving every unit and bus call. Reproduced here with a
    /// plain unit (`Type=exec`, `ExecStart=/bin/false`, `ExecStopPost=/bin/true`) on
    /// 247 and not on 252; 248–251 were not available to test, so they are treated
    /// like 247.
    pub fn exec_stop_post_is_safe(self) -> bool {
        self.systemd >= 252
    }

    /// systemd 254 and later keep a service's fd store across an explicit stop or
    /// restart with `FileDescriptorStorePreserve=yes`; older ones flush it, and only
    /// a crash keeps it.
    pub fn fd_store_preserve(self) -> bool {
        self.systemd >= 254
    }

    /// systemd 250 and later look the program of `ExecStart=` up in `ExecSearchPath=`;
    /// older ones only in their compiled-in path (`Environment=PATH=` never counts).
    pub fn exec_search_path(self) -> bool {
        self.systemd >= 250
    }

    /// The systemd installed on this machine, which is the one that loads what the
    /// generator writes. `KRILL_SYSTEMD_VERSION` overrides it (to render for another
    /// robot). Found from the name of `libsystemd-shared-<version>.so`, which every
    /// systemd since 231 installs, because a generator runs before D-Bus is up and
    /// must not spawn `systemctl`. [`Target::OLDEST`] if nothing is found.
    /// Looked up once per process: install, plan and the generator each render more
    /// than once.
    pub fn detect() -> Target {
        static DETECTED: std::sync::OnceLock<Target> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(|| {
            if let Some(v) = std::env::var("KRILL_SYSTEMD_VERSION")
                .ok()
                .and_then(|v| v.trim().parse().ok())
            {
                return Target {
                    systemd: v,
                    user: crate::runtime::scope::is_user(),
                };
            }
            Target::of_root(Path::new("/"))
                .unwrap_or(Target::OLDEST)
                .with_scope()
        })
    }
}

impl Target {
    /// The systemd installed under `root` (`/`, or a distribution's root directory):
    /// the version in its `libsystemd-shared-<version>.so`; `None` if there is none.
    pub fn of_root(root: &Path) -> Option<Target> {
        SHARED_LIB_DIRS
            .iter()
            .find_map(|d| version_in(&root.join(d.trim_start_matches('/'))))
            .map(|systemd| Target {
                systemd,
                user: false,
            })
    }
}

/// The version in the name of the `libsystemd-shared-<version>.so` in `dir`.
fn version_in(dir: &Path) -> Option<u32> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|e| parse_shared_lib(&e.file_name().to_string_lossy()))
}

/// `libsystemd-shared-252.so` → 252; Fedora's `libsystemd-shared-255.4-1.fc40.so`
/// → 255.
fn parse_shared_lib(name: &str) -> Option<u32> {
    let v = name
        .strip_prefix("libsystemd-shared-")?
        .strip_suffix(".so")?;
    let major: String = v.chars().take_while(char::is_ascii_digit).collect();
    major.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_library_names_give_the_major_version() {
        assert_eq!(parse_shared_lib("libsystemd-shared-252.so"), Some(252));
        assert_eq!(parse_shared_lib("libsystemd-shared-257.13.so"), Some(257));
        assert_eq!(
            parse_shared_lib("libsystemd-shared-255.4-1.fc40.so"),
            Some(255)
        );
        assert_eq!(parse_shared_lib("libsystemd-core-252.so"), None);
        assert_eq!(parse_shared_lib("libsystemd-shared-.so"), None);
    }

    #[test]
    fn restart_mode_direct_from_257() {
        assert!(!Target::OLDEST.restart_mode_direct());
        assert!(!Target {
            systemd: 256,
            user: false
        }
        .restart_mode_direct());
        assert!(Target {
            systemd: 257,
            user: false
        }
        .restart_mode_direct());
    }

    #[test]
    fn exec_stop_post_from_252() {
        assert!(!Target::OLDEST.exec_stop_post_is_safe());
        assert!(!Target {
            systemd: 249,
            user: false
        }
        .exec_stop_post_is_safe());
        assert!(Target {
            systemd: 252,
            user: false
        }
        .exec_stop_post_is_safe());
    }
}
