//! The async (tokio) client, with upstream's signatures.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::sync::Mutex;
use tokio::time::{timeout_at, Instant};

use crate::link::{self, Link};
use crate::{encode, KrillError, Report, SEND_TIMEOUT};

/// A heartbeat client for tokio: every call completes within [`SEND_TIMEOUT`].
/// `Send + Sync`: share it between tasks by reference or `Arc`.
#[derive(Debug)]
pub struct KrillClient {
    service: String,
    path: PathBuf,
    link: Mutex<Link<UnixStream>>,
}

impl KrillClient {
    /// For `service_name`, on `KRILL_SOCKET` (else [`crate::DEFAULT_SOCKET`]).
    pub async fn new(service_name: &str) -> Result<Self, KrillError> {
        Self::connect(service_name, crate::default_socket()).await
    }

    /// Service name from `KRILL_SERVICE`, socket from `KRILL_SOCKET`: what krill sets.
    pub async fn from_env() -> Result<Self, KrillError> {
        Self::new(&crate::service_from_env()?).await
    }

    /// For `service_name` on `socket_path`. Fails with [`KrillError::Connection`] if
    /// it cannot connect, unless systemd's watchdog (`NOTIFY_SOCKET`) is there to
    /// fall back to.
    pub async fn connect(service_name: &str, socket_path: PathBuf) -> Result<Self, KrillError> {
        let first = connect_by(&socket_path, Instant::now() + SEND_TIMEOUT).await;
        let link = Link::start(&socket_path, first)?;
        Ok(Self {
            service: service_name.to_owned(),
            path: socket_path,
            link: Mutex::new(link),
        })
    }

    async fn send(&self, report: Report) -> Result<(), KrillError> {
        let bytes = encode(&self.service, report.status, &report.metadata);
        let deadline = Instant::now() + SEND_TIMEOUT;
        let Ok(mut link) = timeout_at(deadline, self.link.lock()).await else {
            // Another call holds the connection past the bound.
            if link::notify_watchdog(&report) {
                return Ok(());
            }
            return Err(link::disconnected(&self.path, "another call is sending"));
        };
        if link.begin(&self.path)? {
            link.connected(connect_by(&self.path, deadline).await);
        }
        if let Some(s) = link.stream() {
            match write_by(s, &bytes, deadline).await {
                Ok(()) => return Ok(()),
                Err(e) => link.write_failed(e),
            }
        }
        link.fall_back(&self.path, &report)
    }

    /// Reports the service healthy.
    pub async fn heartbeat(&self) -> Result<(), KrillError> {
        self.send(Report::healthy()).await
    }

    /// A healthy heartbeat with metadata (sent with sorted keys).
    pub async fn heartbeat_with_metadata(
        &self,
        metadata: HashMap<String, String>,
    ) -> Result<(), KrillError> {
        self.send(Report::with_metadata(metadata)).await
    }

    /// Alive but degraded; `reason` shows in `krill status`.
    pub async fn report_degraded(&self, reason: &str) -> Result<(), KrillError> {
        self.send(Report::degraded(reason)).await
    }

    /// Same as [`KrillClient::heartbeat`].
    pub async fn report_healthy(&self) -> Result<(), KrillError> {
        self.send(Report::healthy()).await
    }

    /// Closes the connection; later calls fail.
    pub async fn close(&self) {
        self.link.lock().await.close();
    }
}

async fn connect_by(path: &std::path::Path, deadline: Instant) -> io::Result<UnixStream> {
    timeout_at(deadline, UnixStream::connect(path))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// Writes all of `buf` by `deadline` with `MSG_NOSIGNAL`, or fails.
async fn write_by(s: &UnixStream, mut buf: &[u8], deadline: Instant) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    while !buf.is_empty() {
        let fd = s.as_raw_fd();
        let n = timeout_at(
            deadline,
            s.async_io(Interest::WRITABLE, || link::send_nosignal(fd, buf)),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "send timed out"))??;
        buf = &buf[n..];
    }
    Ok(())
}
