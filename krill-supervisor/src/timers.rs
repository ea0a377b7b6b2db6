//! Timed work: probes and heartbeat deadlines, polling plain sd_notify clients, and
//! the supervisor's own watchdog.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ctx::Ctx;
use crate::health::{self, ProbeOutcome};
use crate::notify;
use crate::systemd::read_state;
use crate::unit_watch::emit;

/// Sleeps until the next probe or heartbeat deadline (at most 1 s, and woken early
/// when state changes), then runs due probes and marks silent heartbeat services.
/// Nothing to do means no wakeups but the 1 s one.
pub async fn timer_loop(ctx: Arc<Ctx>) {
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
        if ctx
            .sup()
            .next_deadline()
            .is_some_and(|d| d <= Instant::now())
        {
            // Read what waits in the sockets before deciding that anyone is silent:
            // the pacer may have kept a heartbeat that came in time unread for up to
            // HEARTBEAT_PACE. A yielded task runs again only after the runtime has
            // polled its sockets and run the connections that became readable.
            tokio::task::yield_now().await;
        }
        let now = Instant::now();
        let silent = ctx.sup().sweep(now);
        for s in silent {
            let u = &s.unit;
            // First fail the run, then tell: this is the detection latency.
            if krill::runtime::scope::is_user() {
                // A user manager takes no relayed pings, so its units have no
                // watchdog: fail the run here, with SIGABRT as systemd's would.
                if let Err(e) = ctx.manager.kill_unit(u, "main", libc::SIGABRT).await {
                    tracing::error!("cannot fail {u}: {e}");
                }
            } else if let Some(pid) = s.trigger_pid {
                if let Err(e) = notify::trigger_watchdog(&ctx.relay_sock, pid as i32) {
                    tracing::error!("cannot trigger the watchdog of {u} (MainPID {pid}): {e}");
                }
            }
            tracing::warn!("{u}: heartbeat timed out");
            emit(&ctx, u).await;
        }
        let due = ctx.sup().due_probes(now);
        for (unit, check, watched) in due {
            tokio::spawn(run_probe(ctx.clone(), unit, check, watched));
        }
    }
}

/// Paces heartbeat handling ([`HEARTBEAT_PACE`]): after heartbeats were handled, it
/// holds the supervisor's one thread for the pace, never past the next deadline, so
/// that heartbeats arriving meanwhile wait in their sockets and are all read at the
/// next turn, instead of waking the process once each (a wake-up costs more than
/// the heartbeat). Nothing else is due in that time that cannot wait 10 ms: the
/// emergency stop goes to systemd first, and deadlines are decided after reading
/// ([`timer_loop`]). When more than [`HEARTBEAT_PACE_SATURATED`] heartbeats came since
/// the previous pause, it does not pause: the supervisor is busy anyway.
///
/// [`HEARTBEAT_PACE`]: krill::runtime::timing::HEARTBEAT_PACE
/// [`HEARTBEAT_PACE_SATURATED`]: krill::runtime::timing::HEARTBEAT_PACE_SATURATED
pub async fn pacer(ctx: Arc<Ctx>) {
    use krill::runtime::timing::{HEARTBEAT_PACE, HEARTBEAT_PACE_SATURATED};
    use std::sync::atomic::Ordering;
    loop {
        ctx.wake_pacer.notified().await;
        if ctx.beats_unpaced.swap(0, Ordering::Relaxed) > HEARTBEAT_PACE_SATURATED {
            continue;
        }
        // Never past a deadline: the sweep must run on time, not a pace late.
        let pause = ctx.sup().next_deadline().map_or(HEARTBEAT_PACE, |d| {
            d.saturating_duration_since(Instant::now())
                .min(HEARTBEAT_PACE)
        });
        if !pause.is_zero() {
            std::thread::sleep(pause);
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
pub async fn native_ping_loop(ctx: Arc<Ctx>) {
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
pub async fn own_watchdog() {
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

/// Samples every running service's CPU time each [`CPU_SAMPLE_INTERVAL`] (cgroup
/// files, no D-Bus), for the `cpu_percent` of status.
///
/// [`CPU_SAMPLE_INTERVAL`]: krill::runtime::status::CPU_SAMPLE_INTERVAL
pub async fn cpu_sampler(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(krill::runtime::status::CPU_SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u32;
    loop {
        tick.tick().await;
        ctx.sup().sample_cpu(Instant::now());
        n = n.wrapping_add(1);
        if n.is_multiple_of(TRIM_EVERY) {
            trim_heap();
        }
    }
}

/// How many CPU samples (seconds) apart the heap is trimmed.
const TRIM_EVERY: u32 = 10;

/// Gives the heap's free pages back to the kernel. A burst (50 services starting:
/// hundreds of queued D-Bus signals, status reads) leaves freed memory that malloc
/// would otherwise keep for good; a resident daemon on a robot should not. It walks a
/// heap of a few hundred KiB: microseconds, every [`TRIM_EVERY`] s.
fn trim_heap() {
    // SAFETY: malloc_trim only releases free memory of the allocator's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}
