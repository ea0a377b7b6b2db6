//! `krill top` (also `krill tui`, and upstream's `krill-tui` name): the live view of
//! workspaces and services, with upstream's keys.
//!
//! It shows the one status report ([`crate::status::gather_on`]), read again when a
//! signal says something changed ([`feed`]): krill-supervisor's `StateChanged`, or
//! systemd's `PropertiesChanged` while the supervisor is down. Figures that change
//! continuously by nature (CPU %, heartbeat age, uptime) are read again every
//! `--interval` (2 s). Actions go to systemd over the same connection, so `-H` and
//! `-M` work as for every other command.

pub mod feed;
pub mod model;
pub mod term;
pub mod view;

use std::io::{BufRead, IsTerminal};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use krill::runtime::bus::{self as kbus, Job};
use tokio::sync::mpsc;

use crate::error::Error;
use crate::remote;
use model::{Action, Model, Source};
use term::Input;

/// How often the continuously changing figures are read again, by default.
pub const DEFAULT_INTERVAL: &str = "2s";

/// Signals that arrive together are answered with one read: the wait after the
/// first (50 ms).
const COALESCE: Duration = Duration::from_millis(50);

/// Lines of history the logs view starts with.
const LOG_HISTORY: &str = "200";

/// The reason an emergency stop from `krill top` records.
pub const ESTOP_REASON: &str = "operator request (krill top)";

/// Runs the view until `q`, Ctrl-C, SIGTERM or SIGHUP.
pub fn run(workspace: Option<&str>, interval: Duration) -> Result<u8, Error> {
    if !std::io::stdout().is_terminal() {
        return Err(Error::Usage(
            "krill top needs a terminal; `krill status` prints the same report".into(),
        ));
    }
    crate::bus::runtime()?.block_on(async move {
        let host = remote::current();
        let conn = host.connect().await.map_err(crate::bus::Error::from)?;
        let feed = feed::start(&conn).await.map_err(crate::bus::Error::from)?;
        let mut model = Model::new(host.label());
        // Before the screen: a workspace that is not loaded is an ordinary error.
        let first = crate::status::gather_on(&conn, workspace).await?;
        model.set_report(first, source(&feed));
        let mut screen = term::Screen::enter().map_err(Error::Terminal)?;
        let mut inputs = term::inputs();
        let exit = term::exit_signal();
        tokio::pin!(exit);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut logs: Option<Follower> = None;
        loop {
            screen
                .terminal
                .draw(|f| view::draw(f, &model))
                .map_err(Error::Terminal)?;
            tokio::select! {
                _ = &mut exit => break,
                i = inputs.recv() => match i {
                    None | Some(Input::Interrupt) => break,
                    Some(Input::Resize) => {}
                    Some(Input::Key(k)) => {
                        let Some(a) = model.key(k) else { continue };
                        if a == Action::Quit {
                            break;
                        }
                        act(&conn, &mut model, &mut logs, a).await;
                        read(&conn, &feed, &mut model, workspace).await;
                    }
                },
                _ = feed.changed.notified() => {
                    tokio::time::sleep(COALESCE).await;
                    read(&conn, &feed, &mut model, workspace).await;
                }
                _ = tick.tick() => read(&conn, &feed, &mut model, workspace).await,
                line = next_line(&mut logs) => model.log_line(line),
            }
        }
        drop(logs);
        drop(screen);
        Ok(0)
    })
}

fn source(feed: &feed::Feed) -> Source {
    if feed.supervisor_up() {
        Source::Supervisor
    } else {
        Source::Systemd
    }
}

/// Reads the report again; a failed read keeps the last one on screen and says why.
async fn read(conn: &zbus::Connection, feed: &Arc<feed::Feed>, m: &mut Model, ws: Option<&str>) {
    match crate::status::gather_on(conn, ws).await {
        Ok(r) => m.set_report(r, source(feed)),
        Err(e) => m.message = Some(format!("cannot read the status: {e}")),
    }
}

/// Carries out `a`, and tells the operator how it went.
async fn act(conn: &zbus::Connection, m: &mut Model, logs: &mut Option<Follower>, a: Action) {
    m.message = outcome(conn, m, logs, a).await;
}

async fn outcome(
    conn: &zbus::Connection,
    m: &mut Model,
    logs: &mut Option<Follower>,
    a: Action,
) -> Option<String> {
    let outcome = |r: zbus::Result<Vec<(String, String)>>, what: String| match r {
        Ok(_) => Some(what),
        Err(e) => Some(format!("failed: {e}")),
    };
    match a {
        Action::Restart { unit } => {
            let _ = kbus::reset_failed(conn, std::slice::from_ref(&unit)).await;
            let r = kbus::queue_jobs(conn, Job::Restart, std::slice::from_ref(&unit), false).await;
            outcome(r, format!("restarting {unit}"))
        }
        Action::Stop { units } => {
            let r = kbus::queue_jobs(conn, Job::Stop, &units, false).await;
            outcome(r, format!("stopping {}", units.join(" ")))
        }
        Action::EmergencyStop { workspace } => {
            // The CLI's own emergency stop (root: systemd directly; group krill: the
            // supervisor), which runs its own bus client: on a thread of its own.
            let ws = workspace.clone();
            let r = tokio::task::spawn_blocking(move || crate::estop::run(Some(&ws), ESTOP_REASON))
                .await;
            Some(match r {
                Ok(Ok(rep)) if rep.failed.is_empty() => format!(
                    "EMERGENCY STOP of workspace {workspace} (via {})",
                    rep.stopped.first().map_or("systemd", |s| s.via)
                ),
                Ok(Ok(rep)) => format!(
                    "emergency stop of {workspace} FAILED: {}",
                    rep.failed
                        .iter()
                        .map(|(_, e)| e.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                Ok(Err(e)) => format!("emergency stop of {workspace} FAILED: {e}"),
                Err(e) => format!("emergency stop of {workspace} FAILED: {e}"),
            })
        }
        Action::FollowLogs { unit } => {
            let (ws, svc) = m
                .current()
                .map(|(w, s)| (w.workspace.clone(), s.service.clone()))?;
            let mut argv: Vec<String> = ["journalctl", "--no-pager", "-f", "-n", LOG_HISTORY]
                .map(str::to_owned)
                .to_vec();
            for u in crate::logs::service_units(&ws, &svc, &unit) {
                argv.extend(["-u".to_owned(), u]);
            }
            match Follower::start(remote::current().command(&argv)) {
                Ok(f) => {
                    *logs = Some(f);
                    None
                }
                Err(e) => Some(format!("cannot run journalctl: {e}")),
            }
        }
        Action::StopLogs => {
            *logs = None;
            None
        }
        Action::ReadCommand { unit } => match kbus::exec_start(conn, &unit).await {
            Ok(cmds) => {
                let words = |argv: &Vec<String>| {
                    argv.iter()
                        .map(|w| remote::sh_quote(w))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                m.command = Some(cmds.iter().map(words).collect::<Vec<_>>().join(" ; "));
                None
            }
            Err(e) => Some(format!("cannot read the command of {unit}: {e}")),
        },
        Action::Quit => None,
    }
}

/// A `journalctl --follow` feeding the logs view, ended when dropped.
struct Follower {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Follower {
    fn start(mut cmd: std::process::Command) -> std::io::Result<Follower> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let out = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Ok(Follower { child, lines })
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The next journal line, when the logs view follows one; never otherwise.
async fn next_line(f: &mut Option<Follower>) -> String {
    match f {
        Some(f) => match f.lines.recv().await {
            Some(l) => l,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}
