//! The supervisor's facts: what it watches, and the health of each service's current
//! run. Pure state transitions (no I/O but the small records in `/run/krill` that the
//! gates and `krill status` read), so they are unit-tested directly.
//!
//! Defaults (the configuration guide leaves them open):
//! * probes (tcp, http, script) run every [`PROBE_INTERVAL`];
//! * a probe times out after its recipe `timeout`, else [`DEFAULT_PROBE_TIMEOUT`]
//!   (tcp, http) or [`DEFAULT_SCRIPT_TIMEOUT`] (script);
//! * a service is unhealthy after [`FAILURE_THRESHOLD`] consecutive failed probes;
//! * start period: until its first passed check, failures of a run do not count
//!   for [`START_PERIOD`] (the `healthy` gate gives up at the same time);
//! * heartbeat: `timeout` between heartbeats, the first one due `timeout` after
//!   start. systemd enforces it (`WatchdogSec=`) until the run's first heartbeat
//!   over the socket; from then on this supervisor times it to the millisecond and
//!   fails a silent run with `WATCHDOG=trigger`, and systemd's watchdog is widened to
//!   a backstop ([`watchdog_backstop`]) that it pings every [`relay_period`].
//!
//! [`watchdog_backstop`]: krill::runtime::timing::watchdog_backstop
//! [`relay_period`]: krill::runtime::timing::relay_period

use std::collections::BTreeMap;

use krill::runtime::manifest::ManifestService;
use krill::runtime::records::{Kind, Records};
use krill::runtime::status::HealthFacts;
use std::time::{Duration, Instant};

use krill::runtime::check::HealthCheck;

use crate::protocol::{Heartbeat, Status};
use crate::systemd::UnitState;

/// How often tcp, http and script probes run.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Probe timeout for tcp and http checks without `timeout`.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Timeout for script checks without `timeout`.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Consecutive failed probes that make a service unhealthy.
pub const FAILURE_THRESHOLD: u32 = 3;
/// Grace after a start before probe failures count.
pub use krill::runtime::timing::HEALTHY_START_PERIOD as START_PERIOD;

/// A service the supervisor watches, as the generator produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Watched {
    pub workspace: String,
    pub service: String,
    pub unit: String,
    pub target: String,
    /// The unit's cgroup: only processes in it (or below) speak for the service.
    pub cgroup: String,
    /// A docker service's container slice cgroup: its processes speak for the
    /// service too (the engine, not systemd, starts them).
    pub container_cgroup: Option<String>,
    /// The service as the generator described it (what status reads).
    pub svc: ManifestService,
}

/// Every service of every workspace the generator produced at systemd's latest
/// reload (its manifests), by unit. Recipes it skipped are not watched, and a recipe
/// edited since is not re-read: the supervisor watches exactly what systemd has.
pub fn load_config() -> BTreeMap<String, Watched> {
    config_of(&krill::runtime::manifest::Loaded::read())
}

/// [`load_config`] of given manifests.
pub fn config_of(loaded: &krill::runtime::manifest::Loaded) -> BTreeMap<String, Watched> {
    let mut out = BTreeMap::new();
    for m in loaded.workspaces.values() {
        for s in &m.services {
            out.insert(
                s.unit.clone(),
                Watched {
                    workspace: m.workspace.clone(),
                    service: s.name.clone(),
                    unit: s.unit.clone(),
                    target: m.target.clone(),
                    cgroup: crate::auth::unit_cgroup(&m.slice, &s.unit),
                    container_cgroup: s
                        .container_slice
                        .as_deref()
                        .map(|c| crate::auth::unit_cgroup(&m.slice, c)),
                    svc: s.clone(),
                },
            );
        }
    }
    out
}

/// Health of the current run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// No health check configured.
    None,
    /// Running, no check passed yet.
    Starting,
    Healthy,
    Degraded,
    Unhealthy,
    /// Not running.
    Inactive,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::None => "-",
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unhealthy => "unhealthy",
            Health::Inactive => "inactive",
        }
    }
}

/// A watched service and what is known of it.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub watched: Watched,
    pub state: UnitState,
    pub health: Health,
    /// Degraded reason, or why it is unhealthy.
    pub reason: String,
    pub last_beat: Option<Instant>,
    /// Smoothed gap between this run's heartbeats (what `late` is measured against).
    pub beat_interval: Option<Duration>,
    pub run_started: Instant,
    /// A check passed since the current run started (what `healthy` gates wait for).
    pub passed: bool,
    pub failures: u32,
    /// A probe is running now.
    pub probing: bool,
    /// This run sent heartbeats over the socket (so it is not a plain sd_notify client).
    pub socket_client: bool,
    /// The latest systemd watchdog timestamp seen for a plain sd_notify client.
    pub native_ping_us: u64,
    /// This supervisor widened this run's systemd watchdog to the backstop, and so
    /// times its heartbeats itself (fails it with `WATCHDOG=trigger`).
    pub backstopped: bool,
    /// When this run's watchdog was last pinged on its behalf.
    pub last_relay: Option<Instant>,
    pub next_probe: Instant,
    /// The latest CPU sample of this run: when, and the cgroups' CPU time (µs).
    pub cpu_sample: Option<(Instant, u64)>,
    /// CPU use between the last two samples, % of one core.
    pub cpu_percent: Option<f64>,
}

