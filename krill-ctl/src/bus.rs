//! The CLI's one D-Bus client (zbus): systemd's Manager API for every action, and
//! krill-supervisor's API. Calls run to completion on a small current-thread runtime:
//! the CLI is synchronous and its calls are few. No `systemctl` or `busctl` process
//! is spawned.

use std::future::Future;
use std::time::Duration;

use krill::runtime::bus::{self as kbus, Job, SupervisorProxy, UnitFacts};

/// How long the CLI waits for krill-supervisor's answer (2 s).
pub const SUPERVISOR_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a D-Bus call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("D-Bus: {0}")]
    Bus(#[from] zbus::Error),
    #[error("D-Bus: {0}")]
    Fdo(#[from] zbus::fdo::Error),
    #[error("cannot start the D-Bus client runtime: {0}")]
    Runtime(#[from] std::io::Error),
    #[error("krill-supervisor did not answer within {0:?}")]
    Timeout(Duration),
    /// An answer that is not what the API promises.
    #[error("unexpected answer from krill-supervisor: {0}")]
    Protocol(String),
    /// A job systemd ran for krill did not succeed (`systemctl` would fail too).
    #[error("systemd could not {verb} {unit}: job {result}; see `journalctl -u {unit}`")]
    Job {
        verb: &'static str,
        unit: String,
        result: String,
    },
}

/// The small current-thread runtime the CLI's D-Bus calls run on.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs `f` with a connection to the system bus of [`crate::remote::current`] (reads,
/// and the supervisor).
pub fn with_system<T, E, F, Fut>(f: F) -> Result<T, E>
where
    E: From<Error>,
    F: FnOnce(zbus::Connection) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    runtime()?.block_on(async move {
        let conn = crate::remote::current()
            .connect()
            .await
            .map_err(Error::from)?;
        f(conn).await
    })
}

/// A blocking handle on systemd for one command: one system-bus connection (of
/// [`crate::remote::current`]) for all its calls.
pub struct Systemd {
    rt: tokio::runtime::Runtime,
    conn: zbus::Connection,
}

impl Systemd {
    pub fn connect() -> Result<Self, Error> {
        let rt = runtime()?;
        let conn = rt.block_on(crate::remote::current().connect())?;
        Ok(Systemd { rt, conn })
    }

    /// Runs an async call on this connection.
    pub fn call<T, Fut: Future<Output = T>>(&self, f: impl FnOnce(zbus::Connection) -> Fut) -> T {
        self.rt.block_on(f(self.conn.clone()))
    }

    /// `daemon-reload`; returns once systemd has reloaded.
    pub fn reload(&self) -> Result<(), Error> {
        self.call(|c| async move {
            kbus::ManagerProxy::new(&c).await?.reload().await?;
            Ok(())
        })
    }

    /// systemd's facts of each unit, in order (`not-found` for units it cannot load).
    pub fn facts(&self, units: &[String]) -> Vec<UnitFacts> {
        // All in flight at once on the one connection.
        self.call(|c| async move {
            futures_util::future::join_all(units.iter().map(|u| kbus::unit_facts_by_name(&c, u)))
                .await
        })
    }

    /// Whether `unit` is active or activating.
    pub fn is_running(&self, unit: &str) -> bool {
        let f = self.facts(&[unit.to_owned()]);
        matches!(f[0].active.as_str(), "active" | "activating" | "reloading")
    }

    /// Queues `job` for `units`. With `wait`, returns once the jobs finished and fails
    /// if one did not succeed, as `systemctl` would; without it, once they are queued.
    pub fn jobs(&self, job: Job, units: &[String], wait: bool) -> Result<(), Error> {
        let results = self.call(|c| async move { kbus::queue_jobs(&c, job, units, wait).await })?;
        match results
            .into_iter()
            .find(|(_, r)| r != "done" && r != "skipped")
        {
            Some((unit, result)) => Err(Error::Job {
                verb: match job {
                    Job::Start => "start",
                    Job::Stop => "stop",
                    Job::Restart | Job::TryRestart => "restart",
                },
                unit,
                result,
            }),
            None => Ok(()),
        }
    }

    /// `reset-failed` of `units`; units systemd has not loaded are skipped.
    pub fn reset_failed(&self, units: &[String]) -> Result<(), Error> {
        self.call(|c| async move { kbus::reset_failed(&c, units).await })?;
        Ok(())
    }

    /// Whether systemd has a job queued or running for `unit` (a stop, say).
    pub fn has_job(&self, unit: &str) -> bool {
        self.facts(&[unit.to_owned()])[0].job
    }
}

/// krill-supervisor's `GetStatus(ws)` (JSON), if it answers in time.
pub async fn supervisor_status(conn: &zbus::Connection, ws: &str) -> Result<String, Error> {
    let p = SupervisorProxy::new(conn).await?;
    bounded(p.get_status(ws)).await
}

/// krill-supervisor's counters (its `Stats` property), if it answers in time.
pub async fn supervisor_stats(
    conn: &zbus::Connection,
) -> Result<krill::runtime::stats::Stats, Error> {
    let p = SupervisorProxy::new(conn).await?;
    let json = bounded(p.stats()).await?;
    serde_json::from_str(&json).map_err(|e| Error::Protocol(format!("Stats: {e}")))
}

/// krill-supervisor's `EmergencyStop(ws, reason)`, if it answers in time: the door to
/// the emergency stop for members of group `krill` (the D-Bus policy lets them in).
pub async fn supervisor_estop(
    conn: &zbus::Connection,
    ws: &str,
    reason: &str,
) -> Result<(), Error> {
    let p = SupervisorProxy::new(conn).await?;
    bounded(p.emergency_stop(ws, reason)).await
}

async fn bounded<T>(fut: impl Future<Output = zbus::Result<T>>) -> Result<T, Error> {
    tokio::time::timeout(SUPERVISOR_TIMEOUT, fut)
        .await
        .map_err(|_| Error::Timeout(SUPERVISOR_TIMEOUT))?
        .map_err(Error::from)
}
