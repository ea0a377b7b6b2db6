//! Wiring: the system bus, systemd's signals, the heartbeat socket, probes, timers.
//!
//! * On start, all state is rebuilt from systemd (unit states, InvocationIDs) and the
//!   installed recipes, and from `/run/krill/health` (passes already recorded).
//! * Unit state comes from `PropertiesChanged` signals of systemd, not polling.
//! * The heartbeat socket is socket-activated (`krill-supervisor.socket`), so it
//!   exists while the supervisor restarts; accepted connections are kept in systemd's
//!   fd store (`FDSTORE=1`) and taken back after a restart.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use zbus::zvariant::OwnedObjectPath;

use krill::runtime::records::Records;
use krill::runtime::timing::RELAY_INTERVAL;

use crate::api::{Api, NAME, PATH};
use crate::auth;
use crate::conns::Conns;
use crate::health::{self, BeatOutcome, ProbeOutcome, Supervisor};
use crate::notify;
use crate::protocol::{self, MAX_LINE};
use crate::systemd::{read_state, ManagerProxy};

/// Shared context of all tasks.
pub struct Ctx {
    pub sup: Mutex<Supervisor>,
    pub conn: zbus::Connection,
    pub manager: ManagerProxy<'static>,
    last_relay: Mutex<BTreeMap<String, Instant>>,
    next_fd_name: std::sync::atomic::AtomicU64,
    /// Wakes the timer loop when deadlines may have moved.
    wake: tokio::sync::Notify,
    /// Units whose state systemd reported changed, not yet re-read.
    dirty: Mutex<std::collections::BTreeSet<String>>,
    wake_refresh: tokio::sync::Notify,
    wake_reload: tokio::sync::Notify,
    /// Wakes the plain-sd_notify poller when a unit's state changed.
    wake_native: tokio::sync::Notify,
    /// One datagram socket for all watchdog relays.
    relay_sock: std::os::unix::net::UnixDatagram,
    /// Open heartbeat connections, counted against their caps.
    conns: Mutex<Conns>,
}

impl Ctx {
    /// The supervisor's state.
    pub fn sup(&self) -> MutexGuard<'_, Supervisor> {
        lock(&self.sup)
    }

    /// The connection counts.
    pub fn conns(&self) -> MutexGuard<'_, Conns> {
        lock(&self.conns)
    }

    /// The object path of a watched unit (derived from its name, as systemd does).
    pub fn path_of(&self, unit: &str) -> Option<OwnedObjectPath> {
        self.sup()
            .units
            .contains_key(unit)
            .then(|| crate::systemd::unit_path(unit))
    }

    /// The watched unit an object path belongs to.
    fn unit_of_path(&self, path: &str) -> Option<String> {
        crate::systemd::unit_of_path(path).filter(|u| self.sup().units.contains_key(u))
    }
}

/// Locks `m`; a lock poisoned by a panicking holder is taken over (the state is
/// simple records, and the supervisor must keep running).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// CLOCK_MONOTONIC in µs (systemd's `*TimestampMonotonic` clock).
pub fn monotonic_us() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
        .unwrap_or(0)
}

/// File descriptors passed by systemd (`LISTEN_FDS`), with their names.
fn listen_fds() -> Vec<(String, OwnedFd)> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let n: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .unwrap_or_default()
        .split(':')
        .map(str::to_owned)
        .collect();
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(v);
    }
    if !pid_ok {
        return vec![];
    }
    (0..n)
        .map(|i| {
            let fd = 3 + i;
            let _ = nix::fcntl::fcntl(
                unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            );
            // SAFETY: systemd passes fds 3..3+LISTEN_FDS to us, each exactly once.
            (names.get(i as usize).cloned().unwrap_or_default(), unsafe {
                OwnedFd::from_raw_fd(fd)
            })
        })
        .collect()
}

/// Re-reads recipes and systemd's view of every watched unit.
async fn refresh_all(ctx: &Arc<Ctx>) {
    let config = health::load_config();
    let units: Vec<String> = config.keys().cloned().collect();
    ctx.sup().configure(config, Instant::now());
    for u in &units {
        refresh(ctx, u).await;
    }
}

/// Reads one unit's state from systemd and applies it.
async fn refresh(ctx: &Arc<Ctx>, unit: &str) {
    let Some(path) = ctx.path_of(unit) else {
        return;
    };
    let Ok(st) = read_state(&ctx.conn, &path).await else {
        return;
    };
    let changed = ctx.sup().on_unit_state(unit, st, Instant::now());
    ctx.wake.notify_one();
    ctx.wake_native.notify_one();
    if changed {
        emit(ctx, unit).await;
    }
}