pub use krill::runtime::stats::Stats;

/// A watchdog ping to send to systemd on a service's behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relay {
    /// Sent as this process: the MainPID, or the heartbeat's sender while the
    /// supervisor does not know the run yet (both in the unit's cgroup).
    pub main_pid: u32,
    /// Also set the run's watchdog timeout to this backstop (the run's first
    /// heartbeat over the socket).
    pub backstop: Option<Duration>,
}

/// A heartbeat service that went silent for longer than its timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silent {
    pub unit: String,
    /// Fail it with `WATCHDOG=trigger` sent as this MainPID: this supervisor
    /// widened its watchdog, so systemd would wait for the backstop. `None`: the
    /// run's own `WatchdogSec=` acts (or, in a user manager, the caller kills it).
    pub trigger_pid: Option<u32>,
}

/// What a heartbeat led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeatOutcome {
    /// Accepted; send `relay` when set; health changed or not.
    Accepted { relay: Option<Relay>, changed: bool },
    /// The sender is not the service it names.
    Refused(String),
}

/// What a probe result led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    Unchanged,
    Changed,
    /// Fail the unit so that its restart policy applies.
    Fail(String),
}

/// All the supervisor's state.
#[derive(Debug)]
pub struct Supervisor {
    pub units: BTreeMap<String, Tracked>,
    pub stats: Stats,
    /// Where health records go (`/run/krill`, or `KRILL_RUN_DIR`).
    pub records: Records,
    /// Watched units by their cgroup path.
    by_cgroup: BTreeMap<String, String>,
}

impl Tracked {
    fn new(watched: Watched, now: Instant) -> Tracked {
        Tracked {
            health: if watched.svc.check.is_some() {
                Health::Inactive
            } else {
                Health::None
            },
            watched,
            state: UnitState::default(),
            reason: String::new(),
            last_beat: None,
            beat_interval: None,
            run_started: now,
            passed: false,
            failures: 0,
            probing: false,
            socket_client: false,
            native_ping_us: 0,
            backstopped: false,
            last_relay: None,
            next_probe: now,
            cpu_sample: None,
            cpu_percent: None,
        }
    }

    fn publish(&self, records: &Records) {
        if self.watched.svc.check.is_none() {
            return;
        }
        if let Err(e) = records.write(
            Kind::HealthStatus,
            &self.watched.unit,
            &format!("{}\n{}\n", self.health.as_str(), self.reason),
        ) {
            tracing::warn!("cannot record the health of {}: {e}", self.watched.unit);
        }
    }

    fn pass(&mut self, records: &Records) {
        if !self.passed {
            self.passed = true;
            if let Err(e) = records.write(
                Kind::Health,
                &self.watched.unit,
                &format!("{}\n", self.state.invocation),
            ) {
                tracing::error!(
                    "cannot record that {} is healthy (its healthy gates wait for this): {e}",
                    self.watched.unit
                );
            }
        }
        self.failures = 0;
    }

    fn running(&self) -> bool {
        self.state.active == "active"
    }

    /// The ping a heartbeat of this run earns: the first one widens the run's
    /// watchdog to the backstop; later ones ping it every [`relay_period`] at most,
    /// so PID 1 sees a couple of pings a second whatever the heartbeat rate.
    ///
    /// [`relay_period`]: krill::runtime::timing::relay_period
    fn relay(&mut self, timeout: Duration, now: Instant) -> Option<Relay> {
        let backstop = if self.backstopped {
            let period = krill::runtime::timing::relay_period(timeout);
            if self
                .last_relay
                .is_some_and(|l| now.duration_since(l) < period)
            {
                return None;
            }
            None
        } else {
            self.backstopped = true;
            Some(krill::runtime::timing::watchdog_backstop(timeout))
        };
        self.last_relay = Some(now);
        Some(Relay {
            main_pid: self.state.main_pid,
            backstop,
        })
    }
}

impl Supervisor {
    pub fn new(records: Records) -> Supervisor {
        Supervisor {
            units: BTreeMap::new(),
            stats: Stats::default(),
            records,
            by_cgroup: BTreeMap::new(),
        }
    }

    /// Replaces the watched set (start, and after a daemon-reload), keeping what is
    /// known of services that stay.
    pub fn configure(&mut self, config: BTreeMap<String, Watched>, now: Instant) {
        self.units.retain(|u, _| config.contains_key(u));
        self.by_cgroup = config
            .values()
            .flat_map(|w| {
                std::iter::once(&w.cgroup)
                    .chain(&w.container_cgroup)
                    .map(|c| (c.clone(), w.unit.clone()))
            })
            .collect();
        for (unit, w) in config {
            match self.units.get_mut(&unit) {
                Some(t) => t.watched = w,
                None => {
                    self.units.insert(unit, Tracked::new(w, now));
                }
            }
        }
    }

