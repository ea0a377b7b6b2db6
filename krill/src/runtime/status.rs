//! The status of workspaces and services: one model, assembled by one function
//! ([`assemble`]) from systemd's unit properties, krill's records and (when the
//! supervisor runs) its health facts. `krill status`, its `--json`, the supervisor's
//! `GetStatus` and everything built on them use it.
//!
//! # Reasons
//! Every service that is not running says why, in words ([`stop_reason`]). A reason
//! belongs to one run: krill's records name the InvocationID they are about, and
//! systemd's exit facts describe the latest run, so a new run clears the reason by
//! itself. The latest failure is kept apart, with its time ([`ServiceStatus::last_failure`]).
//!
//! # Heartbeats
//! A heartbeat service shows the age of its last heartbeat. It is `late` once that
//! age exceeds the expected interval: 2 × the smoothed gap between its heartbeats as
//! the supervisor saw them, at least [`MIN_LATE`] and at most half the timeout (half
//! the timeout before two heartbeats arrived). `late` is shown, not acted on: systemd's watchdog acts at the
//! timeout.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::runtime::bus::UnitFacts;
use crate::runtime::check::HealthCheck;
use crate::runtime::manifest::{Manifest, ManifestService};
use crate::runtime::names::Condition;
use crate::runtime::records::{Failure, Records};
use crate::runtime::timing::HEALTHY_START_PERIOD;

/// Version of the JSON shape (`"version": 1`).
pub const VERSION: u32 = 1;

/// A heartbeat is never `late` earlier than this after the previous one (500 ms),
/// unless half the timeout is shorter: scheduling on a loaded robot delays beats.
pub const MIN_LATE: std::time::Duration = std::time::Duration::from_millis(500);

/// Health facts the supervisor knows and systemd does not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthFacts {
    /// `starting`, `healthy`, `degraded` or `unhealthy`.
    pub health: String,
    /// The degraded reason, or the failing probe's last error.
    pub reason: String,
    /// Smoothed gap between heartbeats, in ms, once two arrived.
    pub beat_interval_ms: Option<u64>,
    /// CPU use over the supervisor's latest sampling interval
    /// ([`CPU_SAMPLE_INTERVAL`]), % of one core.
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    /// When the supervisor accepted this run's latest heartbeat over its socket,
    /// CLOCK_MONOTONIC µs. systemd's watchdog timestamp lags it by up to half the
    /// timeout: the supervisor relays that seldom.
    #[serde(default)]
    pub last_beat_us: Option<u64>,
}

/// How often the supervisor samples each running service's CPU time (1 s): the
/// interval of `cpu_percent`.
pub const CPU_SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Everything [`assemble`] reads about one workspace.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The workspace target.
    pub target: UnitFacts,
    /// Every service unit and gate unit of the workspace, by unit name.
    pub units: BTreeMap<String, UnitFacts>,
    /// Supervisor health facts, by service unit; absent without a supervisor.
    pub health: BTreeMap<String, HealthFacts>,
    /// CLOCK_MONOTONIC µs at the time the facts were read.
    pub now_us: u64,
}

/// The state of a workspace, derived from its services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkspaceState {
    /// Every service runs (and is healthy where checked), or finished cleanly.
    Running,
    /// Something is still starting or waiting on a dependency.
    Starting,
    /// Some service is unhealthy, degraded, late, restarting or down.
    Degraded,
    /// Nothing runs and nothing failed.
    Stopped,
    /// Stopped by an emergency stop.
    EmergencyStopped,
    /// A critical service is down.
    Failed,
}

impl WorkspaceState {
    /// The word shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceState::Running => "running",
            WorkspaceState::Starting => "starting",
            WorkspaceState::Degraded => "degraded",
            WorkspaceState::Stopped => "stopped",
            WorkspaceState::EmergencyStopped => "emergency-stopped",
            WorkspaceState::Failed => "failed",
        }
    }
}