/// Emits `StateChanged` for `unit`.
async fn emit(ctx: &Arc<Ctx>, unit: &str) {
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

/// Follows systemd's PropertiesChanged signals for units. The stream is only
/// drained here, never blocked on a D-Bus call: zbus stops reading the socket when a
/// stream's queue is full, and a consumer waiting for a method reply would then
/// wait forever. Changed units are queued for [`refresher`], which coalesces them.
async fn watch_units(ctx: Arc<Ctx>) -> zbus::Result<()> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender("org.freedesktop.systemd1")?
        .interface("org.freedesktop.DBus.Properties")?
        .member("PropertiesChanged")?
        .path_namespace("/org/freedesktop/systemd1/unit")?
        .build();
    let mut stream = zbus::MessageStream::for_match_rule(rule, &ctx.conn, Some(4096)).await?;
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
async fn refresher(ctx: Arc<Ctx>) {
    loop {
        ctx.wake_refresh.notified().await;
        loop {
            let batch: Vec<String> = std::mem::take(&mut *lock(&ctx.dirty)).into_iter().collect();
            if batch.is_empty() {
                break;
            }
            for u in batch {
                refresh(&ctx, &u).await;
            }
        }
    }
}

/// Re-reads recipes after every `systemctl daemon-reload` (the generator just ran).
/// Like [`watch_units`], this only drains its stream; [`reloader`] does the work.
async fn watch_reloads(ctx: Arc<Ctx>) -> zbus::Result<()> {
    let mut s = ctx.manager.receive_reloading().await?;
    while let Some(sig) = s.next().await {
        if let Ok(args) = sig.args() {
            if !args.active {
                ctx.wake_reload.notify_one();
            }
        }
    }
    Ok(())
}

async fn reloader(ctx: Arc<Ctx>) {
    loop {
        ctx.wake_reload.notified().await;
        tracing::info!("systemd reloaded: re-reading recipes");
        refresh_all(&ctx).await;
    }
}

/// Sleeps until the next probe or heartbeat deadline (at most 1 s, and woken early
/// when state changes), then runs due probes and marks silent heartbeat services.
/// Nothing to do means no wakeups but the 1 s one.
async fn timer_loop(ctx: Arc<Ctx>) {
    loop {
        let next = ctx.sup().next_deadline();
        let cap = tokio::time::Instant::now() + Duration::from_secs(1);
        let until = next
            .map(|n| tokio::time::Instant::from_std(n).min(cap))
            .unwrap_or(cap);
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = ctx.wake.notified() => {}
        }
        let now = Instant::now();
        let changed = ctx.sup().sweep(now);
        for u in changed {
            tracing::warn!("{u}: heartbeat timed out");
            emit(&ctx, &u).await;
        }
        let due = ctx.sup().due_probes(now);
        for (unit, check, watched) in due {
            tokio::spawn(run_probe(ctx.clone(), unit, check, watched));
        }
    }
}

async fn run_probe(
    ctx: Arc<Ctx>,
    unit: String,
    check: krill::runtime::check::HealthCheck,
    watched: health::Watched,
) {
    let inv = ctx
        .sup()
        .units
        .get(&unit)
        .map(|t| t.state.invocation.clone())
        .unwrap_or_default();
    let result = crate::probes::run(&check, &watched, Some(&ctx.conn)).await;
    let outcome = ctx.sup().on_probe(&unit, &inv, result, Instant::now());
    ctx.wake.notify_one();
    match outcome {
        ProbeOutcome::Unchanged => {}
        ProbeOutcome::Changed => emit(&ctx, &unit).await,
        ProbeOutcome::Fail(reason) => {
            tracing::warn!(
                "{unit} is unhealthy: {reason}; failing it so that its restart policy applies"
            );
            emit(&ctx, &unit).await;
            // SIGABRT to the main process, as systemd's own watchdog does: an unclean
            // death, so Restart=on-failure applies.
            if let Err(e) = ctx.manager.kill_unit(&unit, "main", libc::SIGABRT).await {
                tracing::error!("cannot fail {unit}: {e}");
            }
        }
    }
}

/// Looks at systemd's watchdog timestamp of heartbeat services that do not use the
/// socket (plain sd_notify clients), twice a second: their pings go to systemd
/// directly, and this is how they become healthy for `healthy` gates.
async fn native_ping_loop(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let units = ctx.sup().native_candidates();
        if units.is_empty() {
            // Nothing to poll: wait for a state change instead of ticking.
            ctx.wake_native.notified().await;
            continue;
        }
        for u in units {
            let Some(path) = ctx.path_of(&u) else {
                continue;
            };
            let Ok(st) = read_state(&ctx.conn, &path).await else {
                continue;
            };
            let changed = ctx.sup().on_native_ping(&u, &st, Instant::now());
            if changed {
                emit(&ctx, &u).await;
            }
        }
    }
}

