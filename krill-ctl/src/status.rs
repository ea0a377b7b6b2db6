//! `krill-ctl status`: what systemd and krill's runtime records say about each
//! service. Works with or without the supervisor.

use krill::records::Records;
pub use krill::status::{
    render_json, render_table, restarts, uptime_s, ServiceStatus, WorkspaceStatus,
};
use krill::Plan;

use crate::systemctl;

fn uptime_now_us() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok())
        })
        .map(|s| (s * 1e6) as u64)
        .unwrap_or(0)
}

/// The supervisor's answer to `GetStatus(ws)` over D-Bus, if it is running.
pub fn from_supervisor(ws: &str) -> Option<WorkspaceStatus> {
    let out = std::process::Command::new("busctl")
        .args([
            "--json=short",
            "--timeout=2",
            "call",
            "org.krill.Supervisor1",
            "/org/krill/Supervisor1",
            "org.krill.Supervisor1",
            "GetStatus",
            "s",
            ws,
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let inner: serde_json::Value = serde_json::from_str(reply["data"][0].as_str()?).ok()?;
    serde_json::from_value::<Vec<WorkspaceStatus>>(inner["workspaces"].clone())
        .ok()?
        .into_iter()
        .next()
}

/// Collects the status of a workspace from systemd.
pub fn collect(plan: &Plan) -> Result<WorkspaceStatus, systemctl::Error> {
    let t = systemctl::show(&plan.target, &["ActiveState"])?;
    let records = Records::default();
    let mut services = Vec::new();
    let now = uptime_now_us();
    for s in &plan.services {
        let m = systemctl::show(
            &s.unit,
            &[
                "ActiveState",
                "SubState",
                "MainPID",
                "NRestarts",
                "Result",
                "ExecMainStartTimestampMonotonic",
                "InvocationID",
            ],
        )?;
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        let active = get("ActiveState");
        let started: u64 = get("ExecMainStartTimestampMonotonic").parse().unwrap_or(0);
        let has_check = plan.recipe.services[&s.name].health_check.is_some();
        let health_rec = records.read("health-status", &s.unit);
        let (health, mut reason) = match (&health_rec, has_check) {
            (_, false) => ("-".to_owned(), String::new()),
            (Some(rec), true) => {
                let mut l = rec.lines();
                (
                    l.next().unwrap_or("unknown").to_owned(),
                    l.next().unwrap_or("").to_owned(),
                )
            }
            (None, true) => ("unknown".to_owned(), String::new()),
        };
        if active != "active" && reason.is_empty() {
            reason = records.stop_reason(&s.unit).unwrap_or_default();
        }
        services.push(ServiceStatus {
            service: s.name.clone(),
            unit: s.unit.clone(),
            state: format!("{active}/{}", get("SubState")),
            health,
            reason,
            pid: get("MainPID").parse().unwrap_or(0),
            restarts: restarts(
                get("NRestarts").parse().unwrap_or(0),
                plan.recipe.services[&s.name].policy.max_restarts,
            ),
            uptime_s: uptime_s(active == "active", started, now),
            result: get("Result"),
            last_failure: String::new(),
        });
    }
    Ok(WorkspaceStatus {
        workspace: plan.workspace().to_owned(),
        target: plan.target.clone(),
        state: t.get("ActiveState").cloned().unwrap_or_default(),
        estop: records.estop_reason(plan.workspace()),
        services,
    })
}