/// The status of one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub service: String,
    pub unit: String,
    /// systemd's ActiveState (`active`, `activating`, `inactive`, `failed`, …).
    pub state: String,
    /// systemd's SubState (`running`, `auto-restart`, `dead`, …).
    pub sub_state: String,
    /// `starting`, `healthy`, `late`, `degraded`, `unhealthy` or `unknown`; `null`
    /// without a health check or when not running.
    pub health: Option<String>,
    /// Why the service is not running, or not healthy; `null` when all is well.
    pub reason: Option<String>,
    /// Main PID; `null` when not running.
    pub pid: Option<u32>,
    /// Automatic restarts that really happened.
    pub restarts: u32,
    /// Seconds since the current run started; `null` when not running.
    pub uptime_s: Option<u64>,
    /// systemd's Result of the latest run; `null` if it never ran.
    pub result: Option<String>,
    /// Seconds since the last heartbeat; `null` for other checks or when not running.
    pub heartbeat_age_s: Option<f64>,
    /// What the run uses (systemd's cgroup accounting); `null` when not running.
    #[serde(default)]
    pub resources: Option<Resources>,
    /// The latest failure, whatever run it belongs to.
    pub last_failure: Option<Failure>,
    /// What it waits for before it starts, in recipe order.
    #[serde(default)]
    pub depends_on: Vec<Dependency>,
    /// The services of its workspace that wait for it directly.
    #[serde(default)]
    pub dependents: Vec<String>,
    /// Whether this service is as intended (running and healthy, or finished cleanly).
    pub ok: bool,
}

/// One dependency of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub service: String,
    /// `started` or `healthy`.
    pub condition: crate::runtime::names::Condition,
}

/// The resources a running service uses. A figure systemd does not have is `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// CPU time of the current run, s.
    pub cpu_s: Option<f64>,
    /// CPU use over the last [`CPU_SAMPLE_INTERVAL`], % of one core (100 = one core
    /// busy); `null` without the supervisor, which samples it.
    pub cpu_percent: Option<f64>,
    /// Memory now, bytes.
    pub memory_bytes: Option<u64>,
    /// Highest memory of the cgroup, bytes.
    pub memory_peak_bytes: Option<u64>,
    /// Tasks (processes and threads).
    pub tasks: Option<u64>,
}

/// The status of a workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceStatus {
    pub workspace: String,
    pub target: String,
    pub state: WorkspaceState,
    /// What the state is about: the estop reason, the critical service that is down,
    /// how many services need attention, or what is still starting.
    pub detail: Option<String>,
    pub services: Vec<ServiceStatus>,
}

/// A full report, as `krill status --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub workspaces: Vec<WorkspaceStatus>,
    /// Recipes the generator skipped: (file, error).
    #[serde(default)]
    pub skipped_recipes: Vec<SkippedRecipe>,
}

/// A recipe the generator skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRecipe {
    pub file: String,
    pub error: String,
}

impl Report {
    /// Whether every workspace is `running` (`krill status` exits 0, else 3).
    pub fn all_ok(&self) -> bool {
        self.workspaces
            .iter()
            .all(|w| w.state == WorkspaceState::Running)
    }
}

/// The status of workspace `m` from `facts` and `records`. The one status function.
pub fn assemble(m: &Manifest, facts: &Facts, records: &Records) -> WorkspaceStatus {
    let none = UnitFacts::default();
    let mut services: Vec<ServiceStatus> = m
        .services
        .iter()
        .map(|s| {
            let u = facts.units.get(&s.unit).unwrap_or(&none);
            let mut st = service(s, u, facts, records);
            st.dependents = m
                .services
                .iter()
                .filter(|d| d.waits_on.iter().any(|w| w.service == s.name))
                .map(|d| d.name.clone())
                .collect();
            st
        })
        .collect();
    let estop = records.estop(&m.workspace).filter(|(at, _)| {
        !is_active(&facts.target) || *at >= facts.target.active_enter_realtime_us
    });
    if let Some((_, why)) = &estop {
        for s in services.iter_mut().filter(|s| s.pid.is_none()) {
            if s.reason.is_none() || s.reason.as_deref() == Some(OPERATOR) {
                s.reason = Some(format!("emergency stop: {why}"));
            }
        }
    }
    let (state, detail) = workspace_state(m, &services, facts, estop.map(|e| e.1));
    WorkspaceStatus {
        workspace: m.workspace.clone(),
        target: m.target.clone(),
        state,
        detail,
        services,
    }
}

fn is_active(u: &UnitFacts) -> bool {
    matches!(u.active.as_str(), "active" | "reloading")
}

fn running(u: &UnitFacts) -> bool {
    is_active(u) && u.sub != "exited"
}

