//! Prometheus metrics: the status model ([`crate::runtime::status`]) and the
//! supervisor's counters ([`crate::runtime::stats`]) in the exposition format, for
//! `krill-ctl metrics` and the opt-in `krill-metrics.socket` (127.0.0.1:9464).
//! Nothing here assembles status again. Labels are the workspace and service names
//! and small fixed sets (states, results, refusal reasons), so cardinality is
//! bounded by the number of services.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::runtime::stats::Stats;
use crate::runtime::status::{Report, WorkspaceState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Svc {
    workspace: String,
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SvcResult {
    workspace: String,
    service: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Ws {
    workspace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WsState {
    workspace: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

/// A label value escaped as the exposition format wants (`\\`, `\"`, `\n`):
/// prometheus-client writes values verbatim, and names come from recipes.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

type FGauge = Gauge<f64, AtomicU64>;
type FCounter = Counter<f64, AtomicU64>;

/// Every workspace state, so that each workspace has one series per state (1 for
/// its current one).
const STATES: [WorkspaceState; 6] = [
    WorkspaceState::Running,
    WorkspaceState::Starting,
    WorkspaceState::Degraded,
    WorkspaceState::Stopped,
    WorkspaceState::EmergencyStopped,
    WorkspaceState::Failed,
];

/// The exposition text of `report` and, when the supervisor answered, its `stats`.
pub fn render(report: &Report, stats: Option<&Stats>) -> String {
    let mut reg = Registry::with_prefix("krill");
    macro_rules! family {
        ($name:literal, $help:literal, $ty:ty) => {{
            let f = Family::<_, $ty>::default();
            reg.register($name, $help, f.clone());
            f
        }};
    }
    let up = family!(
        "service_up",
        "1 when the service's main process runs",
        Gauge
    );
    let healthy = family!(
        "service_healthy",
        "1 when a checked, running service passes its health check",
        Gauge
    );
    let restarts = family!(
        "service_restarts",
        "Automatic restarts of the service",
        Counter
    );
    let result = family!(
        "service_last_result",
        "1 for systemd's Result of the service's latest run",
        Gauge
    );
    let cpu = family!(
        "service_cpu_seconds",
        "CPU time of the service's current run",
        FCounter
    );
    let mem = family!(
        "service_memory_bytes",
        "Memory of the service's cgroup",
        Gauge
    );
    let tasks = family!("service_tasks", "Tasks in the service's cgroup", Gauge);
    let beat = family!(
        "service_heartbeat_age_seconds",
        "Time since the service's last heartbeat",
        FGauge
    );
    let state = family!(
        "workspace_state",
        "1 for the workspace's current state",
        Gauge
    );
    let estopped = family!(
        "workspace_emergency_stopped",
        "1 while the workspace is stopped by an emergency stop",
        Gauge
    );
    for ws in &report.workspaces {
        let w = |service: &str| Svc {
            workspace: label(&ws.workspace),
            service: label(service),
        };
        for s in &ws.services {
            let l = w(&s.service);
            up.get_or_create(&l).set(s.pid.is_some() as i64);
            if let Some(h) = &s.health {
                healthy.get_or_create(&l).set((h == "healthy") as i64);
            }
            restarts.get_or_create(&l).inc_by(u64::from(s.restarts));
            if let Some(r) = &s.result {
                result
                    .get_or_create(&SvcResult {
                        workspace: label(&ws.workspace),
                        service: label(&s.service),
                        result: label(r),
                    })
                    .set(1);
            }
            if let Some(r) = &s.resources {
                if let Some(c) = r.cpu_s {
                    cpu.get_or_create(&l).inc_by(c);
                }
                if let Some(m) = r.memory_bytes {
                    mem.get_or_create(&l).set(m as i64);
                }
                if let Some(t) = r.tasks {
                    tasks.get_or_create(&l).set(t as i64);
                }
            }
            if let Some(a) = s.heartbeat_age_s {
                beat.get_or_create(&l).set(a);
            }
        }
        for st in STATES {
            state
                .get_or_create(&WsState {
                    workspace: label(&ws.workspace),
                    state: st.as_str().to_owned(),
                })
                .set((ws.state == st) as i64);
        }
        estopped
            .get_or_create(&Ws {
                workspace: label(&ws.workspace),
            })
            .set((ws.state == WorkspaceState::EmergencyStopped) as i64);
    }
    let sup_up = Gauge::<i64>::default();
    reg.register(
        "supervisor_up",
        "1 when krill-supervisor answered this scrape",
        sup_up.clone(),
    );
    sup_up.set(stats.is_some() as i64);
    if let Some(st) = stats {
        let counter = |reg: &mut Registry, name: &str, help: &str, v: u64| {
            let c = Counter::<u64>::default();
            c.inc_by(v);
            reg.register(name, help, c);
        };
        counter(
            &mut reg,
            "heartbeats_accepted",
            "Heartbeats accepted",
            st.accepted,
        );
        counter(
            &mut reg,
            "watchdog_relays",
            "WATCHDOG=1 pings relayed to systemd",
            st.relayed,
        );
        let by_reason = |reg: &mut Registry, name: &str, help: &str, counts: &[(&str, u64)]| {
            let f = Family::<Reason, Counter>::default();
            reg.register(name, help, f.clone());
            for (why, v) in counts {
                f.get_or_create(&Reason {
                    reason: (*why).into(),
                })
                .inc_by(*v);
            }
        };
        by_reason(
            &mut reg,
            "heartbeats_refused",
            "Heartbeat lines refused, by reason",
            &[
                ("malformed", st.malformed),
                ("oversized", st.oversized),
                ("unknown_type", st.unknown_type),
                ("wrong_sender", st.refused_sender),
            ],
        );
        by_reason(
            &mut reg,
            "connections_refused",
            "Heartbeat connections closed at accept, by reason",
            &[
                ("outsider", st.refused_connections),
                ("capped", st.capped_connections),
            ],
        );
        let open = Gauge::<i64>::default();
        open.set(st.open_connections as i64);
        reg.register("connections_open", "Heartbeat connections open", open);
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::status::{Resources, ServiceStatus, WorkspaceStatus};

    fn report() -> Report {
        Report {
            version: 1,
            workspaces: vec![WorkspaceStatus {
                workspace: "robot".into(),
                target: "krill-robot.target".into(),
                state: WorkspaceState::Degraded,
                detail: None,
                services: vec![ServiceStatus {
                    service: "lidar".into(),
                    unit: "krill-robot-lidar.service".into(),
                    state: "active".into(),
                    sub_state: "running".into(),
                    health: Some("degraded".into()),
                    reason: Some("dirty".into()),
                    pid: Some(42),
                    restarts: 3,
                    uptime_s: Some(10),
                    result: Some("success".into()),
                    heartbeat_age_s: Some(0.25),
                    resources: Some(Resources {
                        cpu_s: Some(1.5),
                        cpu_percent: Some(7.0),
                        memory_bytes: Some(1 << 20),
                        memory_peak_bytes: None,
                        tasks: Some(4),
                    }),
                    last_failure: None,
                    depends_on: vec![],
                    dependents: vec![],
                    ok: false,
                }],
            }],
            skipped_recipes: vec![],
        }
    }

    #[test]
    fn status_and_counters_in_the_exposition_format() {
        let stats = Stats {
            accepted: 10,
            malformed: 2,
            relayed: 9,
            ..Default::default()
        };
        let text = render(&report(), Some(&stats));
        for line in [
            r#"krill_service_up{workspace="robot",service="lidar"} 1"#,
            r#"krill_service_healthy{workspace="robot",service="lidar"} 0"#,
            r#"krill_service_restarts_total{workspace="robot",service="lidar"} 3"#,
            r#"krill_service_last_result{workspace="robot",service="lidar",result="success"} 1"#,
            r#"krill_service_cpu_seconds_total{workspace="robot",service="lidar"} 1.5"#,
            r#"krill_service_memory_bytes{workspace="robot",service="lidar"} 1048576"#,
            r#"krill_service_tasks{workspace="robot",service="lidar"} 4"#,
            r#"krill_service_heartbeat_age_seconds{workspace="robot",service="lidar"} 0.25"#,
            r#"krill_workspace_state{workspace="robot",state="degraded"} 1"#,
            r#"krill_workspace_state{workspace="robot",state="running"} 0"#,
            r#"krill_workspace_emergency_stopped{workspace="robot"} 0"#,
            "krill_supervisor_up 1",
            "krill_heartbeats_accepted_total 10",
            r#"krill_heartbeats_refused_total{reason="malformed"} 2"#,
            "krill_watchdog_relays_total 9",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        let without = render(&report(), None);
        assert!(without.contains("krill_supervisor_up 0"));
        assert!(!without.contains("heartbeats_accepted"));
    }

    #[test]
    fn hostile_names_cannot_forge_series() {
        let mut r = report();
        r.workspaces[0].services[0].service = "x\"} 1\nkrill_service_up{a=\"".into();
        let text = render(&r, None);
        assert!(
            !text.lines().any(|l| l.starts_with("krill_service_up{a=")),
            "{text}"
        );
        assert!(
            text.contains(r#"service="x\"} 1\nkrill_service_up{a=\""} 1"#),
            "{text}"
        );
    }

    /// Every metric the sample Grafana dashboard (examples/grafana) queries is one
    /// that krill exports.
    #[test]
    fn the_sample_dashboard_queries_exported_metrics() {
        let text = render(
            &report(),
            Some(&Stats {
                malformed: 1,
                ..Default::default()
            }),
        );
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/grafana/krill-dashboard.json"
        );
        let dash: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut queried = 0;
        for panel in dash["panels"].as_array().unwrap() {
            for t in panel["targets"].as_array().unwrap() {
                let expr = t["expr"].as_str().unwrap();
                for name in expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| w.starts_with("krill_"))
                {
                    queried += 1;
                    assert!(
                        text.lines().any(|l| l.starts_with(name)),
                        "{name} (in {expr:?}) is not exported"
                    );
                }
            }
        }
        assert!(queried >= 10);
    }
}
