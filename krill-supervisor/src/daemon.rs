//! Wiring: the system bus, systemd's signals, the heartbeat socket, probes, timers.
//!
//! * On start, all state is rebuilt from systemd (unit states, InvocationIDs) and the
//!   installed recipes, and from `/run/krill/health` (passes already recorded).
//! * Unit state comes from `PropertiesChanged` signals of systemd, not polling.
//! * The heartbeat socket is socket-activated (`krill-supervisor.socket`), so it
//!   exists while the supervisor restarts; accepted connections are kept in systemd's
//!   fd store (`FDSTORE=1`) and taken back after a restart.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::net::{UnixListener, UnixStream};

use std::os::fd::{AsRawFd, RawFd};

use krill::runtime::paths::KRILL_SUPERVISOR;
use krill::runtime::records::Records;

use crate::api::{Api, NAME, PATH};
use crate::conns::Conns;
use crate::ctx::lock;
use crate::ctx::Ctx;
use crate::health::Supervisor;
use crate::notify;
use crate::reexec;
use crate::socket::{accept_loop, admit, listen_fds, serve};
use crate::systemd::ManagerProxy;
use crate::timers::{cpu_sampler, native_ping_loop, own_watchdog, pacer, timer_loop};
use crate::unit_watch::{
    emitter, refresh_all, refresher, reloader, unit_changes, watch_reloads, watch_units,
};

/// Spawns one of the supervisor's long-running tasks. None of them is meant to end:
/// if one does, its result is logged, so that a supervisor that silently stopped
/// watching something is visible in the journal.
fn spawn_task<T: std::fmt::Debug + Send + 'static>(
    name: &'static str,
    task: impl Future<Output = T> + Send + 'static,
) {
    tokio::spawn(async move {
        let r = task.await;
        tracing::error!("task {name} ended: {r:?}");
    });
}

