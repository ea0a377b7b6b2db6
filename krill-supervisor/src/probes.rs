//! tcp, http and script health probes. Each returns `Err(reason)` on failure; the
//! reason ends up in `krill status`.

use std::time::Duration;

use krill::recipe::HealthCheck;

use crate::health::{Watched, DEFAULT_PROBE_TIMEOUT, DEFAULT_SCRIPT_TIMEOUT};

/// Runs one probe of `check` for `w`.
pub async fn run(check: &HealthCheck, w: &Watched) -> Result<(), String> {
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
            script(argv, w, timeout.unwrap_or(DEFAULT_SCRIPT_TIMEOUT)).await
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

/// Runs the check command (never through a shell) in the service's working
/// directory and environment; exit 0 is healthy.
pub async fn script(argv: &[String], w: &Watched, timeout: Duration) -> Result<(), String> {
    let Some((prog, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .envs(w.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&w.working_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| format!("script {prog}: {e}"))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(format!("script {prog}: {}", out.status)),
        Ok(Err(e)) => Err(format!("script {prog}: {e}")),
        Err(_) => Err(format!("script {prog}: no answer within {timeout:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> Watched {
        Watched {
            workspace: "w".into(),
            service: "s".into(),
            unit: "u".into(),
            target: "t".into(),
            check: None,
            env: vec![("PROBE_EXIT".into(), "3".into())],
            working_dir: "/".into(),
            max_restarts: 0,
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
            script(&["true".into()], &w(), Duration::from_secs(2)).await,
            Ok(())
        );
        let e = script(
            &["sh".into(), "-c".into(), "exit $PROBE_EXIT".into()],
            &w(),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(e.contains("exit status: 3"), "{e}");
        let e = script(
            &["sleep".into(), "5".into()],
            &w(),
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
        assert!(e.contains("no answer within"), "{e}");
    }
}
