//! The emergency stop: the one function every caller uses (`krill estop`, the
//! supervisor's `EmergencyStop`, and the `OnFailure=` handler of a critical service).
//!
//! It acts on what systemd has loaded, never on recipe files, so a broken, colliding
//! or half-edited recipe cannot blind it. It needs neither krill-supervisor nor a
//! working dbus-daemon: when the system bus is down or does not answer within
//! [`BUS_TIMEOUT`], it stops through systemd's private socket with `systemctl`.
//! (zbus cannot use that socket itself: systemd signs its replies there with the
//! sender `org.freedesktop.systemd1`, which zbus rejects as a unique name.)

use std::time::Duration;

use crate::runtime::records::Records;

/// How long the stop may wait for the system bus before it goes around it (1 s).
pub const BUS_TIMEOUT: Duration = Duration::from_secs(1);

/// Why an emergency stop failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid workspace name {0:?}")]
    BadName(String),
    /// Neither the bus nor `systemctl` could queue the stop: the workspace may run on.
    #[error("stopping workspace {workspace}: D-Bus: {bus}; systemctl: {fallback}")]
    Stop {
        workspace: String,
        bus: String,
        fallback: String,
    },
    /// The workspace is stopping; only `krill status` will not show the reason.
    #[error("workspace {workspace} is stopping, but its reason could not be recorded: {source}")]
    Record {
        workspace: String,
        source: std::io::Error,
    },
}

/// How the stop reached systemd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// systemd's D-Bus API on the system bus.
    Bus,
    /// `systemctl` on systemd's private socket: the system bus was down or hung.
    PrivateSocket,
}

/// Emergency stop of workspace `ws`: records `reason` (made printable) for
/// `krill status`, then queues the stop of the workspace's target and slice at once
/// (every member is `PartOf=` the target; the slice holds every process, including
/// units that are no longer members). Returns once both jobs are queued, not done.
///
/// `conn` is a system-bus connection, if the caller has one. The record comes first
/// (a file on tmpfs, microseconds) so that status never shows a workspace stopping
/// without its reason; a failed record does not hold the stop back, and is reported
/// after the stop was queued.
pub async fn emergency_stop(
    conn: Option<&zbus::Connection>,
    records: &Records,
    ws: &str,
    reason: &str,
) -> Result<Via, Error> {
    if !crate::runtime::names::valid_name(ws) {
        return Err(Error::BadName(ws.to_owned()));
    }
    let reason = crate::runtime::status::printable(reason);
    let recorded = records.record_estop(ws, &reason);
    let bus = match conn {
        Some(c) => {
            match tokio::time::timeout(BUS_TIMEOUT, crate::runtime::bus::stop_workspace(c, ws))
                .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {BUS_TIMEOUT:?}")),
            }
        }
        None => Err("system bus not reachable".to_owned()),
    };
    let via = match bus {
        Ok(()) => Via::Bus,
        Err(bus) => match stop_with_systemctl(ws) {
            Ok(()) => Via::PrivateSocket,
            Err(fallback) => {
                return Err(Error::Stop {
                    workspace: ws.to_owned(),
                    bus,
                    fallback,
                })
            }
        },
    };
    recorded.map_err(|source| Error::Record {
        workspace: ws.to_owned(),
        source,
    })?;
    Ok(via)
}

/// `systemctl [--user] stop --no-block TARGET SLICE`: as root (or to the user's own
/// manager), systemctl talks to systemd's private socket, which works without
/// dbus-daemon. Blocking, but only on this path.
fn stop_with_systemctl(ws: &str) -> Result<(), String> {
    let mut cmd = std::process::Command::new("systemctl");
    if crate::runtime::scope::is_user() {
        cmd.arg("--user");
    }
    let out = cmd
        .args(["stop", "--no-block", "--"])
        .arg(crate::runtime::names::target(ws))
        .arg(crate::runtime::names::slice(ws))
        .output()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}
