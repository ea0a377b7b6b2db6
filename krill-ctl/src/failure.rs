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

use krill::runtime::bus::Job;
use krill::runtime::records::{Kind, Records};

use crate::bus::Systemd;

/// Why the handler failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] crate::bus::Error),
    #[error(transparent)]
    Estop(#[from] krill::runtime::estop::Error),
}

/// What the handler was asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    /// The failed service unit.
    pub unit: String,
    /// Emergency stop (`krill-estop@`) rather than cascade (`krill-cascade@`).
    pub critical: bool,
}

/// What the handler decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NotFinal(String),
    AlreadyHandled,
    StoppedByKrill(String),
    WorkspaceStopping,
    Cascaded(Vec<String>),
    EmergencyStop { reason: String },
}

fn workspace_of(target: &str) -> &str {
    target
        .strip_prefix("krill-")
        .and_then(|t| t.strip_suffix(".target"))
        .unwrap_or(target)
}

/// Runs the handler against the live systemd, over one connection to it.
pub fn handle(req: &Request) -> Result<Outcome, Error> {
    let loaded = krill::runtime::manifest::Loaded::read();
    let found = loaded.workspaces.values().find_map(|m| {
        m.service_by_unit(&req.unit)
            .map(|s| (m.target.clone(), s.clone()))
    });
    let Some((target, svc)) = found else {
        return Ok(Outcome::NotFinal(format!(
            "not a loaded krill service ({})",
            req.unit
        )));
    };
    let sd = Systemd::connect()?;
    let mut facts = sd.facts(&[req.unit.clone(), target.clone()]).into_iter();
    let (st, tst) = (
        facts.next().unwrap_or_default(),
        facts.next().unwrap_or_default(),
    );
    if st.active != "failed" {
        return Ok(Outcome::NotFinal(st.active));
    }
    let inv = st.invocation.as_str();
    let records = Records::default();
    if records.read(Kind::Handled, &req.unit).as_deref() == Some(inv) {
        return Ok(Outcome::AlreadyHandled);
    }
    let _ = records.write(Kind::Handled, &req.unit, inv);
    if let Some(why) = records.cascade_reason(&req.unit, inv) {
        return Ok(Outcome::StoppedByKrill(why));
    }
    if tst.active != "active" {
        return Ok(Outcome::WorkspaceStopping);
    }
    let why = krill::runtime::status::final_failure(&svc, &st, &records);
    if req.critical {
        // Everything stops with the target; the cascade would only add latency.
        let ws = workspace_of(&target);
        let reason = format!("critical service {} failed for good: {why}", svc.name);
        sd.call(|c| {
            let (records, reason) = (&records, &reason);
            async move { krill::runtime::estop::emergency_stop(Some(&c), records, ws, reason).await }
        })?;
        return Ok(Outcome::EmergencyStop { reason });
    }
    let stop = dependents_in_systemd(&sd, &req.unit);
    let cascaded = cascade(
        &sd,
        &stop,
        &format!("stopped by a cascade from {} ({why})", svc.name),
    )?;
    Ok(Outcome::Cascaded(cascaded))
}

/// The gates of `unit` and, transitively, every service that waits on such a gate,
/// with its own gates: read from systemd's loaded units (gate `RequiredBy=`). Gates
/// of `krill-W-S.service` are `krill-started@krill-W-S.service` and
/// `krill-healthy@krill-W-S.service`.
pub fn dependents_in_systemd(sd: &Systemd, unit: &str) -> Vec<String> {
    let gates_of = |u: &str| {
        let stem = u.strip_suffix(".service").unwrap_or(u);
        ["started", "healthy"].map(|c| format!("krill-{c}@{stem}.service"))
    };
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::BTreeSet::from([unit.to_owned()]);
    let mut frontier = vec![unit.to_owned()];
    while !frontier.is_empty() {
        let gates: Vec<String> = frontier.iter().flat_map(|u| gates_of(u)).collect();
        let mut next = Vec::new();
        for (g, st) in gates.iter().zip(sd.facts(&gates)) {
            if st.load != "loaded" {
                continue;
            }
            out.push(g.clone());
            let required_by = sd
                .call(|c| async move { krill::runtime::bus::unit_list(&c, g, "RequiredBy").await });
            for d in required_by {
                if d.ends_with(".service") && seen.insert(d.clone()) {
                    next.push(d);
                }
            }
        }
        out.extend(next.iter().cloned());
        frontier = next;
    }
    out
}

/// Marks and stops `units` (without waiting for the stops). Returns those that were
/// not already inactive.
pub fn cascade(sd: &Systemd, units: &[String], reason: &str) -> Result<Vec<String>, Error> {
    if units.is_empty() {
        return Ok(vec![]);
    }
    let records = Records::default();
    let mut stopped = Vec::new();
    for (u, st) in units.iter().zip(sd.facts(units)) {
        if !st.invocation.is_empty() {
            if let Err(e) = records.record_cascade(u, &st.invocation, reason) {
                eprintln!("krill: {e}");
            }
        }
        if st.active != "inactive" {
            stopped.push(u.clone());
        }
    }
    sd.jobs(Job::Stop, units, false)?;
    Ok(stopped)
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
