//! How a service runs: from a validated [`Service`] to the command lines, working
//! directory, environment, timeouts and restart settings of its unit. One function
//! per execute type and per setting; [`crate::compile::render`] only lays the result
//! out as unit-file lines, and the generator's manifest hands the same values to
//! krill-supervisor and `krill status`.

use std::path::PathBuf;
use std::time::Duration;

use crate::compile::recipe::{Execute, ExecuteKind, Policy, Recipe, Restart, Service};
use crate::runtime::check::HealthCheck;
use crate::runtime::names;
use crate::runtime::paths::{self, KRILL_CTL, UPSTREAM_SOCKET};
use crate::runtime::scope;

/// Everything about running one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecPlan {
    pub kind: ExecuteKind,
    /// The recipe's `env`, then `KRILL_WORKSPACE`, `KRILL_SERVICE`, `KRILL_SOCKET`.
    pub env: Vec<(String, String)>,
    /// Absolute.
    pub working_dir: PathBuf,
    /// `ExecStartPre=` commands, in order (GPU check, docker clean-up).
    pub start_pre: Vec<Vec<String>>,
    /// `ExecStart=`.
    pub start: Vec<String>,
    /// The program whose absence means "executable not found": `start[0]`, or the
    /// program a wrapper (`bash -c 'source …; exec "$@"'`) runs.
    pub program: String,
    /// `ExecStop=`, if the execute type has a stop command.
    pub stop: Option<Vec<String>>,
    /// Time from stop to SIGKILL (`TimeoutStopSec=`).
    pub stop_timeout: Duration,
    pub restart: Restart,
    /// `RestartSec=`.
    pub restart_delay: Duration,
    /// Automatic restarts before the service fails for good; 0 = unlimited.
    pub max_restarts: u32,
    /// `StartLimitBurst=` (every start counts, so `max_restarts + 1`); `None` when
    /// unlimited.
    pub start_limit_burst: Option<u32>,
    /// `WatchdogSec=` of a heartbeat service: its timeout plus [`RELAY_INTERVAL`].
    pub watchdog: Option<Duration>,
    /// Exit statuses that count as success besides 0.
    pub success_exit_status: Option<u16>,
    pub check: Option<HealthCheck>,
    pub critical: bool,
    pub gpu: bool,
    /// The slice where the service's processes run outside its unit's cgroup: a
    /// docker container's scope ([`names::container_slice`]). `None` for every other
    /// execute type.
    pub container_slice: Option<String>,
    /// `User=`; `None`: root.
    pub user: Option<String>,
    /// `Group=`; `None`: the user's.
    pub group: Option<String>,
    /// `WorkingDirectory=~`: a `user:` service without `working_dir` starts in its home.
    pub home_working_dir: bool,
    /// `ready:`; `None`: started once spawned.
    pub ready: Option<crate::runtime::ready::Ready>,
    /// `ExecStartPost=` commands: the `file`/`tcp` readiness check, then the
    /// `post_start` hooks.
    pub start_post: Vec<Vec<String>>,
    /// `ExecStop=` commands before the service's own stop command: the `pre_stop`
    /// hooks (`-`: a failing one is logged, it does not fail the service).
    pub stop_hooks: Vec<Vec<String>>,
    /// `ExecStopPost=` commands: the `post_stop` hooks (`-`, as `stop_hooks`).
    pub stop_post: Vec<Vec<String>>,
    pub resources: crate::compile::recipe::Resources,
}

