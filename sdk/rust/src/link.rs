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
