//! Heartbeats from a Rust service to krill, the process orchestrator for robots on
//! systemd; byte-compatible with the upstream Krill SDKs (one compact JSON object
//! per line, keys in the order type, service, status, metadata), and with upstream's
//! Rust API, so upstream code compiles unchanged:
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn run() -> Result<(), krill_sdk::KrillError> {
//! use krill_sdk::KrillClient;
//! let client = KrillClient::from_env().await?; // KRILL_SERVICE and KRILL_SOCKET, set by krill
//! client.heartbeat().await?;
//! client.report_degraded("lidar dirty").await?;
//! # Ok(()) }
//! ```
//!
//! [`KrillClient`] is async (tokio, the default feature `tokio`);
//! [`blocking::KrillClient`] has the same methods without a runtime. Both guarantee:
//!
//! * **Bounded calls:** a call blocks for at most [`SEND_TIMEOUT`] (100 ms),
//!   connecting included.
//! * **Reconnect:** a broken connection is dropped whole (a line is never torn) and a
//!   later call reconnects; failed attempts back off from 50 ms to 2 s, and calls in
//!   between do not try.
//! * **Outside krill:** while disconnected, a call pings systemd's own watchdog
//!   (`WATCHDOG=1` to `NOTIFY_SOCKET`; a degraded reason goes in `STATUS=`), so a
//!   service also runs under a plain unit with `WatchdogSec=`. Without
//!   `NOTIFY_SOCKET` the call returns [`KrillError::Io`] (`NotConnected`), and the
//!   process goes on.
//! * **No harm:** no SIGPIPE (`MSG_NOSIGNAL`); clients are `Send + Sync`.
//!
//! Zero configuration: [`KrillClient::from_env`] takes the service name from
//! `KRILL_SERVICE`; every constructor takes the socket from `KRILL_SOCKET` unless
//! given one, else upstream's [`DEFAULT_SOCKET`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

pub mod blocking;
#[cfg(feature = "tokio")]
mod client;
mod link;
mod wire;

#[cfg(feature = "tokio")]
pub use client::KrillClient;
pub use wire::encode;

/// Upstream's default socket path, used when `KRILL_SOCKET` is not set.
pub const DEFAULT_SOCKET: &str = "/tmp/krill.sock";

/// The longest any call blocks (100 ms), connecting and sending together.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(100);

/// Errors, as upstream's SDK names them.
#[derive(Debug, thiserror::Error)]
pub enum KrillError {
    /// A constructor could not connect (and no systemd watchdog was there to fall
    /// back to), or no service name was given.
    #[error("Connection error: {0}")]
    Connection(String),
    /// Sending failed while disconnected, with nothing to fall back to; a later call
    /// reconnects.
    #[error("IO error: {0}")]
    Io(#[from] std::io::Error),
    /// Kept for upstream compatibility; this SDK's encoding cannot fail.
    #[error("Serialization error: {0}")]
    Serialization(String),
}

/// The socket a constructor uses: `KRILL_SOCKET`, else [`DEFAULT_SOCKET`].
fn default_socket() -> PathBuf {
    std::env::var_os("KRILL_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_SOCKET.into())
}

/// The service name from `KRILL_SERVICE`.
fn service_from_env() -> Result<String, KrillError> {
    std::env::var("KRILL_SERVICE")
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| KrillError::Connection("KRILL_SERVICE is not set".into()))
}

/// A message's status and metadata.
#[derive(Debug, Clone)]
struct Report {
    status: &'static str,
    metadata: BTreeMap<String, String>,
}

impl Report {
    fn healthy() -> Report {
        Report {
            status: "healthy",
            metadata: BTreeMap::new(),
        }
    }

    fn degraded(reason: &str) -> Report {
        Report {
            status: "degraded",
            metadata: BTreeMap::from([("reason".to_owned(), reason.to_owned())]),
        }
    }

    fn with_metadata(metadata: HashMap<String, String>) -> Report {
        Report {
            status: "healthy",
            metadata: metadata.into_iter().collect(),
        }
    }
}
