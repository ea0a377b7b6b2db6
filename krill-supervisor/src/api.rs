//! `org.krill.Supervisor1` at `/org/krill/Supervisor1` on the system bus.
//!
//! * `ListWorkspaces() -> as`
//! * `GetStatus(s workspace) -> s`: JSON, `{"workspaces":[...]}` (all when empty),
//!   the same shape `krill status --json` prints.
//! * `EmergencyStop(s workspace, s reason)`: root or group `krill` only (D-Bus policy).
//! * signal `StateChanged(s workspace, s service, s state, s health, s reason)`.
//! * property `Stats` (JSON counters of the heartbeat socket).

use std::sync::Arc;

use krill::runtime::manifest::Loaded;
use krill::runtime::status::{self, render_json, Report, SkippedRecipe, VERSION};
use zbus::object_server::SignalEmitter;

use crate::ctx::Ctx;

/// The D-Bus object.
pub struct Api {
    pub ctx: Arc<Ctx>,
}

pub use krill::runtime::bus::{SUPERVISOR_NAME as NAME, SUPERVISOR_PATH as PATH};

#[zbus::interface(name = "org.krill.Supervisor1")]
impl Api {
    async fn list_workspaces(&self) -> Vec<String> {
        let sup = self.ctx.sup();
        let v: std::collections::BTreeSet<String> = sup
            .units
            .values()
            .map(|t| t.watched.workspace.clone())
            .collect();
        v.into_iter().collect()
    }

    /// The status report ([`krill::runtime::status`]) of `workspace`, or of every
    /// loaded workspace when empty: systemd's facts read now, with the supervisor's
    /// health facts.
    async fn get_status(&self, workspace: &str) -> zbus::fdo::Result<String> {
        let loaded = Loaded::read();
        let manifests: Vec<_> = loaded
            .workspaces
            .values()
            .filter(|m| workspace.is_empty() || m.workspace == workspace)
            .collect();
        if manifests.is_empty() && !workspace.is_empty() {
            return Err(zbus::fdo::Error::InvalidArgs(format!(
                "no workspace {workspace:?} is loaded"
            )));
        }
        let (health, records) = {
            let sup = self.ctx.sup();
            (sup.health_facts(), sup.records.clone())
        };
        let mut workspaces = vec![];
        for m in manifests {
            let mut facts = status::read_facts(&self.ctx.conn, m).await;
            facts.health = m
                .services
                .iter()
                .filter_map(|s| health.get(&s.unit).map(|h| (s.unit.clone(), h.clone())))
                .collect();
            workspaces.push(status::assemble(m, &facts, &records));
        }
        Ok(render_json(&Report {
            version: VERSION,
            workspaces,
            skipped_recipes: loaded
                .rejected
                .iter()
                .map(|r| SkippedRecipe {
                    file: r.file.display().to_string(),
                    error: r.error.clone(),
                })
                .collect(),
        }))
    }

    /// Stops workspace `workspace` through systemd (its target and its slice). Acts on
    /// what systemd has loaded, so it works for a workspace the supervisor does not
    /// watch (its recipe was skipped or broken since).
    async fn emergency_stop(&self, workspace: &str, reason: &str) -> zbus::fdo::Result<()> {
        use krill::runtime::estop::{emergency_stop, Error};
        let records = self.ctx.sup().records.clone();
        let r = emergency_stop(Some(&self.ctx.conn), &records, workspace, reason).await;
        let reason = krill::runtime::status::printable(reason);
        match r {
            Ok(_) => {
                tracing::warn!("EMERGENCY STOP of workspace {workspace}: {reason}");
                Ok(())
            }
            Err(e @ Error::BadName(_)) => Err(zbus::fdo::Error::InvalidArgs(e.to_string())),
            Err(e @ Error::Record { .. }) => {
                tracing::warn!("EMERGENCY STOP of workspace {workspace}: {reason}");
                tracing::error!("{e}");
                Ok(())
            }
            Err(e @ Error::Stop { .. }) => {
                tracing::error!("EMERGENCY STOP of workspace {workspace} FAILED: {e}");
                Err(zbus::fdo::Error::Failed(e.to_string()))
            }
        }
    }

    #[zbus(property)]
    async fn stats(&self) -> String {
        let sup = self.ctx.sup();
        serde_json::to_string(&sup.stats).unwrap_or_default()
    }

    #[zbus(signal)]
    pub async fn state_changed(
        emitter: &SignalEmitter<'_>,
        workspace: &str,
        service: &str,
        state: &str,
        health: &str,
        reason: &str,
    ) -> zbus::Result<()>;
}
