//! Layer 4: unit files. A [`Plan`] becomes text through the minijinja templates in
//! `krill-gen/templates/`, with every recipe value escaped for the place it lands in
//! (see [`quote`]).

use std::sync::OnceLock;

use minijinja::{context, Environment, Value};

use crate::duration::to_systemd;
use crate::plan::{Plan, PlannedService};
use crate::recipe::{Execute, Restart};

/// Where `krill-ctl` is installed; the units call it for gates, GPU checks and
/// failure handling.
pub const KRILL_CTL: &str = "/usr/bin/krill-ctl";
/// The heartbeat socket, exported to every service as `KRILL_SOCKET`.
pub const KRILL_SOCKET: &str = "/run/krill/krill.sock";

/// Where the upstream Krill SDKs connect by default. krill services get a private
/// `/tmp` with the heartbeat socket bound at this path, so upstream SDK code works
/// unchanged and no world-writable global path exists that another user could squat.
pub const UPSTREAM_SOCKET: &str = "/tmp/krill.sock";

/// krill-supervisor relays a service's heartbeats to systemd at most this often.
pub const RELAY_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// Checks rendered unit text for what systemd would read differently than krill
/// wrote it: a NUL byte, or a line ending in a backslash (systemd joins the next line
/// to it, so a directive after it would vanish). Validation refuses such recipe
/// values field by field; this is the backstop over every field at once.
pub fn check_unit(u: &Unit) -> Result<(), String> {
    if u.contents.contains('\0') {
        return Err(format!("{}: rendered unit contains a NUL byte", u.name));
    }
    match u.contents.lines().position(|l| l.ends_with('\\')) {
        Some(i) => Err(format!(
            "{}: line {} ends with a backslash, which systemd would join with the next line",
            u.name,
            i + 1
        )),
        None => Ok(()),
    }
}

/// One rendered unit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    pub contents: String,
}

/// Escaping for unit files, per the rules found in systemd 252 (see design.md).
pub mod quote {
    /// A value where only specifiers are expanded (paths, descriptions): `%` → `%%`.
    pub fn spec(s: &str) -> String {
        s.replace('%', "%%")
    }

    fn c_escape(s: &str, out: &mut String, dollar: bool) {
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '%' => out.push_str("%%"),
                '$' if dollar => out.push_str("$$"),
                c if (c as u32) < 0x20 || c == '\x7f' => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c => out.push(c),
            }
        }
    }

    /// One `Environment=` assignment: C-style escapes inside double quotes, `%%`.
    /// `$` is literal there.
    pub fn env(kv: &str) -> String {
        let mut out = String::from("\"");
        c_escape(kv, &mut out, false);
        out.push('"');
        out
    }

    /// An argv for `Exec*=`: every word double-quoted and C-escaped, `$` → `$$`,
    /// `%` → `%%`. A lone `;` would separate commands, so it is written `\;`.
    /// A leading `-` on the program is systemd's "ignore failure" prefix and is kept
    /// outside the quotes (recipe validation forbids programs starting with `-`).
    pub fn exec(argv: &[String]) -> String {
        let mut out = String::new();
        let mut argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        if let Some(p) = argv
            .first_mut()
            .and_then(|p| p.strip_prefix('-').map(|r| (p, r)))
        {
            out.push('-');
            *p.0 = p.1;
        }
        for (i, a) in argv.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            if *a == ";" {
                out.push_str("\\;");
                continue;
            }
            out.push('"');
            c_escape(a, &mut out, true);
            out.push('"');
        }
        out
    }
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut e = Environment::new();
        e.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        for (name, src) in [
            ("service", include_str!("../templates/service.j2")),
            ("target", include_str!("../templates/target.j2")),
            ("slice", include_str!("../templates/slice.j2")),
        ] {
            e.add_template(name, src).expect("built-in template parses");
        }
        e.add_filter("spec", |s: String| quote::spec(&s));
        e.add_filter("env", |s: String| quote::env(&s));
        e.add_filter("exec", |v: Vec<String>| quote::exec(&v));
        e
    })
}

fn header(plan: &Plan) -> String {
    format!(
        "# Automatically generated by krill-gen from {}.\n# Do not edit: change the recipe and run `krill install` or `systemctl daemon-reload`.",
        plan.recipe.source.display()
    )
}

fn render(name: &str, ctx: Value) -> String {
    let mut text = env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .expect("built-in templates render any plan");
    text.push('\n');
    text
}

/// Renders every unit of a plan, sorted by name.
pub fn render_plan(plan: &Plan) -> Vec<Unit> {
    let mut units = render_workspace_units(plan);
    units.extend(plan.services.iter().map(|s| render_service_unit(plan, s)));
    units.sort_by(|a, b| a.name.cmp(&b.name));
    units
}

/// The workspace's target and slice.
pub fn render_workspace_units(plan: &Plan) -> Vec<Unit> {
    let ws = plan.workspace();
    let source = plan.recipe.source.display().to_string();
    let header = header(plan);
    vec![
        Unit {
            name: plan.target.clone(),
            contents: render(
                "target",
                context! { header => header.as_str(), source => source.as_str(), description => format!("krill workspace {ws}"),
                wants => plan.services.iter().map(|s| s.unit.clone()).collect::<Vec<_>>() },
            ),
        },
        Unit {
            name: plan.slice.clone(),
            contents: render(
                "slice",
                context! { header => header.as_str(), source => source.as_str(), description => format!("krill workspace {ws} (processes)") },
            ),
        },
    ]
}

/// The unit of one service.
pub fn render_service_unit(plan: &Plan, s: &PlannedService) -> Unit {
    Unit {
        name: s.unit.clone(),
        contents: render_service(plan, s, &header(plan)),
    }
}