    /// systemd reported `st` for `unit`. A new invocation starts a fresh health
    /// record, unless `/run/krill/health` already holds a pass of exactly that
    /// invocation (a restarted supervisor keeps what it had recorded). Returns
    /// whether anything visible changed.
    pub fn on_unit_state(&mut self, unit: &str, st: UnitState, now: Instant) -> bool {
        let Some(t) = self.units.get_mut(unit) else {
            return false;
        };
        let new_run = st.invocation != t.state.invocation;
        let changed = new_run
            || st.active != t.state.active
            || st.sub != t.state.sub
            || st.main_pid != t.state.main_pid;
        t.state = st;
        if new_run {
            t.run_started = now;
            t.last_beat = None;
            t.beat_interval = None;
            t.failures = 0;
            t.passed = !t.state.invocation.is_empty()
                && self.records.healthy_invocation(unit).as_deref()
                    == Some(t.state.invocation.as_str());
            t.next_probe = now;
            t.socket_client = false;
            t.native_ping_us = 0;
            t.backstopped = self.records.is_backstopped(unit, &t.state.invocation);
            t.last_relay = None;
            if !t.passed {
                self.records.remove(Kind::Health, unit);
            }
        }
        let health = match (&t.watched.svc.check, t.running()) {
            (None, _) => Health::None,
            (Some(_), false) => Health::Inactive,
            (Some(_), true) if new_run => {
                if t.passed {
                    Health::Healthy
                } else {
                    Health::Starting
                }
            }
            (Some(_), true) => match t.health {
                Health::Inactive => Health::Starting,
                h => h,
            },
        };
        if health != t.health {
            t.health = health;
            if health != Health::Degraded {
                t.reason.clear();
            }
            t.publish(&self.records);
            return true;
        }
        changed
    }

    /// Samples the CPU time of every running service (its unit's cgroup, and a docker
    /// service's container slice): `cpu_percent` covers the interval since the
    /// previous sample of the same run.
    pub fn sample_cpu(&mut self, now: Instant) {
        use krill::runtime::bus::cgroup_cpu_usec;
        for t in self.units.values_mut() {
            if !t.running() {
                t.cpu_sample = None;
                t.cpu_percent = None;
                continue;
            }
            let usage: Option<u64> = std::iter::once(&t.watched.cgroup)
                .chain(&t.watched.container_cgroup)
                .filter_map(|cg| cgroup_cpu_usec(cg))
                .reduce(|a, b| a + b);
            let Some(usage) = usage else { continue };
            if let Some((at, prev)) = t.cpu_sample {
                let dt = now.duration_since(at).as_micros() as f64;
                if dt > 0.0 && usage >= prev {
                    t.cpu_percent = Some((usage - prev) as f64 * 100.0 / dt);
                }
            }
            t.cpu_sample = Some((now, usage));
        }
    }

    /// What the supervisor knows of each running service and systemd does not: its
    /// health (checked services) and its recent CPU use.
    pub fn health_facts(&self) -> BTreeMap<String, HealthFacts> {
        // `Instant` has no epoch: place the latest heartbeats on CLOCK_MONOTONIC.
        let (now, now_us) = (Instant::now(), krill::runtime::clock::monotonic_us());
        self.units
            .iter()
            .filter(|(_, t)| t.running())
            .map(|(u, t)| {
                (
                    u.clone(),
                    HealthFacts {
                        health: match t.health {
                            Health::None | Health::Inactive => "unknown",
                            h => h.as_str(),
                        }
                        .to_owned(),
                        reason: t.reason.clone(),
                        beat_interval_ms: t.beat_interval.map(|i| i.as_millis() as u64),
                        cpu_percent: t.cpu_percent,
                        last_beat_us: t.last_beat.filter(|_| t.socket_client).map(|b| {
                            now_us.saturating_sub(now.duration_since(b).as_micros() as u64)
                        }),
                    },
                )
            })
            .collect()
    }

    /// The watched unit whose cgroup is `peer_cgroup` or an ancestor of it.
    pub fn unit_for_cgroup(&self, peer_cgroup: &str) -> Option<String> {
        crate::auth::self_and_ancestors(peer_cgroup)
            .find_map(|p| self.by_cgroup.get(p))
            .cloned()
    }