/// Runs the supervisor until it is stopped.
pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let fds = listen_fds();
    let conn = krill::runtime::scope::bus().await?;
    let manager = ManagerProxy::new(&conn).await?;
    manager.subscribe().await?;
    // Both before the first read (refresh_all below), so no change is lost between.
    let unit_changes = unit_changes(&conn).await?;
    let reloads = manager.receive_reloading().await?;
    let ctx = Arc::new(Ctx {
        sup: Mutex::new(Supervisor::new(Records::default())),
        conn: conn.clone(),
        manager,
        next_fd_name: std::sync::atomic::AtomicU64::new(0),
        fd_name_prefix: format!(
            "hb-{}-{}",
            std::process::id(),
            krill::runtime::clock::realtime_us()
        ),
        live_fds: Mutex::new(BTreeMap::new()),
        wake: tokio::sync::Notify::new(),
        dirty: Mutex::new(Default::default()),
        wake_refresh: tokio::sync::Notify::new(),
        wake_reload: tokio::sync::Notify::new(),
        wake_native: tokio::sync::Notify::new(),
        to_emit: Mutex::new(Default::default()),
        wake_emit: tokio::sync::Notify::new(),
        beats_unpaced: std::sync::atomic::AtomicU32::new(0),
        wake_pacer: tokio::sync::Notify::new(),
        relay_sock: std::os::unix::net::UnixDatagram::unbound()?,
        conns: Mutex::new(Conns::from_rlimit()),
    });
    // Drained from now on: zbus stops reading the bus while a stream's queue is full,
    // and refresh_all's replies come over the same bus.
    spawn_task("watch_units", watch_units(ctx.clone(), unit_changes));
    spawn_task("watch_reloads", watch_reloads(ctx.clone(), reloads));
    conn.object_server()
        .at(PATH, Api { ctx: ctx.clone() })
        .await?;
    refresh_all(&ctx).await;
    rearm_watchdogs(&ctx);

    let mut listeners = 0;
    for (name, fd) in fds {
        let is_listener = nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::AcceptConn)
            .unwrap_or(false);
        if is_listener {
            let l = std::os::unix::net::UnixListener::from(fd);
            let key = if name.is_empty() || name.starts_with("hb-") {
                format!("listener-{listeners}")
            } else {
                name.clone()
            };
            lock(&ctx.live_fds).insert(key, l.as_raw_fd());
            l.set_nonblocking(true)?;
            spawn_task(
                "accept_loop",
                accept_loop(ctx.clone(), UnixListener::from_std(l)?),
            );
            listeners += 1;
        } else if name.starts_with("hb-") {
            let s = std::os::unix::net::UnixStream::from(fd);
            s.set_nonblocking(true)?;
            let s = UnixStream::from_std(s)?;
            match admit(&ctx, &s) {
                Ok(peer) => {
                    tracing::info!(
                        "took back heartbeat connection {name} of {} from the fd store",
                        peer.unit
                    );
                    tokio::spawn(serve(ctx.clone(), s, peer, Some(name)));
                }
                Err(_) => {
                    notify::own(&format!("FDSTOREREMOVE=1\nFDNAME={name}"), &[]);
                }
            }
        }
    }
    if listeners == 0 {
        // Not socket-activated (e.g. run by hand): bind the socket ourselves.
        let path = Records::default().dir().join("krill.sock");
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new("/")));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path)?;
        lock(&ctx.live_fds).insert("listener-0".into(), l.as_raw_fd());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
        spawn_task("accept_loop", accept_loop(ctx.clone(), l));
    }
    conn.request_name(NAME).await?;
    spawn_task("refresher", refresher(ctx.clone()));
    spawn_task("emitter", emitter(ctx.clone()));
    spawn_task("reloader", reloader(ctx.clone()));
    spawn_task("timer_loop", timer_loop(ctx.clone()));
    spawn_task("native_ping_loop", native_ping_loop(ctx.clone()));
    spawn_task("own_watchdog", own_watchdog());
    spawn_task("cpu_sampler", cpu_sampler(ctx.clone()));
    spawn_task("pacer", pacer(ctx.clone()));
    let n = ctx.sup().units.len();
    tracing::info!("krill-supervisor ready: watching {n} services");
    notify::own("READY=1", &[]);

    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::select! {
        _ = term.recv() => {
            notify::own("STOPPING=1", &[]);
            hand_back_watchdogs(&ctx);
            Ok(())
        }
        _ = hup.recv() => {
            // systemd waits for the new image's READY=1 to finish the reload.
            notify::own(
                &format!(
                    "RELOADING=1\nMONOTONIC_USEC={}",
                    krill::runtime::clock::monotonic_us()
                ),
                &[],
            );
            hand_back_watchdogs(&ctx);
            let fds: Vec<(String, RawFd)> = lock(&ctx.live_fds)
                .iter()
                .map(|(n, fd)| (n.clone(), *fd))
                .collect();
            tracing::info!(
                "reloading: re-executing {KRILL_SUPERVISOR} with {} fds",
                fds.len()
            );
            let e = reexec::reexec(&fds);
            Err(format!("cannot re-exec {KRILL_SUPERVISOR}: {e}").into())
        }
    }
}

/// Before the supervisor stops: disables the watchdog of every service whose
/// heartbeats it relays, and records which runs those were. A robot keeps its
/// services while an operator stops or restarts a monitoring daemon (design
/// principle 3); they are unwatched until a supervisor re-arms them. A crash or
/// SIGKILL cannot do this, but then systemd restarts the supervisor within 100 ms
/// with the connections from its fd store.
fn hand_back_watchdogs(ctx: &Ctx) {
    let (relayed, records) = {
        let sup = ctx.sup();
        (sup.relayed(), sup.records.clone())
    };
    for (unit, main_pid, invocation) in &relayed {
        if let Err(e) = records.record_unwatched(unit, invocation) {
            tracing::warn!("cannot record that {unit} is unwatched: {e}");
        }
        if let Err(e) = notify::set_watchdog(&ctx.relay_sock, *main_pid as i32, None) {
            tracing::warn!("cannot hand the watchdog of {unit} back: {e}");
        }
    }
    tracing::info!(
        "handed the watchdog of {} heartbeat services back to systemd (disabled until a supervisor re-arms it)",
        relayed.len()
    );
}

/// After start: re-arms the watchdogs a stopping supervisor handed back, with a ping
/// now, so that each service has its whole timeout to send the next heartbeat.
fn rearm_watchdogs(ctx: &Ctx) {
    let unwatched = ctx.sup().take_unwatched();
    for (unit, main_pid, wd) in &unwatched {
        if let Err(e) = notify::set_watchdog(&ctx.relay_sock, *main_pid as i32, Some(*wd)) {
            tracing::warn!("cannot re-arm the watchdog of {unit}: {e}");
        }
    }
    if !unwatched.is_empty() {
        tracing::info!(
            "re-armed the watchdog of {} heartbeat services",
            unwatched.len()
        );
    }
}
