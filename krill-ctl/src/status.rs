//! `krill-ctl status`: what systemd and krill's runtime records say about each
//! service. Works with or without the supervisor.

use krill::runtime::manifest::{Loaded, Manifest, Rejected};
use krill::runtime::records::Records;
pub use krill::runtime::status::{
    render_json, render_table, restarts, uptime_s, ServiceStatus, WorkspaceStatus,
};

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

/// The status of workspace `name`, or of every workspace systemd has loaded (from
/// the generator's manifests, never from recipe files), and the recipes the generator
/// skipped. The supervisor answers when it runs; otherwise systemd and krill's
/// records still tell state, PIDs, restarts and reasons.
pub fn gather(name: Option<&str>) -> Result<(Vec<WorkspaceStatus>, Vec<Rejected>), String> {
    let loaded = Loaded::read();
    let manifests: Vec<&Manifest> = match name {
        Some(n) => vec![loaded.workspaces.get(n).ok_or_else(|| {
            format!(
                "no workspace {n:?} is loaded (loaded: {})",
                loaded
                    .workspaces
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?],
        None => loaded.workspaces.values().collect(),
    };
    let names: Vec<String> = manifests.iter().map(|m| m.workspace.clone()).collect();
    let from_sup: Vec<Option<WorkspaceStatus>> = crate::bus::with_system(|conn| async move {
        let mut out = vec![];
        for ws in &names {
            out.push(from_supervisor(&conn, ws).await);
        }
        Ok::<_, crate::bus::Error>(out)
    })
    .unwrap_or_default();
    let mut all = vec![];
    for (i, m) in manifests.iter().enumerate() {
        match from_sup.get(i).cloned().flatten() {
            Some(s) => all.push(s),
            None => all.push(collect(m).map_err(|e| e.to_string())?),
        }
    }
    Ok((all, loaded.rejected))
}

async fn from_supervisor(conn: &zbus::Connection, ws: &str) -> Option<WorkspaceStatus> {
    let json = crate::bus::supervisor_status(conn, ws).await.ok()?;
    let inner: serde_json::Value = serde_json::from_str(&json).ok()?;
    serde_json::from_value::<Vec<WorkspaceStatus>>(inner["workspaces"].clone())
        .ok()?
        .into_iter()
        .next()
}

/// Collects the status of a workspace from systemd.
pub fn collect(m: &Manifest) -> Result<WorkspaceStatus, systemctl::Error> {
    let t = systemctl::show(&m.target, &["ActiveState"])?;
    let records = Records::default();
    let mut services = Vec::new();
    let now = uptime_now_us();
    for s in &m.services {
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
        let has_check = s.check.is_some();
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
            restarts: restarts(get("NRestarts").parse().unwrap_or(0), s.max_restarts),
            uptime_s: uptime_s(active == "active", started, now),
            result: get("Result"),
            last_failure: String::new(),
        });
    }
    Ok(WorkspaceStatus {
        workspace: m.workspace.clone(),
        target: m.target.clone(),
        state: t.get("ActiveState").cloned().unwrap_or_default(),
        estop: records.estop_reason(&m.workspace),
        services,
    })
}
