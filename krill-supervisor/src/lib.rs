//! krill-supervisor: what systemd cannot observe by itself. Health checks
//! (heartbeat, tcp, http, script), authenticated heartbeats relayed to systemd as
//! watchdog pings, the records that `healthy` gates wait on, and status and
//! emergency stop on D-Bus (`org.krill.Supervisor1`).
//!
//! The supervisor never starts, stops or restarts a service itself: a failed check
//! makes systemd fail the unit (SIGABRT through `KillUnit`, or the watchdog), and the
//! unit's restart policy decides. When the supervisor is down, services keep running.

pub mod api;
pub mod auth;
pub mod conns;
pub mod ctx;
pub mod daemon;
pub mod health;
pub mod notify;
pub mod probes;
pub mod protocol;
pub mod reexec;
pub mod socket;
pub mod systemd;
pub mod timers;
pub mod unit_watch;
