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
}

/// The report of workspace `name`, or of every loaded workspace.
pub fn gather(name: Option<&str>) -> Result<Report, Error> {
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
    let workspaces = crate::bus::with_system(|conn| async move {
        let mut out = vec![];
        for m in &manifests {
            match from_supervisor(&conn, &m.workspace).await {
                Some(ws) => out.push(ws),
                None => {
                    let facts = status::read_facts(&conn, m).await;
                    out.push(status::assemble(m, &facts, &Records::default()));
                }
            }
        }
        Ok::<_, crate::bus::Error>(out)
    })?;
    Ok(Report {
        version: VERSION,
        workspaces,
        skipped_recipes,
    })
}

async fn from_supervisor(conn: &zbus::Connection, ws: &str) -> Option<status::WorkspaceStatus> {
    let json = crate::bus::supervisor_status(conn, ws).await.ok()?;
    let report: Report = serde_json::from_str(&json).ok()?;
    report.workspaces.into_iter().find(|w| w.workspace == ws)
}
