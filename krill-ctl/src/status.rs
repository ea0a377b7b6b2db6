//! `krill-ctl status`: what systemd and krill's runtime records say about each
//! service. Works with or without the supervisor.

use serde_json::json;

use krill::Plan;

use crate::{state, systemctl};

/// The status of one service.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ServiceStatus {
    pub service: String,
    pub unit: String,
    /// systemd's ActiveState/SubState, e.g. `active/running`.
    pub state: String,
    /// `healthy`, `degraded`, `unhealthy`, `unknown` or `-` (no health check).
    pub health: String,
    /// Reason given with a degraded heartbeat, or why the service was stopped.
    pub reason: String,
    pub pid: u32,
    pub restarts: u32,
    /// Seconds since the current run started (0 when not running).
    pub uptime_s: u64,
    /// systemd's Result of the latest run (`success`, `exit-code`, `signal`, ...).
    pub result: String,
    /// Why the latest health failure happened (from the supervisor).
    #[serde(default)]
    pub last_failure: String,
}

/// The status of a workspace.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WorkspaceStatus {
    pub workspace: String,
    pub target: String,
    pub state: String,
    /// Why the workspace was emergency-stopped, if it was.
    pub estop: Option<String>,
    pub services: Vec<ServiceStatus>,
}

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
        let health_rec = state::read("health-status", &s.unit);
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
        if active != "active" {
            if let Some(c) = state::read("cascade", &s.unit) {
                if reason.is_empty() {
                    reason = c.lines().nth(1).unwrap_or("").to_owned();
                }
            }
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
            uptime_s: if active == "active" && started > 0 && now > started {
                (now - started) / 1_000_000
            } else {
                0
            },
            result: get("Result"),
            last_failure: String::new(),
        });
    }
    Ok(WorkspaceStatus {
        workspace: plan.workspace().to_owned(),
        target: plan.target.clone(),
        state: t.get("ActiveState").cloned().unwrap_or_default(),
        estop: state::read("estop", plan.workspace())
            .and_then(|s| s.lines().nth(1).map(str::to_owned)),
        services,
    })
}

/// systemd's NRestarts also counts the attempt that the start limit refused; with
/// `max_restarts: N` at most N restarts really happen.
fn restarts(n: u32, max: u32) -> u32 {
    if max > 0 {
        n.min(max)
    } else {
        n
    }
}

fn human_duration(s: u64) -> String {
    match s {
        0 => "-".into(),
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

/// A table a human reads at a glance.
pub fn render_table(ws: &WorkspaceStatus) -> String {
    let mut out = format!("workspace {} ({}): {}\n", ws.workspace, ws.target, ws.state);
    if let Some(e) = &ws.estop {
        out.push_str(&format!("EMERGENCY STOP: {e}\n"));
    }
    let rows: Vec<[String; 7]> = ws
        .services
        .iter()
        .map(|s| {
            [
                s.service.clone(),
                s.state.clone(),
                s.health.clone(),
                if s.pid == 0 {
                    "-".into()
                } else {
                    s.pid.to_string()
                },
                s.restarts.to_string(),
                human_duration(s.uptime_s),
                s.reason.clone(),
            ]
        })
        .collect();
    let head = [
        "SERVICE", "STATE", "HEALTH", "PID", "RESTARTS", "UPTIME", "REASON",
    ];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    out.push_str(&line(head.to_vec()));
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// JSON for scripts.
pub fn render_json(all: &[WorkspaceStatus]) -> String {
    serde_json::to_string_pretty(&json!({ "workspaces": all })).unwrap_or_default()
}
