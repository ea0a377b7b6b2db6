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

use krill::runtime::records::{Kind, Records};

use crate::systemctl;

/// Why the handler failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Systemctl(#[from] systemctl::Error),
    #[error(transparent)]
    Bus(#[from] crate::bus::Error),
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

/// Runs the handler against the live systemd. Costs two or three `systemctl` calls,
/// because an emergency stop is only as fast as its slowest step.
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
    let unit = req.unit.clone();
    let st = crate::bus::with_system(|conn| async move {
        Ok::<_, crate::bus::Error>(krill::runtime::bus::unit_facts_by_name(&conn, &unit).await)
    })?;
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
    let tst = systemctl::show(&target, &["ActiveState"])?;
    if tst.get("ActiveState").map(String::as_str) != Some("active") {
        return Ok(Outcome::WorkspaceStopping);
    }
    let why = krill::runtime::status::final_failure(&svc, &st, &records);
    if req.critical {
        // Everything stops with the target; the cascade would only add latency.
        let ws = workspace_of(&target);
        let reason = format!("critical service {} failed for good: {why}", svc.name);
        if let Err(e) = records.record_estop(ws, &reason) {
            eprintln!("krill: cannot record the emergency stop: {e}");
        }
        emergency_stop(&target)?;
        return Ok(Outcome::EmergencyStop { reason });
    }
    let stop = dependents_in_systemd(&req.unit)?;
    let cascaded = cascade(
        &stop,
        &format!("stopped by a cascade from {} ({why})", svc.name),
    )?;
    Ok(Outcome::Cascaded(cascaded))
}

/// The gates of `unit` and, transitively, every service that waits on such a gate,
/// with its own gates: read from systemd's loaded units (gate `RequiredBy=`), one
/// `systemctl show` per DAG level. Gates of `krill-W-S.service` are
/// `krill-started@krill-W-S.service` and `krill-healthy@krill-W-S.service`.
pub fn dependents_in_systemd(unit: &str) -> Result<Vec<String>, systemctl::Error> {
    let gates_of = |u: &str| {
        let stem = u.strip_suffix(".service").unwrap_or(u);
        ["started", "healthy"].map(|c| format!("krill-{c}@{stem}.service"))
    };
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::BTreeSet::from([unit.to_owned()]);
    let mut frontier = vec![unit.to_owned()];
    while !frontier.is_empty() {
        let gates: Vec<String> = frontier.iter().flat_map(|u| gates_of(u)).collect();
        let info = systemctl::show_many(&gates, &["LoadState", "RequiredBy"])?;
        let mut next = Vec::new();
        for (g, st) in gates.iter().zip(&info) {
            if st.get("LoadState").map(String::as_str) != Some("loaded") {
                continue;
            }
            out.push(g.clone());
            for d in st
                .get("RequiredBy")
                .map(|r| r.split_whitespace().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                if d.ends_with(".service") && seen.insert(d.to_owned()) {
                    next.push(d.to_owned());
                }
            }
        }
        out.extend(next.iter().cloned());
        frontier = next;
    }
    Ok(out)
}

/// Marks and stops `units`. Returns those that were not already inactive.
pub fn cascade(units: &[String], reason: &str) -> Result<Vec<String>, systemctl::Error> {
    if units.is_empty() {
        return Ok(vec![]);
    }
    let states = systemctl::show_many(units, &["ActiveState", "InvocationID"])?;
    let records = Records::default();
    let mut stopped = Vec::new();
    for (u, st) in units.iter().zip(&states) {
        if let Some(inv) = st.get("InvocationID").filter(|i| !i.is_empty()) {
            if let Err(e) = records.record_cascade(u, inv, reason) {
                eprintln!("krill: {e}");
            }
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

/// Stops every member of the workspace at once, over D-Bus: the target (all members
/// are `PartOf=` it, and `After=` ordering makes dependents stop first) and the slice
/// (every process of the workspace). Members that then fail while stopping (SIGKILL
/// after stop_timeout) are not escalated: their handlers find the target no longer
/// active.
///
/// If the system bus is down, `systemctl` does the same through systemd's private
/// socket: an emergency stop must not depend on dbus-daemon.
pub fn emergency_stop(target: &str) -> Result<(), Error> {
    let ws = workspace_of(target).to_owned();
    let w = ws.clone();
    match crate::bus::with_system(|conn| async move { crate::bus::stop_workspace(&conn, &w).await })
    {
        Ok(()) => Ok(()),
        Err(_) => {
            let slice = krill::runtime::names::slice(&ws);
            systemctl::run(&["stop", "--no-block", "--", target, &slice])?;
            Ok(())
        }
    }
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
