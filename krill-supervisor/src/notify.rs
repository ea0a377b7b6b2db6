//! sd_notify, both for the supervisor itself (READY, WATCHDOG, FDSTORE) and as a
//! relay: a heartbeat becomes `WATCHDOG=1` sent to systemd on behalf of the service,
//! with `SCM_CREDENTIALS` carrying the service's MainPID (root may do that), so
//! systemd attributes it to the service's unit.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, RawFd};

use nix::sys::socket::{
    self, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr, UnixCredentials,
};

/// systemd's notification socket, where the relay sends.
pub const SYSTEMD_NOTIFY: &str = "/run/systemd/notify";

fn addr(path: &str) -> nix::Result<UnixAddr> {
    match path.strip_prefix('@') {
        Some(abs) => UnixAddr::new_abstract(abs.as_bytes()),
        None => UnixAddr::new(path),
    }
}

/// Sends `state` to the socket at `path`, optionally as process `pid` and with `fds`.
pub fn send(path: &str, state: &str, pid: Option<i32>, fds: &[RawFd]) -> nix::Result<()> {
    let sock = socket::socket(
        socket::AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    send_on(sock.as_raw_fd(), path, state, pid, fds)
}

/// [`send`] on an existing datagram socket.
pub fn send_on(
    sock: RawFd,
    path: &str,
    state: &str,
    pid: Option<i32>,
    fds: &[RawFd],
) -> nix::Result<()> {
    let to = addr(path)?;
    let iov = [IoSlice::new(state.as_bytes())];
    let creds = pid.map(|pid| {
        UnixCredentials::from(libc::ucred {
            pid,
            uid: 0,
            gid: 0,
        })
    });
    let mut cmsgs = Vec::new();
    if let Some(c) = &creds {
        cmsgs.push(ControlMessage::ScmCredentials(c));
    }
    if !fds.is_empty() {
        cmsgs.push(ControlMessage::ScmRights(fds));
    }
    socket::sendmsg(sock, &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, Some(&to))?;
    Ok(())
}

/// Notifies the supervisor's own manager (`$NOTIFY_SOCKET`); a no-op outside systemd.
pub fn own(state: &str, fds: &[RawFd]) {
    if let Ok(path) = std::env::var("NOTIFY_SOCKET") {
        if let Err(e) = send(&path, state, None, fds) {
            tracing::warn!("sd_notify {state:?} failed: {e}");
        }
    }
}

/// Relays a watchdog ping for the service whose main process is `main_pid`, on
/// `sock` (an unbound datagram socket kept for this).
pub fn relay_watchdog(sock: &std::os::unix::net::UnixDatagram, main_pid: i32) -> nix::Result<()> {
    // A user manager's units have no watchdog (nobody may speak for another pid).
    if krill::runtime::scope::is_user() {
        return Ok(());
    }
    send_on(
        sock.as_raw_fd(),
        SYSTEMD_NOTIFY,
        "WATCHDOG=1",
        Some(main_pid),
        &[],
    )
}

/// Fails the service whose main process is `main_pid` as its own watchdog would
/// (`WATCHDOG=trigger`: systemd logs a watchdog timeout, sends `WatchdogSignal=`,
/// and the run ends with `Result=watchdog`, so its restart policy applies).
pub fn trigger_watchdog(sock: &std::os::unix::net::UnixDatagram, main_pid: i32) -> nix::Result<()> {
    send_on(
        sock.as_raw_fd(),
        SYSTEMD_NOTIFY,
        "WATCHDOG=trigger",
        Some(main_pid),
        &[],
    )
}

/// Sets the watchdog timeout of the service whose main process is `main_pid`:
/// `Some(t)` re-arms it with a ping now and timeout `t` (the generated
/// `WatchdogSec=`); `None` disables it (`WATCHDOG_USEC=` infinity) until the run ends
/// or it is re-armed. systemd computes the deadline from the latest ping, so a
/// re-arm must ping too.
pub fn set_watchdog(
    sock: &std::os::unix::net::UnixDatagram,
    main_pid: i32,
    timeout: Option<std::time::Duration>,
) -> nix::Result<()> {
    if krill::runtime::scope::is_user() {
        return Ok(());
    }
    let state = match timeout {
        Some(t) => format!("WATCHDOG=1\nWATCHDOG_USEC={}", t.as_micros().max(1)),
        None => format!("WATCHDOG_USEC={}", u64::MAX),
    };
    send_on(
        sock.as_raw_fd(),
        SYSTEMD_NOTIFY,
        &state,
        Some(main_pid),
        &[],
    )
}
