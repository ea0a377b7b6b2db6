//! The state every task of the supervisor shares.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use zbus::zvariant::OwnedObjectPath;

use crate::conns::Conns;
use crate::health::Supervisor;
use crate::systemd::ManagerProxy;

/// Shared context of all tasks.
pub struct Ctx {
    pub sup: Mutex<Supervisor>,
    pub conn: zbus::Connection,
    pub manager: ManagerProxy<'static>,
    pub next_fd_name: std::sync::atomic::AtomicU64,
    /// Prefix of this image's fd-store names (`hb-PID-START`): a re-exec keeps the
    /// PID and the connections, so the names also carry this image's start time.
    pub fd_name_prefix: String,
    /// Every fd a re-exec hands on, by name: the listening socket(s) and the open
    /// heartbeat connections.
    pub live_fds: Mutex<BTreeMap<String, std::os::fd::RawFd>>,
    /// Wakes the timer loop when deadlines may have moved.
    pub wake: tokio::sync::Notify,
    /// Units whose state systemd reported changed, not yet re-read.
    pub dirty: Mutex<std::collections::BTreeSet<String>>,
    pub wake_refresh: tokio::sync::Notify,
    pub wake_reload: tokio::sync::Notify,
    /// Wakes the plain-sd_notify poller when a unit's state changed.
    pub wake_native: tokio::sync::Notify,
    /// Units whose `StateChanged` is still to be sent ([`crate::unit_watch::emitter`]).
    pub to_emit: Mutex<std::collections::BTreeSet<String>>,
    pub wake_emit: tokio::sync::Notify,
    /// Heartbeats handled since the pacer's latest pause ([`crate::timers::pacer`]).
    pub beats_unpaced: std::sync::atomic::AtomicU32,
    /// Wakes the pacer after a heartbeat was handled.
    pub wake_pacer: tokio::sync::Notify,
    /// One datagram socket for all watchdog relays.
    pub relay_sock: std::os::unix::net::UnixDatagram,
    /// Open heartbeat connections, counted against their caps.
    pub conns: Mutex<Conns>,
}

impl Ctx {
    /// The supervisor's state.
    pub fn sup(&self) -> MutexGuard<'_, Supervisor> {
        lock(&self.sup)
    }

    /// The connection counts.
    pub fn conns(&self) -> MutexGuard<'_, Conns> {
        lock(&self.conns)
    }

    /// The object path of a watched unit (derived from its name, as systemd does).
    pub fn path_of(&self, unit: &str) -> Option<OwnedObjectPath> {
        self.sup()
            .units
            .contains_key(unit)
            .then(|| crate::systemd::unit_path(unit))
    }

    /// The watched unit an object path belongs to.
    pub fn unit_of_path(&self, path: &str) -> Option<String> {
        crate::systemd::unit_of_path(path).filter(|u| self.sup().units.contains_key(u))
    }
}

/// Locks `m`; a lock poisoned by a panicking holder is taken over (the state is
/// simple records, and the supervisor must keep running).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
