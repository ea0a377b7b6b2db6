//! `krill fleet status|estop HOST...`: many robots at once. Every host is reached as
//! `krill -H` reaches one (SSH to its `systemd-stdio-bridge`, its system bus), all in
//! parallel, each bounded by the timeout: a host that is down or hangs is reported as
//! unreachable and never delays the others' results beyond the timeout.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use krill::runtime::bus as kbus;
use krill::runtime::status::WorkspaceStatus;

use crate::error::Error;
use crate::remote::Host;

/// Most hosts in one command (a typo in a file of hosts must not fork thousands of ssh).
pub const MAX_HOSTS: usize = 1024;

/// How often a stopping workspace's slice is looked at (10 ms): the resolution of
/// the "all processes gone" figure.
const GONE_POLL: Duration = Duration::from_millis(10);

/// The hosts named on the command line and in `file`, in order, each once.
pub fn hosts(args: &[String], file: Option<&Path>, timeout: Duration) -> Result<Vec<Host>, Error> {
    let mut names: Vec<String> = args.to_vec();
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| Error::Usage(format!("{}: {e}", f.display())))?;
        for (i, line) in text.lines().enumerate() {
            let l = line.split('#').next().unwrap_or("").trim();
            if l.is_empty() {
                continue;
            }
            if l.contains(char::is_whitespace) {
                return Err(Error::Usage(format!(
                    "{}:{}: one host per line, got {l:?}",
                    f.display(),
                    i + 1
                )));
            }
            names.push(l.to_owned());
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    if names.is_empty() {
        return Err(Error::Usage("no hosts: name them, or give --file".into()));
    }
    if names.len() > MAX_HOSTS {
        return Err(Error::Usage(format!(
            "{} hosts: at most {MAX_HOSTS} at once",
            names.len()
        )));
    }
    let secs = timeout.as_secs_f64().ceil() as u64;
    names
        .iter()
        .map(|n| Host::ssh(n, Some(secs)).map_err(|e| Error::Usage(e.to_string())))
        .collect()
}

/// What one host answered, and how long it took.
#[derive(Debug, serde::Serialize)]
pub struct Answer<T> {
    pub host: String,
    /// The answer, or why there is none (unreachable, timed out, refused).
    #[serde(flatten)]
    pub outcome: Outcome<T>,
    /// From the command's start (every host's) to this host's answer.
    pub elapsed_ms: u64,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome<T> {
    Ok(T),
    Error(String),
}

/// Runs `f` on every host at once, each within `timeout` (connection included).
async fn each<T, F, Fut>(hosts: &[Host], timeout: Duration, f: F) -> Vec<Answer<T>>
where
    F: Fn(zbus::Connection, Host) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let t0 = Instant::now();
    join_all(hosts.iter().map(|h| {
        let f = &f;
        async move {
            let work = async {
                let conn = h.connect().await.map_err(|e| format!("unreachable: {e}"))?;
                f(conn, h.clone()).await
            };
            let outcome = match tokio::time::timeout(timeout, work).await {
                Ok(Ok(v)) => Outcome::Ok(v),
                Ok(Err(e)) => Outcome::Error(e),
                Err(_) => Outcome::Error(format!(
                    "unreachable: no answer within {}",
                    krill::compile::duration::to_systemd(timeout)
                )),
            };
            Answer {
                host: h.label().to_owned(),
                outcome,
                elapsed_ms: t0.elapsed().as_millis() as u64,
            }
        }
    }))
    .await
}

/// Every host's workspaces.
pub fn status(
    hosts: &[Host],
    timeout: Duration,
) -> Result<Vec<Answer<Vec<WorkspaceStatus>>>, Error> {
    Ok(
        crate::bus::runtime()?.block_on(each(hosts, timeout, |conn, h| async move {
            crate::status::remote(&conn, h.label(), None)
                .await
                .map(|r| r.workspaces)
                .map_err(|e| e.to_string())
        })),
    )
}

/// Whether every host answered and every workspace on it is as intended.
pub fn all_ok(answers: &[Answer<Vec<WorkspaceStatus>>]) -> bool {
    answers.iter().all(|a| match &a.outcome {
        Outcome::Ok(ws) => ws.iter().all(|w| w.services.iter().all(|s| s.ok)),
        Outcome::Error(_) => false,
    })
}

/// One workspace's emergency stop on one host.
#[derive(Debug, serde::Serialize)]
pub struct Stopped {
    pub workspace: String,
    /// How the stop reached the host (see [`crate::estop::on_remote`]).
    pub via: String,
    /// From the command's start to the host's bus answering (SSH and the bridge).
    pub connected_ms: u64,
    /// From the command's start to systemd having queued the stop.
    pub queued_ms: u64,
    /// From the command's start to the workspace's slice being empty (every process
    /// gone); `null` if it was not within the timeout.
    pub gone_ms: Option<u64>,
}

