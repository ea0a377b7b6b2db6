//! `org.krill.Supervisor1` at `/org/krill/Supervisor1` on the system bus.
//!
//! * `ListWorkspaces() -> as`
//! * `GetStatus(s workspace) -> s`: JSON, `{"workspaces":[...]}` (all when empty),
//!   the same shape `krill status --json` prints.
//! * `EmergencyStop(s workspace, s reason)`: root or group `krill` only (D-Bus policy).
//! * signal `StateChanged(s workspace, s service, s state, s health, s reason)`.
//! * property `Stats` (JSON counters of the heartbeat socket).

use std::sync::Arc;

use krill::runtime::status::{render_json, restarts, uptime_s, ServiceStatus, WorkspaceStatus};
use zbus::object_server::SignalEmitter;

use crate::daemon::Ctx;
use crate::systemd::{active_state, read_state, unit_path};

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

    async fn get_status(&self, workspace: &str) -> zbus::fdo::Result<String> {
        let (snapshot, records) = {
            let sup = self.ctx.sup();
            let mut snapshot: Vec<_> = sup
                .units
                .values()
                .filter(|t| workspace.is_empty() || t.watched.workspace == workspace)
                .map(|t| {
                    (
                        t.watched.clone(),
                        t.health,
                        t.reason.clone(),
                        t.last_failure.clone(),
                    )
                })
                .collect();
            // Grouped by workspace (unit names alone do not group: `krill-a-b-x` may
            // belong to workspace `a-b` or `a`).
            snapshot.sort_by(|a, b| (&a.0.workspace, &a.0.unit).cmp(&(&b.0.workspace, &b.0.unit)));
            (snapshot, sup.records.clone())
        };
        if snapshot.is_empty() && !workspace.is_empty() {
            return Err(zbus::fdo::Error::InvalidArgs(format!(
                "no workspace {workspace:?} is installed"
            )));
        }
        let now = crate::daemon::monotonic_us();
        let mut out: Vec<WorkspaceStatus> = vec![];
        for (w, health, reason, last_failure) in snapshot {
            let st = read_state(&self.ctx.conn, &unit_path(&w.unit))
                .await
                .unwrap_or_default();
            if out.last().is_none_or(|ws| ws.workspace != w.workspace) {
                let state = active_state(&self.ctx.conn, &unit_path(&w.target))
                    .await
                    .unwrap_or_default();
                out.push(WorkspaceStatus {
                    workspace: w.workspace.clone(),
                    target: w.target.clone(),
                    state,
                    estop: records.estop_reason(&w.workspace),
                    services: vec![],
                });
            }
            let reason = if reason.is_empty() {
                records.stop_reason(&w.unit).unwrap_or_default()
            } else {
                reason
            };
            let services = &mut out.last_mut().expect("pushed above").services;
            services.push(ServiceStatus {
                state: format!("{}/{}", st.active, st.sub),
                health: health.as_str().to_owned(),
                reason,
                pid: st.main_pid,
                restarts: restarts(st.restarts, w.max_restarts),
                uptime_s: uptime_s(st.active == "active", st.started_us, now),
                result: st.result,
                last_failure,
                service: w.service,
                unit: w.unit,
            });
        }
        Ok(render_json(&out))
    }

    /// Stops workspace `workspace` through systemd (its target and its slice). Acts on
    /// what systemd has loaded, so it works for a workspace the supervisor does not
    /// watch (its recipe was skipped or broken since).
    async fn emergency_stop(&self, workspace: &str, reason: &str) -> zbus::fdo::Result<()> {
        if !krill::runtime::names::valid_name(workspace) {
            return Err(zbus::fdo::Error::InvalidArgs(format!(
                "invalid workspace name {workspace:?}"
            )));
        }
        let reason = krill::runtime::status::printable(reason);
        tracing::warn!("EMERGENCY STOP of workspace {workspace}: {reason}");
        self.ctx.sup().records.record_estop(workspace, &reason);
        krill::runtime::bus::stop_workspace(&self.ctx.conn, workspace)
            .await
            .map_err(|e| zbus::fdo::Error::Failed(format!("stopping workspace {workspace}: {e}")))
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
