//! Health checks as the supervisor runs them: the contract between a compiled
//! recipe (which writes them into the generator's manifest) and krill-supervisor.

use std::time::Duration;

/// A service's health check. `None` timeouts mean the supervisor's documented default.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum HealthCheck {
    /// The service sends heartbeats; silent for longer than `timeout` is unhealthy.
    Heartbeat { timeout: Duration },
    /// A TCP connect to `127.0.0.1:port`.
    Tcp {
        port: u16,
        timeout: Option<Duration>,
    },
    /// `GET http://127.0.0.1:port{path}` must answer `expected_status`.
    Http {
        port: u16,
        /// Default `/health`.
        path: String,
        /// Default 200.
        expected_status: u16,
    },
    /// A command that must exit 0.
    Script {
        argv: Vec<String>,
        timeout: Option<Duration>,
    },
}

impl HealthCheck {
    /// `WatchdogSec=` of a heartbeat service: its timeout plus
    /// [`RELAY_INTERVAL`](crate::runtime::timing::RELAY_INTERVAL). The supervisor
    /// relays heartbeats to systemd's watchdog (as the service, so that systemd
    /// enforces the timeout even without the supervisor), throttled to that interval,
    /// so the watchdog fires between `timeout` and `timeout + RELAY_INTERVAL` after the
    /// last heartbeat. `None` for the other checks.
    pub fn watchdog(&self) -> Option<Duration> {
        match self {
            HealthCheck::Heartbeat { timeout } => {
                Some(*timeout + crate::runtime::timing::RELAY_INTERVAL)
            }
            _ => None,
        }
    }

    /// Which check type this is.
    pub fn kind(&self) -> HealthKind {
        match self {
            HealthCheck::Heartbeat { .. } => HealthKind::Heartbeat,
            HealthCheck::Tcp { .. } => HealthKind::Tcp,
            HealthCheck::Http { .. } => HealthKind::Http,
            HealthCheck::Script { .. } => HealthKind::Script,
        }
    }
}

/// The health check types: the one list that validation, the JSON schema and the
/// supervisor use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthKind {
    Heartbeat,
    Tcp,
    Http,
    Script,
}

impl HealthKind {
    /// Every check type, in the order the documentation lists them.
    pub const ALL: [HealthKind; 4] = [
        HealthKind::Heartbeat,
        HealthKind::Tcp,
        HealthKind::Http,
        HealthKind::Script,
    ];

    /// The `type:` value.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthKind::Heartbeat => "heartbeat",
            HealthKind::Tcp => "tcp",
            HealthKind::Http => "http",
            HealthKind::Script => "script",
        }
    }

    /// The kind written as `s`, if any.
    pub fn parse(s: &str) -> Option<HealthKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The fields this type takes besides `type`.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            HealthKind::Heartbeat => &["timeout"],
            HealthKind::Tcp => &["port", "timeout"],
            HealthKind::Http => &["port", "path", "expected_status"],
            HealthKind::Script => &["command", "timeout"],
        }
    }
}

impl std::fmt::Display for HealthKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