/// Emergency stop of every workspace on every host.
pub fn estop(
    hosts: &[Host],
    timeout: Duration,
    reason: &str,
) -> Result<Vec<Answer<Vec<Stopped>>>, Error> {
    let t0 = Instant::now();
    Ok(
        crate::bus::runtime()?.block_on(each(hosts, timeout, |conn, _| async move {
            let connected_ms = t0.elapsed().as_millis() as u64;
            let names = kbus::loaded_workspaces(&conn)
                .await
                .map_err(|e| format!("cannot list workspaces: {e}"))?;
            let stops = names.into_iter().map(|ws| {
                let conn = &conn;
                async move {
                    let (via, queued) = crate::estop::on_remote(conn, &ws, reason).await?;
                    let queued_ms = queued.duration_since(t0).as_millis() as u64;
                    let slice = krill::runtime::names::slice(&ws);
                    let gone_ms = loop {
                        let f = kbus::unit_facts_by_name(conn, &slice).await;
                        if matches!(f.active.as_str(), "inactive" | "failed") {
                            break Some(t0.elapsed().as_millis() as u64);
                        }
                        if t0.elapsed() >= timeout {
                            break None;
                        }
                        tokio::time::sleep(GONE_POLL).await;
                    };
                    Ok::<_, String>(Stopped {
                        workspace: ws,
                        via: via.to_owned(),
                        connected_ms,
                        queued_ms,
                        gone_ms,
                    })
                }
            });
            // A workspace that could not be stopped fails the host: it may run on.
            join_all(stops).await.into_iter().collect()
        })),
    )
}

/// `krill fleet status`'s table: a row per host and workspace.
pub fn status_table(answers: &[Answer<Vec<WorkspaceStatus>>]) -> String {
    use krill::runtime::status::printable;
    let mut rows = vec![[
        "HOST".to_owned(),
        "WORKSPACE".into(),
        "STATE".into(),
        "SERVICES".into(),
        "DETAIL".into(),
    ]];
    for a in answers {
        match &a.outcome {
            Outcome::Error(e) => rows.push([
                a.host.clone(),
                "-".into(),
                "unreachable".into(),
                "-".into(),
                printable(e),
            ]),
            Outcome::Ok(ws) if ws.is_empty() => rows.push([
                a.host.clone(),
                "-".into(),
                "no workspaces".into(),
                "-".into(),
                String::new(),
            ]),
            Outcome::Ok(ws) => {
                for w in ws {
                    let ok = w.services.iter().filter(|s| s.ok).count();
                    let bad: Vec<String> = w
                        .services
                        .iter()
                        .filter(|s| !s.ok)
                        .map(|s| match &s.reason {
                            Some(r) => format!("{}: {}", printable(&s.service), printable(r)),
                            None => format!("{}: {}", printable(&s.service), printable(&s.state)),
                        })
                        .collect();
                    rows.push([
                        a.host.clone(),
                        printable(&w.workspace),
                        w.state.as_str().to_owned(),
                        format!("{ok}/{} ok", w.services.len()),
                        bad.join("; "),
                    ]);
                }
            }
        }
    }
    columns(&rows)
}

/// `krill fleet estop`'s table: a row per host and workspace.
pub fn estop_table(answers: &[Answer<Vec<Stopped>>]) -> String {
    use krill::runtime::status::printable;
    let mut rows = vec![[
        "HOST".to_owned(),
        "WORKSPACE".into(),
        "RESULT".into(),
        "CONNECTED".into(),
        "QUEUED".into(),
        "ALL GONE".into(),
        "VIA".into(),
    ]];
    for a in answers {
        match &a.outcome {
            Outcome::Error(e) => rows.push([
                a.host.clone(),
                "-".into(),
                "NOT STOPPED".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                printable(e),
            ]),
            Outcome::Ok(v) if v.is_empty() => rows.push([
                a.host.clone(),
                "-".into(),
                "no workspaces".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                String::new(),
            ]),
            Outcome::Ok(v) => {
                for s in v {
                    rows.push([
                        a.host.clone(),
                        s.workspace.clone(),
                        "stopped".into(),
                        format!("{} ms", s.connected_ms),
                        format!("{} ms", s.queued_ms),
                        s.gone_ms.map_or("not yet".into(), |g| format!("{g} ms")),
                        s.via.clone(),
                    ]);
                }
            }
        }
    }
    columns(&rows)
}

fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut w = [0usize; N];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == N {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_from_arguments_and_a_file_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("robots");
        std::fs::write(&f, "# the lab\nrobot1\n\n  root@robot2  # spare\nrobot1\n").unwrap();
        let h = hosts(&["robot3".into()], Some(&f), Duration::from_secs(2)).unwrap();
        let labels: Vec<&str> = h.iter().map(Host::label).collect();
        assert_eq!(labels, ["robot3", "robot1", "root@robot2"]);
        std::fs::write(&f, "robot1 robot2\n").unwrap();
        let e = hosts(&[], Some(&f), Duration::from_secs(2)).unwrap_err();
        assert!(e.to_string().contains("robots:1: one host per line"), "{e}");
        assert!(hosts(&["-oProxyCommand=x".into()], None, Duration::from_secs(1)).is_err());
        assert!(hosts(&[], None, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn an_unreachable_host_is_a_row_of_its_own() {
        let answers = vec![
            Answer {
                host: "robot1".into(),
                outcome: Outcome::Ok(crate::top::model::tests::report(&["a", "b"]).workspaces),
                elapsed_ms: 30,
            },
            Answer {
                host: "robot2".into(),
                outcome: Outcome::Error("unreachable: no answer within 2s".into()),
                elapsed_ms: 2000,
            },
        ];
        let t = status_table(&answers);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[1].starts_with("robot1") && lines[1].contains("2/2 ok"),
            "{t}"
        );
        assert!(
            lines[2].starts_with("robot2") && lines[2].contains("unreachable"),
            "{t}"
        );
    }
}
