//! D-Bus contracts: the parts of systemd's API krill calls, and krill-supervisor's
//! own name, path and interface. One definition for the supervisor and the CLI.

use zbus::zvariant::OwnedObjectPath;

/// Bus name of krill-supervisor.
pub const SUPERVISOR_NAME: &str = "org.krill.Supervisor1";
/// Object path of krill-supervisor's API.
pub const SUPERVISOR_PATH: &str = "/org/krill/Supervisor1";

/// systemd's manager object.
#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait Manager {
    fn subscribe(&self) -> zbus::Result<()>;
    /// `daemon-reload`: the reply comes once systemd has reloaded.
    fn reload(&self) -> zbus::Result<()>;
    fn kill_unit(&self, name: &str, whom: &str, signal: i32) -> zbus::Result<()>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn try_restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    /// `(name, description, load, active, sub, following, path, job id, job type,
    /// job path)` of every loaded unit matching `patterns` in `states` (empty: any).
    #[allow(clippy::type_complexity)]
    fn list_units_by_patterns(
        &self,
        states: &[&str],
        patterns: &[&str],
    ) -> zbus::Result<
        Vec<(
            String,
            String,
            String,
            String,
            String,
            String,
            OwnedObjectPath,
            u32,
            String,
            OwnedObjectPath,
        )>,
    >;
    #[allow(clippy::too_many_arguments)]
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, zbus::zvariant::Value<'_>)],
        aux: &[(&str, &[(&str, zbus::zvariant::Value<'_>)])],
    ) -> zbus::Result<OwnedObjectPath>;
    #[zbus(signal)]
    fn reloading(&self, active: bool) -> zbus::Result<()>;
    /// A job finished: `result` is `done`, `canceled`, `timeout`, `failed`,
    /// `dependency` or `skipped`.
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: OwnedObjectPath,
        unit: String,
        result: String,
    ) -> zbus::Result<()>;
}

/// krill-supervisor's API (see krill-supervisor's `api` module for the semantics).
#[zbus::proxy(
    interface = "org.krill.Supervisor1",
    default_service = "org.krill.Supervisor1",
    default_path = "/org/krill/Supervisor1"
)]
pub trait Supervisor {
    fn list_workspaces(&self) -> zbus::Result<Vec<String>>;
    fn get_status(&self, workspace: &str) -> zbus::Result<String>;
    fn emergency_stop(&self, workspace: &str, reason: &str) -> zbus::Result<()>;
    /// [`crate::runtime::stats::Stats`] as JSON.
    #[zbus(property)]
    fn stats(&self) -> zbus::Result<String>;
}

const UNIT_PREFIX: &str = "/org/freedesktop/systemd1/unit/";

/// systemd's object path of a unit: the name with every byte that is not an ASCII
/// letter or digit written as `_xx` (so `krill-a.service` is `krill_2da_2eservice`).
pub fn unit_path(unit: &str) -> OwnedObjectPath {
    let mut p = String::from(UNIT_PREFIX);
    for b in unit.bytes() {
        if b.is_ascii_alphanumeric() {
            p.push(b as char);
        } else {
            p.push_str(&format!("_{b:02x}"));
        }
    }
    OwnedObjectPath::try_from(p).expect("escaped unit paths are valid object paths")
}