/// systemd's NRestarts also counts the restart that the start limit refused; with
/// `max_restarts: N` at most N restarts really happen.
pub fn restarts(n: u32, max: u32) -> u32 {
    if max > 0 {
        n.min(max)
    } else {
        n
    }
}

fn secs(us: u64) -> String {
    let s = us as f64 / 1e6;
    if s < 10.0 {
        format!("{:.1} s", s)
    } else {
        format!("{:.0} s", s)
    }
}

fn service(s: &ManifestService, u: &UnitFacts, facts: &Facts, records: &Records) -> ServiceStatus {
    let run = running(u);
    let hf = facts.health.get(&s.unit);
    let beat_age_us = match (&s.check, run) {
        (Some(HealthCheck::Heartbeat { .. }), true)
            if u.watchdog_us > 0 || hf.is_some_and(|h| h.last_beat_us.is_some()) =>
        {
            let beat = hf.and_then(|h| h.last_beat_us).unwrap_or(0);
            Some(
                facts
                    .now_us
                    .saturating_sub(u.watchdog_us.max(beat).max(u.started_us)),
            )
        }
        _ => None,
    };
    let (health, health_reason) = if run {
        health(s, u, hf, records, beat_age_us, facts.now_us)
    } else {
        (None, None)
    };
    let reason = if run {
        health_reason
    } else {
        stop_reason(s, u, &facts.units, records)
    };
    let mut last_failure = records.last_failure(&s.unit);
    if last_failure
        .as_ref()
        .is_none_or(|f| f.invocation != u.invocation)
    {
        if let Some(r) = failure_of_run(s, u, records) {
            // Not recorded (yet): the current run's failure is the latest.
            last_failure = Some(Failure {
                at_us: crate::runtime::clock::realtime_us()
                    .saturating_sub(facts.now_us.saturating_sub(u.exited_us)),
                invocation: u.invocation.clone(),
                reason: r,
            });
        }
    }
    let ok = if run {
        matches!(health.as_deref(), None | Some("healthy"))
    } else {
        clean_end(s, u, &facts.units, records) && u.exec_main_code != 0 && !u.job
    };
    ServiceStatus {
        service: s.name.clone(),
        unit: s.unit.clone(),
        state: u.active.clone(),
        sub_state: u.sub.clone(),
        health,
        reason,
        pid: (run && u.main_pid > 0).then_some(u.main_pid),
        restarts: restarts(u.restarts, s.max_restarts),
        uptime_s: (run && u.started_us > 0)
            .then(|| facts.now_us.saturating_sub(u.started_us) / 1_000_000),
        // systemd says `success` for a unit that never ran: that is no result.
        result: Some(u.result.clone()).filter(|r| {
            !r.is_empty() && (r != "success" || u.exec_main_code != 0 || u.started_us > 0)
        }),
        heartbeat_age_s: beat_age_us.map(|a| (a / 1000) as f64 / 1000.0),
        resources: run.then(|| Resources {
            cpu_s: u.cpu_ns.map(|ns| (ns / 1_000_000) as f64 / 1000.0),
            cpu_percent: hf.and_then(|h| h.cpu_percent),
            memory_bytes: u.memory,
            memory_peak_bytes: u.memory_peak,
            tasks: u.tasks,
        }),
        last_failure,
        depends_on: s
            .waits_on
            .iter()
            .map(|w| Dependency {
                service: w.service.clone(),
                condition: w.condition,
            })
            .collect(),
        dependents: vec![],
        ok,
    }
}

