//! Where krill's programs and sockets are. Units, the supervisor and the CLI all
//! take these from here.

use std::path::PathBuf;

use crate::runtime::scope::{self, Scope};

/// Where `krill-ctl` is installed; units call it for gates, GPU checks and failure
/// handling.
pub const KRILL_CTL: &str = "/usr/bin/krill-ctl";

/// Where `krill-supervisor` is installed; a reload re-execs it from here (not
/// `/proc/self/exe`, which after an upgrade is the old, deleted binary).
pub const KRILL_SUPERVISOR: &str = "/usr/bin/krill-supervisor";

/// The heartbeat socket (owned by `krill-supervisor.socket`), exported to every
/// service as `KRILL_SOCKET`.
pub const KRILL_SOCKET: &str = "/run/krill/krill.sock";

/// Where the upstream Krill SDKs connect by default: a root-owned symlink to
/// [`KRILL_SOCKET`], made at boot by the package's `tmpfiles.d/krill.conf`. /tmp is
/// sticky, so no other user can remove or replace it, and services keep the host's
/// /tmp (X11 sockets, shared files) without a mount namespace each.
pub const UPSTREAM_SOCKET: &str = "/tmp/krill.sock";

/// Default directory of krill's runtime records (tmpfs: lost at reboot, on purpose).
pub const DEFAULT_RUN_DIR: &str = "/run/krill";

/// The runtime record directory: `KRILL_RUN_DIR`, or [`DEFAULT_RUN_DIR`] (a user
/// workspace's: `$XDG_RUNTIME_DIR/krill`).
pub fn run_dir() -> PathBuf {
    std::env::var_os("KRILL_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| match scope::current() {
            Scope::System => PathBuf::from(DEFAULT_RUN_DIR),
            Scope::User => scope::runtime_dir().join("krill"),
        })
}

/// The heartbeat socket of this scope: [`KRILL_SOCKET`], or a user's
/// `$XDG_RUNTIME_DIR/krill/krill.sock` (its `krill-supervisor.socket` is
/// `ListenStream=%t/krill/krill.sock`).
pub fn socket() -> String {
    match scope::current() {
        Scope::System => KRILL_SOCKET.to_owned(),
        Scope::User => scope::runtime_dir()
            .join("krill/krill.sock")
            .display()
            .to_string(),
    }
}
