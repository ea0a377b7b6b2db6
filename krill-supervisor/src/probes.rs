//! tcp, http and script health probes. Each returns `Err(reason)` on failure; the
//! reason ends up in `krill status`.

use std::time::Duration;

use krill::runtime::check::HealthCheck;

use crate::health::{Watched, DEFAULT_PROBE_TIMEOUT, DEFAULT_SCRIPT_TIMEOUT};

/// Runs one probe of `check` for `w`. Script probes run in their own scope when the
/// system bus is given (see [`script`]).
pub async fn run(
    check: &HealthCheck,
    w: &Watched,
    bus: Option<&zbus::Connection>,
) -> Result<(), String> {
    match check {
        HealthCheck::Tcp { port, timeout } => {
            tcp(*port, timeout.unwrap_or(DEFAULT_PROBE_TIMEOUT)).await
        }
        HealthCheck::Http {
            port,
            path,
            expected_status,
        } => http(*port, path, *expected_status, DEFAULT_PROBE_TIMEOUT).await,
        HealthCheck::Script { argv, timeout } => {
            script(argv, w, timeout.unwrap_or(DEFAULT_SCRIPT_TIMEOUT), bus).await
        }
        HealthCheck::Heartbeat { .. } => Ok(()),
    }
}

/// Connects to 127.0.0.1:`port`.
pub async fn tcp(port: u16, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(("127.0.0.1", port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("tcp port {port}: {e}")),
        Err(_) => Err(format!("tcp port {port}: no connection within {timeout:?}")),
    }
}

/// `GET http://127.0.0.1:port/path` must answer `expected`.
pub async fn http(port: u16, path: &str, expected: u16, timeout: Duration) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let task = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        match agent.get(&url).call() {
            Ok(resp) if resp.status().as_u16() == expected => Ok(()),
            Ok(resp) => Err(format!(
                "GET {url}: status {}, expected {expected}",
                resp.status().as_u16()
            )),
            Err(e) => Err(format!("GET {url}: {e}")),
        }
    });
    task.await
        .unwrap_or_else(|e| Err(format!("http probe task: {e}")))
}

/// systemd's default `PATH` for services; probes get it unless the recipe sets one.
const SERVICE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

