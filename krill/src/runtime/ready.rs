//! `ready:` (a krill extension): when a service counts as started for its
//! dependents. `file` and `tcp` are checked by `krill-ctl ready` as the unit's
//! `ExecStartPost=` (systemd reports the unit active, and the `started` gates pass,
//! only once it returns); `notify` is systemd's own `Type=notify`. The timeout is
//! systemd's `TimeoutStartSec=` either way: a service not ready in time fails with
//! `Result=timeout`, which `krill status` explains with [`Ready::what`]. Distinct
//! from `health_check`, which decides `healthy`.

use std::path::PathBuf;
use std::time::Duration;

/// What a service's readiness is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadyKind {
    /// The file exists.
    File(PathBuf),
    /// 127.0.0.1 or ::1 accepts a TCP connection on the port.
    Tcp(u16),
    /// The service sent `READY=1`.
    Notify,
}

/// A service's readiness and how long it may take.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ready {
    pub kind: ReadyKind,
    /// From the spawn to ready, at most (default [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
}

/// systemd's own default start timeout (90 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

impl Ready {
    /// In words, for reasons: `/run/a exists`, `port 8080 accepts connections`.
    pub fn what(&self) -> String {
        match &self.kind {
            ReadyKind::File(p) => format!("{} to exist", p.display()),
            ReadyKind::Tcp(p) => format!("port {p} to accept connections"),
            ReadyKind::Notify => "READY=1 (sd_notify)".to_owned(),
        }
    }
}
