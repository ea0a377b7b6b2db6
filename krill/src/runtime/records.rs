//! Krill's runtime records under `/run/krill` (lost at reboot, on purpose), shared by
//! `krill-ctl` (gates, failure handlers, GPU check, install, status) and
//! `krill-supervisor`. Each kind is a directory; each record a small file named after
//! its unit or workspace, replaced atomically.
//!
//! A record that explains a stop names the run (InvocationID) it belongs to, so a
//! new run of the unit makes it stale by itself: status never shows an old run's
//! reason beside a new run.

use std::path::{Path, PathBuf};

use crate::runtime::files::write_atomic;

/// The kinds of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `cascade/<unit>`: `<InvocationID>\n<reason>`: krill stopped that run because a
    /// dependency failed for good, or in an emergency stop. A failure of that very run
    /// is not escalated (S4: a critical dependent stopped by a cascade does not count
    /// as failed).
    Cascade,
    /// `handled/<unit>`: the InvocationID whose final failure was already handled
    /// (OnFailure= can fire more than once on systemd ≥ 253).
    Handled,
    /// `estop/<workspace>`: `<unix µs>\n<reason>` of the latest emergency stop.
    Estop,
    /// `health/<unit>`: the InvocationID of the run that passed its health check (what
    /// `krill-healthy@` gates wait for), written by the supervisor.
    Health,
    /// `health-status/<unit>`: `<health>\n<reason>`, written by the supervisor.
    HealthStatus,
    /// `reason/<unit>`: `<InvocationID>\n<reason>`: why that run failed, where systemd
    /// cannot tell (no usable GPU, a failing probe that the supervisor acted on).
    Reason,
    /// `last-failure/<unit>`: `<unix µs>\n<InvocationID>\n<reason>` of the latest run
    /// that failed.
    LastFailure,
    /// `pending/<workspace>`: services an interrupted `krill install` still has to
    /// restart or stop.
    Pending,
    /// `unwatched/<unit>`: the InvocationID of a heartbeat run whose watchdog a
    /// stopping supervisor handed back to systemd (disabled it), so that the run
    /// survives the supervisor's absence; the next supervisor re-arms it.
    Unwatched,
    /// `backstop/<unit>`: the InvocationID of a heartbeat run whose systemd watchdog
    /// the supervisor widened to the backstop: it times that run's heartbeats
    /// itself, and so does the next supervisor after a crash or a restart.
    Backstop,
}

impl Kind {
    /// The record directory's name.
    pub fn dir(self) -> &'static str {
        match self {
            Kind::Cascade => "cascade",
            Kind::Handled => "handled",
            Kind::Estop => "estop",
            Kind::Health => "health",
            Kind::HealthStatus => "health-status",
            Kind::Reason => "reason",
            Kind::LastFailure => "last-failure",
            Kind::Pending => "pending",
            Kind::Unwatched => "unwatched",
            Kind::Backstop => "backstop",
        }
    }
}

/// A failure as recorded: when, which run, why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// Wall clock, µs since the Unix epoch.
    pub at_us: u64,
    pub invocation: String,
    pub reason: String,
}

/// The record directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Records {
    dir: PathBuf,
}

impl Default for Records {
    /// [`crate::runtime::paths::run_dir`]: `KRILL_RUN_DIR` or `/run/krill`.
    fn default() -> Self {
        Records::at(crate::runtime::paths::run_dir())
    }
}