/// The execution plan of `svc` in workspace `ws`.
pub fn plan(recipe: &Recipe, svc: &Service, unit: &str) -> ExecPlan {
    let mut start_pre = vec![];
    if svc.gpu {
        start_pre.push(vec![KRILL_CTL.into(), "gpu-check".into(), unit.to_owned()]);
    }
    let Command {
        working_dir,
        start,
        program,
        stop,
        stop_timeout,
        pre,
        success_exit_status,
        container_slice,
    } = match &svc.execute {
        Execute::Pixi {
            task,
            environment,
            stop_task,
            working_dir,
        } => pixi(
            task,
            environment,
            stop_task.as_deref(),
            working_dir,
            &svc.policy,
        ),
        Execute::Ros2 {
            package,
            launch_file,
            launch_args,
            stop_task,
            working_dir,
            setup_script,
        } => ros2(
            package,
            launch_file,
            launch_args,
            stop_task.as_deref(),
            working_dir,
            setup_script.as_ref(),
            &svc.policy,
        ),
        Execute::Docker {
            image,
            volumes,
            ports,
            privileged,
            network,
        } => docker(
            recipe,
            svc,
            &DockerRun {
                image,
                volumes,
                ports,
                privileged: *privileged,
                network: network.as_deref(),
            },
        ),
        Execute::Shell {
            argv,
            stop_argv,
            working_dir,
        } => Command {
            program: argv.first().cloned().unwrap_or_default(),
            working_dir: working_dir.clone(),
            start: argv.clone(),
            stop: stop_argv.clone(),
            stop_timeout: svc.policy.stop_timeout,
            pre: vec![],
            success_exit_status: None,
            container_slice: None,
        },
    };
    start_pre.extend(pre);
    // Automatic restarts only: systemd counts them in NRestarts, which a manual start
    // resets to 0 (verified on 247, 252 and 257 by the e2e tests).
    start_pre.extend(svc.hooks.on_restart.iter().map(|argv| {
        let mut v: Vec<String> = vec![
            KRILL_CTL.into(),
            "hook".into(),
            "on-restart".into(),
            unit.to_owned(),
            "--".into(),
        ];
        v.extend(argv.iter().cloned());
        v
    }));
    start_pre.extend(svc.hooks.pre_start.iter().cloned());
    let mut env = environment(recipe, &svc.name);
    // systemd sets HOME, USER, LOGNAME and SHELL for User=; PATH it leaves at its
    // default, without the user's own programs (pixi's, pip's).
    if let Some(path) = svc
        .user
        .as_deref()
        .and_then(crate::runtime::host::user_path)
    {
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), path));
        }
    }
    ExecPlan {
        kind: svc.execute.kind(),
        env,
        working_dir,
        start_pre,
        start,
        program,
        stop,
        stop_timeout,
        restart: svc.policy.restart,
        restart_delay: svc.policy.restart_delay,
        max_restarts: svc.policy.max_restarts,
        start_limit_burst: start_limit_burst(&svc.policy),
        watchdog: svc.health_check.as_ref().and_then(HealthCheck::watchdog),
        success_exit_status,
        check: svc.health_check.clone(),
        critical: svc.critical,
        gpu: svc.gpu,
        container_slice,
        user: svc.user.clone(),
        group: svc.group.clone(),
        home_working_dir: svc.user.is_some() && !svc.working_dir_written,
        start_post: svc
            .ready
            .as_ref()
            .and_then(ready_check)
            .into_iter()
            .chain(svc.hooks.post_start.iter().cloned())
            .collect(),
        stop_hooks: svc
            .hooks
            .pre_stop
            .iter()
            .map(|a| ignoring_failure(a))
            .collect(),
        stop_post: svc
            .hooks
            .post_stop
            .iter()
            .map(|a| ignoring_failure(a))
            .collect(),
        ready: svc.ready.clone(),
        resources: svc.resources.clone(),
    }
}

/// `argv` with systemd's `-` prefix: its failure is logged, not the service's.
fn ignoring_failure(argv: &[String]) -> Vec<String> {
    let mut v = argv.to_vec();
    if let Some(p) = v.first_mut() {
        p.insert(0, '-');
    }
    v
}

/// `krill-ctl ready file PATH|tcp PORT`: the `ExecStartPost=` of a `file` or `tcp`
/// readiness (it runs in the service's namespaces, so it sees the files the service
/// sees); `None` for `notify` (systemd's `Type=notify`).
fn ready_check(r: &crate::runtime::ready::Ready) -> Option<Vec<String>> {
    use crate::runtime::ready::ReadyKind;
    let (kind, arg) = match &r.kind {
        ReadyKind::File(p) => ("file", p.display().to_string()),
        ReadyKind::Tcp(p) => ("tcp", p.to_string()),
        ReadyKind::Notify => return None,
    };
    Some(vec![KRILL_CTL.into(), "ready".into(), kind.into(), arg])
}

/// The environment krill sets for service `name`: the recipe's `env`, then
/// `KRILL_WORKSPACE`, `KRILL_SERVICE` and `KRILL_SOCKET` (what SDKs read).
fn environment(recipe: &Recipe, name: &str) -> Vec<(String, String)> {
    let mut env = recipe.env.clone();
    env.push(("KRILL_WORKSPACE".into(), recipe.name.clone()));
    env.push(("KRILL_SERVICE".into(), name.into()));
    env.push(("KRILL_SOCKET".into(), paths::socket()));
    if scope::is_user() {
        // The krill-ctl helpers a unit runs (GPU check, ready, hooks) act on the
        // user's manager and records.
        env.push((scope::ENV.into(), "user".into()));
    }
    env
}

/// `max_restarts: N` is exactly N restarts: systemd counts every start, the first
/// included, so the burst is N + 1 (with `StartLimitIntervalSec=infinity`).
fn start_limit_burst(p: &Policy) -> Option<u32> {
    match (p.restart, p.max_restarts) {
        (Restart::Never, _) | (_, 0) => None,
        (_, n) => Some(n + 1),
    }
}

/// The command part of an [`ExecPlan`].
struct Command {
    working_dir: PathBuf,
    start: Vec<String>,
    program: String,
    stop: Option<Vec<String>>,
    stop_timeout: Duration,
    pre: Vec<Vec<String>>,
    success_exit_status: Option<u16>,
    container_slice: Option<String>,
}

fn pixi_run(working_dir: &std::path::Path, env: Option<&str>, task: &str) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        "pixi".into(),
        "run".into(),
        "--manifest-path".into(),
        working_dir.join("pixi.toml").display().to_string(),
    ];
    if let Some(e) = env {
        argv.extend(["-e".into(), e.to_owned()]);
    }
    argv.push(task.to_owned());
    argv
}

