//! `krill estop [NAME]`: the operator's emergency stop. It acts on what systemd has
//! loaded (the `krill-*.target` units and the workspace slices), never on recipe
//! files, so a broken, colliding or half-edited recipe cannot blind it. Recipes the
//! generator skipped are reported beside the result.

use krill::runtime::manifest::Loaded;
use krill::runtime::records::Records;

use crate::bus;

/// How one workspace was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    pub workspace: String,
    /// `krill-supervisor`, or systemd directly when the supervisor did not answer.
    pub via: &'static str,
}

/// The result of an emergency stop.
#[derive(Debug, Default)]
pub struct Report {
    pub stopped: Vec<Stopped>,
    /// (workspace, why it could not be stopped)
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
    #[error("emergency stop failed: {0}")]
    Fallback(String),
}

/// Stops `name`, or every workspace systemd has loaded.
pub fn run(name: Option<&str>, reason: &str) -> Result<Report, Error> {
    if let Some(n) = name {
        if !krill::runtime::names::valid_name(n) {
            return Err(Error::BadName(n.to_owned()));
        }
    }
    let reason = krill::runtime::status::printable(reason);
    let skipped = Loaded::read().rejected;
    let mut report = Report {
        skipped_recipes: skipped.clone(),
        ..Report::default()
    };
    let via_bus = bus::with_system(|conn| async move {
        let loaded = bus::loaded_workspaces(&conn).await?;
        let names = match name {
            Some(n) if loaded.iter().any(|l| l == n) => vec![n.to_owned()],
            Some(n) => return Err(Error::Unknown(n.to_owned(), loaded.join(", "))),
            None => loaded,
        };
        for ws in names {
            // The supervisor records and logs it; without it, systemd directly.
            match bus::supervisor_estop(&conn, &ws, &reason).await {
                Ok(()) => report.stopped.push(Stopped {
                    workspace: ws,
                    via: "krill-supervisor",
                }),
                Err(_) => {
                    if let Err(e) = Records::default().record_estop(&ws, &reason) {
                        eprintln!("krill: {e}");
                    }
                    match bus::stop_workspace(&conn, &ws).await {
                        Ok(()) => report.stopped.push(Stopped {
                            workspace: ws,
                            via: "systemd (supervisor not reachable)",
                        }),
                        Err(e) => report.failed.push((ws, e.to_string())),
                    }
                }
            }
        }
        Ok(report)
    });
    match via_bus {
        // Without the system bus, systemd's private socket (systemctl) still works:
        // stop every loaded workspace target and slice by pattern.
        Err(Error::Bus(e)) => {
            let (t, s) = match name {
                Some(n) => (
                    krill::runtime::names::target(n),
                    krill::runtime::names::slice(n),
                ),
                None => ("krill-*.target".to_owned(), "krill-*.slice".to_owned()),
            };
            crate::systemctl::run(&["stop", "--no-block", "--", &t, &s])
                .map_err(|se| Error::Fallback(format!("D-Bus: {e}; systemctl: {se}")))?;
            Ok(Report {
                stopped: vec![Stopped {
                    workspace: name.unwrap_or("every loaded workspace").to_owned(),
                    via: "systemctl (system bus not reachable)",
                }],
                skipped_recipes: skipped,
                ..Report::default()
            })
        }
        other => other,
    }
}
