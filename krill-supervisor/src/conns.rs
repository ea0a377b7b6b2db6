//! Caps on heartbeat connections, so that no client (hostile or buggy) can use up the
//! supervisor's file descriptors: the supervisor also needs them for D-Bus, probes
//! and its own restart (systemd hands every stored connection back).

use std::collections::BTreeMap;

/// Connections one service unit may hold open (an SDK client needs one; a
/// multi-process service one per process).
pub const MAX_PER_UNIT: u32 = 64;
/// Connections all services of one user may hold open.
pub const MAX_PER_UID: u32 = 1024;
/// File descriptors kept free for D-Bus, probes, records and the journal.
pub const FD_RESERVE: u64 = 256;
/// Never more than systemd's fd store keeps for the supervisor
/// (`FileDescriptorStoreMax=` in krill-supervisor.service).
pub const FDSTORE_MAX: u64 = 4096;

/// Open connections, by unit and by UID.
#[derive(Debug, Default)]
pub struct Conns {
    /// All open connections.
    pub total: u32,
    /// The total cap: the fd limit less [`FD_RESERVE`], at most [`FDSTORE_MAX`].
    pub max_total: u32,
    per_unit: BTreeMap<String, u32>,
    per_uid: BTreeMap<u32, u32>,
}

impl Conns {
    /// Caps from the process's `RLIMIT_NOFILE` soft limit.
    pub fn from_rlimit() -> Conns {
        let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024);
        Conns::with_max(soft.saturating_sub(FD_RESERVE).min(FDSTORE_MAX) as u32)
    }

    /// Caps with a total of `max_total`.
    pub fn with_max(max_total: u32) -> Conns {
        Conns {
            max_total,
            ..Conns::default()
        }
    }

    /// Counts a new connection of `peer`, or says which cap refuses it.
    pub fn open(&mut self, peer: &Peer) -> Result<(), String> {
        let unit = self.per_unit.get(&peer.unit).copied().unwrap_or(0);
        let uid = self.per_uid.get(&peer.uid).copied().unwrap_or(0);
        if self.total >= self.max_total {
            return Err(format!(
                "{} connections are open, the most the supervisor takes",
                self.total
            ));
        }
        if unit >= MAX_PER_UNIT {
            return Err(format!(
                "{} has {unit} connections open, the most one service may hold",
                peer.unit
            ));
        }
        if uid >= MAX_PER_UID {
            return Err(format!(
                "uid {} has {uid} connections open, the most one user may hold",
                peer.uid
            ));
        }
        self.total += 1;
        *self.per_unit.entry(peer.unit.clone()).or_default() += 1;
        *self.per_uid.entry(peer.uid).or_default() += 1;
        Ok(())
    }

    /// A connection of `peer` closed.
    pub fn close(&mut self, peer: &Peer) {
        self.total = self.total.saturating_sub(1);
        release(&mut self.per_unit, &peer.unit);
        release(&mut self.per_uid, &peer.uid);
    }
}

fn release<K: Ord + Clone>(m: &mut BTreeMap<K, u32>, k: &K) {
    if let Some(n) = m.get_mut(k) {
        *n -= 1;
        if *n == 0 {
            m.remove(k);
        }
    }
}

/// Who is at the other end of a heartbeat connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    /// The krill service unit whose cgroup the peer is in.
    pub unit: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(unit: &str, uid: u32) -> Peer {
        Peer {
            pid: 1,
            uid,
            unit: unit.into(),
        }
    }

    #[test]
    fn caps_per_unit_per_uid_and_total_and_frees_on_close() {
        let mut c = Conns::with_max(10_000);
        for _ in 0..MAX_PER_UNIT {
            c.open(&peer("a.service", 0)).unwrap();
        }
        assert!(c
            .open(&peer("a.service", 0))
            .unwrap_err()
            .contains("a.service"));
        c.close(&peer("a.service", 0));
        c.open(&peer("a.service", 0)).unwrap();

        let mut c = Conns::with_max(10_000);
        for i in 0..MAX_PER_UID {
            c.open(&peer(&format!("u{}.service", i / 10), 7)).unwrap();
        }
        assert!(c.open(&peer("x.service", 7)).unwrap_err().contains("uid 7"));
        c.open(&peer("x.service", 8)).unwrap();

        let mut c = Conns::with_max(2);
        c.open(&peer("a.service", 0)).unwrap();
        c.open(&peer("b.service", 1)).unwrap();
        assert!(c.open(&peer("c.service", 2)).is_err());
        c.close(&peer("a.service", 0));
        assert_eq!(c.total, 1);
        c.open(&peer("c.service", 2)).unwrap();
    }
}