fn render_service(plan: &Plan, s: &PlannedService, header: &str) -> String {
    let ws = plan.workspace();
    let svc = &plan.recipe.services[&s.name];
    let p = &svc.policy;
    let environment: Vec<String> = crate::manifest::service_env(plan, &s.name)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut pre: Vec<Vec<String>> = vec![];
    if svc.gpu {
        pre.push(vec![KRILL_CTL.into(), "gpu-check".into(), s.unit.clone()]);
    }
    let (working_dir, start, stop, stop_timeout) = match &svc.execute {
        Execute::Pixi {
            task,
            environment: penv,
            stop_task,
            working_dir,
        } => {
            let manifest = working_dir.join("pixi.toml").display().to_string();
            let pixi = |t: &str| {
                vec![
                    "pixi".into(),
                    "run".into(),
                    "--manifest-path".into(),
                    manifest.clone(),
                    "-e".into(),
                    penv.clone(),
                    t.to_owned(),
                ]
            };
            (
                working_dir.clone(),
                pixi(task),
                stop_task.as_deref().map(pixi),
                p.stop_timeout,
            )
        }
        Execute::Ros2 {
            package,
            launch_file,
            launch_args,
            stop_task,
            working_dir,
            setup_script,
        } => {
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
                package.clone(),
                launch_file.clone(),
            ]);
            argv.extend(launch_args.iter().map(|(k, v)| format!("{k}:={v}")));
            let manifest = working_dir.join("pixi.toml").display().to_string();
            let stop = stop_task.as_ref().map(|t| {
                vec![
                    "pixi".into(),
                    "run".into(),
                    "--manifest-path".into(),
                    manifest,
                    t.clone(),
                ]
            });
            (working_dir.clone(), argv, stop, p.stop_timeout)
        }
        Execute::Docker {
            image,
            volumes,
            ports,
            privileged,
            network,
        } => {
            let container = format!("krill-{ws}-{}", s.name);
            pre.push(vec![
                "-docker".into(),
                "rm".into(),
                "--force".into(),
                container.clone(),
            ]);
            let mut argv: Vec<String> = vec![
                "docker".into(),
                "run".into(),
                "--rm".into(),
                "--name".into(),
                container.clone(),
            ];
            if *privileged {
                argv.push("--privileged".into());
            }
            if svc.gpu {
                // The GPU checked by ExecStartPre= must also reach the container.
                argv.push("--gpus=all".into());
            }
            if let Some(n) = network {
                argv.push(format!("--network={n}"));
            }
            for v in volumes {
                argv.push(format!("--volume={v}"));
            }
            for pm in ports {
                argv.push(format!("--publish={pm}"));
            }
            for (k, _) in &plan.recipe.env {
                argv.push(format!("--env={k}"));
            }
            for k in ["KRILL_WORKSPACE", "KRILL_SERVICE", "KRILL_SOCKET"] {
                argv.push(format!("--env={k}"));
            }
            argv.push(image.clone());
            let secs = p.stop_timeout.as_secs_f64().ceil() as u64;
            let stop = vec![
                "docker".into(),
                "stop".into(),
                format!("--time={secs}"),
                container,
            ];
            // docker stop itself needs the whole stop_timeout; systemd only steps in
            // (SIGKILL to the docker client) if docker does not finish 5 s later.
            (
                plan.recipe.base_dir.clone(),
                argv,
                Some(stop),
                p.stop_timeout + std::time::Duration::from_secs(5),
            )
        }
        Execute::Shell {
            argv,
            stop_argv,
            working_dir,
        } => (
            working_dir.clone(),
            argv.clone(),
            stop_argv.clone(),
            p.stop_timeout,
        ),
    };
    let exec_start_pre = pre;
    let (limit_interval, limit_burst) = match (p.restart, p.max_restarts) {
        (Restart::Never, _) | (_, 0) => ("0", None),
        (_, n) => ("infinity", Some(n + 1)),
    };
    let restart = match p.restart {
        Restart::Never => "no",
        Restart::Always => "always",
        Restart::OnFailure => "on-failure",
    };
    let description = format!("krill {ws}: {} ({})", s.name, svc.execute.kind());
    // Heartbeats reach systemd as watchdog pings (relayed by krill-supervisor, or sent
    // by the service itself with sd_notify), so systemd enforces the timeout. The
    // supervisor relays at most every RELAY_INTERVAL, so the watchdog gets that much
    // slack: it fires between `timeout` and `timeout + RELAY_INTERVAL` after the last
    // heartbeat, never before.
    let watchdog = match &svc.health_check {
        Some(crate::recipe::HealthCheck::Heartbeat { timeout }) => {
            Some(to_systemd(*timeout + RELAY_INTERVAL))
        }
        _ => None,
    };
    render(
        "service",
        context! {
            header, description,
            source => plan.recipe.source.display().to_string(),
            target => plan.target.as_str(), slice => plan.slice.as_str(),
            waits_on => s.waits_on.clone(), after => s.after.clone(), on_failure => s.on_failure.clone(),
            start_limit_interval => limit_interval, start_limit_burst => limit_burst,
            environment, working_dir => working_dir.display().to_string(),
            exec_start_pre, exec_start => start, exec_stop => stop,
            restart, restart_sec => to_systemd(p.restart_delay), krill_ctl => KRILL_CTL,
            socket => KRILL_SOCKET, compat_socket => UPSTREAM_SOCKET,
            stop_timeout => to_systemd(stop_timeout), watchdog,
            // `docker run` reports a container stopped by `docker stop` as 143.
            success_exit_status => matches!(svc.execute, Execute::Docker { .. }).then_some("143"),
        },
    )
}