/// Health word and reason of a running service.
fn health(
    s: &ManifestService,
    u: &UnitFacts,
    hf: Option<&HealthFacts>,
    records: &Records,
    beat_age_us: Option<u64>,
    now_us: u64,
) -> (Option<String>, Option<String>) {
    let Some(check) = &s.check else {
        return (None, None);
    };
    let (word, why) = match hf {
        Some(h) => (h.health.clone(), h.reason.clone()),
        None => records.health_status(&s.unit).unwrap_or_else(|| {
            let passed =
                records.healthy_invocation(&s.unit).as_deref() == Some(u.invocation.as_str());
            let w = if passed { "healthy" } else { "unknown" };
            (w.to_owned(), String::new())
        }),
    };
    if let (HealthCheck::Heartbeat { timeout }, Some(age)) = (check, beat_age_us) {
        let timeout_us = timeout.as_micros() as u64;
        let expected_us = match hf.and_then(|h| h.beat_interval_ms) {
            Some(ms) => (ms * 2000)
                .max(MIN_LATE.as_micros() as u64)
                .min(timeout_us / 2),
            None => timeout_us / 2,
        };
        let started_long_ago = now_us.saturating_sub(u.started_us) > expected_us;
        if age > expected_us && started_long_ago && word != "unhealthy" {
            return (
                Some("late".into()),
                Some(format!(
                    "no heartbeat for {} (timeout {})",
                    secs(age),
                    secs(timeout_us)
                )),
            );
        }
    }
    let reason = match word.as_str() {
        "degraded" => Some(if why.is_empty() {
            "degraded".to_owned()
        } else {
            format!("degraded: {why}")
        }),
        "unhealthy" => Some(match check {
            HealthCheck::Heartbeat { timeout } => format!(
                "no heartbeat for more than {}",
                secs(timeout.as_micros() as u64)
            ),
            _ if why.is_empty() => "probe failing".to_owned(),
            _ => format!("probe failing: {why}"),
        }),
        // The probe's latest error while the service starts, if any.
        "starting" if !why.is_empty() => Some(why),
        "starting"
            if now_us.saturating_sub(u.started_us) > HEALTHY_START_PERIOD.as_micros() as u64 =>
        {
            Some("not healthy yet".to_owned())
        }
        _ => None,
    };
    (Some(word), reason)
}

/// Whether the latest run ended the way its policy intends: a clean exit by itself
/// or a stop by an operator (not a failure, not a cascade or an estop).
fn clean_end(
    s: &ManifestService,
    u: &UnitFacts,
    units: &BTreeMap<String, UnitFacts>,
    records: &Records,
) -> bool {
    u.active == "inactive"
        && u.result == "success"
        && records.cascade_reason(&s.unit, &u.invocation).is_none()
        && records.reason(&s.unit, &u.invocation).is_none()
        && failed_gate(s, units).is_none()
}

/// A gate of `s` that failed, and what it says.
fn failed_gate(s: &ManifestService, units: &BTreeMap<String, UnitFacts>) -> Option<String> {
    s.waits_on.iter().find_map(|w| {
        let g = units.get(&w.gate)?;
        if g.active != "failed" {
            return None;
        }
        Some(match (w.condition, g.result.as_str()) {
            (Condition::Healthy, "timeout") => format!(
                "dependency {} never became healthy within its start timeout",
                w.service
            ),
            (Condition::Started, "timeout") => {
                format!("dependency {} never started", w.service)
            }
            _ => format!("dependency {} failed for good", w.service),
        })
    })
}

/// The name of signal `n` (`TERM`), or its number.
pub fn signal_name(n: i32) -> String {
    let names = [
        (libc::SIGHUP, "HUP"),
        (libc::SIGINT, "INT"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGILL, "ILL"),
        (libc::SIGTRAP, "TRAP"),
        (libc::SIGABRT, "ABRT"),
        (libc::SIGBUS, "BUS"),
        (libc::SIGFPE, "FPE"),
        (libc::SIGKILL, "KILL"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGSEGV, "SEGV"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGPIPE, "PIPE"),
        (libc::SIGALRM, "ALRM"),
        (libc::SIGTERM, "TERM"),
        (libc::SIGXCPU, "XCPU"),
        (libc::SIGSYS, "SYS"),
    ];
    names
        .iter()
        .find(|(k, _)| *k == n)
        .map(|(_, v)| format!("SIG{v}"))
        .unwrap_or_else(|| format!("signal {n}"))
}

/// `pre_start hook failed: /opt/check exited with code 2`: a command of the start
/// that failed, named by the recipe's hook (krill's own `on-restart` wrapper is
/// looked through).
fn failed_hook(c: &crate::runtime::bus::FailedCommand) -> String {
    let on_restart = c.argv.get(1).map(String::as_str) == Some("hook")
        && c.argv.get(2).map(String::as_str) == Some("on-restart");
    let (hook, argv) = match (c.post, on_restart) {
        (_, true) => (
            "on_restart",
            c.argv
                .iter()
                .skip_while(|a| *a != "--")
                .skip(1)
                .cloned()
                .collect(),
        ),
        (false, false) => ("pre_start", c.argv.clone()),
        (true, false) => ("post_start", c.argv.clone()),
    };
    let how = match c.code {
        1 => format!("exited with code {}", c.status),
        3 => format!("killed by {} (core dumped)", signal_name(c.status)),
        _ => format!("killed by {}", signal_name(c.status)),
    };
    format!("{hook} hook failed: {} {how}", printable(&argv.join(" ")))
}

