//! `krill-ctl on-failure`: the `OnFailure=` handler of a service. Runs without the
//! supervisor (design principle 3).
//!
//! 1. Act only on a *final* failure: the unit's ActiveState must be `failed`. On
//!    systemd ≥ 253 OnFailure= also fires while an automatic restart is pending
//!    (ActiveState `activating`); that is not a failure for good.
//! 2. Once per invocation: the InvocationID is recorded and a repeated call ignored.
//! 3. A unit that krill itself stopped (cascade or estop) and that then failed (e.g.
//!    SIGKILL after stop_timeout) is not escalated.
//! 4. A failure while the workspace is stopping is not escalated either.
//! 5. Cascade (S4): stop the gates of the unit and every transitive dependent, marking
//!    each so that its own failure handler stays quiet.
//! 6. Critical (S5): emergency stop: record why, stop the workspace target (every
//!    member is `PartOf=` it; dependents stop before dependencies by `After=` order).

use crate::{state, systemctl};

/// What the handler was asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    pub unit: String,
    pub target: String,
    pub critical: bool,
    pub stop: Vec<String>,
}

/// What the handler decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NotFinal(String),
    AlreadyHandled,
    StoppedByKrill(String),
    WorkspaceStopping,
    Cascaded(Vec<String>),
    EmergencyStop {
        reason: String,
    },
}

fn workspace_of(target: &str) -> &str {
    target
        .strip_prefix("krill-")
        .and_then(|t| t.strip_suffix(".target"))
        .unwrap_or(target)
}

/// Runs the handler against the live systemd. Costs two or three `systemctl` calls,
/// because an emergency stop is only as fast as its slowest step.
pub fn handle(req: &Request) -> Result<Outcome, systemctl::Error> {
    let both = systemctl::show_many(
        &[req.unit.clone(), req.target.clone()],
        &["ActiveState", "InvocationID", "Result", "ExecMainStatus", "NRestarts"],
    )?;
    let (st, tst) = match both.as_slice() {
        [a, b] => (a, b),
        _ => return Ok(Outcome::NotFinal("unknown".into())),
    };
    let get = |k: &str| st.get(k).map(String::as_str).unwrap_or("");
    if get("ActiveState") != "failed" {
        return Ok(Outcome::NotFinal(get("ActiveState").to_owned()));
    }
    let inv = get("InvocationID");
    if state::read("handled", &req.unit).as_deref() == Some(inv) {
        return Ok(Outcome::AlreadyHandled);
    }
    let _ = state::write("handled", &req.unit, inv);
    if let Some(rec) = state::read("cascade", &req.unit) {
        let mut lines = rec.lines();
        if lines.next() == Some(inv) {
            return Ok(Outcome::StoppedByKrill(lines.next().unwrap_or("").to_owned()));
        }
    }
    if tst.get("ActiveState").map(String::as_str) != Some("active") {
        return Ok(Outcome::WorkspaceStopping);
    }
    let why = format!(
        "{} failed for good (result {}, exit status {}, after {} restarts)",
        req.unit,
        get("Result"),
        get("ExecMainStatus"),
        get("NRestarts")
    );
    if req.critical {
        // Everything stops with the target; the cascade would only add latency.
        let ws = workspace_of(&req.target);
        let reason = format!("critical service {why}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let _ = state::write("estop", ws, &format!("{now}\n{reason}\n"));
        emergency_stop(&req.target)?;
        return Ok(Outcome::EmergencyStop { reason });
    }
    let cascaded = cascade(&req.stop, &format!("dependency {why}"))?;
    Ok(Outcome::Cascaded(cascaded))
}

/// Marks and stops `units`. Returns those that were not already inactive.
pub fn cascade(units: &[String], reason: &str) -> Result<Vec<String>, systemctl::Error> {
    if units.is_empty() {
        return Ok(vec![]);
    }
    let states = systemctl::show_many(units, &["ActiveState", "InvocationID"])?;
    let mut stopped = Vec::new();
    for (u, st) in units.iter().zip(&states) {
        if let Some(inv) = st.get("InvocationID").filter(|i| !i.is_empty()) {
            let _ = state::write("cascade", u, &format!("{inv}\n{reason}\n"));
        }
        if st.get("ActiveState").is_some_and(|s| s != "inactive") {
            stopped.push(u.clone());
        }
    }
    let mut args = vec!["stop".to_owned(), "--no-block".to_owned(), "--".to_owned()];
    args.extend(units.iter().cloned());
    systemctl::run(&args)?;
    Ok(stopped)
}

/// Stops every member of the workspace at once: all are `PartOf=` the target, and
/// `After=` ordering makes dependents stop first. Members that then fail while
/// stopping (SIGKILL after stop_timeout) are not escalated: their handlers find the
/// target no longer active.
pub fn emergency_stop(target: &str) -> Result<(), systemctl::Error> {
    systemctl::run(&["stop", "--no-block", "--", target])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn workspace_name_from_target() {
        assert_eq!(
            super::workspace_of("krill-mobile-robot.target"),
            "mobile-robot"
        );
    }
}
