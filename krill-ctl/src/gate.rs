//! `krill-ctl gate started|healthy UNIT`: the body of a gate unit. It returns once
//! UNIT meets the condition, fails once UNIT has failed, and otherwise keeps waiting;
//! the gate unit's `TimeoutStartSec=` bounds the wait.
//!
//! * `started`: UNIT's process was spawned successfully (`Type=exec` makes systemd
//!   report `active` only after a successful exec). A UNIT in auto-restart is not
//!   started yet. A UNIT that already ran and exited 0 counts as started.
//! * `healthy`: UNIT is active and the supervisor recorded a passed health check for
//!   UNIT's current invocation in `/run/krill/health/<unit>`.

use std::time::Duration;

use krill::runtime::bus::UnitFacts;
use krill::runtime::records::Records;

use crate::bus::Systemd;

/// What the gate waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
}

/// Whether UNIT's cgroup holds processes (cgroup v2, below `krill.slice`). Gates run
/// after UNIT's start job finished, so running processes mean a successful spawn;
/// this answers the common case without connecting to systemd.
fn has_processes(unit: &str) -> bool {
    let Ok(slices) = std::fs::read_dir("/sys/fs/cgroup/krill.slice") else {
        return false;
    };
    slices.flatten().any(|slice| {
        std::fs::read_to_string(slice.path().join(unit).join("cgroup.procs"))
            .is_ok_and(|p| !p.trim().is_empty())
    })
}

/// One look at UNIT's facts. `Some(Ok)` passes, `Some(Err)` fails, `None` keeps
/// waiting. `healthy_invocation` is the run the supervisor recorded as healthy.
pub fn decide(
    unit: &str,
    f: &UnitFacts,
    cond: Condition,
    healthy_invocation: Option<&str>,
) -> Option<Result<(), String>> {
    let started = match f.active.as_str() {
        "active" | "reloading" => true,
        "failed" => return Some(Err(format!("{unit} failed (result {})", f.result))),
        // It ran, and exited 0 (a oneshot-like service that finished).
        "inactive" => f.result == "success" && f.started_us != 0,
        _ => false,
    };
    match cond {
        Condition::Started => started.then_some(Ok(())),
        Condition::Healthy => {
            let healthy = started && healthy_invocation.is_some_and(|inv| inv == f.invocation);
            healthy.then_some(Ok(()))
        }
    }
}

/// Polls until UNIT meets `cond` or fails, over one connection to systemd. Polling
/// starts at 2 ms and backs off to 50 ms, so a fast dependency costs almost nothing.
/// A `healthy` gate reads the supervisor's record (a file) at every poll but asks
/// systemd only when the record appears or every 500 ms (to notice a failed
/// dependency): a gate can wait for a minute, and must not cost CPU meanwhile.
pub fn wait(unit: &str, cond: Condition) -> Result<(), String> {
    if cond == Condition::Started && has_processes(unit) {
        return Ok(());
    }
    let sd = Systemd::connect().map_err(|e| e.to_string())?;
    let records = Records::default();
    let mut delay = Duration::from_millis(2);
    let mut last_asked: Option<std::time::Instant> = None;
    let units = [unit.to_owned()];
    loop {
        let healthy = records.healthy_invocation(unit);
        let ask = cond == Condition::Started
            || healthy.is_some()
            || last_asked.is_none_or(|t| t.elapsed() >= Duration::from_millis(500));
        if ask {
            last_asked = Some(std::time::Instant::now());
            let f = sd.facts(&units).pop().unwrap_or_default();
            if let Some(r) = decide(unit, &f, cond, healthy.as_deref()) {
                return r;
            }
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(active: &str, result: &str, started_us: u64, inv: &str) -> UnitFacts {
        UnitFacts {
            active: active.into(),
            result: result.into(),
            started_us,
            invocation: inv.into(),
            ..UnitFacts::default()
        }
    }

    #[test]
    fn started_means_active_or_finished_cleanly() {
        let d = |f: &UnitFacts| decide("u", f, Condition::Started, None);
        assert_eq!(d(&facts("active", "success", 5, "a")), Some(Ok(())));
        assert_eq!(d(&facts("inactive", "success", 5, "a")), Some(Ok(())));
        assert_eq!(d(&facts("inactive", "success", 0, "")), None, "never ran");
        assert_eq!(d(&facts("activating", "success", 5, "a")), None);
        assert!(
            matches!(d(&facts("failed", "exit-code", 5, "a")), Some(Err(e)) if e.contains("exit-code"))
        );
    }

    #[test]
    fn healthy_needs_the_current_runs_record() {
        let f = facts("active", "success", 5, "run2");
        assert_eq!(decide("u", &f, Condition::Healthy, Some("run1")), None);
        assert_eq!(decide("u", &f, Condition::Healthy, None), None);
        assert_eq!(
            decide("u", &f, Condition::Healthy, Some("run2")),
            Some(Ok(()))
        );
    }
}
