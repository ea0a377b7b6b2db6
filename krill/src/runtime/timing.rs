//! Timings that more than one program must agree on.

use std::time::Duration;

/// krill-supervisor relays a service's heartbeats to systemd at most this often
/// (20 ms). krill-gen adds exactly this much to `WatchdogSec=`, so that a heartbeat
/// the throttle drops is always covered by the relay before it.
pub const RELAY_INTERVAL: Duration = Duration::from_millis(20);

/// After a (re)start, failing probes do not count for this long (60 s) until the
/// service has passed once: a service that is still starting is not unhealthy. The
/// `krill-healthy@` gate gives up at the same time (its `TimeoutStartSec=60s`).
pub const HEALTHY_START_PERIOD: Duration = Duration::from_secs(60);
