//! `krill-ctl`: the operator's CLI. See `krill-ctl --help`.

use std::process::ExitCode;

use clap::Parser;

use krill_ctl::cli::{Cli, Cmd, FleetCmd, GraphFormat, Wait};
use krill_ctl::error::Error;
use krill_ctl::wait::{self, Outcome, Until};
use krill_ctl::{estop, exited, failure, gate, inspect, install, status};

fn load(name: &str) -> Result<(krill::Plan, Option<String>), Error> {
    let (ws, svc) = match name.split_once('/') {
        Some((w, s)) => (w, Some(s.to_owned())),
        None => (name, None),
    };
    Ok((inspect::installed(ws)?, svc))
}

/// Recipes the generator skipped, on stderr beside a command's result.
fn report_skipped(skipped: &[krill::runtime::manifest::Rejected]) {
    for r in skipped {
        eprintln!(
            "warning: recipe {} is not loaded (systemd keeps what it had): {}",
            r.file.display(),
            krill::runtime::status::printable(&r.error)
        );
    }
}

fn timeout(s: &str) -> Result<std::time::Duration, Error> {
    krill::compile::duration::parse(s).map_err(|e| Error::Usage(format!("--wait={s}: {e}")))
}

/// Waits for workspace `ws` and reports the outcome: 0 when it is there, else 3
/// with the status table.
fn follow(ws: &str, until: Until, limit: std::time::Duration) -> Result<u8, Error> {
    let mut out = std::io::stdout().lock();
    match wait::wait(ws, until, limit, &mut out)? {
        Outcome::Ready(w) => {
            if until == Until::Running {
                println!("workspace {ws} is running");
            }
            let _ = w;
            Ok(0)
        }
        Outcome::Failed(w) => {
            print!("{}", status::render_table(&w));
            eprintln!("krill: workspace {ws} did not start: a service failed");
            Ok(3)
        }
        Outcome::TimedOut(w) => {
            print!("{}", status::render_table(&w));
            eprintln!(
                "krill: workspace {ws} is not running after {}",
                krill::compile::duration::to_systemd(limit)
            );
            Ok(3)
        }
    }
}

/// `install [--enable] [--now [--wait]]` and `up`.
fn up(
    file: &std::path::Path,
    enable: bool,
    now: bool,
    limit: Option<std::time::Duration>,
) -> Result<u8, Error> {
    let (plan, d) = install::install(file, install::InstallOptions { enable, now })?;
    println!(
        "installed workspace {} ({} added, {} changed, {} removed, {} restarted){}{}",
        plan.workspace(),
        d.added.len(),
        d.changed.len(),
        d.removed.len(),
        d.restart.len(),
        if enable { ", enabled at boot" } else { "" },
        if now { ", starting" } else { "" }
    );
    match (now, limit) {
        (true, Some(l)) => follow(plan.workspace(), Until::Running, l),
        (true, None) => follow(plan.workspace(), Until::Started, STARTED_LIMIT),
        _ => Ok(0),
    }
}

