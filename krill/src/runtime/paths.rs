//! Where krill's programs and sockets are. Units, the supervisor and the CLI all
//! take these from here.

use std::path::PathBuf;

/// Where `krill-ctl` is installed; units call it for gates, GPU checks and failure
/// handling.
pub const KRILL_CTL: &str = "/usr/bin/krill-ctl";

/// Where `krill-supervisor` is installed; a reload re-execs it from here (not
/// `/proc/self/exe`, which after an upgrade is the old, deleted binary).
pub const KRILL_SUPERVISOR: &str = "/usr/bin/krill-supervisor";

/// The heartbeat socket (owned by `krill-supervisor.socket`), exported to every
/// service as `KRILL_SOCKET`.
pub const KRILL_SOCKET: &str = "/run/krill/krill.sock";

/// Where the upstream Krill SDKs connect by default. krill services get a private
/// `/tmp` with the heartbeat socket bound at this path, so upstream SDK code works
/// unchanged and no world-writable global path exists that another user could squat.
pub const UPSTREAM_SOCKET: &str = "/tmp/krill.sock";

/// Default directory of krill's runtime records (tmpfs: lost at reboot, on purpose).
pub const DEFAULT_RUN_DIR: &str = "/run/krill";

/// The runtime record directory: `KRILL_RUN_DIR`, or [`DEFAULT_RUN_DIR`].
pub fn run_dir() -> PathBuf {
    std::env::var_os("KRILL_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_DIR))
}
