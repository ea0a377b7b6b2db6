//! `krill estop [NAME]`: the operator's emergency stop. As root it calls
//! [`krill::runtime::estop::emergency_stop`] itself, so krill-supervisor is never in
//! the way, and a dead or hung dbus-daemon only sends it through systemd's private
//! socket. Members of group `krill` ask krill-supervisor, which calls the same
//! function. Recipes the generator skipped are reported beside the result.

use std::time::Instant;

use krill::runtime::bus as kbus;
use krill::runtime::manifest::Loaded;
use krill::runtime::records::Records;

use crate::bus;

/// How one workspace was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    pub workspace: String,
    /// `systemd` (root) or `krill-supervisor` (group krill).
    pub via: &'static str,
}

/// The result of an emergency stop.
#[derive(Debug, Default)]
pub struct Report {
    pub stopped: Vec<Stopped>,
    /// (workspace, why it could not be stopped, or what went wrong beside the stop)
    pub failed: Vec<(String, String)>,
    /// Recipes the generator skipped at the latest reload (not running as such).
    pub skipped_recipes: Vec<krill::runtime::manifest::Rejected>,
}

/// Why the emergency stop could not even start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid workspace name {0:?}")]
    BadName(String),
    #[error("systemd has no workspace {0:?} loaded (loaded: {1})")]
    Unknown(String, String),
    #[error(transparent)]
    Bus(#[from] bus::Error),
}

impl From<zbus::Error> for Error {
    fn from(e: zbus::Error) -> Self {
        Error::Bus(e.into())
    }
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(krill::runtime::estop::BUS_TIMEOUT, f)
        .await
        .ok()
}

fn select(name: Option<&str>, loaded: Vec<String>) -> Result<Vec<String>, Error> {
    match name {
        Some(n) if loaded.iter().any(|l| l == n) => Ok(vec![n.to_owned()]),
        Some(n) => Err(Error::Unknown(n.to_owned(), loaded.join(", "))),
        None => Ok(loaded),
    }
}

/// Emergency stop of `ws` on another host's bus: first its systemd (the stop is
/// queued whatever its supervisor does), then its krill-supervisor, which records the
/// reason for that host's `krill status` (and is the door for group `krill`, whom
/// systemd refuses). Returns how it was stopped, and when the stop was queued.
pub async fn on_remote(
    conn: &zbus::Connection,
    ws: &str,
    reason: &str,
) -> Result<(&'static str, Instant), String> {
    let direct = match bounded(kbus::stop_workspace(conn, ws)).await {
        Some(Ok(())) => Ok(Instant::now()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err(format!(
            "no answer within {:?}",
            krill::runtime::estop::BUS_TIMEOUT
        )),
    };
    let recorded = bus::supervisor_estop(conn, ws, reason).await;
    match (direct, recorded) {
        (Ok(at), Ok(())) => Ok(("systemd and krill-supervisor", at)),
        (Ok(at), Err(_)) => Ok((
            "systemd (krill-supervisor did not answer: reason not recorded)",
            at,
        )),
        (Err(_), Ok(())) => Ok(("krill-supervisor", Instant::now())),
        (Err(d), Err(r)) => Err(format!("systemd: {d}; krill-supervisor: {r}")),
    }
}

/// Stops `name`, or every workspace systemd has loaded.
pub fn run(name: Option<&str>, reason: &str) -> Result<Report, Error> {
    if let Some(n) = name {
        if !krill::runtime::names::valid_name(n) {
            return Err(Error::BadName(n.to_owned()));
        }
    }
    if !crate::remote::current().is_local() {
        return bus::with_system(|conn| async move {
            let mut report = Report::default();
            for ws in select(name, kbus::loaded_workspaces(&conn).await?)? {
                match on_remote(&conn, &ws, reason).await {
                    Ok((via, _)) => report.stopped.push(Stopped { workspace: ws, via }),
                    Err(e) => report.failed.push((ws, e)),
                }
            }
            Ok(report)
        });
    }
    let mut report = Report {
        skipped_recipes: Loaded::read().rejected,
        ..Report::default()
    };
    // Root, or the owner of a user manager: stop through systemd directly.
    if kbus::is_root() || krill::runtime::scope::is_user() {
        let stopped = bus::runtime()?.block_on(async {
            use krill::runtime::estop::{emergency_stop, Error as E, Via};
            let conn = bounded(krill::runtime::scope::bus())
                .await
                .and_then(Result::ok);
            // What systemd has loaded: from systemd, or without a bus from the
            // generator's manifests of the latest reload.
            let loaded = match &conn {
                Some(c) => bounded(kbus::loaded_workspaces(c))
                    .await
                    .and_then(Result::ok),
                None => None,
            }
            .unwrap_or_else(|| Loaded::read().workspaces.into_keys().collect());
            let names = select(name, loaded)?;
            let records = Records::default();
            for ws in names {
                let via = |v| match v {
                    Via::Bus => "systemd",
                    Via::PrivateSocket => "systemd's private socket: the system bus did not answer",
                };
                match emergency_stop(conn.as_ref(), &records, &ws, reason).await {
                    Ok(v) => report.stopped.push(Stopped {
                        workspace: ws,
                        via: via(v),
                    }),
                    Err(e @ E::Record { .. }) => {
                        report.stopped.push(Stopped {
                            workspace: ws.clone(),
                            via: "systemd",
                        });
                        report.failed.push((ws, e.to_string()));
                    }
                    Err(e) => report.failed.push((ws, e.to_string())),
                }
            }
            Ok::<_, Error>(report)
        })?;
        return Ok(stopped);
    }
    bus::with_system(|conn| async move {
        let names = select(name, kbus::loaded_workspaces(&conn).await?)?;
        for ws in names {
            match bus::supervisor_estop(&conn, &ws, reason).await {
                Ok(()) => report.stopped.push(Stopped {
                    workspace: ws,
                    via: "krill-supervisor",
                }),
                Err(e) => report.failed.push((
                    ws,
                    format!("{e} (an emergency stop needs root, or group krill and a running krill-supervisor)"),
                )),
            }
        }
        Ok(report)
    })
}
