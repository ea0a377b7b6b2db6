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

use krill::runtime::records::Records;

use crate::systemctl;

/// What the gate waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
}

/// Whether UNIT's cgroup holds processes (cgroup v2, below `krill.slice`). Gates run
/// after UNIT's start job finished, so running processes mean a successful spawn;
/// this answers the common case without a `systemctl` call (~10 ms on a small CPU).
fn has_processes(unit: &str) -> bool {
    let Ok(slices) = std::fs::read_dir("/sys/fs/cgroup/krill.slice") else {
        return false;
    };
    slices.flatten().any(|slice| {
        std::fs::read_to_string(slice.path().join(unit).join("cgroup.procs"))
            .is_ok_and(|p| !p.trim().is_empty())
    })
}

/// One look at UNIT. `Some(Ok)` passes, `Some(Err)` fails, `None` keeps waiting.
pub fn check(unit: &str, cond: Condition) -> Result<Option<Result<(), String>>, systemctl::Error> {
    if cond == Condition::Started && has_processes(unit) {
        return Ok(Some(Ok(())));
    }
    let st = systemctl::show(
        unit,
        &[
            "ActiveState",
            "SubState",
            "Result",
            "InvocationID",
            "ExecMainStartTimestampMonotonic",
        ],
    )?;
    let get = |k: &str| st.get(k).map(String::as_str).unwrap_or("");
    let started = match get("ActiveState") {
        "active" | "reloading" => true,
        "failed" => {
            return Ok(Some(Err(format!(
                "{unit} failed (result {})",
                get("Result")
            ))))
        }
        "inactive" => {
            get("Result") == "success"
                && get("ExecMainStartTimestampMonotonic") != "0"
                && !get("ExecMainStartTimestampMonotonic").is_empty()
        }
        _ => false,
    };
    match cond {
        Condition::Started => Ok(started.then_some(Ok(()))),
        Condition::Healthy => {
            let healthy = started
                && Records::default()
                    .healthy_invocation(unit)
                    .is_some_and(|inv| inv == get("InvocationID"));
            Ok(healthy.then_some(Ok(())))
        }
    }
}

/// Polls until UNIT meets `cond` or fails. Polling starts at 2 ms and backs off to
/// 50 ms, so a fast dependency costs almost nothing. A `healthy` gate reads the
/// supervisor's record (a file) at every poll but asks systemd only when the record
/// appears or every 500 ms (to notice a failed dependency): a gate can wait for a
/// minute, and must not cost CPU meanwhile.
pub fn wait(unit: &str, cond: Condition) -> Result<(), String> {
    let mut delay = Duration::from_millis(2);
    let mut last_asked: Option<std::time::Instant> = None;
    loop {
        let ask = cond == Condition::Started
            || Records::default().healthy_invocation(unit).is_some()
            || last_asked.is_none_or(|t| t.elapsed() >= Duration::from_millis(500));
        if ask {
            last_asked = Some(std::time::Instant::now());
            match check(unit, cond) {
                Ok(Some(r)) => return r,
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}