/// The reason of a run that a stop job ended.
const OPERATOR: &str = "stopped by an operator";

/// systemd's exit status when it could not exec the program (`EXIT_EXEC`).
const EXIT_EXEC: i32 = 203;

/// How the latest run's main process ended, in words.
pub fn end_of_run(s: &ManifestService, u: &UnitFacts) -> Option<String> {
    // A stop job makes the unit leave `active` before the main process exits; a
    // process that ends by itself exits first.
    let requested = u.active_exit_us > 0 && u.exited_us > 0 && u.active_exit_us < u.exited_us;
    let end = match (u.exec_main_code, u.exec_main_status) {
        (0, _) => return None,
        (1, EXIT_EXEC) => format!("executable not found: {}", s.program),
        (1, 0) if requested => OPERATOR.to_owned(),
        (1, 0) => "exited 0 (clean exit; on-failure does not restart it)".to_owned(),
        (1, n) => format!("exited with code {n}"),
        _ if requested && u.result == "success" => OPERATOR.to_owned(),
        (3, sig) => format!("killed by {} (core dumped)", signal_name(sig)),
        (_, sig) => format!("killed by {}", signal_name(sig)),
    };
    Some(end)
}

/// How the latest run ended, with the heartbeat timeout spelled out for a watchdog
/// kill.
fn run_end(s: &ManifestService, u: &UnitFacts) -> Option<String> {
    if let (Some(r), "timeout") = (&s.ready, u.result.as_str()) {
        return Some(format!(
            "not ready within {}: waited for {}",
            secs(r.timeout.as_micros() as u64),
            r.what()
        ));
    }
    if let Some(c) = &u.failed_start_command {
        return Some(failed_hook(c));
    }
    if u.result == "oom-kill" {
        return Some(match s.memory_max {
            Some(m) => format!(
                "out of memory: the kernel killed it at its memory_max ({})",
                human_bytes(Some(m))
            ),
            None => "out of memory: killed by the kernel's OOM killer".to_owned(),
        });
    }
    if u.result != "watchdog" {
        return end_of_run(s, u);
    }
    let timeout = match &s.check {
        Some(HealthCheck::Heartbeat { timeout }) => timeout.as_micros() as u64,
        _ => 0,
    };
    let silent = u.exited_us.saturating_sub(u.watchdog_us.max(u.started_us));
    Some(format!(
        "no heartbeat for {} (timeout {})",
        secs(silent),
        secs(timeout)
    ))
}

/// Why the latest run of a service that is not running failed; `None` when it
/// ended cleanly, was stopped by an operator or by krill (cascade, estop), or is
/// still running.
pub fn failure_of_run(s: &ManifestService, u: &UnitFacts, records: &Records) -> Option<String> {
    if running(u) || u.invocation.is_empty() || u.exec_main_code == 0 && u.result.is_empty() {
        return None;
    }
    if records.cascade_reason(&s.unit, &u.invocation).is_some() {
        return None;
    }
    match records.reason(&s.unit, &u.invocation) {
        Some(r) => Some(r),
        None if u.result == "success" || u.result.is_empty() => None,
        None => run_end(s, u),
    }
}

fn gave_up(s: &ManifestService, u: &UnitFacts) -> bool {
    s.max_restarts > 0 && u.restarts >= s.max_restarts
}

/// The words for a service that failed for good (what the failure handlers put in
/// cascade and emergency-stop reasons): how its last run ended, after how many
/// restarts when the restart limit gave up.
pub fn final_failure(s: &ManifestService, u: &UnitFacts, records: &Records) -> String {
    let end = records
        .reason(&s.unit, &u.invocation)
        .or_else(|| run_end(s, u))
        .unwrap_or_else(|| format!("result {}", u.result));
    if gave_up(s, u) {
        format!(
            "gave up after {} restarts; last run: {end}",
            restarts(u.restarts, s.max_restarts)
        )
    } else {
        end
    }
}