    /// A heartbeat from a process of `peer_unit` (None: not in any service unit).
    pub fn on_heartbeat(
        &mut self,
        peer_unit: Option<&str>,
        peer_pid: i32,
        hb: &Heartbeat,
        now: Instant,
    ) -> BeatOutcome {
        let t = match peer_unit.and_then(|u| self.units.get_mut(u)) {
            Some(t) if t.watched.service == hb.service => t,
            _ => {
                self.stats.refused_sender += 1;
                return BeatOutcome::Refused(format!(
                    "heartbeat for service {:?} from pid {peer_pid} refused: the sender runs in {}, not in that service's unit",
                    hb.service,
                    peer_unit.unwrap_or("no service unit")
                ));
            }
        };
        self.stats.accepted += 1;
        if let Some(prev) = t.last_beat {
            let gap = now.duration_since(prev);
            t.beat_interval = Some(match t.beat_interval {
                Some(i) => (i * 3 + gap) / 4,
                None => gap,
            });
        }
        t.last_beat = Some(now);
        t.socket_client = true;
        let is_heartbeat_check = matches!(t.watched.svc.check, Some(HealthCheck::Heartbeat { .. }));
        let mut changed = false;
        if is_heartbeat_check && t.running() {
            let (health, reason) = match hb.status {
                Status::Healthy => (Health::Healthy, String::new()),
                Status::Degraded => (
                    Health::Degraded,
                    krill::runtime::status::printable(hb.reason().unwrap_or("degraded")),
                ),
            };
            t.pass(&self.records);
            if health != t.health || reason != t.reason {
                t.health = health;
                t.reason = reason;
                t.publish(&self.records);
                changed = true;
            }
        } else if hb.status == Status::Degraded {
            let reason = krill::runtime::status::printable(hb.reason().unwrap_or("degraded"));
            if t.reason != reason {
                t.reason = reason;
                changed = true;
            }
        }
        let relay = match &t.watched.svc.check {
            Some(HealthCheck::Heartbeat { timeout }) if t.running() && t.state.main_pid > 0 => {
                t.relay(*timeout, now)
            }
            // A run systemd has not told us about yet (a workspace of 50 starting keeps
            // systemd busy): the sender, a live process of the unit, speaks for it
            // (`NotifyAccess=all`), so the run's first watchdog deadline is met.
            Some(HealthCheck::Heartbeat { .. }) if peer_pid > 0 => Some(Relay {
                main_pid: peer_pid as u32,
                backstop: None,
            }),
            _ => None,
        };
        if relay.is_some_and(|r| r.backstop.is_some()) {
            let u = &t.watched.unit;
            if let Err(e) = self.records.record_backstop(u, &t.state.invocation) {
                tracing::warn!("cannot record that {u} is timed by the supervisor: {e}");
            }
        }
        BeatOutcome::Accepted { relay, changed }
    }

    /// Running services whose watchdog this supervisor feeds (heartbeat clients of
    /// the socket), with their MainPID: a stopping supervisor hands their watchdogs
    /// back to systemd. Plain sd_notify clients feed their own and are left alone.
    pub fn relayed(&self) -> Vec<(String, u32, String)> {
        self.units
            .iter()
            .filter(|(_, t)| {
                matches!(t.watched.svc.check, Some(HealthCheck::Heartbeat { .. }))
                    && t.running()
                    && t.socket_client
                    && t.state.main_pid > 0
            })
            .map(|(u, t)| (u.clone(), t.state.main_pid, t.state.invocation.clone()))
            .collect()
    }

    /// Running heartbeat services whose watchdog a previous supervisor handed back
    /// (recorded for this very run), with their MainPID and `WatchdogSec=`. They are
    /// socket clients from now on, so that they are handed back again if this
    /// supervisor stops before their next heartbeat.
    pub fn take_unwatched(&mut self) -> Vec<(String, u32, Duration)> {
        let mut out = vec![];
        for (u, t) in &mut self.units {
            let Some(wd) = t.watched.svc.check.as_ref().and_then(HealthCheck::watchdog) else {
                continue;
            };
            if t.running()
                && t.state.main_pid > 0
                && self.records.is_unwatched(u, &t.state.invocation)
            {
                t.socket_client = true;
                // Re-armed with its WatchdogSec=: widened again at its next heartbeat.
                t.backstopped = false;
                self.records.remove(Kind::Backstop, u);
                out.push((u.clone(), t.state.main_pid, wd));
            }
            self.records.remove(Kind::Unwatched, u);
        }
        out
    }

