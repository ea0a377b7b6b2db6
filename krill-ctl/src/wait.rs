//! `--wait` for `krill install --now` and `krill start`: follow the workspace's status
//! until every service is running and healthy, something fails, or time runs out,
//! printing each service's progress as it changes.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use krill::runtime::status::{Report, WorkspaceState, WorkspaceStatus};

use crate::status;

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The workspace is `running`: every service up, and healthy where checked.
    Running,
    /// No service is still starting (plain `--now`: did the processes start?).
    Started,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ready(WorkspaceStatus),
    Failed(WorkspaceStatus),
    TimedOut(WorkspaceStatus),
}

/// How often the status is read while waiting: every [`FIRST_POLL`] at first,
/// backing off to every 100 ms (a fast workspace is seen started within
/// milliseconds; a slow one costs ten reads a second).
pub const POLL: Duration = Duration::from_millis(100);

/// The first interval between status reads (10 ms), doubled up to [`POLL`].
pub const FIRST_POLL: Duration = Duration::from_millis(10);

fn failed(ws: &WorkspaceStatus) -> bool {
    matches!(
        ws.state,
        WorkspaceState::Failed | WorkspaceState::EmergencyStopped
    ) || ws
        .services
        .iter()
        .any(|s| s.state == "failed" || s.health.as_deref() == Some("unhealthy"))
}

fn done(ws: &WorkspaceStatus, until: Until) -> bool {
    match until {
        Until::Running => ws.state == WorkspaceState::Running,
        Until::Started => ws.services.iter().all(|s| {
            s.pid.is_some()
                || s.ok
                || s.reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with("waiting for"))
        }),
    }
}

/// Follows workspace `name` for at most `timeout`, writing progress lines to `out`.
pub fn wait(
    name: &str,
    until: Until,
    timeout: Duration,
    out: &mut impl Write,
) -> Result<Outcome, status::Error> {
    let deadline = Instant::now() + timeout;
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut poll = FIRST_POLL;
    loop {
        let Report { workspaces, .. } = status::gather(Some(name))?;
        let Some(ws) = workspaces.into_iter().next() else {
            return Err(status::Error::NotLoaded {
                name: name.to_owned(),
                loaded: String::new(),
            });
        };
        if until == Until::Running {
            for s in &ws.services {
                let line = format!(
                    "{}/{}{}{}",
                    s.state,
                    s.sub_state,
                    s.health
                        .as_deref()
                        .map(|h| format!(" {h}"))
                        .unwrap_or_default(),
                    s.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
                if seen.get(&s.service) != Some(&line) {
                    let _ = writeln!(
                        out,
                        "  {}: {}",
                        krill::runtime::status::printable(&s.service),
                        krill::runtime::status::printable(&line)
                    );
                    seen.insert(s.service.clone(), line);
                }
            }
        }
        if failed(&ws) {
            return Ok(Outcome::Failed(ws));
        }
        if done(&ws, until) {
            return Ok(Outcome::Ready(ws));
        }
        if Instant::now() >= deadline {
            return Ok(Outcome::TimedOut(ws));
        }
        std::thread::sleep(poll.min(deadline.saturating_duration_since(Instant::now())));
        poll = (poll * 2).min(POLL);
    }
}
