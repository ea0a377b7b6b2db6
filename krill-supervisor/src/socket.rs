//! The heartbeat socket: systemd's listening fds, accepting and authenticating
//! connections, reading heartbeats, relaying them to systemd's watchdog.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

use crate::auth;
use crate::conns::Peer;
use crate::ctx::{lock, Ctx};
use crate::health::{BeatOutcome, Relay};
use crate::notify;
use crate::protocol::{self, MAX_LINE};
use crate::unit_watch::emit_soon;

/// File descriptors passed by systemd (`LISTEN_FDS`), with their names.
pub fn listen_fds() -> Vec<(String, OwnedFd)> {
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

/// Serves one authenticated heartbeat connection of `unit` until it closes.
pub async fn serve(ctx: Arc<Ctx>, mut stream: UnixStream, peer: Peer, fd_name: Option<String>) {
    if let Some(name) = &fd_name {
        lock(&ctx.live_fds).insert(name.clone(), stream.as_raw_fd());
    }
    let unit = Some(peer.unit.clone());
    let pid = peer.pid;
    let mut buf: Vec<u8> = Vec::new();
    // Lives in the task for as long as the connection: a heartbeat line is about 70
    // bytes, so 1 KiB reads a dozen at once (longer lines gather in `buf`).
    let mut chunk = [0u8; 1024];
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
                handle_line(&ctx, unit.as_deref(), pid, &buf, &mut complaints);
            }
            buf.clear();
            rest = &rest[i + 1..];
        }
        if !skipping {
            buf.extend_from_slice(rest);
            if buf.len() > MAX_LINE {
                // Refuse the oversized line, keep the connection, resync at the next newline.
                handle_line(&ctx, unit.as_deref(), pid, &buf, &mut complaints);
                buf.clear();
                skipping = true;
            }
        }
    }
    if let Some(name) = fd_name {
        lock(&ctx.live_fds).remove(&name);
        notify::own(&format!("FDSTOREREMOVE=1\nFDNAME={name}"), &[]);
    }
    ctx.conns().close(&peer);
    ctx.sup().stats.open_connections = ctx.conns().total as u64;
}

fn handle_line(ctx: &Arc<Ctx>, unit: Option<&str>, pid: i32, line: &[u8], complaints: &mut u32) {
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
    ctx.beats_unpaced
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ctx.wake_pacer.notify_one();
    match outcome {
        BeatOutcome::Refused(msg) => complain(msg),
        BeatOutcome::Accepted { relay, changed } => {
            if let (Some(r), Some(u)) = (relay, unit) {
                send_relay(ctx, u, r);
            }
            if changed {
                if let Some(u) = unit {
                    emit_soon(ctx, u);
                }
            }
        }
    }
}

/// Pings `unit`'s watchdog as its MainPID (what [`Supervisor::on_heartbeat`] decided:
/// at most every half timeout, the first one widening it to the backstop).
///
/// [`Supervisor::on_heartbeat`]: crate::health::Supervisor::on_heartbeat
fn send_relay(ctx: &Arc<Ctx>, unit: &str, r: Relay) {
    let main_pid = r.main_pid as i32;
    let sent = match r.backstop {
        Some(b) => notify::set_watchdog(&ctx.relay_sock, main_pid, Some(b)),
        None => notify::relay_watchdog(&ctx.relay_sock, main_pid),
    };
    match sent {
        Ok(()) => ctx.sup().stats.relayed += 1,
        Err(e) => tracing::warn!("relaying WATCHDOG=1 for {unit} (MainPID {main_pid}): {e}"),
    }
}

/// Why a connection was closed at accept.
pub enum Refusal {
    /// Not a process of a krill service (logged at most once a second).
    Outsider(String),
    /// A cap is reached.
    Capped(String),
}

/// Authenticates a new connection: SO_PEERCRED, then the peer's cgroup, which must
/// be a watched unit's cgroup or below it; then the connection caps.
pub fn admit(ctx: &Ctx, stream: &UnixStream) -> Result<Peer, Refusal> {
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
pub async fn accept_loop(ctx: Arc<Ctx>, listener: tokio::net::UnixListener) {
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
        let name = format!("{}-{n}", ctx.fd_name_prefix);
        notify::own(&format!("FDSTORE=1\nFDNAME={name}"), &[stream.as_raw_fd()]);
        tokio::spawn(serve(ctx.clone(), stream, peer, Some(name)));
    }
}
