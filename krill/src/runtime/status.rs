//! The status of workspaces and services as krill reports it: one shape for
//! `krill status`, its `--json`, and the supervisor's `GetStatus` over D-Bus.

use serde_json::json;

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

/// Seconds a service has been running: its run started at `started_us` (CLOCK_MONOTONIC
/// µs, systemd's `ExecMainStartTimestampMonotonic`); 0 when it is not active.
pub fn uptime_s(active: bool, started_us: u64, now_us: u64) -> u64 {
    if active && started_us > 0 && now_us > started_us {
        (now_us - started_us) / 1_000_000
    } else {
        0
    }
}

/// systemd's NRestarts also counts the attempt that the start limit refused; with
/// `max_restarts: N` at most N restarts really happen.
pub fn restarts(n: u32, max: u32) -> u32 {
    if max > 0 {
        n.min(max)
    } else {
        n
    }
}

/// Longest reason kept, in characters; a longer one is cut with `…`.
pub const MAX_REASON_CHARS: usize = 200;

/// `s` made safe for an operator's terminal and one table row: control characters
/// (newlines, escape sequences, NUL, …) are written as `\u{..}`-style escapes, so a
/// reason can neither forge rows nor drive the terminal; at most
/// [`MAX_REASON_CHARS`] characters.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_REASON_CHARS));
    for (i, c) in s.chars().enumerate() {
        if i == MAX_REASON_CHARS {
            out.push('…');
            break;
        }
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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
    let mut out = format!(
        "workspace {} ({}): {}\n",
        printable(&ws.workspace),
        printable(&ws.target),
        printable(&ws.state)
    );
    if let Some(e) = &ws.estop {
        out.push_str(&format!("EMERGENCY STOP: {}\n", printable(e)));
    }
    let rows: Vec<[String; 7]> = ws
        .services
        .iter()
        .map(|s| {
            [
                printable(&s.service),
                printable(&s.state),
                printable(&s.health),
                if s.pid == 0 {
                    "-".into()
                } else {
                    s.pid.to_string()
                },
                s.restarts.to_string(),
                human_duration(s.uptime_s),
                printable(&s.reason),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_cannot_forge_rows_or_drive_the_terminal() {
        let evil = "ok\nfake-service  active/running  healthy\x1b[2J\x1b]0;pwned\x07\u{202e}";
        let p = printable(evil);
        assert!(!p.chars().any(|c| c.is_control()), "{p:?}");
        assert!(p.contains("\\n") && p.contains("\\u{1b}"), "{p:?}");
        let ws = WorkspaceStatus {
            workspace: "w".into(),
            target: "krill-w.target".into(),
            state: "active".into(),
            estop: Some(evil.into()),
            services: vec![ServiceStatus {
                service: "a".into(),
                unit: "krill-w-a.service".into(),
                state: "active/running".into(),
                health: "degraded".into(),
                reason: evil.into(),
                pid: 1,
                restarts: 0,
                uptime_s: 1,
                result: "success".into(),
                last_failure: String::new(),
            }],
        };
        let t = render_table(&ws);
        assert_eq!(t.lines().count(), 4, "{t}");
        assert!(!t.contains('\x1b'));
        assert_eq!(
            printable(&"x".repeat(500)).chars().count(),
            MAX_REASON_CHARS + 1
        );
    }
}