/// Why a service that is not running is not running; `None` if it never ran and
/// nothing stopped it.
pub fn stop_reason(
    s: &ManifestService,
    u: &UnitFacts,
    units: &BTreeMap<String, UnitFacts>,
    records: &Records,
) -> Option<String> {
    if u.job && u.active != "failed" {
        if let Some(w) = s.waits_on.iter().find(|w| {
            units
                .get(&w.gate)
                .is_some_and(|g| g.active == "activating" || g.job)
        }) {
            return Some(format!(
                "waiting for {} to be {}",
                w.service,
                w.condition.as_str()
            ));
        }
    }
    if u.job && u.active != "failed" {
        // A new run is on its way: the old run's reasons are stale.
        return None;
    }
    if let Some(r) = records.cascade_reason(&s.unit, &u.invocation) {
        return Some(r);
    }
    if let Some(g) = failed_gate(s, units) {
        if !u.job || u.active == "failed" {
            return Some(g);
        }
    }
    let end = records
        .reason(&s.unit, &u.invocation)
        .or_else(|| run_end(s, u));
    if u.active == "failed" && gave_up(s, u) {
        return Some(final_failure(s, u, records));
    }
    if u.sub == "auto-restart" {
        return Some(match end {
            Some(e) => format!("restarting: {e}"),
            None => "restarting".to_owned(),
        });
    }
    end
}

/// The workspace's state and its detail.
fn workspace_state(
    m: &Manifest,
    services: &[ServiceStatus],
    facts: &Facts,
    estop: Option<String>,
) -> (WorkspaceState, Option<String>) {
    if let Some(reason) = estop {
        return (WorkspaceState::EmergencyStopped, Some(reason));
    }
    let target_up = is_active(&facts.target) || facts.target.active == "activating";
    for (s, st) in m.services.iter().zip(services) {
        let pending = facts
            .units
            .get(&s.unit)
            .is_some_and(|u| u.job || u.active == "activating");
        let down = st.state == "failed" || (target_up && !st.ok && st.pid.is_none() && !pending);
        if s.critical && down {
            return (
                WorkspaceState::Failed,
                Some(format!(
                    "critical service {} is down: {}",
                    s.name,
                    st.reason.as_deref().unwrap_or("not running")
                )),
            );
        }
    }
    let starting: Vec<&str> = m
        .services
        .iter()
        .zip(services)
        .filter(|(s, st)| {
            let u = facts.units.get(&s.unit);
            st.health.as_deref() == Some("starting")
                || u.is_some_and(|u| u.active == "activating" && u.sub != "auto-restart")
                || u.is_some_and(|u| u.job && !running(u))
        })
        .map(|(s, _)| s.name.as_str())
        .collect();
    let any_running = services.iter().any(|s| s.pid.is_some());
    if !target_up && !any_running && starting.is_empty() {
        let failed = services.iter().filter(|s| s.state == "failed").count();
        if failed == 0 {
            return (WorkspaceState::Stopped, None);
        }
    }
    let bad = services
        .iter()
        .filter(|s| !s.ok && !starting.contains(&s.service.as_str()))
        .count();
    if bad > 0 {
        return (
            WorkspaceState::Degraded,
            Some(format!(
                "{bad} of {} services need attention",
                services.len()
            )),
        );
    }
    if !starting.is_empty() {
        return (
            WorkspaceState::Starting,
            Some(format!("waiting for {}", starting.join(", "))),
        );
    }
    (WorkspaceState::Running, None)
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

/// `42s`, `5m`, `3h` (rounded down); `-` when unknown.
pub fn human_duration(s: Option<u64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) => format!("{}h", s / 3600),
    }
}

/// CPU over the last interval (`12%`), else the run's CPU time (`3.2s`), else `-`.
pub fn cpu_cell(r: Option<&Resources>) -> String {
    match r {
        Some(Resources {
            cpu_percent: Some(p),
            ..
        }) => format!("{p:.0}%"),
        Some(Resources { cpu_s: Some(s), .. }) => format!("{s:.1}s"),
        _ => "-".into(),
    }
}

/// `512K`, `48M`, `1.2G` (powers of 1024); `-` when unknown.
pub fn human_bytes(b: Option<u64>) -> String {
    match b {
        None => "-".into(),
        Some(b) if b < 1 << 20 => format!("{}K", b.div_ceil(1 << 10)),
        Some(b) if b < 1 << 30 => format!("{}M", b >> 20),
        Some(b) => format!("{:.1}G", b as f64 / (1u64 << 30) as f64),
    }
}