    /// Heartbeat services whose pings go straight to systemd (a plain sd_notify
    /// client, not the socket) and that the supervisor should look at.
    pub fn native_candidates(&self) -> Vec<String> {
        self.units
            .iter()
            .filter(|(_, t)| {
                // A widened run's watchdog pings were relayed by a supervisor: it is
                // a socket client whose heartbeats have not come back yet.
                matches!(t.watched.svc.check, Some(HealthCheck::Heartbeat { .. }))
                    && t.running()
                    && !t.socket_client
                    && !t.backstopped
            })
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// systemd reports a watchdog ping at `watchdog_us` for `unit` (polled for plain
    /// sd_notify clients). A ping later than entering `active` counts as a healthy
    /// heartbeat. Returns whether the health changed.
    pub fn on_native_ping(&mut self, unit: &str, st: &UnitState, now: Instant) -> bool {
        let Some(t) = self.units.get_mut(unit) else {
            return false;
        };
        if t.socket_client || t.backstopped || st.invocation != t.state.invocation || !t.running() {
            return false;
        }
        // Entering `active` resets the timestamp; a real ping comes later.
        if st.watchdog_us <= st.active_enter_us + 1000 || st.watchdog_us == t.native_ping_us {
            return false;
        }
        t.native_ping_us = st.watchdog_us;
        t.last_beat = Some(now);
        t.pass(&self.records);
        if t.health != Health::Healthy {
            t.health = Health::Healthy;
            t.reason = "pings systemd's watchdog directly (sd_notify)".into();
            t.publish(&self.records);
            return true;
        }
        false
    }

    /// Heartbeat services silent for longer than their timeout are shown unhealthy,
    /// and returned: with the MainPID to trigger systemd's watchdog as, where this
    /// supervisor times the run (its watchdog is the wider backstop).
    pub fn sweep(&mut self, now: Instant) -> Vec<Silent> {
        let mut out = vec![];
        for (u, t) in &mut self.units {
            if let (Some(HealthCheck::Heartbeat { timeout }), true) =
                (&t.watched.svc.check, t.running())
            {
                let since = t.last_beat.unwrap_or(t.run_started);
                if now.duration_since(since) > *timeout && t.health != Health::Unhealthy {
                    t.health = Health::Unhealthy;
                    t.reason = format!(
                        "no heartbeat for {:.1} s (timeout {:?})",
                        now.duration_since(since).as_secs_f64(),
                        timeout
                    );
                    t.publish(&self.records);
                    // The supervisor fails the run (timers.rs): record why, in its
                    // words. systemd's watchdog timestamp is only the latest relay,
                    // and a user manager has no watchdog result at all.
                    if t.backstopped || krill::runtime::scope::is_user() {
                        let why = t.reason.clone();
                        if let Err(e) = self.records.record_reason(u, &t.state.invocation, &why) {
                            tracing::warn!("cannot record why {u} is failed: {e}");
                        }
                    }
                    out.push(Silent {
                        unit: u.clone(),
                        trigger_pid: (t.backstopped && t.state.main_pid > 0)
                            .then_some(t.state.main_pid),
                    });
                }
            }
        }
        out
    }

    /// When the probe or sweep loops next have work: the earliest probe due, or the
    /// earliest heartbeat deadline. `None`: nothing is scheduled.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.units
            .values()
            .filter(|t| t.running())
            .filter_map(|t| match &t.watched.svc.check {
                Some(HealthCheck::Heartbeat { timeout })
                    if t.health != Health::Unhealthy
                        && (t.socket_client || t.backstopped || t.native_ping_us == 0) =>
                {
                    Some(t.last_beat.unwrap_or(t.run_started) + *timeout + Duration::from_millis(1))
                }
                Some(
                    HealthCheck::Tcp { .. } | HealthCheck::Http { .. } | HealthCheck::Script { .. },
                ) if !t.probing => Some(t.next_probe),
                _ => None,
            })
            .min()
    }

    /// Units whose probe is due now; marks them as probing.
    pub fn due_probes(&mut self, now: Instant) -> Vec<(String, HealthCheck, Watched)> {
        let mut out = vec![];
        for (u, t) in &mut self.units {
            let probe = matches!(
                t.watched.svc.check,
                Some(
                    HealthCheck::Tcp { .. } | HealthCheck::Http { .. } | HealthCheck::Script { .. }
                )
            );
            if probe && t.running() && !t.probing && t.next_probe <= now {
                t.probing = true;
                out.push((
                    u.clone(),
                    t.watched.svc.check.clone().expect("probe"),
                    t.watched.clone(),
                ));
            }
        }
        out
    }

