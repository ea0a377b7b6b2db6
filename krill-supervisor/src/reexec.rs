//! Re-exec in place on SIGHUP (`systemctl reload krill-supervisor`, and the .deb's
//! upgrade): the supervisor execs its binary, new or not, with the same PID, and
//! hands it the listening socket and every heartbeat connection in the
//! sd_listen_fds convention that its start already reads (as after a restart from
//! the fd store). systemd sees one main process throughout: no restart of the
//! unit, no gap in its state, and it does not depend on the fd store (which a stop
//! empties below systemd 254).
//!
//! What is lost: bytes of a heartbeat line already read but not yet complete (at most
//! one line per connection, refused as malformed by the new image, which resyncs at
//! the next newline). Unread bytes stay in the kernel's socket buffers.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;

use nix::fcntl::{fcntl, FcntlArg};

use krill::runtime::paths::KRILL_SUPERVISOR;

/// Execs [`KRILL_SUPERVISOR`] with `fds` (name, fd) as its listen fds. Returns only if
/// that failed; the process's fds 3 and up are then in an undefined state, so the
/// caller must exit (systemd restarts it, with the connections from its fd store).
pub fn reexec(fds: &[(String, RawFd)]) -> std::io::Error {
    // First above every fd the numbers 3..3+n could collide with, then down into
    // place: dup2 clears FD_CLOEXEC on the copy, and nothing else survives the exec.
    let floor = 3 + fds.len() as RawFd;
    let mut high: Vec<OwnedFd> = Vec::with_capacity(fds.len());
    for (_, fd) in fds {
        // SAFETY: the caller's fds stay open until the exec.
        let b = unsafe { BorrowedFd::borrow_raw(*fd) };
        match fcntl(b, FcntlArg::F_DUPFD_CLOEXEC(floor)) {
            // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
            Ok(h) => high.push(unsafe { std::os::fd::FromRawFd::from_raw_fd(h) }),
            Err(e) => return std::io::Error::from(e),
        }
    }
    for (i, h) in high.iter().enumerate() {
        // SAFETY: dup2 onto a number we own from here to the exec.
        if unsafe { libc::dup2(h.as_raw_fd(), 3 + i as RawFd) } < 0 {
            return std::io::Error::last_os_error();
        }
    }
    let names: Vec<&str> = fds.iter().map(|(n, _)| n.as_str()).collect();
    std::process::Command::new(KRILL_SUPERVISOR)
        .env("LISTEN_PID", std::process::id().to_string())
        .env("LISTEN_FDS", fds.len().to_string())
        .env("LISTEN_FDNAMES", names.join(":"))
        .exec()
}