/// A table a human reads at a glance.
pub fn render_table(ws: &WorkspaceStatus) -> String {
    let mut out = format!(
        "workspace {} ({}): {}{}\n",
        printable(&ws.workspace),
        printable(&ws.target),
        ws.state.as_str(),
        ws.detail
            .as_deref()
            .map(|d| format!(" ({})", printable(d)))
            .unwrap_or_default()
    );
    let rows: Vec<[String; 9]> = ws
        .services
        .iter()
        .map(|s| {
            let health = match (&s.health, s.heartbeat_age_s) {
                (None, _) => "-".to_owned(),
                (Some(h), Some(age)) => format!("{} ({age:.1}s)", printable(h)),
                (Some(h), None) => printable(h),
            };
            [
                printable(&s.service),
                format!("{}/{}", printable(&s.state), printable(&s.sub_state)),
                health,
                s.pid.map_or("-".into(), |p| p.to_string()),
                s.restarts.to_string(),
                human_duration(s.uptime_s),
                cpu_cell(s.resources.as_ref()),
                human_bytes(s.resources.as_ref().and_then(|r| r.memory_bytes)),
                s.reason.as_deref().map(printable).unwrap_or_default(),
            ]
        })
        .collect();
    let head = [
        "SERVICE", "STATE", "HEALTH", "PID", "RESTARTS", "UPTIME", "CPU", "MEM", "REASON",
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
pub fn render_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_default()
}

/// Reads the facts of workspace `m` from systemd: its target, services and gates.
pub async fn read_facts(conn: &zbus::Connection, m: &Manifest) -> Facts {
    use crate::runtime::bus::unit_facts_by_name;
    let names: std::collections::BTreeSet<&str> = m
        .services
        .iter()
        .flat_map(|s| {
            std::iter::once(s.unit.as_str()).chain(s.waits_on.iter().map(|w| w.gate.as_str()))
        })
        .collect();
    // Every unit's calls in flight at once on the one connection: the latency of a
    // round trip or two, whatever the number of services.
    let (target, facts) = futures_util::future::join(
        unit_facts_by_name(conn, &m.target),
        futures_util::future::join_all(names.iter().map(|u| unit_facts_by_name(conn, u))),
    )
    .await;
    let units: BTreeMap<String, _> = names.iter().map(|u| (*u).to_owned()).zip(facts).collect();
    Facts {
        target,
        units,
        health: BTreeMap::new(),
        now_us: crate::runtime::clock::monotonic_us(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> ManifestService {
        ManifestService {
            name: "a".into(),
            unit: "krill-w-a.service".into(),
            program: "ros2".into(),
            max_restarts: 2,
            ..Default::default()
        }
    }

    fn ended(code: i32, status: i32, result: &str) -> UnitFacts {
        UnitFacts {
            active: "failed".into(),
            sub: "failed".into(),
            invocation: "aa".into(),
            result: result.into(),
            exec_main_code: code,
            exec_main_status: status,
            started_us: 1_000,
            exited_us: 2_000,
            active_exit_us: 2_500,
            ..Default::default()
        }
    }

    #[test]
    fn reasons_cannot_forge_rows_or_drive_the_terminal() {
        let evil = "ok\nfake  active/running  healthy\x1b[2J\x1b]0;pwned\x07\u{202e}";
        let p = printable(evil);
        assert!(!p.chars().any(|c| c.is_control()), "{p:?}");
        let d = tempfile::tempdir().unwrap();
        let r = Records::at(d.path());
        r.record_estop("w", evil).unwrap();
        let m = Manifest {
            workspace: "w".into(),
            target: "krill-w.target".into(),
            services: vec![svc()],
            ..Default::default()
        };
        let t = render_table(&assemble(&m, &Facts::default(), &r));
        assert_eq!(t.lines().count(), 3, "{t}");
        assert!(!t.contains('\x1b'));
        assert_eq!(
            printable(&"x".repeat(500)).chars().count(),
            MAX_REASON_CHARS + 1
        );
    }

    #[test]
    fn systemd_exit_facts_become_words() {
        let d = tempfile::tempdir().unwrap();
        let r = Records::at(d.path());
        let none = BTreeMap::new();
        let s = svc();
        let say = |u: &UnitFacts| stop_reason(&s, u, &none, &r).unwrap_or_default();
        assert_eq!(say(&ended(1, 3, "exit-code")), "exited with code 3");
        assert_eq!(
            say(&ended(1, 203, "exit-code")),
            "executable not found: ros2"
        );
        assert_eq!(say(&ended(2, libc::SIGTERM, "signal")), "killed by SIGTERM");
        assert_eq!(
            say(&ended(2, libc::SIGKILL, "oom-kill")),
            "out of memory: killed by the kernel's OOM killer"
        );
        let capped = ManifestService {
            memory_max: Some(512 << 20),
            ..svc()
        };
        assert_eq!(
            stop_reason(&capped, &ended(2, libc::SIGKILL, "oom-kill"), &none, &r).unwrap(),
            "out of memory: the kernel killed it at its memory_max (512M)"
        );
        let mut gave_up = ended(1, 1, "exit-code");
        gave_up.restarts = 3;
        assert_eq!(
            say(&gave_up),
            "gave up after 2 restarts; last run: exited with code 1"
        );
        let mut stopped = ended(2, libc::SIGTERM, "success");
        stopped.active = "inactive".into();
        stopped.active_exit_us = 1_500;
        assert_eq!(say(&stopped), "stopped by an operator");
        r.record_cascade(&s.unit, "aa", "stopped by a cascade from b")
            .unwrap();
        assert_eq!(say(&stopped), "stopped by a cascade from b");
        // Another run: the record is stale.
        stopped.invocation = "bb".into();
        assert_eq!(say(&stopped), "stopped by an operator");
    }

    #[test]
    fn a_running_service_has_no_old_reason_and_late_heartbeats_show() {
        let d = tempfile::tempdir().unwrap();
        let r = Records::at(d.path());
        let mut s = svc();
        s.check = Some(HealthCheck::Heartbeat {
            timeout: std::time::Duration::from_secs(10),
        });
        r.record_failure(&s.unit, "old", "exited with code 1")
            .unwrap();
        let u = UnitFacts {
            active: "active".into(),
            sub: "running".into(),
            invocation: "new".into(),
            main_pid: 7,
            started_us: 1_000_000,
            watchdog_us: 2_000_000,
            cpu_ns: Some(1_500_000_000),
            memory: Some(48 << 20),
            ..Default::default()
        };
        let mut facts = Facts {
            now_us: 2_100_000,
            ..Default::default()
        };
        facts.units.insert(s.unit.clone(), u);
        facts.health.insert(
            s.unit.clone(),
            HealthFacts {
                health: "healthy".into(),
                reason: String::new(),
                beat_interval_ms: Some(200),
                cpu_percent: Some(12.5),
                last_beat_us: None,
            },
        );
        let m = Manifest {
            workspace: "w".into(),
            target: "krill-w.target".into(),
            services: vec![s.clone()],
            ..Default::default()
        };
        let ws = assemble(&m, &facts, &r);
        assert_eq!(ws.services[0].reason, None);
        assert_eq!(ws.services[0].health.as_deref(), Some("healthy"));
        assert_eq!(
            ws.services[0].last_failure.as_ref().unwrap().reason,
            "exited with code 1"
        );
        // The supervisor's CPU sample; systemd's figures.
        let r0 = ws.services[0].resources.as_ref().unwrap();
        assert_eq!(r0.cpu_percent, Some(12.5));
        assert_eq!(r0.memory_bytes, Some(48 << 20));
        assert_eq!(r0.cpu_s, Some(1.5));
        assert!(
            render_table(&ws).contains("  12%  48M"),
            "{}",
            render_table(&ws)
        );
        // 0.6 s silent with 0.2 s beats: late long before the 10 s timeout.
        facts.now_us = 2_600_000;
        let ws = assemble(&m, &facts, &r);
        assert_eq!(ws.services[0].health.as_deref(), Some("late"));
        assert_eq!(
            ws.services[0].reason.as_deref(),
            Some("no heartbeat for 0.6 s (timeout 10 s)")
        );
        assert_eq!(ws.state, WorkspaceState::Degraded);
        // The supervisor relays seldom; its own time of the latest heartbeat wins
        // over systemd's older watchdog timestamp.
        facts.health.get_mut(&s.unit).unwrap().last_beat_us = Some(2_500_000);
        let ws = assemble(&m, &facts, &r);
        assert_eq!(ws.services[0].health.as_deref(), Some("healthy"));
        assert_eq!(ws.services[0].heartbeat_age_s, Some(0.1));
    }
}