impl Records {
    /// Records kept in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Records {
        Records { dir: dir.into() }
    }

    /// The directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a record atomically, creating its directory. Errors name the file.
    pub fn write(&self, kind: Kind, name: &str, contents: &str) -> std::io::Result<()> {
        let d = self.dir.join(kind.dir());
        std::fs::create_dir_all(&d)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", d.display())))?;
        write_atomic(&d, name, contents.as_bytes())
    }

    /// Reads a record, if present.
    pub fn read(&self, kind: Kind, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(kind.dir()).join(name)).ok()
    }

    /// Removes a record; a missing one is fine.
    pub fn remove(&self, kind: Kind, name: &str) {
        let _ = std::fs::remove_file(self.dir.join(kind.dir()).join(name));
    }

    /// The text of a `<InvocationID>\n<reason>` record if it belongs to `invocation`.
    fn of_run(&self, kind: Kind, unit: &str, invocation: &str) -> Option<String> {
        let r = self.read(kind, unit)?;
        let mut l = r.lines();
        (l.next()? == invocation && !invocation.is_empty())
            .then(|| l.next().unwrap_or("").to_owned())
    }

    /// Records that the watchdog of run `invocation` of `unit` was handed back.
    pub fn record_unwatched(&self, unit: &str, invocation: &str) -> std::io::Result<()> {
        self.write(Kind::Unwatched, unit, &format!("{invocation}\n"))
    }

    /// Whether the watchdog of run `invocation` of `unit` was handed back.
    pub fn is_unwatched(&self, unit: &str, invocation: &str) -> bool {
        self.of_run(Kind::Unwatched, unit, invocation).is_some()
    }

    /// Records that the watchdog of run `invocation` of `unit` is the backstop; an
    /// empty `invocation` forgets it (a re-armed run is back to `WatchdogSec=`).
    pub fn record_backstop(&self, unit: &str, invocation: &str) -> std::io::Result<()> {
        if invocation.is_empty() {
            self.remove(Kind::Backstop, unit);
            return Ok(());
        }
        self.write(Kind::Backstop, unit, &format!("{invocation}\n"))
    }

    /// Whether the watchdog of run `invocation` of `unit` is the backstop.
    pub fn is_backstopped(&self, unit: &str, invocation: &str) -> bool {
        self.of_run(Kind::Backstop, unit, invocation).is_some()
    }

    /// Records an emergency stop of `workspace` now.
    pub fn record_estop(&self, workspace: &str, reason: &str) -> std::io::Result<()> {
        let now = crate::runtime::clock::realtime_us();
        self.write(Kind::Estop, workspace, &format!("{now}\n{reason}\n"))
    }

    /// The latest emergency stop of `workspace`: (unix µs, reason).
    pub fn estop(&self, workspace: &str) -> Option<(u64, String)> {
        let r = self.read(Kind::Estop, workspace)?;
        let mut l = r.lines();
        let at = l.next()?.parse().ok()?;
        Some((at, l.next().unwrap_or("").to_owned()))
    }

    /// Records that krill stops run `invocation` of `unit`, and why.
    pub fn record_cascade(
        &self,
        unit: &str,
        invocation: &str,
        reason: &str,
    ) -> std::io::Result<()> {
        self.write(Kind::Cascade, unit, &format!("{invocation}\n{reason}\n"))
    }

    /// Why krill stopped run `invocation` of `unit`, if it did.
    pub fn cascade_reason(&self, unit: &str, invocation: &str) -> Option<String> {
        self.of_run(Kind::Cascade, unit, invocation)
    }

    /// Records why run `invocation` of `unit` failed.
    pub fn record_reason(&self, unit: &str, invocation: &str, reason: &str) -> std::io::Result<()> {
        self.write(Kind::Reason, unit, &format!("{invocation}\n{reason}\n"))
    }

    /// Why run `invocation` of `unit` failed, if krill recorded it.
    pub fn reason(&self, unit: &str, invocation: &str) -> Option<String> {
        self.of_run(Kind::Reason, unit, invocation)
    }

    /// Records the failure of run `invocation` of `unit`, unless that run's failure
    /// is already recorded. Returns whether it wrote.
    pub fn record_failure(
        &self,
        unit: &str,
        invocation: &str,
        reason: &str,
    ) -> std::io::Result<bool> {
        if self
            .last_failure(unit)
            .is_some_and(|f| f.invocation == invocation)
        {
            return Ok(false);
        }
        let now = crate::runtime::clock::realtime_us();
        self.write(
            Kind::LastFailure,
            unit,
            &format!("{now}\n{invocation}\n{reason}\n"),
        )?;
        Ok(true)
    }

    /// The latest recorded failure of `unit`.
    pub fn last_failure(&self, unit: &str) -> Option<Failure> {
        let r = self.read(Kind::LastFailure, unit)?;
        let mut l = r.lines();
        Some(Failure {
            at_us: l.next()?.parse().ok()?,
            invocation: l.next()?.to_owned(),
            reason: l.next().unwrap_or("").to_owned(),
        })
    }

    /// The invocation of `unit` recorded as healthy, if any.
    pub fn healthy_invocation(&self, unit: &str) -> Option<String> {
        self.read(Kind::Health, unit).map(|s| s.trim().to_owned())
    }

    /// The supervisor's latest health word and reason for `unit`.
    pub fn health_status(&self, unit: &str) -> Option<(String, String)> {
        let r = self.read(Kind::HealthStatus, unit)?;
        let mut l = r.lines();
        Some((l.next()?.to_owned(), l.next().unwrap_or("").to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_belong_to_one_run() {
        let d = tempfile::tempdir().unwrap();
        let r = Records::at(d.path());
        assert_eq!(r.estop("ws"), None);
        r.record_estop("ws", "button").unwrap();
        assert_eq!(r.estop("ws").unwrap().1, "button");
        r.record_cascade("u.service", "abc", "dependency failed")
            .unwrap();
        assert_eq!(
            r.cascade_reason("u.service", "abc").as_deref(),
            Some("dependency failed")
        );
        assert_eq!(r.cascade_reason("u.service", "def"), None);
        assert_eq!(r.cascade_reason("u.service", ""), None);
        r.record_reason("u.service", "abc", "no GPU").unwrap();
        assert_eq!(r.reason("u.service", "abc").as_deref(), Some("no GPU"));
        assert!(r
            .record_failure("u.service", "abc", "exited with code 1")
            .unwrap());
        assert!(!r.record_failure("u.service", "abc", "again").unwrap());
        assert_eq!(
            r.last_failure("u.service").unwrap().reason,
            "exited with code 1"
        );
        r.write(Kind::Health, "u.service", "abc\n").unwrap();
        assert_eq!(r.healthy_invocation("u.service").as_deref(), Some("abc"));
        r.remove(Kind::Health, "u.service");
        assert_eq!(r.healthy_invocation("u.service"), None);
        assert!(!d.path().join("estop/.ws.krill-tmp").exists());
    }
}