/// Pings the supervisor's own watchdog at half its interval.
async fn own_watchdog() {
    let Some(usec) = std::env::var("WATCHDOG_USEC")
        .ok()
        .and_then(|u| u.parse::<u64>().ok())
    else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_micros(usec / 2));
    loop {
        tick.tick().await;
        notify::own("WATCHDOG=1", &[]);
    }
}

/// Serves one authenticated heartbeat connection of `unit` until it closes.
async fn serve(ctx: Arc<Ctx>, mut stream: UnixStream, peer: Peer, fd_name: Option<String>) {
    let unit = Some(peer.unit.clone());
    let pid = peer.pid;
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut chunk = [0u8; 8192];
    let mut skipping = false;
    let mut complaints = 0u32;
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut rest = &chunk[..n];
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            if skipping {
                skipping = false;
            } else {
                buf.extend_from_slice(&rest[..i]);
                handle_line(&ctx, unit.as_deref(), pid, &buf, &mut complaints).await;
            }
            buf.clear();
            rest = &rest[i + 1..];
        }
        if !skipping {
            buf.extend_from_slice(rest);
            if buf.len() > MAX_LINE {
                // Refuse the oversized line, keep the connection, resync at the next newline.
                handle_line(&ctx, unit.as_deref(), pid, &buf, &mut complaints).await;
                buf.clear();
                skipping = true;
            }
        }
    }
    if let Some(name) = fd_name {
        notify::own(&format!("FDSTOREREMOVE=1\nFDNAME={name}"), &[]);
    }
    ctx.conns().close(&peer);
    ctx.sup().stats.open_connections = ctx.conns().total as u64;
}

async fn handle_line(
    ctx: &Arc<Ctx>,
    unit: Option<&str>,
    pid: i32,
    line: &[u8],
    complaints: &mut u32,
) {
    if line.is_empty() {
        return;
    }
    let mut complain = |msg: String| {
        *complaints += 1;
        // The first few per connection, then one in a thousand: a broken client must
        // not flood the journal.
        if *complaints <= 3 || complaints.is_multiple_of(1000) {
            tracing::warn!(
                "pid {pid} ({}): {msg} [{} so far on this connection]",
                unit.unwrap_or("no unit"),
                complaints
            );
        }
    };
    let hb = match protocol::parse(line) {
        Ok(hb) => hb,
        Err(e) => {
            {
                let mut sup = ctx.sup();
                match e {
                    protocol::Refused::Oversized => sup.stats.oversized += 1,
                    protocol::Refused::Malformed(_) => sup.stats.malformed += 1,
                    protocol::Refused::UnknownType(_) => sup.stats.unknown_type += 1,
                }
            }
            complain(format!("refused: {e}"));
            return;
        }
    };
    let outcome = ctx.sup().on_heartbeat(unit, pid, &hb, Instant::now());
    match outcome {
        BeatOutcome::Refused(msg) => complain(msg),
        BeatOutcome::Accepted { relay_pid, changed } => {
            if let (Some(main_pid), Some(u)) = (relay_pid, unit) {
                relay(ctx, u, main_pid);
            }
            if changed {
                if let Some(u) = unit {
                    emit(ctx, u).await;
                }
            }
        }
    }
}

/// Relays `WATCHDOG=1` for `unit`, at most every [`RELAY_INTERVAL`]: a chatty client
/// must not load PID 1. krill-gen gives `WatchdogSec=` exactly that much slack, so a
/// heartbeat that is dropped here is always covered by the relay before it.
fn relay(ctx: &Arc<Ctx>, unit: &str, main_pid: u32) {
    let now = Instant::now();
    {
        let mut last = lock(&ctx.last_relay);
        if last
            .get(unit)
            .is_some_and(|t| now.duration_since(*t) < RELAY_INTERVAL)
        {
            return;
        }
        last.insert(unit.to_owned(), now);
    }
    if let Err(e) = notify::relay_watchdog(&ctx.relay_sock, main_pid as i32) {
        tracing::warn!("relaying WATCHDOG=1 for {unit} (MainPID {main_pid}): {e}");
    }
}

/// Who is at the other end of a heartbeat connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    /// The krill service unit whose cgroup the peer is in.
    pub unit: String,
}

/// Why a connection was closed at accept.
enum Refusal {
    /// Not a process of a krill service (logged at most once a second).
    Outsider(String),
    /// A cap is reached.
    Capped(String),
}

