//! The supervisor's counters, as its `Stats` D-Bus property carries them (JSON):
//! what the heartbeat socket accepted, refused and relayed since the supervisor
//! started. Read by `krill-ctl metrics`.

/// Counters of the heartbeat socket since the supervisor started.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Heartbeats accepted.
    pub accepted: u64,
    /// Lines that are not a heartbeat message.
    pub malformed: u64,
    /// Lines over the 4096-byte limit.
    pub oversized: u64,
    /// Messages of a type other than `heartbeat`.
    pub unknown_type: u64,
    /// Heartbeats naming a service other than the sender's.
    pub refused_sender: u64,
    /// Connections closed at accept: the peer is not in a krill service's cgroup.
    pub refused_connections: u64,
    /// Connections closed at accept: a per-unit, per-UID or total cap was reached.
    pub capped_connections: u64,
    /// Connections open now.
    pub open_connections: u64,
    /// Watchdog pings relayed to systemd for heartbeat services (at most one per
    /// service per half its timeout; see `krill::runtime::timing::relay_period`).
    pub relayed: u64,
}
