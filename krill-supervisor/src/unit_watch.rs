//! Following systemd: unit state changes (PropertiesChanged signals, coalesced) and
//! reloads (the generator ran: re-read the manifests). Every state read also
//! records the failure of a run that ended, for `krill status`'s `last_failure`.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;

use crate::api::{Api, PATH};
use crate::ctx::{lock, Ctx};
use crate::health;
use crate::systemd::{read_state, ReloadingStream};

/// Re-reads recipes and systemd's view of every watched unit.
pub async fn refresh_all(ctx: &Arc<Ctx>) {
    let config = health::load_config();
    let units: Vec<String> = config.keys().cloned().collect();
    ctx.sup().configure(config, Instant::now());
    refresh_many(ctx, &units).await;
}

/// Reads the state of `units`, every call in flight at once on the one connection:
/// when a workspace of 50 starts, systemd answers slowly, and 50 reads one after the
/// other would keep the supervisor from relaying a new run's first heartbeats (it
/// relays only for a MainPID it knows) until past the run's first watchdog deadline.
async fn refresh_many(ctx: &Arc<Ctx>, units: &[String]) {
    futures_util::future::join_all(units.iter().map(|u| refresh(ctx, u))).await;
}

/// Reads one unit's state from systemd and applies it.
async fn refresh(ctx: &Arc<Ctx>, unit: &str) {
    let Some(path) = ctx.path_of(unit) else {
        return;
    };
    let Ok(st) = read_state(&ctx.conn, &path).await else {
        return;
    };
    record_failure(ctx, unit, &st);
    let changed = ctx.sup().on_unit_state(unit, st, Instant::now());
    ctx.wake.notify_one();
    ctx.wake_native.notify_one();
    if changed {
        emit(ctx, unit).await;
    }
}

/// Records the failure of the run `st` describes, if it failed (once per run).
fn record_failure(ctx: &Arc<Ctx>, unit: &str, st: &crate::systemd::UnitState) {
    let sup = ctx.sup();
    let Some(t) = sup.units.get(unit) else {
        return;
    };
    if let Some(why) = krill::runtime::status::failure_of_run(&t.watched.svc, st, &sup.records) {
        match sup.records.record_failure(unit, &st.invocation, &why) {
            Ok(true) => tracing::warn!("{unit} failed: {why}"),
            Ok(false) => {}
            Err(e) => tracing::error!("cannot record the failure of {unit}: {e}"),
        }
    }
}

/// Queues `StateChanged` for `unit`, for [`emitter`]: for the heartbeat
/// connections' tasks, which never wait on the bus (and so do not hold a signal's
/// future in each connection's task).
pub fn emit_soon(ctx: &Ctx, unit: &str) {
    lock(&ctx.to_emit).insert(unit.to_owned());
    ctx.wake_emit.notify_one();
}

/// Sends the `StateChanged` signals [`emit_soon`] queued, each unit's once per batch
/// (with its state when sent).
pub async fn emitter(ctx: Arc<Ctx>) {
    loop {
        ctx.wake_emit.notified().await;
        loop {
            let batch = std::mem::take(&mut *lock(&ctx.to_emit));
            if batch.is_empty() {
                break;
            }
            for unit in batch {
                emit(&ctx, &unit).await;
            }
        }
    }
}

/// Emits `StateChanged` for `unit`.
pub async fn emit(ctx: &Arc<Ctx>, unit: &str) {
    let info = {
        let sup = ctx.sup();
        sup.units.get(unit).map(|t| {
            (
                t.watched.workspace.clone(),
                t.watched.service.clone(),
                format!("{}/{}", t.state.active, t.state.sub),
                t.health.as_str().to_owned(),
                t.reason.clone(),
            )
        })
    };
    let Some((ws, svc, state, health, reason)) = info else {
        return;
    };
    if let Ok(iface) = ctx.conn.object_server().interface::<_, Api>(PATH).await {
        let _ =
            Api::state_changed(iface.signal_emitter(), &ws, &svc, &state, &health, &reason).await;
    }
}

/// Signals queued for [`watch_units`] (256). The queue is allocated whole: with 4096
/// it held about 250 KB of the supervisor's resident memory. A full queue only makes
/// zbus wait before it reads on, and [`watch_units`] drains without waiting on
/// anything, so a burst is delayed, never lost.
const UNIT_CHANGES_QUEUED: usize = 256;

/// Subscribes to systemd's PropertiesChanged signals for units, for [`watch_units`].
/// Called before the supervisor's first read of unit states: a unit that changes
/// between that read and a later subscription would keep its stale state until its
/// next change, and a service that never sends a heartbeat would never be timed.
pub async fn unit_changes(conn: &zbus::Connection) -> zbus::Result<zbus::MessageStream> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender("org.freedesktop.systemd1")?
        .interface("org.freedesktop.DBus.Properties")?
        .member("PropertiesChanged")?
        .path_namespace("/org/freedesktop/systemd1/unit")?
        .build();
    zbus::MessageStream::for_match_rule(rule, conn, Some(UNIT_CHANGES_QUEUED)).await
}

/// Follows `stream` ([`unit_changes`]). The stream is only drained here, never
/// blocked on a D-Bus call: zbus stops reading the socket when a stream's queue is
/// full, and a consumer waiting for a method reply would then wait forever. Changed
/// units are queued for [`refresher`], which coalesces them.
pub async fn watch_units(ctx: Arc<Ctx>, mut stream: zbus::MessageStream) -> zbus::Result<()> {
    while let Some(msg) = stream.next().await {
        let Ok(msg) = msg else { continue };
        let Some(path) = msg.header().path().map(|p| p.to_string()) else {
            continue;
        };
        if let Some(unit) = ctx.unit_of_path(&path) {
            lock(&ctx.dirty).insert(unit);
            ctx.wake_refresh.notify_one();
        }
    }
    Ok(())
}

/// Reads the state of units whose properties changed, each once per batch.
pub async fn refresher(ctx: Arc<Ctx>) {
    loop {
        ctx.wake_refresh.notified().await;
        loop {
            let batch: Vec<String> = std::mem::take(&mut *lock(&ctx.dirty)).into_iter().collect();
            if batch.is_empty() {
                break;
            }
            refresh_many(&ctx, &batch).await;
        }
    }
}

/// Re-reads recipes after every `systemctl daemon-reload` (the generator just ran).
/// `s` is subscribed before the supervisor's first read of the manifests, for the
/// reason [`unit_changes`] gives: a reload in between would leave a new recipe
/// unwatched. Like [`watch_units`], this only drains its stream; [`reloader`] does
/// the work.
pub async fn watch_reloads(ctx: Arc<Ctx>, mut s: ReloadingStream) -> zbus::Result<()> {
    while let Some(sig) = s.next().await {
        if let Ok(args) = sig.args() {
            if !args.active {
                ctx.wake_reload.notify_one();
            }
        }
    }
    Ok(())
}

pub async fn reloader(ctx: Arc<Ctx>) {
    loop {
        ctx.wake_reload.notified().await;
        tracing::info!("systemd reloaded: re-reading recipes");
        refresh_all(&ctx).await;
    }
}
