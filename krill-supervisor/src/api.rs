//! `org.krill.Supervisor1` at `/org/krill/Supervisor1` on the system bus.
//!
//! * `ListWorkspaces() -> as`
//! * `GetStatus(s workspace) -> s`: JSON, `{"workspaces":[...]}` (all when empty),
//!   the same shape `krill status --json` prints.
//! * `EmergencyStop(s workspace, s reason)`: root or group `krill` only (D-Bus policy).
//! * signal `StateChanged(s workspace, s service, s state, s health, s reason)`.
//! * property `Stats` (JSON counters of the heartbeat socket).

use std::sync::Arc;

use serde_json::json;
use zbus::object_server::SignalEmitter;

use crate::daemon::Ctx;
use crate::systemd::read_state;

/// The D-Bus object.
pub struct Api {
    pub ctx: Arc<Ctx>,
}

/// Object path of the API.
pub const PATH: &str = "/org/krill/Supervisor1";
/// Bus name of the supervisor.
pub const NAME: &str = "org.krill.Supervisor1";

#[zbus::interface(name = "org.krill.Supervisor1")]
impl Api {
    async fn list_workspaces(&self) -> Vec<String> {
        let sup = self.ctx.sup.lock().unwrap_or_else(|e| e.into_inner());
        let v: std::collections::BTreeSet<String> = sup
            .units
            .values()
            .map(|t| t.watched.workspace.clone())
            .collect();
        v.into_iter().collect()
    }

    async fn get_status(&self, workspace: &str) -> zbus::fdo::Result<String> {
        let snapshot: Vec<_> = {
            let sup = self.ctx.sup.lock().unwrap_or_else(|e| e.into_inner());
            sup.units
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
                .collect()
        };
        if snapshot.is_empty() && !workspace.is_empty() {
            return Err(zbus::fdo::Error::InvalidArgs(format!(
                "no workspace {workspace:?} is installed"
            )));
        }
        let now = crate::daemon::monotonic_us();
        let mut by_ws: std::collections::BTreeMap<String, Vec<serde_json::Value>> =
            Default::default();
        let mut targets = std::collections::BTreeMap::new();
        for (w, health, reason, last_failure) in snapshot {
            let path = self.ctx.path_of(&w.unit);
            let st = match path {
                Some(p) => read_state(&self.ctx.conn, &p).await.unwrap_or_default(),
                None => Default::default(),
            };
            let restarts = if w.max_restarts > 0 {
                st.restarts.min(w.max_restarts)
            } else {
                st.restarts
            };
            let uptime = if st.active == "active" && st.started_us > 0 && now > st.started_us {
                (now - st.started_us) / 1_000_000
            } else {
                0
            };
            let reason = if reason.is_empty() {
                crate::daemon::stop_reason(&w.unit)
            } else {
                reason
            };
            targets.insert(w.workspace.clone(), w.target.clone());
            by_ws.entry(w.workspace.clone()).or_default().push(json!({
                "service": w.service, "unit": w.unit,
                "state": format!("{}/{}", st.active, st.sub),
                "health": health.as_str(), "reason": reason,
                "pid": st.main_pid, "restarts": restarts, "uptime_s": uptime,
                "result": st.result, "last_failure": last_failure,
            }));
        }
        let mut out = vec![];
        for (ws, services) in by_ws {
            let target = targets[&ws].clone();
            let tstate = match self.ctx.manager.load_unit(&target).await {
                Ok(p) => crate::systemd::active_state(&self.ctx.conn, &p)
                    .await
                    .unwrap_or_default(),
                Err(_) => String::new(),
            };
            out.push(json!({
                "workspace": ws, "target": target, "state": tstate,
                "estop": crate::daemon::estop_reason(&ws), "services": services,
            }));
        }
        Ok(json!({ "workspaces": out }).to_string())
    }

    async fn emergency_stop(&self, workspace: &str, reason: &str) -> zbus::fdo::Result<()> {
        let target = {
            let sup = self.ctx.sup.lock().unwrap_or_else(|e| e.into_inner());
            sup.units
                .values()
                .find(|t| t.watched.workspace == workspace)
                .map(|t| t.watched.target.clone())
        };
        let Some(target) = target else {
            return Err(zbus::fdo::Error::InvalidArgs(format!(
                "no workspace {workspace:?} is installed"
            )));
        };
        tracing::warn!("EMERGENCY STOP of workspace {workspace}: {reason}");
        crate::daemon::record_estop(workspace, reason);
        self.ctx
            .manager
            .stop_unit(&target, "replace")
            .await
            .map_err(|e| zbus::fdo::Error::Failed(format!("stopping {target}: {e}")))?;
        Ok(())
    }

    #[zbus(property)]
    async fn stats(&self) -> String {
        let sup = self.ctx.sup.lock().unwrap_or_else(|e| e.into_inner());
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