/// `pixi run --manifest-path DIR/pixi.toml -e ENV TASK`.
fn pixi(
    task: &str,
    environment: &str,
    stop_task: Option<&str>,
    working_dir: &std::path::Path,
    p: &Policy,
) -> Command {
    Command {
        working_dir: working_dir.to_owned(),
        start: pixi_run(working_dir, Some(environment), task),
        program: "pixi".into(),
        stop: stop_task.map(|t| pixi_run(working_dir, Some(environment), t)),
        stop_timeout: p.stop_timeout,
        pre: vec![],
        success_exit_status: None,
        container_slice: None,
    }
}

/// `ros2 launch PACKAGE FILE k:=v…`, after `source SETUP` when a setup script is
/// given (through bash, which then `exec`s ros2 so that it is the main process).
fn ros2(
    package: &str,
    launch_file: &str,
    launch_args: &std::collections::BTreeMap<String, String>,
    stop_task: Option<&str>,
    working_dir: &std::path::Path,
    setup_script: Option<&PathBuf>,
    p: &Policy,
) -> Command {
    let mut argv: Vec<String> = vec![];
    if let Some(setup) = setup_script {
        argv.extend([
            "/bin/bash".into(),
            "-c".into(),
            "source \"$1\" && shift && exec \"$@\"".into(),
            "krill-ros2-setup".into(),
            setup.display().to_string(),
        ]);
    }
    argv.extend([
        "ros2".into(),
        "launch".into(),
        package.to_owned(),
        launch_file.to_owned(),
    ]);
    argv.extend(launch_args.iter().map(|(k, v)| format!("{k}:={v}")));
    Command {
        working_dir: working_dir.to_owned(),
        start: argv,
        program: "ros2".into(),
        stop: stop_task.map(|t| pixi_run(working_dir, None, t)),
        stop_timeout: p.stop_timeout,
        pre: vec![],
        success_exit_status: None,
        container_slice: None,
    }
}

/// The fields of `execute: {type: docker}`.
struct DockerRun<'a> {
    image: &'a str,
    volumes: &'a [String],
    ports: &'a [String],
    privileged: bool,
    network: Option<&'a str>,
}

/// `docker run --rm --name krill-W-S …` in the foreground, so that systemd supervises
/// the client; a leftover container of the same name is removed first.
///
/// The engine, not systemd, starts the container's processes, so they are not in
/// the unit's cgroup. `--cgroup-parent` puts the container's scope in
/// [`names::container_slice`] (with the engine's systemd cgroup driver, the default
/// on cgroup v2), under the workspace's slice and its limits, where the supervisor
/// accepts its heartbeats as the service's. The heartbeat socket is bind-mounted at
/// `KRILL_SOCKET` and at upstream's default path; `--mount` (unlike `--volume`) fails
/// instead of creating a directory where the socket should be.
fn docker(recipe: &Recipe, svc: &Service, d: &DockerRun) -> Command {
    let container = format!("krill-{}-{}", recipe.name, svc.name);
    let slice = names::container_slice(&recipe.name, &svc.name);
    let pre = vec![vec![
        "-docker".into(),
        "rm".into(),
        "--force".into(),
        container.clone(),
    ]];
    let mut argv: Vec<String> = vec![
        "docker".into(),
        "run".into(),
        "--rm".into(),
        "--name".into(),
        container.clone(),
        format!("--cgroup-parent={slice}"),
    ];
    if d.privileged {
        argv.push("--privileged".into());
    }
    if svc.gpu {
        // The GPU checked by ExecStartPre= must also reach the container.
        argv.push("--gpus=all".into());
    }
    if let Some(n) = d.network {
        argv.push(format!("--network={n}"));
    }
    argv.extend(d.volumes.iter().map(|v| format!("--volume={v}")));
    let socket = paths::socket();
    for dst in [socket.as_str(), UPSTREAM_SOCKET] {
        argv.push(format!("--mount=type=bind,src={socket},dst={dst}"));
    }
    argv.extend(d.ports.iter().map(|p| format!("--publish={p}")));
    argv.extend(recipe.env.iter().map(|(k, _)| format!("--env={k}")));
    for k in ["KRILL_WORKSPACE", "KRILL_SERVICE", "KRILL_SOCKET"] {
        argv.push(format!("--env={k}"));
    }
    argv.push(d.image.to_owned());
    let secs = svc.policy.stop_timeout.as_secs_f64().ceil() as u64;
    Command {
        working_dir: recipe.base_dir.clone(),
        start: argv,
        program: "docker".into(),
        stop: Some(vec![
            "docker".into(),
            "stop".into(),
            format!("--time={secs}"),
            container,
        ]),
        // docker stop itself needs the whole stop_timeout; systemd only steps in
        // (SIGKILL to the docker client) if docker does not finish 5 s later.
        stop_timeout: svc.policy.stop_timeout + Duration::from_secs(5),
        pre,
        // `docker run` reports a container stopped by `docker stop` as 143.
        success_exit_status: Some(143),
        container_slice: Some(slice),
    }
}
