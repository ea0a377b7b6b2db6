//! What both clients share: the reconnect back-off, `MSG_NOSIGNAL` sends, the
//! systemd watchdog fallback, and the error of a call that found no way through.

use std::io;
use std::os::fd::RawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{KrillError, Report};

/// First wait after a failed connection (50 ms); it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest wait between connection attempts (2 s).
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// When the next connection attempt may be made.
#[derive(Debug)]
pub struct Backoff {
    /// The wait after the next failure.
    delay: Duration,
    /// No attempt before this; `None`: now.
    retry_at: Option<Instant>,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff {
            delay: BACKOFF_MIN,
            retry_at: None,
        }
    }

    pub fn ready(&self) -> bool {
        self.retry_at.is_none_or(|t| Instant::now() >= t)
    }

    pub fn failed(&mut self) {
        self.retry_at = Some(Instant::now() + self.delay);
        self.delay = (self.delay * 2).min(BACKOFF_MAX);
    }

    pub fn succeeded(&mut self) {
        *self = Backoff::new();
    }
}

/// `send(2)` with `MSG_NOSIGNAL`: a peer that went away is `EPIPE`, never SIGPIPE.
pub fn send_nosignal(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for len bytes; fd is the caller's open socket.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Pings systemd's watchdog directly (`WATCHDOG=1`, and `STATUS=` with a degraded
/// reason). False when not run by systemd with a notify socket, or it failed.
pub fn notify_watchdog(report: &Report) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let mut state = String::from("WATCHDOG=1");
    if report.status == "degraded" {
        let reason = report.metadata.get("reason").map_or("", String::as_str);
        state.push_str("\nSTATUS=degraded: ");
        state.push_str(&reason.replace('\n', " "));
    }
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return false;
    };
    let _ = sock.set_write_timeout(Some(crate::SEND_TIMEOUT));
    let path = path.to_string_lossy();
    match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
                .is_ok()
        }
        None => sock.send_to(state.as_bytes(), &*path).is_ok(),
    }
}

/// A client's connection state, shared by the blocking and async clients: they
/// differ only in how they connect and write.
#[derive(Debug)]
pub struct Link<S> {
    stream: Option<S>,
    backoff: Backoff,
    closed: bool,
    /// Why the latest call found no connection.
    why: String,
}

impl<S> Link<S> {
    /// After a constructor's connection attempt: `Err(e)` is an error when there
    /// is no systemd watchdog to fall back to, else the first failed attempt.
    pub fn start(path: &Path, first: io::Result<S>) -> Result<Link<S>, KrillError> {
        let mut link = Link {
            stream: None,
            backoff: Backoff::new(),
            closed: false,
            why: String::new(),
        };
        match first {
            Ok(s) => link.stream = Some(s),
            Err(e) if std::env::var_os("NOTIFY_SOCKET").is_none() => {
                return Err(cannot_connect(path, &e))
            }
            Err(_) => link.backoff.failed(),
        }
        Ok(link)
    }

    /// A call begins: fails if closed; true if it should try to connect first.
    pub fn begin(&mut self, path: &Path) -> Result<bool, KrillError> {
        if self.closed {
            return Err(disconnected(path, "the client is closed"));
        }
        self.why = "not connected".into();
        Ok(self.stream.is_none() && self.backoff.ready())
    }

    /// The outcome of that attempt.
    pub fn connected(&mut self, r: io::Result<S>) {
        match r {
            Ok(s) => {
                self.stream = Some(s);
                self.backoff.succeeded();
            }
            Err(e) => {
                self.backoff.failed();
                self.why = format!("cannot connect: {e}");
            }
        }
    }

    /// The connection to write on, if any.
    pub fn stream(&self) -> Option<&S> {
        self.stream.as_ref()
    }

    /// Writing failed: the connection is dropped whole, so that a torn line never
    /// begins the next one.
    pub fn write_failed(&mut self, e: io::Error) {
        self.stream = None;
        self.backoff.failed();
        self.why = format!("cannot send: {e}");
    }

    /// No way through krill: systemd's watchdog, else the error.
    pub fn fall_back(&self, path: &Path, report: &Report) -> Result<(), KrillError> {
        if notify_watchdog(report) {
            return Ok(());
        }
        Err(disconnected(path, &self.why))
    }

    pub fn close(&mut self) {
        self.closed = true;
        self.stream = None;
    }
}

/// The error of a call that could neither reach krill nor fall back.
pub fn disconnected(path: &Path, why: &str) -> KrillError {
    KrillError::Io(io::Error::new(
        io::ErrorKind::NotConnected,
        format!(
            "not connected to krill at {} ({why}); a later call reconnects",
            path.display()
        ),
    ))
}

/// The error of a constructor that could not connect.
pub fn cannot_connect(path: &Path, e: &io::Error) -> KrillError {
    KrillError::Connection(format!("cannot connect to {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new();
        assert!(b.ready());
        for _ in 0..10 {
            b.failed();
        }
        assert!(!b.ready());
        assert_eq!(b.delay, BACKOFF_MAX);
        b.succeeded();
        assert!(b.ready());
        assert_eq!(b.delay, BACKOFF_MIN);
    }
}
