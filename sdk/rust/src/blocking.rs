//! The blocking client: [`KrillClient`], with the methods of the async one and the
//! same guarantees (see the crate documentation), for programs without a runtime.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::link::{self, Link};
use crate::{encode, KrillError, Report, SEND_TIMEOUT};

/// A heartbeat client that blocks (at most [`SEND_TIMEOUT`] per call). `Send + Sync`:
/// share it between threads by reference or `Arc`.
#[derive(Debug)]
pub struct KrillClient {
    service: String,
    path: PathBuf,
    link: Mutex<Link<UnixStream>>,
}

impl KrillClient {
    /// For `service_name`, on `KRILL_SOCKET` (else [`crate::DEFAULT_SOCKET`]).
    pub fn new(service_name: &str) -> Result<KrillClient, KrillError> {
        KrillClient::connect(service_name, crate::default_socket())
    }

    /// Service name from `KRILL_SERVICE`, socket from `KRILL_SOCKET`: what krill sets.
    pub fn from_env() -> Result<KrillClient, KrillError> {
        KrillClient::new(&crate::service_from_env()?)
    }

    /// For `service_name` on `socket_path`. Fails with [`KrillError::Connection`] if
    /// it cannot connect, unless systemd's watchdog (`NOTIFY_SOCKET`) is there to
    /// fall back to.
    pub fn connect(
        service_name: &str,
        socket_path: impl Into<PathBuf>,
    ) -> Result<KrillClient, KrillError> {
        let path = socket_path.into();
        let link = Link::start(&path, connect_now(&path))?;
        Ok(KrillClient {
            service: service_name.to_owned(),
            path,
            link: Mutex::new(link),
        })
    }

    fn link(&self) -> MutexGuard<'_, Link<UnixStream>> {
        self.link.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, report: Report) -> Result<(), KrillError> {
        let bytes = encode(&self.service, report.status, &report.metadata);
        let deadline = Instant::now() + SEND_TIMEOUT;
        let mut link = self.link();
        if link.begin(&self.path)? {
            link.connected(connect_now(&self.path));
        }
        if let Some(s) = link.stream() {
            match write_within(s, &bytes, deadline) {
                Ok(()) => return Ok(()),
                Err(e) => link.write_failed(e),
            }
        }
        link.fall_back(&self.path, &report)
    }

    /// Reports the service healthy.
    pub fn heartbeat(&self) -> Result<(), KrillError> {
        self.send(Report::healthy())
    }

    /// Same as [`KrillClient::heartbeat`].
    pub fn report_healthy(&self) -> Result<(), KrillError> {
        self.send(Report::healthy())
    }

    /// Alive but degraded; `reason` shows in `krill status`.
    pub fn report_degraded(&self, reason: &str) -> Result<(), KrillError> {
        self.send(Report::degraded(reason))
    }

    /// A healthy heartbeat with metadata (sent with sorted keys).
    pub fn heartbeat_with_metadata(
        &self,
        metadata: HashMap<String, String>,
    ) -> Result<(), KrillError> {
        self.send(Report::with_metadata(metadata))
    }

    /// Closes the connection; later calls fail.
    pub fn close(&self) {
        self.link().close();
    }
}

/// Connects without waiting: a full backlog is an error (`EAGAIN`), not a block.
fn connect_now(path: &Path) -> io::Result<UnixStream> {
    // SAFETY: plain socket(2); the fd is owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just created and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    // SAFETY: addr is a valid sockaddr_un of at least len bytes.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let s = UnixStream::from(fd);
    s.set_nonblocking(false)?;
    Ok(s)
}

/// Writes all of `buf` by `deadline`, or fails (the caller then drops the stream).
fn write_within(s: &UnixStream, mut buf: &[u8], deadline: Instant) -> io::Result<()> {
    while !buf.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "send timed out"));
        }
        s.set_write_timeout(Some(left))?;
        match link::send_nosignal(s.as_raw_fd(), buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "send timed out"))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