/// Authenticates a new connection: SO_PEERCRED, then the peer's cgroup, which must
/// be a watched unit's cgroup or below it; then the connection caps.
fn admit(ctx: &Ctx, stream: &UnixStream) -> Result<Peer, Refusal> {
    let cred = stream
        .peer_cred()
        .map_err(|e| Refusal::Outsider(format!("no peer credentials: {e}")))?;
    let pid = cred.pid().unwrap_or(0);
    let uid = cred.uid();
    let cgroup = auth::cgroup_of_pid(pid)
        .ok_or_else(|| Refusal::Outsider(format!("pid {pid} (uid {uid}): cgroup unreadable")))?;
    let unit = ctx.sup().unit_for_cgroup(&cgroup).ok_or_else(|| {
        Refusal::Outsider(format!(
            "pid {pid} (uid {uid}) in {cgroup} is not a krill service"
        ))
    })?;
    let peer = Peer { pid, uid, unit };
    ctx.conns().open(&peer).map_err(Refusal::Capped)?;
    Ok(peer)
}

/// Accepts heartbeat connections. Each is authenticated at once: connections from
/// outside krill's service cgroups are closed before anything is read, and only
/// admitted ones are put in systemd's fd store (so they survive a restart).
async fn accept_loop(ctx: Arc<Ctx>, listener: UnixListener) {
    let mut backoff = Duration::from_millis(10);
    let mut last_log: Option<Instant> = None;
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => {
                backoff = Duration::from_millis(10);
                s
            }
            Err(e) => {
                // EMFILE/ENFILE and friends: the next accept would fail the same way
                // at once; back off (up to 1 s) instead of spinning.
                tracing::warn!(
                    "accept on the heartbeat socket failed: {e}; retrying in {backoff:?}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let peer = match admit(&ctx, &stream) {
            Ok(p) => p,
            Err(r) => {
                let msg = {
                    let mut sup = ctx.sup();
                    match r {
                        Refusal::Outsider(m) => {
                            sup.stats.refused_connections += 1;
                            format!("heartbeat connection refused: {m}")
                        }
                        Refusal::Capped(m) => {
                            sup.stats.capped_connections += 1;
                            format!("heartbeat connection refused: {m}")
                        }
                    }
                };
                // At most one line a second: a flood must not flood the journal.
                if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    last_log = Some(Instant::now());
                    let s = ctx.sup().stats.clone();
                    tracing::warn!(
                        "{msg} [{} outsiders and {} over the caps refused so far]",
                        s.refused_connections,
                        s.capped_connections
                    );
                }
                drop(stream);
                continue;
            }
        };
        ctx.sup().stats.open_connections = ctx.conns().total as u64;
        let n = ctx
            .next_fd_name
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("hb-{}-{n}", std::process::id());
        notify::own(&format!("FDSTORE=1\nFDNAME={name}"), &[stream.as_raw_fd()]);
        tokio::spawn(serve(ctx.clone(), stream, peer, Some(name)));
    }
}

/// Runs the supervisor until it is stopped.
pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let fds = listen_fds();
    let conn = zbus::Connection::system().await?;
    let manager = ManagerProxy::new(&conn).await?;
    manager.subscribe().await?;
    let ctx = Arc::new(Ctx {
        sup: Mutex::new(Supervisor::new(Records::default())),
        conn: conn.clone(),
        manager,
        last_relay: Mutex::new(BTreeMap::new()),
        next_fd_name: std::sync::atomic::AtomicU64::new(0),
        wake: tokio::sync::Notify::new(),
        dirty: Mutex::new(Default::default()),
        wake_refresh: tokio::sync::Notify::new(),
        wake_reload: tokio::sync::Notify::new(),
        wake_native: tokio::sync::Notify::new(),
        relay_sock: std::os::unix::net::UnixDatagram::unbound()?,
        conns: Mutex::new(Conns::from_rlimit()),
    });
    conn.object_server()
        .at(PATH, Api { ctx: ctx.clone() })
        .await?;
    refresh_all(&ctx).await;

    let mut listeners = 0;
    for (name, fd) in fds {
        let is_listener = nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::AcceptConn)
            .unwrap_or(false);
        if is_listener {
            let l = std::os::unix::net::UnixListener::from(fd);
            l.set_nonblocking(true)?;
            tokio::spawn(accept_loop(ctx.clone(), UnixListener::from_std(l)?));
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
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
        tokio::spawn(accept_loop(ctx.clone(), l));
    }
    conn.request_name(NAME).await?;
    tokio::spawn(watch_units(ctx.clone()));
    tokio::spawn(refresher(ctx.clone()));
    tokio::spawn(watch_reloads(ctx.clone()));
    tokio::spawn(reloader(ctx.clone()));
    tokio::spawn(timer_loop(ctx.clone()));
    tokio::spawn(native_ping_loop(ctx.clone()));
    tokio::spawn(own_watchdog());
    let n = ctx.sup().units.len();
    tracing::info!("krill-supervisor ready: watching {n} services");
    notify::own("READY=1", &[]);

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    term.recv().await;
    notify::own("STOPPING=1", &[]);
    Ok(())
}