static PROBE_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs the check command (never through a shell) in the service's working
/// directory, with the service's environment (the recipe's `env` and `KRILL_*`,
/// nothing of the supervisor's own); exit 0 is healthy.
///
/// The probe is its own process group, and with `bus` it is moved into a transient
/// scope `krill-probe-…scope` in the workspace's slice before it may exec (a
/// `/bin/sh` wrapper waits for a line on stdin, then execs the command as `"$@"`). When the probe ends or times out the scope is stopped, so
/// anything it left behind is killed with it, and an emergency stop of the workspace
/// (which stops the slice) reaches probes too.
pub async fn script(
    argv: &[String],
    w: &Watched,
    timeout: Duration,
    bus: Option<&zbus::Connection>,
) -> Result<(), String> {
    let Some((prog, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    // The probe waits for one line on stdin before it execs, so that it is in its
    // scope before it can fork anything. (A pre_exec hook cannot wait: spawn itself
    // waits for the exec.) The command is passed as "$@", never interpreted.
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("read -r _; exec \"$@\"")
        .arg("krill-probe")
        .arg(prog)
        .args(args)
        .env_clear()
        .env("PATH", SERVICE_PATH)
        .envs(w.svc.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&w.svc.working_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("script {prog}: {e}"))?;
    let pid = child.id().unwrap_or(0);
    let scope = match bus {
        Some(conn) if pid > 0 => into_scope(conn, w, pid).await,
        _ => None,
    };
    // Let the probe exec; its stdin is then at end of file.
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(b"\n").await;
    }
    let result = tokio::time::timeout(timeout, child.wait_with_output()).await;
    if result.is_err() && pid > 0 {
        // Timed out: the whole process group, not only the probe itself.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    if let (Some(conn), Some(scope)) = (bus, &scope) {
        if let Ok(m) = krill::runtime::bus::ManagerProxy::new(conn).await {
            let _ = m.stop_unit(scope, "replace").await;
        }
    }
    match result {
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(format!("script {prog}: {}", out.status)),
        Ok(Err(e)) => Err(format!("script {prog}: {e}")),
        Err(_) => Err(format!("script {prog}: no answer within {timeout:?}")),
    }
}

/// Moves `pid` into a new transient scope in `w`'s slice; waits (at most 1 s) until
/// systemd has moved it. Returns the scope's name, or None if that failed (the probe
/// then runs in the supervisor's cgroup, still killed as a group on timeout).
async fn into_scope(conn: &zbus::Connection, w: &Watched, pid: u32) -> Option<String> {
    use zbus::zvariant::Value;
    let stem = w.unit.strip_suffix(".service").unwrap_or(&w.unit);
    let n = PROBE_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scope = format!("krill-probe-{stem}-{n}.scope");
    let slice = w
        .cgroup
        .split('/')
        .rev()
        .nth(1)
        .unwrap_or("krill.slice")
        .to_owned();
    let m = krill::runtime::bus::ManagerProxy::new(conn).await.ok()?;
    let desc = format!("krill: health probe of {}", w.unit);
    let props: Vec<(&str, Value<'_>)> = vec![
        ("PIDs", Value::from(vec![pid])),
        ("Slice", Value::from(slice.as_str())),
        ("Description", Value::from(desc.as_str())),
        ("CollectMode", Value::from("inactive-or-failed")),
    ];
    if let Err(e) = m.start_transient_unit(&scope, "fail", &props, &[]).await {
        tracing::warn!("cannot put the probe of {} in a scope: {e}", w.unit);
        return None;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        if crate::auth::cgroup_of_pid(pid as i32).is_some_and(|c| c.ends_with(&scope)) {
            return Some(scope);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tracing::warn!("probe of {} not in {scope} after 1 s", w.unit);
    Some(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> Watched {
        Watched {
            svc: krill::runtime::manifest::ManifestService {
                env: vec![("PROBE_EXIT".into(), "3".into())],
                working_dir: "/".into(),
                ..Default::default()
            },
            workspace: "w".into(),
            service: "s".into(),
            unit: "u".into(),
            target: "t".into(),
            cgroup: "/krill.slice/krill-w.slice/u".into(),
            container_cgroup: None,
        }
    }

    #[tokio::test]
    async fn tcp_and_http_pass_and_fail() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(tcp(port, Duration::from_secs(1)).await, Ok(()));
        drop(l);
        // A bound socket that does not listen refuses connections, and keeps its port
        // from being picked as the client's own (a TCP self-connect would succeed).
        let closed = tokio::net::TcpSocket::new_v4().unwrap();
        closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = closed.local_addr().unwrap().port();
        assert!(tcp(port, Duration::from_secs(1))
            .await
            .unwrap_err()
            .contains(&format!("tcp port {port}")));

        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for (i, s) in l.incoming().enumerate() {
                let mut s = s.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let status = if i == 0 {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let _ = s.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                );
            }
        });
        assert_eq!(
            http(port, "/health", 200, Duration::from_secs(2)).await,
            Ok(())
        );
        let e = http(port, "/health", 200, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(e.contains("status 503, expected 200"), "{e}");
    }

    #[tokio::test]
    async fn script_exit_code_and_timeout() {
        assert_eq!(
            script(&["true".into()], &w(), Duration::from_secs(2), None).await,
            Ok(())
        );
        let e = script(
            &["sh".into(), "-c".into(), "exit $PROBE_EXIT".into()],
            &w(),
            Duration::from_secs(2),
            None,
        )
        .await
        .unwrap_err();
        assert!(e.contains("exit status: 3"), "{e}");
        let e = script(
            &["sleep".into(), "5".into()],
            &w(),
            Duration::from_millis(100),
            None,
        )
        .await
        .unwrap_err();
        assert!(e.contains("no answer within"), "{e}");
    }
}