/// Prints the status of `name` (or of everything); 0 when all is as intended, else 3.
fn show_status(name: Option<&str>, json: bool) -> Result<u8, Error> {
    let report = status::gather(name)?;
    if json {
        println!("{}", status::render_json(&report));
    } else {
        if report.workspaces.is_empty() {
            println!("no workspaces loaded");
        } else {
            let colour = krill_ctl::colour::enabled();
            let t: Vec<String> = report
                .workspaces
                .iter()
                .map(|w| krill_ctl::colour::table(w, colour))
                .collect();
            print!("{}", t.join("\n"));
        }
        for r in &report.skipped_recipes {
            eprintln!(
                "warning: recipe {} is not loaded (systemd keeps what it had): {}",
                r.file,
                krill::runtime::status::printable(&r.error)
            );
        }
    }
    Ok(if report.all_ok() { 0 } else { 3 })
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `-H`/`-M`: only commands that work through a bus alone may go to another host.
fn choose_host(cli: &Cli) -> Result<(), Error> {
    use krill_ctl::remote::Host;
    let host = match (&cli.host, &cli.machine) {
        (Some(h), _) => Host::ssh(h, None),
        (None, Some(m)) => Host::machine(m),
        (None, None) => return Ok(()),
    }
    .map_err(|e| Error::Usage(e.to_string()))?;
    match &cli.cmd {
        None
        | Some(
            Cmd::Status { .. }
            | Cmd::Estop { .. }
            | Cmd::Logs { .. }
            | Cmd::Top { .. }
            | Cmd::Metrics { http: false },
        ) => {}
        Some(_) => {
            return Err(Error::Usage(
                "-H and -M work with status, ps, estop, logs, top and metrics; run other commands on that host".into(),
            ))
        }
    }
    krill_ctl::remote::set(host);
    Ok(())
}

fn run(cli: Cli) -> Result<u8, Error> {
    if cli.user {
        krill::runtime::scope::init(krill::runtime::scope::Scope::User);
    }
    choose_host(&cli)?;
    let Some(cmd) = cli.cmd else {
        // Upstream's bare `krill` opens its view; ours prints the status.
        return show_status(None, false);
    };
    match cmd {
        Cmd::Validate { files, json } => {
            let results = inspect::validate(&files);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&results).unwrap_or_default()
                );
            } else {
                for r in &results {
                    for w in &r.warnings {
                        eprintln!("warning: {}", w.display_in(&r.file));
                    }
                    match (&r.text, r.workspace.as_deref(), r.services) {
                        (Some(e), _, _) => eprintln!("{e}"),
                        (None, Some(ws), Some(n)) => {
                            println!("{}: ok: workspace {ws} with {n} services", r.file)
                        }
                        _ => {}
                    }
                }
            }
            Ok(u8::from(results.iter().any(|r| !r.ok)))
        }
        Cmd::Render { file, json } => {
            if !json {
                return Ok(krill::compile::dry_run(
                    &[file],
                    &mut std::io::stdout().lock(),
                    &mut std::io::stderr().lock(),
                ) as u8);
            }
            let plan = inspect::compile(&file)?;
            let units = inspect::units(&plan)
                .map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&units).unwrap_or_default()
            );
            Ok(0)
        }
        Cmd::Plan { file, json } => {
            let p = install::plan(&file)?;
            let d = &p.diff;
            if json {
                let v = serde_json::json!({
                    "added": d.added, "changed": d.changed,
                    "removed": d.removed, "restart": d.restart,
                    "diffs": d.changed.iter().map(|u| (u.clone(), inspect::unit_diff(
                        u, &p.old[u], &p.new[u]))).collect::<std::collections::BTreeMap<_, _>>(),
                });
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                return Ok(0);
            }
            for (label, v) in [
                ("add", &d.added),
                ("change", &d.changed),
                ("remove", &d.removed),
                ("restart", &d.restart),
            ] {
                for u in v {
                    println!("{label:<8}{u}");
                }
            }
            for u in &d.changed {
                print!("{}", inspect::unit_diff(u, &p.old[u], &p.new[u]));
            }
            if *d == install::Diff::default() {
                println!("no changes");
            }
            Ok(0)
        }
        Cmd::Graph {
            recipe,
            format,
            json,
        } => {
            let g = inspect::graph(&recipe)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&g).unwrap_or_default());
            } else {
                match format {
                    GraphFormat::Dot => print!("{}", g.dot()),
                    GraphFormat::Mermaid => print!("{}", g.mermaid()),
                }
            }
            Ok(0)
        }
        Cmd::Install {
            file,
            enable,
            now,
            wait: Wait { wait },
        } => {
            if wait.is_some() && !now {
                return Err(Error::Usage("--wait needs --now".into()));
            }
            let limit = wait.as_deref().map(timeout).transpose()?;
            up(&file, enable, now, limit)
        }
        Cmd::Up { file, timeout: t } => up(&file, false, true, Some(timeout(&t)?)),
        Cmd::Down { name } => {
            let stopped = install::down(name.as_deref())?;
            if stopped.is_empty() {
                println!("no workspace is loaded: nothing to stop");
            }
            for n in &stopped {
                println!("stopped workspace {n}");
            }
            Ok(0)
        }
        Cmd::Uninstall { name } => {
            install::uninstall(&name)?;
            println!("uninstalled workspace {name}");
            Ok(0)
        }
        Cmd::Start {
            name,
            wait: Wait { wait },
        } => {
            let limit = wait.as_deref().map(timeout).transpose()?;
            let (p, s) = load(&name)?;
            install::start(&p, s.as_deref())?;
            match limit {
                Some(l) => follow(p.workspace(), Until::Running, l),
                None => Ok(0),
            }
        }
        Cmd::Stop { name } => {
            let (p, s) = load(&name)?;
            install::stop(&p, s.as_deref())?;
            Ok(0)
        }
        Cmd::Restart { name } => {
            let (p, s) = load(&name)?;
            install::restart(&p, s.as_deref())?;
            Ok(0)
        }
        Cmd::Status { name, json } => show_status(name.as_deref(), json),
        Cmd::Metrics { http: false } => {
            print!("{}", krill_ctl::metrics::scrape()?);
            Ok(0)
        }
        Cmd::Metrics { http: true } => {
            // The client is gone or too slow: nothing more to do for this request.
            let _ = krill_ctl::metrics::serve_http(&mut std::io::stdin(), &mut std::io::stdout());
            Ok(0)
        }
        Cmd::Estop { name, reason } => {
            let r = estop::run(name.as_deref(), &reason)?;
            for s in &r.stopped {
                println!(
                    "emergency stop of workspace {}: {} (via {})",
                    s.workspace,
                    krill::runtime::status::printable(&reason),
                    s.via
                );
            }
            if r.stopped.is_empty() && r.failed.is_empty() {
                println!("no workspace is loaded: nothing to stop");
            }
            for (ws, why) in &r.failed {
                eprintln!("krill: emergency stop of workspace {ws} FAILED: {why}");
            }
            report_skipped(&r.skipped_recipes);
            Ok(if r.failed.is_empty() { 0 } else { 1 })
        }
        Cmd::Logs {
            name,
            files: true,
            args,
        } => {
            if !krill_ctl::remote::current().is_local() {
                return Err(Error::Usage(
                    "--files reads this machine's files; run `krill logs --files` on that host"
                        .into(),
                ));
            }
            if !args.is_empty() {
                return Err(Error::Usage(
                    "--files takes no journalctl options (pipe it to grep, tail or less)".into(),
                ));
            }
            krill_ctl::logfiles::show(&name, &mut std::io::stdout().lock())?;
            Ok(0)
        }
        Cmd::LogFiles { workspace } => krill_ctl::logfiles::run(&workspace),
        Cmd::Logs { name, args, .. } => {
            let host = krill_ctl::remote::current();
            let units = if host.is_local() {
                krill_ctl::logs::units(&name)?
            } else {
                krill_ctl::logs::remote_units(&status::gather(None)?, &name)?
            };
            // Every line names its unit, so a workspace's lines can be told apart.
            let mut argv: Vec<String> = vec!["journalctl".into(), "-o".into(), "with-unit".into()];
            if krill::runtime::scope::is_user() {
                argv.push("--user".into());
            }
            for u in units {
                argv.extend(["-u".into(), u]);
            }
            argv.extend(args);
            let st = host.command(&argv).status().map_err(Error::Journal)?;
            Ok(st.code().unwrap_or(1) as u8)
        }
        Cmd::Top { name, interval } => krill_ctl::top::run(name.as_deref(), timeout(&interval)?),
        Cmd::Fleet { cmd } => {
            let (FleetCmd::Status { fleet } | FleetCmd::Estop { fleet, .. }) = &cmd;
            let limit = timeout(&fleet.timeout)?;
            let hosts = krill_ctl::fleet::hosts(&fleet.hosts, fleet.file.as_deref(), limit)?;
            match &cmd {
                FleetCmd::Status { .. } => {
                    let answers = krill_ctl::fleet::status(&hosts, limit)?;
                    if fleet.json {
                        print_json(&answers);
                    } else {
                        print!("{}", krill_ctl::fleet::status_table(&answers));
                    }
                    Ok(if krill_ctl::fleet::all_ok(&answers) {
                        0
                    } else {
                        3
                    })
                }
                FleetCmd::Estop { reason, .. } => {
                    let answers = krill_ctl::fleet::estop(&hosts, limit, reason)?;
                    if fleet.json {
                        print_json(&answers);
                    } else {
                        print!("{}", krill_ctl::fleet::estop_table(&answers));
                    }
                    let failed = answers
                        .iter()
                        .any(|a| matches!(a.outcome, krill_ctl::fleet::Outcome::Error(_)));
                    Ok(u8::from(failed))
                }
            }
        }
        Cmd::Gate { condition, unit } => {
            let cond = match condition.as_str() {
                "started" => gate::Condition::Started,
                "healthy" => gate::Condition::Healthy,
                c => {
                    return Err(Error::Usage(format!(
                        "unknown condition {c:?}: expected started or healthy"
                    )))
                }
            };
            match gate::wait(&unit, cond) {
                Ok(()) => Ok(0),
                Err(why) => {
                    println!("dependency not met: {unit} is not {condition}: {why}");
                    Ok(1)
                }
            }
        }
        Cmd::OnFailure { critical, unit } => {
            let out = failure::handle(&failure::Request {
                unit: unit.clone(),
                critical,
            })?;
            match out {
                failure::Outcome::NotFinal(s) => {
                    println!("{unit} is {s}, not failed for good: nothing to do")
                }
                failure::Outcome::AlreadyHandled => {
                    println!("{unit}: this failure was already handled")
                }
                failure::Outcome::StoppedByKrill(why) => {
                    println!("{unit} failed while krill stopped it ({why}): not escalated")
                }
                failure::Outcome::WorkspaceStopping => {
                    println!("{unit} failed while its workspace is stopping: not escalated")
                }
                failure::Outcome::Cascaded(v) => println!(
                    "{unit} failed for good; stopped its dependents: {}",
                    if v.is_empty() {
                        "none running".into()
                    } else {
                        v.join(" ")
                    }
                ),
                failure::Outcome::EmergencyStop { reason } => {
                    println!("EMERGENCY STOP: {reason}; stopping the workspace")
                }
            }
            Ok(0)
        }
        Cmd::Exited { unit } => {
            let code = std::env::var("EXIT_CODE").unwrap_or_default();
            let status = std::env::var("EXIT_STATUS").unwrap_or_default();
            let v = exited::verdict(&code, &status, || {
                // A stop that systemd performs has a job; if the bus cannot tell,
                // assume it was one (never turn a real stop into a failure).
                krill_ctl::bus::Systemd::connect()
                    .map(|sd| sd.has_job(&unit))
                    .unwrap_or(true)
            });
            match v {
                exited::Verdict::AsSystemdSaid => Ok(0),
                exited::Verdict::StrayKill { signal } => {
                    println!(
                        "main process was killed by {signal}, which neither systemd nor krill sent: this run counts as a failure (krill contract S6)"
                    );
                    Ok(1)
                }
            }
        }
        Cmd::Ready { kind, what } => {
            use krill_ctl::ready;
            match kind.as_str() {
                "file" => ready::wait(
                    || ready::file_ready(std::path::Path::new(&what)),
                    ready::FILE_POLL,
                ),
                "tcp" => {
                    let port: u16 = what
                        .parse()
                        .map_err(|_| Error::Usage(format!("invalid port {what:?}")))?;
                    ready::wait(|| ready::tcp_ready(port), ready::TCP_POLL)
                }
                k => {
                    return Err(Error::Usage(format!(
                        "unknown readiness {k:?}: expected file or tcp"
                    )))
                }
            }
            Ok(0)
        }
        Cmd::Hook {
            kind,
            unit,
            command,
        } => {
            if kind != "on-restart" {
                return Err(Error::Usage(format!(
                    "unknown hook {kind:?}: expected on-restart"
                )));
            }
            let restarts =
                krill_ctl::bus::Systemd::connect()?.facts(std::slice::from_ref(&unit))[0].restarts;
            if restarts == 0 {
                return Ok(0);
            }
            println!("automatic restart {restarts} of {unit}: running its on_restart hook");
            use std::os::unix::process::CommandExt;
            let e = std::process::Command::new(&command[0])
                .args(&command[1..])
                .exec();
            eprintln!("krill: cannot run {}: {e}", command[0]);
            Ok(127)
        }
        Cmd::GpuCheck { unit } => match krill_ctl::gpu::probe(&krill_ctl::gpu::root()) {
            Ok(f) => {
                println!("GPU found: {} ({})", f.vendor, f.device.display());
                Ok(0)
            }
            Err(e) => {
                // The run's reason for `krill status` (systemd only sees exit 1).
                let inv = std::env::var("INVOCATION_ID").unwrap_or_default();
                if let (Some(u), false) = (&unit, inv.is_empty()) {
                    let why = format!("no usable GPU: {e}");
                    if let Err(err) =
                        krill::runtime::records::Records::default().record_reason(u, &inv, &why)
                    {
                        eprintln!("krill: {err}");
                    }
                }
                let who = unit.map(|u| format!("{u}: ")).unwrap_or_default();
                eprintln!("{who}{e}");
                Ok(1)
            }
        },
    }
}

/// The arguments; upstream's `krill-tui` name (a link to this program) is `krill top`.
fn argv() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let tui = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "krill-tui");
    if tui {
        args[0] = "krill".into();
        args.insert(1, "top".into());
    }
    args
}

/// How long plain `install --now` waits for the processes to start (10 s).
const STARTED_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

fn main() -> ExitCode {
    // `krill status | head` must end quietly when the reader goes away, as every Unix
    // filter does; Rust ignores SIGPIPE, and println! would panic on EPIPE instead.
    // SAFETY: called first, before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse_from(argv());
    match run(cli) {
        Ok(c) => ExitCode::from(c),
        Err(e) => {
            eprintln!("krill: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
