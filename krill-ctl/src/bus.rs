//! The CLI's D-Bus calls (zbus), to systemd and to krill-supervisor, run to completion
//! on a small current-thread runtime: the CLI is synchronous, its calls are few.

use std::future::Future;
use std::time::Duration;

use krill::runtime::bus::SupervisorProxy;

/// How long the CLI waits for krill-supervisor before it acts through systemd itself.
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
}

/// Runs `f` with a connection to the system bus.
pub fn with_system<T, E, F, Fut>(f: F) -> Result<T, E>
where
    E: From<Error>,
    F: FnOnce(zbus::Connection) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::from)?;
    rt.block_on(async move {
        let conn = zbus::Connection::system().await.map_err(Error::from)?;
        f(conn).await
    })
}

async fn bounded<T>(fut: impl Future<Output = zbus::Result<T>>) -> Result<T, Error> {
    tokio::time::timeout(SUPERVISOR_TIMEOUT, fut)
        .await
        .map_err(|_| Error::Timeout(SUPERVISOR_TIMEOUT))?
        .map_err(Error::from)
}

/// krill-supervisor's `GetStatus(ws)` (JSON), if it answers in time.
pub async fn supervisor_status(conn: &zbus::Connection, ws: &str) -> Result<String, Error> {
    let p = SupervisorProxy::new(conn).await?;
    bounded(p.get_status(ws)).await
}

/// krill-supervisor's `EmergencyStop(ws, reason)`, if it answers in time.
pub async fn supervisor_estop(
    conn: &zbus::Connection,
    ws: &str,
    reason: &str,
) -> Result<(), Error> {
    let p = SupervisorProxy::new(conn).await?;
    bounded(p.emergency_stop(ws, reason)).await
}

/// Whether systemd has a job queued or running for `unit` (a stop, say).
pub async fn has_job(conn: &zbus::Connection, unit: &str) -> Result<bool, Error> {
    let props =
        krill::runtime::bus::unit_properties(conn, &krill::runtime::bus::unit_path(unit)).await?;
    let v = props
        .get(
            zbus::names::InterfaceName::from_static_str_unchecked("org.freedesktop.systemd1.Unit"),
            "Job",
        )
        .await?;
    let (id, _path): (u32, zbus::zvariant::OwnedObjectPath) =
        v.try_into().map_err(zbus::Error::Variant)?;
    Ok(id != 0)
}

/// The workspaces whose target systemd has loaded.
pub async fn loaded_workspaces(conn: &zbus::Connection) -> Result<Vec<String>, Error> {
    Ok(krill::runtime::bus::loaded_workspaces(conn).await?)
}

/// Stops workspace `ws` through systemd (target and slice).
pub async fn stop_workspace(conn: &zbus::Connection, ws: &str) -> Result<(), Error> {
    Ok(krill::runtime::bus::stop_workspace(conn, ws).await?)
}
