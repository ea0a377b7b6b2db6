//! Timings that more than one program must agree on.

use std::time::Duration;

/// The slack (20 ms) krill-gen adds to a heartbeat `timeout` for `WatchdogSec=`:
/// the watchdog systemd enforces by itself, for a plain sd_notify client and for a
/// run whose first heartbeat has not reached the supervisor yet.
pub const RELAY_INTERVAL: Duration = Duration::from_millis(20);

/// krill-supervisor's heartbeat pacing: after handling heartbeats it pauses this long
/// (10 ms), so that the next ones queue in their sockets and are read together: at
/// most about 100 turns a second while heartbeats flow, instead of one per heartbeat
/// (500 a second at 50 services × 10 Hz), each heartbeat read at most 10 ms later.
/// A deadline is decided only after the heartbeats waiting in the sockets are read.
pub const HEARTBEAT_PACE: Duration = Duration::from_millis(10);

/// Heartbeats handled since the previous pause above which the supervisor does not
/// pause (64): it is saturated, and pausing would only cap its ingest.
pub const HEARTBEAT_PACE_SATURATED: u32 = 64;

/// The watchdog timeout (2 × the heartbeat `timeout`) that krill-supervisor gives
/// systemd (`WATCHDOG_USEC=`, for that run only) once a run's heartbeats come over
/// its socket. From then on the supervisor times the heartbeats itself, to the
/// millisecond, and fails a silent run with `WATCHDOG=trigger`; systemd's watchdog
/// stays as the backstop for a supervisor that died without handing it back.
pub fn watchdog_backstop(timeout: Duration) -> Duration {
    timeout * 2
}

/// How often (at most) krill-supervisor pings a run's backstop watchdog: half the
/// heartbeat `timeout`. A healthy run's pings are then at most 1.5 × `timeout`
/// apart (this period plus the longest gap the supervisor itself lets pass), inside
/// the backstop of [`watchdog_backstop`]; at 10 Hz heartbeats and a 1 s timeout that
/// is 2 pings a second instead of 10.
pub fn relay_period(timeout: Duration) -> Duration {
    timeout / 2
}

/// After a (re)start, failing probes do not count for this long (60 s) until the
/// service has passed once: a service that is still starting is not unhealthy. The
/// `krill-healthy@` gate gives up at the same time (its `TimeoutStartSec=60s`).
pub const HEALTHY_START_PERIOD: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backstop_outlasts_the_longest_gap_between_relays() {
        for ms in [100, 1000, 2000, 30_000] {
            let t = Duration::from_millis(ms);
            // A relay is at most relay_period late after the previous one, and the
            // heartbeat that carries it at most `timeout` after the last.
            assert!(relay_period(t) + t < watchdog_backstop(t));
            assert!(watchdog_backstop(t) > t + RELAY_INTERVAL);
        }
    }
}
