//! `krill-ctl status`: the status report of loaded workspaces. The supervisor answers
//! when it runs (it knows heartbeat intervals and probe errors); otherwise the same
//! [`krill::runtime::status::assemble`] runs here on systemd's facts and krill's
//! records. Which workspaces exist comes from the generator's manifests, never from
//! recipe files.

use krill::runtime::manifest::{Loaded, Manifest};
use krill::runtime::records::Records;
use krill::runtime::status::{self, Report, SkippedRecipe, VERSION};

pub use krill::runtime::status::{render_json, render_table};

/// Why no report could be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no workspace {name:?} is loaded (loaded: {loaded})")]
    NotLoaded { name: String, loaded: String },
    #[error("cannot read the status from systemd: {0}")]
    Bus(#[from] crate::bus::Error),
    /// Another host's status comes from its krill-supervisor only.
    #[error("krill-supervisor on {host} did not answer: {source}")]
    Remote {
        host: String,
        source: Box<crate::bus::Error>,
    },
}

/// The report of workspace `name`, or of every loaded workspace.
pub fn gather(name: Option<&str>) -> Result<Report, Error> {
    crate::bus::with_system(|conn| async move { gather_on(&conn, name).await })
}

/// [`gather`] on `conn`, a connection to the system bus of
/// [`crate::remote::current`]. On another host only its supervisor can answer (its
/// manifests and records are there); here its absence falls back to systemd's facts.
pub async fn gather_on(conn: &zbus::Connection, name: Option<&str>) -> Result<Report, Error> {
    let host = crate::remote::current();
    if !host.is_local() {
        return remote(conn, host.label(), name).await;
    }
    let loaded = Loaded::read();
    let manifests: Vec<Manifest> = match name {
        Some(n) => vec![loaded
            .workspaces
            .get(n)
            .cloned()
            .ok_or_else(|| Error::NotLoaded {
                name: n.to_owned(),
                loaded: loaded
                    .workspaces
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })?],
        None => loaded.workspaces.values().cloned().collect(),
    };
    let skipped_recipes = loaded
        .rejected
        .iter()
        .map(|r| SkippedRecipe {
            file: r.file.display().to_string(),
            error: r.error.clone(),
        })
        .collect();
    let mut workspaces = vec![];
    for m in &manifests {
        match from_supervisor(conn, &m.workspace).await {
            Some(ws) => workspaces.push(ws),
            None => {
                let facts = status::read_facts(conn, m).await;
                workspaces.push(status::assemble(m, &facts, &Records::default()));
            }
        }
    }
    Ok(Report {
        version: VERSION,
        workspaces,
        skipped_recipes,
    })
}

/// The report of another host (`host` names it in errors): from its supervisor.
pub async fn remote(
    conn: &zbus::Connection,
    host: &str,
    name: Option<&str>,
) -> Result<Report, Error> {
    let host = host.to_owned();
    let json = crate::bus::supervisor_status(conn, name.unwrap_or(""))
        .await
        .map_err(|e| match e {
            crate::bus::Error::Fdo(zbus::fdo::Error::InvalidArgs(m)) => Error::NotLoaded {
                name: name.unwrap_or_default().to_owned(),
                loaded: m,
            },
            e => Error::Remote {
                host,
                source: Box::new(e),
            },
        })?;
    serde_json::from_str(&json).map_err(|e| Error::Bus(crate::bus::Error::Protocol(e.to_string())))
}

async fn from_supervisor(conn: &zbus::Connection, ws: &str) -> Option<status::WorkspaceStatus> {
    let json = crate::bus::supervisor_status(conn, ws).await.ok()?;
    let report: Report = serde_json::from_str(&json).ok()?;
    report.workspaces.into_iter().find(|w| w.workspace == ws)
}
