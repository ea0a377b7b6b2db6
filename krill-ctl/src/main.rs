//! `krill-ctl`: the operator's CLI. See `krill-ctl --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use krill::runtime::installed::{discover, recipe_path};
use krill_ctl::error::Error;
use krill_ctl::wait::{self, Outcome, Until};
use krill_ctl::{estop, exited, failure, gate, install, status};

#[derive(Parser)]
#[command(name = "krill", version, about = "Krill: robot services on systemd", long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check a recipe; print every problem as FILE:LINE:COLUMN.
    Validate { file: PathBuf },
    /// Print the units a recipe compiles to (same as `krill-gen --dry-run`).
    Render { file: PathBuf },
    /// Show what `install` would change.
    Plan { file: PathBuf },
    /// Validate and install a recipe to /etc/krill/recipes, then reload systemd.
    Install {
        file: PathBuf,
        /// Start the workspace at boot.
        #[arg(long)]
        enable: bool,
        /// Start the workspace now. Exits 3 if a service could not start.
        #[arg(long)]
        now: bool,
        /// With --now: wait until every service runs and is healthy (at most
        /// TIMEOUT, default 90s), showing progress; exit 3 if one fails or time runs out.
        #[arg(long, value_name = "TIMEOUT", num_args = 0..=1, require_equals = true, default_missing_value = "90s")]
        wait: Option<String>,
    },
    /// Stop a workspace and remove its recipe.
    Uninstall { name: String },
    /// Start a workspace, or one service (with what it depends on): NAME[/SERVICE].
    Start {
        name: String,
        /// Wait until every service runs and is healthy (at most TIMEOUT, default
        /// 90s), showing progress; exit 3 if one fails or time runs out.
        #[arg(long, value_name = "TIMEOUT", num_args = 0..=1, require_equals = true, default_missing_value = "90s")]
        wait: Option<String>,
    },
    /// Stop a workspace, or one service and everything that depends on it.
    Stop { name: String },
    /// Restart a workspace or one service.
    Restart { name: String },
    /// Show services: state, health, PID, restarts, uptime, and why each one that is
    /// not running is not. Exit status: 0 when every selected workspace is running
    /// (every service up and healthy, or finished cleanly), 3 when something is not
    /// running or not healthy (systemctl's convention), 1 on errors, 2 on usage errors.
    Status {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Emergency stop: stop every process of a workspace (all workspaces without NAME).
    Estop {
        name: Option<String>,
        #[arg(long, default_value = "operator request")]
        reason: String,
    },
    /// Show logs: journalctl for the workspace or one service; extra args go to journalctl.
    Logs {
        name: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// (used by gate units) Wait until UNIT is started or healthy.
    #[command(hide = true)]
    Gate { condition: String, unit: String },
    /// (used by OnFailure= units) Cascade and emergency stop after a final failure.
    #[command(hide = true, name = "on-failure")]
    OnFailure {
        #[arg(long)]
        critical: bool,
        unit: String,
    },
    /// (used by `restart: never` services' ExecStopPost=) Fail a run whose main
    /// process was killed by a signal that neither krill nor systemd sent.
    #[command(hide = true)]
    Exited { unit: String },
    /// (used by gpu services' ExecStartPre=) Fail unless a GPU is usable.
    #[command(name = "gpu-check")]
    GpuCheck { unit: Option<String> },
}

fn load(name: &str) -> Result<(krill::Plan, Option<String>), Error> {
    let (ws, svc) = match name.split_once('/') {
        Some((w, s)) => (w, Some(s.to_owned())),
        None => (name, None),
    };
    let found = discover(&recipe_path());
    let path = found.get(ws).ok_or_else(|| {
        Error::NotInstalled(format!(
            "no workspace {ws:?} is installed (installed: {})",
            found.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let plan = krill::compile(path)?;
    Ok((plan, svc))
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

fn run(cli: Cli) -> Result<u8, Error> {
    match cli.cmd {
        Cmd::Validate { file } => match krill::compile(&file) {
            Ok(plan) => {
                for w in &plan.recipe.warnings {
                    eprintln!("warning: {}", w.display_in(&file.display().to_string()));
                }
                println!(
                    "{}: ok: workspace {} with {} services",
                    file.display(),
                    plan.workspace(),
                    plan.services.len()
                );
                Ok(0)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(1)
            }
        },
        Cmd::Render { file } => Ok(krill::compile::dry_run(
            &[file],
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ) as u8),
        Cmd::Plan { file } => {
            let d = install::plan(&file)?;
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
            if d == install::Diff::default() {
                println!("no changes");
            }
            Ok(0)
        }
        Cmd::Install {
            file,
            enable,
            now,
            wait,
        } => {
            if wait.is_some() && !now {
                return Err(Error::Usage("--wait needs --now".into()));
            }
            let limit = wait.as_deref().map(timeout).transpose()?;
            let (plan, d) = install::install(&file, install::InstallOptions { enable, now })?;
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
        Cmd::Uninstall { name } => {
            install::uninstall(&name)?;
            println!("uninstalled workspace {name}");
            Ok(0)
        }
        Cmd::Start { name, wait } => {
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
        Cmd::Status { name, json } => {
            let report = status::gather(name.as_deref())?;
            if json {
                println!("{}", status::render_json(&report));
            } else {
                if report.workspaces.is_empty() {
                    println!("no workspaces loaded");
                } else {
                    let t: Vec<String> =
                        report.workspaces.iter().map(status::render_table).collect();
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
        Cmd::Logs { name, args } => {
            let (p, s) = load(&name)?;
            let mut cmd = std::process::Command::new("journalctl");
            match s {
                Some(s) => {
                    let u = p.service(&s).ok_or_else(|| {
                        Error::NotInstalled(format!("no service {s:?} in {}", p.workspace()))
                    })?;
                    cmd.arg("-u").arg(&u.unit);
                    for g in u.gates.values().chain(u.on_failure.iter()) {
                        cmd.arg("-u").arg(g);
                    }
                }
                None => {
                    for (u, _) in p.unit_names() {
                        cmd.arg("-u").arg(u);
                    }
                }
            }
            let st = cmd.args(args).status().map_err(Error::Journal)?;
            Ok(st.code().unwrap_or(1) as u8)
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

/// How long plain `install --now` waits for the processes to start (10 s).
const STARTED_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(c) => ExitCode::from(c),
        Err(e) => {
            eprintln!("krill: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
