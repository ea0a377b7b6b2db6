//! The async (tokio) client, with upstream's signatures.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::sync::Mutex;
use tokio::time::{timeout_at, Instant};

use crate::link::{self, Backoff};
use crate::{encode, KrillError, Report, SEND_TIMEOUT};

/// A heartbeat client for tokio: every call completes within [`SEND_TIMEOUT`].
/// `Send + Sync`: share it between tasks by reference or `Arc`.
#[derive(Debug)]
pub struct KrillClient {
    service: String,
    path: PathBuf,
    link: Mutex<Link>,
}

#[derive(Debug)]
struct Link {
    stream: Option<UnixStream>,
    backoff: Backoff,
    closed: bool,
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
        let mut link = Link {
            stream: None,
            backoff: Backoff::new(),
            closed: false,
        };
        match connect_by(&socket_path, Instant::now() + SEND_TIMEOUT).await {
            Ok(s) => link.stream = Some(s),
            Err(e) if std::env::var_os("NOTIFY_SOCKET").is_none() => {
                return Err(link::cannot_connect(&socket_path, &e))
            }
            Err(_) => link.backoff.failed(),
        }
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
            return self.fall_back(&report, "another call holds the connection");
        };
        if link.closed {
            return Err(link::disconnected(&self.path, "the client is closed"));
        }
        let mut why = String::from("not connected");
        if link.stream.is_none() && link.backoff.ready() {
            match connect_by(&self.path, deadline).await {
                Ok(s) => {
                    link.stream = Some(s);
                    link.backoff.succeeded();
                }
                Err(e) => {
                    link.backoff.failed();
                    why = format!("cannot connect: {e}");
                }
            }
        }
        if let Some(s) = &link.stream {
            match write_by(s, &bytes, deadline).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    // A torn line must not begin the next connection: drop it whole.
                    link.stream = None;
                    link.backoff.failed();
                    why = format!("cannot send: {e}");
                }
            }
        }
        drop(link);
        self.fall_back(&report, &why)
    }

    fn fall_back(&self, report: &Report, why: &str) -> Result<(), KrillError> {
        if link::notify_watchdog(report) {
            return Ok(());
        }
        Err(link::disconnected(&self.path, why))
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
        let mut link = self.link.lock().await;
        link.closed = true;
        link.stream = None;
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
