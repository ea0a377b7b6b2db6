//! Krill's runtime records under `/run/krill` (lost at reboot, on purpose), shared by
//! `krill-ctl` (gates, failure handlers, status) and `krill-supervisor`:
//!
//! * `cascade/<unit>`: `<InvocationID>\n<reason>` for a unit that krill stopped
//!   because a dependency failed for good, or in an emergency stop. A failure of that
//!   very invocation is not escalated (S4: a critical dependent stopped by a cascade
//!   does not count as failed).
//! * `handled/<unit>`: the InvocationID whose final failure was already handled
//!   (OnFailure= can fire more than once on systemd ≥ 253).
//! * `estop/<workspace>`: `<unix seconds>\n<reason>` of an emergency stop.
//! * `health/<unit>`: the InvocationID of the run that passed its health check
//!   (what `krill-healthy@` gates wait for), written by the supervisor.
//! * `health-status/<unit>`: `<health>\n<reason>`, written by the supervisor.

use std::path::{Path, PathBuf};

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

    fn path(&self, kind: &str, name: &str) -> PathBuf {
        self.dir.join(kind).join(name)
    }

    /// Writes a record atomically, creating its directory.
    pub fn write(&self, kind: &str, name: &str, contents: &str) -> std::io::Result<()> {
        let p = self.path(kind, name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        let tmp = self.dir.join(kind).join(format!(".{name}.tmp"));
        std::fs::write(&tmp, contents)?;
        std::fs::rename(&tmp, &p)
    }

    /// Reads a record, if present.
    pub fn read(&self, kind: &str, name: &str) -> Option<String> {
        std::fs::read_to_string(self.path(kind, name)).ok()
    }

    /// Removes a record; a missing one is fine.
    pub fn remove(&self, kind: &str, name: &str) {
        let _ = std::fs::remove_file(self.path(kind, name));
    }

    /// The second line of a record (the reason, in cascade and estop records).
    fn reason(&self, kind: &str, name: &str) -> Option<String> {
        self.read(kind, name)
            .and_then(|s| s.lines().nth(1).map(str::to_owned))
    }

    /// Records an emergency stop of `workspace`.
    pub fn record_estop(&self, workspace: &str, reason: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let _ = self.write("estop", workspace, &format!("{now}\n{reason}\n"));
    }

    /// Why `workspace` was emergency-stopped, if it was.
    pub fn estop_reason(&self, workspace: &str) -> Option<String> {
        self.reason("estop", workspace)
    }

    /// Records that krill stops invocation `invocation` of `unit`, and why.
    pub fn record_cascade(&self, unit: &str, invocation: &str, reason: &str) {
        let _ = self.write("cascade", unit, &format!("{invocation}\n{reason}\n"));
    }

    /// Why krill stopped `unit`, if it did.
    pub fn stop_reason(&self, unit: &str) -> Option<String> {
        self.reason("cascade", unit)
    }

    /// The invocation of `unit` that krill stopped, if any.
    pub fn cascaded_invocation(&self, unit: &str) -> Option<String> {
        self.read("cascade", unit)
            .and_then(|s| s.lines().next().map(str::to_owned))
    }

    /// The invocation of `unit` recorded as healthy, if any.
    pub fn healthy_invocation(&self, unit: &str) -> Option<String> {
        self.read("health", unit).map(|s| s.trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let r = Records::at(d.path());
        assert_eq!(r.estop_reason("ws"), None);
        r.record_estop("ws", "button");
        assert_eq!(r.estop_reason("ws").as_deref(), Some("button"));
        r.record_cascade("u.service", "abc", "dependency failed");
        assert_eq!(
            r.stop_reason("u.service").as_deref(),
            Some("dependency failed")
        );
        assert_eq!(r.cascaded_invocation("u.service").as_deref(), Some("abc"));
        r.write("health", "u.service", "abc\n").unwrap();
        assert_eq!(r.healthy_invocation("u.service").as_deref(), Some("abc"));
        r.remove("health", "u.service");
        assert_eq!(r.healthy_invocation("u.service"), None);
        assert!(!d.path().join("estop/.ws.tmp").exists());
    }
}