    /// A probe of `unit`, started for invocation `invocation`, finished.
    pub fn on_probe(
        &mut self,
        unit: &str,
        invocation: &str,
        result: Result<(), String>,
        now: Instant,
    ) -> ProbeOutcome {
        let Some(t) = self.units.get_mut(unit) else {
            return ProbeOutcome::Unchanged;
        };
        t.probing = false;
        t.next_probe = now + PROBE_INTERVAL;
        if t.state.invocation != invocation || !t.running() {
            return ProbeOutcome::Unchanged; // a result about an earlier run
        }
        match result {
            Ok(()) => {
                t.pass(&self.records);
                if t.health != Health::Healthy {
                    t.health = Health::Healthy;
                    t.reason.clear();
                    t.publish(&self.records);
                    return ProbeOutcome::Changed;
                }
                ProbeOutcome::Unchanged
            }
            Err(why) => {
                let in_start_period = !t.passed && now.duration_since(t.run_started) < START_PERIOD;
                if in_start_period {
                    t.reason = format!("starting: {why}");
                    return ProbeOutcome::Unchanged;
                }
                t.failures += 1;
                if t.failures >= FAILURE_THRESHOLD && t.health != Health::Unhealthy {
                    t.health = Health::Unhealthy;
                    t.reason = format!("{why} ({} checks in a row)", t.failures);
                    t.publish(&self.records);
                    let why = format!("probe failing: {}", t.reason);
                    if let Err(e) = self.records.record_reason(unit, invocation, &why) {
                        tracing::warn!("cannot record why {unit} is failed: {e}");
                    }
                    return ProbeOutcome::Fail(t.reason.clone());
                }
                ProbeOutcome::Unchanged
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn watched(unit: &str, service: &str, check: Option<HealthCheck>) -> Watched {
        Watched {
            svc: ManifestService {
                check,
                working_dir: "/".into(),
                ..Default::default()
            },
            workspace: "w".into(),
            service: service.into(),
            unit: unit.into(),
            target: "krill-w.target".into(),
            cgroup: crate::auth::unit_cgroup("krill-w.slice", unit),
            container_cgroup: None,
        }
    }

    fn running(inv: &str, pid: u32) -> UnitState {
        UnitState {
            active: "active".into(),
            sub: "running".into(),
            invocation: inv.into(),
            main_pid: pid,
            ..Default::default()
        }
    }

    fn sup(check: HealthCheck) -> (Supervisor, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        (sup_in(check, dir.path()), dir)
    }

    /// A supervisor of service `a` keeping its records in `dir` (a successor reads
    /// its predecessor's).
    fn sup_in(check: HealthCheck, dir: &std::path::Path) -> Supervisor {
        let mut s = Supervisor::new(Records::at(dir));
        s.configure(
            BTreeMap::from([(
                "krill-w-a.service".to_owned(),
                watched("krill-w-a.service", "a", Some(check)),
            )]),
            Instant::now(),
        );
        s
    }

    fn hb(service: &str, status: Status) -> Heartbeat {
        Heartbeat {
            service: service.into(),
            status,
            metadata: BTreeMap::from([("reason".into(), "low battery".into())]),
        }
    }

    #[test]
    fn heartbeats_are_authenticated_by_unit_and_relayed_as_main_pid() {
        let (mut s, _d) = sup(HealthCheck::Heartbeat {
            timeout: Duration::from_secs(2),
        });
        let now = Instant::now();
        s.on_unit_state("krill-w-a.service", running("aa", 42), now);
        assert_eq!(s.units["krill-w-a.service"].health, Health::Starting);
        match s.on_heartbeat(Some("krill-w-b.service"), 7, &hb("a", Status::Healthy), now) {
            BeatOutcome::Refused(m) => assert!(
                m.contains("from pid 7 refused") && m.contains("krill-w-b.service"),
                "{m}"
            ),
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            s.on_heartbeat(None, 7, &hb("a", Status::Healthy), now),
            BeatOutcome::Refused(_)
        ));
        assert!(matches!(
            s.on_heartbeat(Some("krill-w-a.service"), 7, &hb("b", Status::Healthy), now),
            BeatOutcome::Refused(_)
        ));
        assert_eq!(s.stats.refused_sender, 3);
        assert_eq!(
            s.units["krill-w-a.service"].health,
            Health::Starting,
            "refused heartbeats change nothing"
        );
        assert_eq!(
            s.on_heartbeat(
                Some("krill-w-a.service"),
                43,
                &hb("a", Status::Healthy),
                now
            ),
            BeatOutcome::Accepted {
                relay: Some(Relay {
                    main_pid: 42,
                    backstop: Some(Duration::from_secs(4))
                }),
                changed: true
            }
        );
        assert_eq!(s.units["krill-w-a.service"].health, Health::Healthy);
        assert_eq!(
            s.records.healthy_invocation("krill-w-a.service").as_deref(),
            Some("aa")
        );
    }

    #[test]
    fn degraded_keeps_alive_with_its_reason_and_a_new_run_starts_over() {
        let (mut s, _d) = sup(HealthCheck::Heartbeat {
            timeout: Duration::from_secs(2),
        });
        let now = Instant::now();
        s.on_unit_state("krill-w-a.service", running("aa", 42), now);
        s.on_heartbeat(
            Some("krill-w-a.service"),
            42,
            &hb("a", Status::Degraded),
            now,
        );
        let t = &s.units["krill-w-a.service"];
        assert_eq!(
            (t.health, t.reason.as_str()),
            (Health::Degraded, "low battery")
        );
        assert!(t.passed, "a degraded service is alive");
        s.on_unit_state("krill-w-a.service", running("bb", 50), now);
        let t = &s.units["krill-w-a.service"];
        assert_eq!((t.health, t.passed), (Health::Starting, false));
        assert_eq!(
            s.records.healthy_invocation("krill-w-a.service"),
            None,
            "the gate record belongs to the old run"
        );
    }

    #[test]
    fn silence_beyond_timeout_is_unhealthy() {
        let (mut s, _d) = sup(HealthCheck::Heartbeat {
            timeout: Duration::from_millis(500),
        });
        let t0 = Instant::now();
        s.on_unit_state("krill-w-a.service", running("aa", 42), t0);
        s.on_heartbeat(Some("krill-w-a.service"), 42, &hb("a", Status::Healthy), t0);
        assert!(s.sweep(t0 + Duration::from_millis(400)).is_empty());
        assert_eq!(
            s.sweep(t0 + Duration::from_millis(600)),
            [Silent {
                unit: "krill-w-a.service".into(),
                trigger_pid: Some(42)
            }]
        );
        assert!(s.units["krill-w-a.service"]
            .reason
            .starts_with("no heartbeat for 0.6 s"));
    }

    #[test]
    fn a_restarted_supervisor_times_the_runs_its_predecessor_widened() {
        let (mut s, d) = sup(HealthCheck::Heartbeat {
            timeout: Duration::from_millis(500),
        });
        let t0 = Instant::now();
        s.on_unit_state("krill-w-a.service", running("aa", 42), t0);
        s.on_heartbeat(Some("krill-w-a.service"), 42, &hb("a", Status::Healthy), t0);
        // The next supervisor (same records) sees the same run, silent since.
        let mut next = sup_in(
            HealthCheck::Heartbeat {
                timeout: Duration::from_millis(500),
            },
            d.path(),
        );
        next.on_unit_state("krill-w-a.service", running("aa", 42), t0);
        // systemd's watchdog timestamp shows the predecessor's relays: not a plain
        // sd_notify client's pings.
        assert!(next.native_candidates().is_empty());
        let pinged = UnitState {
            watchdog_us: 5_000_000,
            ..running("aa", 42)
        };
        assert!(!next.on_native_ping("krill-w-a.service", &pinged, t0));
        assert_eq!(
            next.sweep(t0 + Duration::from_millis(600)),
            [Silent {
                unit: "krill-w-a.service".into(),
                trigger_pid: Some(42)
            }]
        );
        // A later run of the unit starts with its generated WatchdogSec= again.
        next.on_unit_state("krill-w-a.service", running("bb", 43), t0);
        assert!(!next.units["krill-w-a.service"].backstopped);
    }

    #[test]
    fn a_run_not_yet_known_is_fed_as_the_sender() {
        let (mut s, _d) = sup(HealthCheck::Heartbeat {
            timeout: Duration::from_secs(2),
        });
        let now = Instant::now();
        // No state from systemd yet: the unit is still `inactive` to the supervisor.
        match s.on_heartbeat(
            Some("krill-w-a.service"),
            77,
            &hb("a", Status::Healthy),
            now,
        ) {
            BeatOutcome::Accepted { relay, .. } => assert_eq!(
                relay,
                Some(Relay {
                    main_pid: 77,
                    backstop: None
                }),
                "a plain ping as the sender, nothing widened"
            ),
            o => panic!("{o:?}"),
        }
        assert!(!s.units["krill-w-a.service"].backstopped);
    }

    #[test]
    fn a_run_never_heard_on_the_socket_is_left_to_its_own_watchdog() {
        let (mut s, _d) = sup(HealthCheck::Heartbeat {
            timeout: Duration::from_millis(500),
        });
        let t0 = Instant::now();
        s.on_unit_state("krill-w-a.service", running("aa", 42), t0);
        assert_eq!(
            s.sweep(t0 + Duration::from_millis(600)),
            [Silent {
                unit: "krill-w-a.service".into(),
                trigger_pid: None
            }],
            "systemd's WatchdogSec= (not widened) acts: the supervisor must not fail a plain sd_notify client on a guess"
        );
    }

    #[test]
    fn relays_widen_the_watchdog_once_then_ping_every_half_timeout() {
        let (mut s, _d) = sup(HealthCheck::Heartbeat {
            timeout: Duration::from_secs(1),
        });
        let t0 = Instant::now();
        s.on_unit_state("krill-w-a.service", running("aa", 42), t0);
        let relay = |s: &mut Supervisor, ms: u64| match s.on_heartbeat(
            Some("krill-w-a.service"),
            42,
            &hb("a", Status::Healthy),
            t0 + Duration::from_millis(ms),
        ) {
            BeatOutcome::Accepted { relay, .. } => relay,
            o => panic!("{o:?}"),
        };
        // 10 Hz for 2 s: the first widens, then one ping per 500 ms.
        let relays: Vec<(u64, Option<Relay>)> = (0..20)
            .map(|i| i * 100)
            .filter_map(|ms| relay(&mut s, ms).map(|r| (ms, Some(r))))
            .collect();
        assert_eq!(
            relays.iter().map(|(ms, _)| *ms).collect::<Vec<_>>(),
            [0, 500, 1000, 1500]
        );
        assert_eq!(relays[0].1.unwrap().backstop, Some(Duration::from_secs(2)));
        assert!(relays[1..]
            .iter()
            .all(|(_, r)| r.unwrap().backstop.is_none()));
        // A new run starts with the generated WatchdogSec= again: widen it anew.
        s.on_unit_state("krill-w-a.service", running("bb", 50), t0);
        let r = relay(&mut s, 2000).unwrap();
        assert_eq!((r.main_pid, r.backstop), (50, Some(Duration::from_secs(2))));
    }

    #[test]
    fn probes_fail_after_the_threshold_but_not_in_the_start_period() {
        let (mut s, _d) = sup(HealthCheck::Tcp {
            port: 80,
            timeout: None,
        });
        let t0 = Instant::now();
        s.on_unit_state("krill-w-a.service", running("aa", 42), t0);
        for _ in 0..5 {
            assert_eq!(s.due_probes(t0).len(), 1);
            assert_eq!(
                s.on_probe("krill-w-a.service", "aa", Err("refused".into()), t0),
                ProbeOutcome::Unchanged
            );
            s.units.get_mut("krill-w-a.service").unwrap().next_probe = t0;
        }
        let later = t0 + START_PERIOD + Duration::from_secs(1);
        assert_eq!(
            s.on_probe("krill-w-a.service", "aa", Err("refused".into()), later),
            ProbeOutcome::Unchanged
        );
        assert_eq!(
            s.on_probe("krill-w-a.service", "aa", Err("refused".into()), later),
            ProbeOutcome::Unchanged
        );
        match s.on_probe("krill-w-a.service", "aa", Err("refused".into()), later) {
            ProbeOutcome::Fail(r) => assert_eq!(r, "refused (3 checks in a row)"),
            o => panic!("{o:?}"),
        }
        // After a pass, failures count at once (no start period) and reset on success.
        s.on_unit_state("krill-w-a.service", running("bb", 43), t0);
        assert_eq!(
            s.on_probe("krill-w-a.service", "bb", Ok(()), t0),
            ProbeOutcome::Changed
        );
        assert_eq!(
            s.on_probe("krill-w-a.service", "bb", Err("x".into()), t0),
            ProbeOutcome::Unchanged
        );
        assert_eq!(
            s.on_probe("krill-w-a.service", "bb", Err("x".into()), t0),
            ProbeOutcome::Unchanged
        );
        assert!(matches!(
            s.on_probe("krill-w-a.service", "bb", Err("x".into()), t0),
            ProbeOutcome::Fail(_)
        ));
        // A result about an earlier run is ignored.
        assert_eq!(
            s.on_probe("krill-w-a.service", "aa", Err("x".into()), t0),
            ProbeOutcome::Unchanged
        );
    }

    #[test]
    fn plain_sd_notify_pings_count_once_they_follow_the_start() {
        let (mut s, _d) = sup(HealthCheck::Heartbeat {
            timeout: Duration::from_secs(2),
        });
        let now = Instant::now();
        let mut st = running("aa", 42);
        st.active_enter_us = 5_000_000;
        st.watchdog_us = 5_000_010;
        s.on_unit_state("krill-w-a.service", st.clone(), now);
        assert_eq!(s.native_candidates(), ["krill-w-a.service"]);
        assert!(
            !s.on_native_ping("krill-w-a.service", &st, now),
            "the reset at start is no ping"
        );
        st.watchdog_us = 5_500_000;
        assert!(s.on_native_ping("krill-w-a.service", &st, now));
        assert_eq!(s.units["krill-w-a.service"].health, Health::Healthy);
        s.on_heartbeat(
            Some("krill-w-a.service"),
            42,
            &hb("a", Status::Healthy),
            now,
        );
        assert!(
            s.native_candidates().is_empty(),
            "SDK clients are not polled"
        );
    }

    #[test]
    fn a_restarted_supervisor_keeps_a_recorded_pass() {
        let (mut s, _d) = sup(HealthCheck::Heartbeat {
            timeout: Duration::from_secs(2),
        });
        let now = Instant::now();
        s.records
            .write(Kind::Health, "krill-w-a.service", "aa\n")
            .unwrap();
        s.on_unit_state("krill-w-a.service", running("aa", 42), now);
        assert_eq!(s.units["krill-w-a.service"].health, Health::Healthy);
    }

    #[test]
    fn a_docker_services_container_speaks_for_it_and_no_other() {
        use krill::runtime::manifest::{Loaded, Manifest};
        use krill::runtime::names;
        let svc = |name: &str, docker: bool| ManifestService {
            name: name.into(),
            unit: names::service("my-ws", name),
            container_slice: docker.then(|| names::container_slice("my-ws", name)),
            ..Default::default()
        };
        let loaded = Loaded {
            workspaces: BTreeMap::from([(
                "my-ws".to_owned(),
                Manifest {
                    workspace: "my-ws".into(),
                    target: names::target("my-ws"),
                    slice: names::slice("my-ws"),
                    services: vec![svc("cam-1", true), svc("nav", false)],
                    ..Default::default()
                },
            )]),
            rejected: vec![],
        };
        let mut s = Supervisor::new(Records::at(std::path::Path::new("/nonexistent")));
        s.configure(config_of(&loaded), Instant::now());
        let ws = "/krill.slice/krill-my\\x2dws.slice";
        // Where docker's systemd cgroup driver puts the container's processes.
        assert_eq!(
            s.unit_for_cgroup(&format!(
                "{ws}/krill-my\\x2dws-cam\\x2d1.slice/docker-0123abcd.scope"
            ))
            .as_deref(),
            Some("krill-my-ws-cam-1.service")
        );
        // Not a non-docker service's namesake slice, nor a container elsewhere.
        for outsider in [
            format!("{ws}/krill-my\\x2dws-nav.slice/docker-0123abcd.scope"),
            "/system.slice/docker-0123abcd.scope".to_owned(),
            "/krill-my\\x2dws-cam\\x2d1.slice/docker-0123abcd.scope".to_owned(),
        ] {
            assert_eq!(s.unit_for_cgroup(&outsider), None, "{outsider}");
        }
    }
}