/// The unit name of an object path from [`unit_path`], if it is one.
pub fn unit_of_path(path: &str) -> Option<String> {
    let label = path.strip_prefix(UNIT_PREFIX)?.as_bytes();
    let mut out = Vec::with_capacity(label.len());
    let mut i = 0;
    while i < label.len() {
        if label[i] == b'_' {
            let hex = std::str::from_utf8(label.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(label[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An uncached Properties proxy for a systemd unit object.
pub async fn unit_properties(
    conn: &zbus::Connection,
    path: &OwnedObjectPath,
) -> zbus::Result<zbus::fdo::PropertiesProxy<'static>> {
    zbus::fdo::PropertiesProxy::builder(conn)
        .destination("org.freedesktop.systemd1")?
        .path(path.clone())?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
}

/// A service unit's `ExecStart=` command lines, each as its argv.
pub async fn exec_start(conn: &zbus::Connection, unit: &str) -> zbus::Result<Vec<Vec<String>>> {
    type Exec = (String, Vec<String>, bool, u64, u64, u64, u64, u32, i32, i32);
    let p = unit_properties(conn, &unit_path(unit)).await?;
    let v = p
        .get(
            zbus::names::InterfaceName::from_static_str_unchecked(
                "org.freedesktop.systemd1.Service",
            ),
            "ExecStart",
        )
        .await?;
    let execs: Vec<Exec> = v.try_into()?;
    Ok(execs.into_iter().map(|e| e.1).collect())
}

/// Whether this process runs as root: it then acts on systemd itself; everyone else
/// reads, and asks krill-supervisor to act.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The job-queuing Manager methods krill uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Start,
    Stop,
    Restart,
    /// Restart units that are running; leave the others alone.
    TryRestart,
}

fn no_such_unit(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::MethodError(n, _, _)
        if n.as_str() == "org.freedesktop.systemd1.NoSuchUnit")
}

/// Queues `job` for each of `units` in mode `replace`, all at once, one round trip
/// each. A unit systemd has not loaded is skipped for `Stop` and `TryRestart` (there
/// is nothing to stop), as `systemctl` would fail on it. With `wait`, returns once
/// every queued job has finished, with each unit's job result (`done`, `failed`, …);
/// without it, the results are empty.
pub async fn queue_jobs(
    conn: &zbus::Connection,
    job: Job,
    units: &[String],
    wait: bool,
) -> zbus::Result<Vec<(String, String)>> {
    use futures_util::StreamExt;
    let m = ManagerProxy::new(conn).await?;
    // Listen before queueing, so that no job can finish unseen.
    let mut removed = if wait {
        match m.subscribe().await {
            Err(zbus::Error::MethodError(n, _, _))
                if n.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" => {}
            r => r?,
        }
        Some(m.receive_job_removed().await?)
    } else {
        None
    };
    let mut pending = std::collections::BTreeSet::new();
    for u in units {
        let queued = match job {
            Job::Start => m.start_unit(u, "replace").await,
            Job::Stop => m.stop_unit(u, "replace").await,
            Job::Restart => m.restart_unit(u, "replace").await,
            Job::TryRestart => m.try_restart_unit(u, "replace").await,
        };
        match queued {
            Ok(path) => {
                pending.insert(path.as_str().to_owned());
            }
            Err(e) if job != Job::Start && job != Job::Restart && no_such_unit(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let mut results = Vec::new();
    if let Some(removed) = removed.as_mut() {
        while !pending.is_empty() {
            let Some(sig) = removed.next().await else {
                return Err(zbus::Error::Failure(
                    "systemd closed the connection while jobs were running".into(),
                ));
            };
            let a = sig.args()?;
            if pending.remove(a.job.as_str()) {
                results.push((a.unit, a.result));
            }
        }
    }
    Ok(results)
}

/// `reset-failed` of each of `units`: clears the failed state and the start-limit
/// counter. Units systemd has not loaded are skipped.
pub async fn reset_failed(conn: &zbus::Connection, units: &[String]) -> zbus::Result<()> {
    let m = ManagerProxy::new(conn).await?;
    for u in units {
        match m.reset_failed_unit(u).await {
            Ok(()) => {}
            Err(e) if no_such_unit(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A unit's string-list property on the Unit interface (`RequiredBy`, `WantedBy`, …);
/// empty if systemd cannot load the unit.
pub async fn unit_list(conn: &zbus::Connection, unit: &str, prop: &str) -> Vec<String> {
    let Ok(p) = unit_properties(conn, &unit_path(unit)).await else {
        return vec![];
    };
    p.get(
        zbus::names::InterfaceName::from_static_str_unchecked("org.freedesktop.systemd1.Unit"),
        prop,
    )
    .await
    .ok()
    .and_then(|v| Vec::<String>::try_from(v).ok())
    .unwrap_or_default()
}

/// The loaded workspace targets (`krill-*.target`), by workspace name, whatever
/// their state: what an emergency stop acts on.
pub async fn loaded_workspaces(conn: &zbus::Connection) -> zbus::Result<Vec<String>> {
    let m = ManagerProxy::new(conn).await?;
    let mut out: Vec<String> = m
        .list_units_by_patterns(&[], &["krill-*.target"])
        .await?
        .into_iter()
        .filter(|u| u.2 != "not-found" || u.3 != "inactive")
        .filter_map(|u| {
            u.0.strip_prefix("krill-")
                .and_then(|n| n.strip_suffix(".target"))
                .map(str::to_owned)
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Emergency stop of workspace `ws` through systemd: stops its target (every member
/// is `PartOf=` it, dependents first) and its slice (every process in the workspace's
/// cgroup, including any unit that is no longer part of the target). Both jobs are
/// queued at once; neither needs the recipe.
pub async fn stop_workspace(conn: &zbus::Connection, ws: &str) -> zbus::Result<()> {
    let m = ManagerProxy::new(conn).await?;
    let target = crate::runtime::names::target(ws);
    let slice = crate::runtime::names::slice(ws);
    // StopUnit returns once the job is queued, so these two calls cost two round trips.
    m.stop_unit(&target, "replace").await?;
    match m.stop_unit(&slice, "replace").await {
        Ok(_) => Ok(()),
        // A slice that was never realised has nothing to stop.
        Err(zbus::Error::MethodError(n, _, _))
            if n.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// A command of a unit's start that failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailedCommand {
    /// `true`: an `ExecStartPost=` command; `false`: an `ExecStartPre=` one.
    pub post: bool,
    pub argv: Vec<String>,
    /// How it ended, as `ExecMainCode`: 1 exited, 2 killed, 3 dumped core.
    pub code: i32,
    /// The exit status, or the signal.
    pub status: i32,
}

/// systemd's view of one unit: the properties krill's status and the supervisor
/// read. Timestamps are CLOCK_MONOTONIC µs unless named `_realtime_`; 0 means never.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFacts {
    /// `LoadState` (`loaded`, `not-found`, …).
    pub load: String,
    /// `LoadError`'s message when the unit did not load; empty otherwise.
    pub load_error: String,
    /// `ActiveState`.
    pub active: String,
    /// `SubState`.
    pub sub: String,
    /// Hex InvocationID of the latest run; empty if never started.
    pub invocation: String,
    /// `Result` of the latest run (`success`, `exit-code`, `signal`, `watchdog`, …).
    pub result: String,
    pub main_pid: u32,
    /// `NRestarts` (systemd counts the restart the start limit refused too).
    pub restarts: u32,
    /// `ExecMainCode`: 1 exited, 2 killed, 3 dumped core (`CLD_*`); 0 never ran.
    pub exec_main_code: i32,
    /// `ExecMainStatus`: the exit status or the signal number.
    pub exec_main_status: i32,
    /// Start of the latest run's main process.
    pub started_us: u64,
    /// End of the latest run's main process.
    pub exited_us: u64,
    /// Leaving `active` (a stop job makes this precede `exited_us`).
    pub active_exit_us: u64,
    /// Entering `active`.
    pub active_enter_us: u64,
    /// Entering `active`, wall clock µs since the Unix epoch.
    pub active_enter_realtime_us: u64,
    /// The latest watchdog ping systemd received (or the run's start).
    pub watchdog_us: u64,
    /// A job (start, stop, restart) is queued for the unit.
    pub job: bool,
    /// The unit's cgroup; empty while it has no processes.
    pub control_group: String,
    /// CPU time of the unit's cgroup since its run started, ns (`CPUUsageNSec`).
    pub cpu_ns: Option<u64>,
    /// Memory of the unit's cgroup now, bytes (`MemoryCurrent`).
    pub memory: Option<u64>,
    /// Highest memory of the unit's cgroup, bytes: `MemoryPeak` (systemd ≥ 256),
    /// else the cgroup's own `memory.peak` (cgroup v2, Linux ≥ 5.19), else
    /// `memory.max_usage_in_bytes` (cgroup v1).
    pub memory_peak: Option<u64>,
    /// Tasks in the unit's cgroup (`TasksCurrent`).
    pub tasks: Option<u64>,
    /// The `ExecStartPre=` or `ExecStartPost=` command that ran last, if it failed
    /// (and is not prefixed `-`): a start stops at its first failing command, so the
    /// one that ran last is the one that failed the latest start.
    pub failed_start_command: Option<FailedCommand>,
}

/// systemd reports a figure it does not have as `u64::MAX`.
fn figure(v: Option<u64>) -> Option<u64> {
    v.filter(|v| *v != u64::MAX)
}

/// The root of the unified cgroup hierarchy: `/sys/fs/cgroup`, or
/// `/sys/fs/cgroup/unified` on a hybrid host.
pub fn cgroup_root() -> &'static std::path::Path {
    static ROOT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let unified = std::path::PathBuf::from("/sys/fs/cgroup/unified");
        if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() || !unified.exists() {
            "/sys/fs/cgroup".into()
        } else {
            unified
        }
    })
}

/// The text of file `name` of cgroup `cg` (a path like `/krill.slice/…`).
fn cgroup_text(cg: &str, name: &str) -> Option<String> {
    if cg.is_empty() {
        return None;
    }
    std::fs::read_to_string(cgroup_root().join(cg.trim_start_matches('/')).join(name)).ok()
}

/// CPU time of cgroup `cg` and its children, µs (`usage_usec` of `cpu.stat`, which
/// cgroup v2 keeps even without the cpu controller).
pub fn cgroup_cpu_usec(cg: &str) -> Option<u64> {
    cgroup_text(cg, "cpu.stat")?
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
}

/// A number in file `name` of cgroup `cg`.
pub fn cgroup_number(cg: &str, name: &str) -> Option<u64> {
    cgroup_text(cg, name)?.trim().parse().ok()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads a unit's facts over D-Bus, uncached (`GetAll` on the Unit interface, and on
/// the Service interface for `.service` units): always systemd's current answer.
pub async fn unit_facts(
    conn: &zbus::Connection,
    path: &OwnedObjectPath,
) -> zbus::Result<UnitFacts> {
    use std::collections::HashMap;
    use zbus::names::InterfaceName;
    use zbus::zvariant::OwnedValue;
    type Props = HashMap<String, OwnedValue>;
    fn get<T: TryFrom<OwnedValue>>(m: &Props, k: &str) -> Option<T> {
        m.get(k).and_then(|v| T::try_from(v.clone()).ok())
    }
    let props = unit_properties(conn, path).await?;
    // Both interfaces in flight at once: one round trip's latency, not two.
    let unit_call = props.get_all(InterfaceName::from_static_str_unchecked(
        "org.freedesktop.systemd1.Unit",
    ));
    let is_service = unit_of_path(path.as_str()).is_some_and(|u| u.ends_with(".service"));
    let (unit, svc) = if is_service {
        let svc_call = props.get_all(InterfaceName::from_static_str_unchecked(
            "org.freedesktop.systemd1.Service",
        ));
        futures_util::future::try_join(unit_call, svc_call).await?
    } else {
        (unit_call.await?, Props::new())
    };
    let job: Option<(u32, OwnedObjectPath)> = get(&unit, "Job");
    // (path, argv, ignore errors, start, start mono, exit, exit mono, pid, code, status)
    type Exec = (String, Vec<String>, bool, u64, u64, u64, u64, u32, i32, i32);
    let failed_start_command = [("ExecStartPre", false), ("ExecStartPost", true)]
        .into_iter()
        .flat_map(|(prop, post)| {
            get::<Vec<Exec>>(&svc, prop)
                .unwrap_or_default()
                .into_iter()
                .map(move |e| (post, e))
        })
        .filter(|(_, e)| e.4 > 0)
        .max_by_key(|(_, e)| e.4)
        .filter(|(_, e)| !e.2 && ((e.8 == 1 && e.9 != 0) || e.8 == 2 || e.8 == 3))
        .map(|(post, e)| FailedCommand {
            post,
            argv: e.1,
            code: e.8,
            status: e.9,
        });
    Ok(UnitFacts {
        load: get(&unit, "LoadState").unwrap_or_default(),
        load_error: get::<(String, String)>(&unit, "LoadError")
            .map(|(_, msg)| msg)
            .unwrap_or_default(),
        active: get(&unit, "ActiveState").unwrap_or_default(),
        sub: get(&unit, "SubState").unwrap_or_default(),
        invocation: hex(&get::<Vec<u8>>(&unit, "InvocationID").unwrap_or_default()),
        result: get(&svc, "Result").unwrap_or_default(),
        main_pid: get(&svc, "MainPID").unwrap_or(0),
        restarts: get(&svc, "NRestarts").unwrap_or(0),
        exec_main_code: get(&svc, "ExecMainCode").unwrap_or(0),
        exec_main_status: get(&svc, "ExecMainStatus").unwrap_or(0),
        started_us: get(&svc, "ExecMainStartTimestampMonotonic").unwrap_or(0),
        exited_us: get(&svc, "ExecMainExitTimestampMonotonic").unwrap_or(0),
        active_exit_us: get(&unit, "ActiveExitTimestampMonotonic").unwrap_or(0),
        active_enter_us: get(&unit, "ActiveEnterTimestampMonotonic").unwrap_or(0),
        active_enter_realtime_us: get(&unit, "ActiveEnterTimestamp").unwrap_or(0),
        watchdog_us: get(&svc, "WatchdogTimestampMonotonic").unwrap_or(0),
        job: job.is_some_and(|(id, _)| id != 0),
        control_group: get(&svc, "ControlGroup").unwrap_or_default(),
        cpu_ns: figure(get(&svc, "CPUUsageNSec")),
        memory: figure(get(&svc, "MemoryCurrent")),
        memory_peak: figure(get(&svc, "MemoryPeak")).or_else(|| {
            let cg: String = get(&svc, "ControlGroup")?;
            cgroup_number(&cg, "memory.peak").or_else(|| {
                // cgroup v1 (a hybrid host): the memory controller's own hierarchy.
                std::fs::read_to_string(format!(
                    "/sys/fs/cgroup/memory{cg}/memory.max_usage_in_bytes"
                ))
                .ok()?
                .trim()
                .parse()
                .ok()
            })
        }),
        tasks: figure(get(&svc, "TasksCurrent")),
        failed_start_command,
    })
}

/// [`unit_facts`] by unit name; a unit systemd cannot load reads as `not-found`.
pub async fn unit_facts_by_name(conn: &zbus::Connection, unit: &str) -> UnitFacts {
    match unit_facts(conn, &unit_path(unit)).await {
        Ok(f) => f,
        Err(_) => UnitFacts {
            load: "not-found".into(),
            active: "inactive".into(),
            sub: "dead".into(),
            ..UnitFacts::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_are_systemds_bus_labels_and_round_trip() {
        let p = unit_path("krill-sp-quiet.service");
        assert_eq!(
            p.as_str(),
            "/org/freedesktop/systemd1/unit/krill_2dsp_2dquiet_2eservice"
        );
        assert_eq!(
            unit_of_path(p.as_str()).as_deref(),
            Some("krill-sp-quiet.service")
        );
        let odd = "krill-healthy@krill-w_x-a.service";
        assert_eq!(unit_of_path(unit_path(odd).as_str()).as_deref(), Some(odd));
        assert_eq!(unit_of_path("/org/freedesktop/systemd1/job/1"), None);
    }
}
