//! Status that explains every stop (issue 8), in a real systemd: the exact reason
//! words in `krill status` and `--json`, stale reasons, workspace headlines, the exit
//! codes, and `--wait`.

use std::time::Duration;

use krill_e2e::{text, Container};

const T: Duration = Duration::from_secs(30);

fn report(c: &Container, ws: &str) -> serde_json::Value {
    c.status_json(ws)
}

fn svc(c: &Container, ws: &str, name: &str) -> serde_json::Value {
    let v = report(c, ws);
    assert_eq!(v["version"], 1, "{v}");
    v["workspaces"][0]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

fn reason(c: &Container, ws: &str, name: &str) -> String {
    svc(c, ws, name)["reason"].as_str().unwrap_or("").to_owned()
}

fn headline(c: &Container, ws: &str) -> (String, String) {
    let v = report(c, ws);
    let w = &v["workspaces"][0];
    (
        w["state"].as_str().unwrap_or("").to_owned(),
        w["detail"].as_str().unwrap_or("").to_owned(),
    )
}

fn wait_reason(c: &Container, ws: &str, name: &str, want: &str) {
    c.wait_for(&format!("{ws}/{name}: {want}"), T, || {
        reason(c, ws, name) == want
    });
    let table = c.status(ws);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(name) && l.ends_with(want)),
        "the table shows the reason:\n{table}"
    );
}

const WHY: &str = r#"
version: "1"
name: why
services:
  code:
    execute: {type: shell, command: "sh -c 'exit 3'"}
  sig:
    execute: {type: shell, command: "sh -c 'kill -USR1 $$'"}
  clean:
    execute: {type: shell, command: "true"}
    policy: {restart: on-failure}
  giveup:
    execute: {type: shell, command: "sh -c 'exit 1'"}
    policy: {restart: on-failure, max_restarts: 2, restart_delay: 100ms}
  missing:
    execute: {type: ros2, package: nav2_bringup, launch_file: nav.launch.py}
  dep:
    execute: {type: shell, command: sleep infinity}
    dependencies: [missing]
  gpu:
    execute: {type: shell, command: sleep infinity}
    gpu: true
  hb:
    execute: {type: shell, command: sleep infinity}
    health_check: {type: heartbeat, timeout: 1s}
  probe:
    execute: {type: shell, command: sleep infinity}
    health_check: {type: script, command: "test ! -e /run/probe-fail"}
  op:
    execute: {type: shell, command: sleep infinity}
"#;

/// One test per reason: each service of `why` stops in its own way, and `krill
/// status` names the cause in the table and in `--json`.
#[test]
fn every_stop_has_a_reason() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("why");
    // `krill install --now --wait` follows the start and fails: services failed.
    let out = c.install("/root/why.yaml", WHY, "--now --wait=20s");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("did not start"), "{}", text(&out));

    wait_reason(&c, "why", "code", "exited with code 3");
    wait_reason(&c, "why", "sig", "killed by SIGUSR1");
    wait_reason(
        &c,
        "why",
        "clean",
        "exited 0 (clean exit; on-failure does not restart it)",
    );
    wait_reason(
        &c,
        "why",
        "giveup",
        "gave up after 2 restarts; last run: exited with code 1",
    );
    assert_eq!(svc(&c, "why", "giveup")["restarts"], 2);
    wait_reason(&c, "why", "missing", "executable not found: ros2");
    wait_reason(&c, "why", "dep", "dependency missing failed for good");
    c.wait_for("gpu reason", T, || {
        reason(&c, "why", "gpu").starts_with("no usable GPU: ")
    });
    c.wait_for("watchdog reason", T, || {
        let r = reason(&c, "why", "hb");
        r.starts_with("no heartbeat for 1.") && r.ends_with(" s (timeout 1.0 s)")
    });
    c.wait_for("probe healthy", T, || {
        svc(&c, "why", "probe")["health"] == "healthy"
    });
    c.write("/run/probe-fail", "");
    c.wait_for("probe reason", T, || {
        reason(&c, "why", "probe").starts_with("probe failing: ")
    });
    c.ok("systemctl stop krill-why-op.service");
    wait_reason(&c, "why", "op", "stopped by an operator");
    let op = svc(&c, "why", "op");
    assert_eq!(op["state"], "inactive");
    assert_eq!(op["sub_state"], "dead");
    assert!(op["pid"].is_null() && op["uptime_s"].is_null(), "{op}");
    // No reason ever says "status 15" for a signal.
    assert!(!c.status("why").contains("status 15"));
    // Headline: something failed, nothing critical.
    let (state, detail) = headline(&c, "why");
    assert_eq!(state, "degraded", "{detail}");
    assert!(
        detail.ends_with("of 10 services need attention"),
        "{detail}"
    );
    // Exit codes.
    assert_eq!(c.sh("krill status why").status.code(), Some(3));
    assert_eq!(c.sh("krill status nosuch").status.code(), Some(1));
    assert_eq!(c.sh("krill status --bogus").status.code(), Some(2));
}

/// A cascade reason belongs to the run it stopped: after recovery, no reason; the
/// failure stays as `last_failure`. Headlines for running, stopped, emergency-stopped
/// and failed; `krill start --wait` success and timeout.
#[test]
fn reasons_clear_with_a_new_run_and_headlines_follow() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("stale");
    let recipe = r#"
version: "1"
name: st
services:
  a:
    execute: {type: shell, command: "sh -c 'while test ! -e /run/a-die; do sleep 0.05; done; exit 1'"}
  b:
    execute: {type: shell, command: sleep infinity}
    dependencies: [a]
"#;
    let out = c.install("/root/st.yaml", recipe, "--now --wait=20s");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(headline(&c, "st").0, "running");
    assert_eq!(c.sh("krill status st").status.code(), Some(0));
    assert!(svc(&c, "st", "b")["reason"].is_null());

    c.write("/run/a-die", "");
    wait_reason(
        &c,
        "st",
        "b",
        "stopped by a cascade from a (exited with code 1)",
    );
    wait_reason(&c, "st", "a", "exited with code 1");

    std::fs::remove_file(c.path("/run/a-die")).unwrap();
    let out = c.sh("krill start st --wait=20s");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for s in ["a", "b"] {
        let v = svc(&c, "st", s);
        assert!(v["reason"].is_null(), "a new run has no old reason: {v}");
    }
    let a = svc(&c, "st", "a");
    assert_eq!(a["last_failure"]["reason"], "exited with code 1", "{a}");

    c.ok("krill stop st");
    c.wait_for("st stopped", T, || headline(&c, "st").0 == "stopped");
    assert_eq!(c.sh("krill status st").status.code(), Some(3));

    c.ok("krill start st --wait=20s");
    c.ok("krill estop st --reason 'bumper pressed'");
    assert_eq!(
        headline(&c, "st"),
        ("emergency-stopped".to_owned(), "bumper pressed".to_owned())
    );
    wait_reason(&c, "st", "b", "emergency stop: bumper pressed");

    // Plain `--now` never says "started" when a service could not exec.
    let out = c.install(
        "/root/ex.yaml",
        "version: \"1\"\nname: ex\nservices:\n  nav:\n    execute: {type: ros2, package: p, launch_file: l.py}\n",
        "--now",
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("executable not found: ros2"),
        "{}",
        text(&out)
    );

    // A critical service that never starts: failed. And --wait gives up in time.
    let crit = r#"
version: "1"
name: cr
services:
  base:
    execute: {type: shell, command: sleep infinity}
    health_check: {type: script, command: "test -e /run/base-ok"}
  brain:
    execute: {type: shell, command: sleep infinity}
    dependencies: [{base: healthy}]
    critical: true
"#;
    let out = c.install("/root/cr.yaml", crit, "--now");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(headline(&c, "cr").0, "starting");
    let out = c.sh("krill start cr --wait=2s");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("is not running after 2s"),
        "{}",
        text(&out)
    );
    wait_reason(&c, "cr", "brain", "waiting for base to be healthy");
    c.ok("systemctl kill -s KILL krill-cr-base.service");
    c.wait_for("cr failed", T, || headline(&c, "cr").0 == "failed");
    assert!(
        headline(&c, "cr")
            .1
            .starts_with("critical service brain is down: dependency base "),
        "{:?}",
        headline(&c, "cr")
    );
}

/// Issue 11, resource statistics: each running service's CPU (% over the
/// supervisor's last 1 s sample, and total seconds), memory (now and peak) and tasks
/// from systemd's cgroup accounting, which the generated units turn on; in
/// `krill status` (CPU and MEM columns) and `--json`. Without the supervisor the CPU
/// percentage is unknown and the rest still shows.
#[test]
fn status_shows_each_services_resources() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("status-res");
    c.install_ok(
        "res",
        r#"
version: "1"
name: res
services:
  burn:
    execute: {type: shell, command: "sh -c 'while :; do :; done'"}
  mem:
    execute: {type: shell, command: "python3 -c \"b = b'x' * (64 << 20); import time; time.sleep(1e6)\""}
"#,
        "--now",
    );
    assert_eq!(c.prop("krill-res-mem.service", "CPUAccounting"), "yes");
    assert_eq!(c.prop("krill-res-mem.service", "MemoryAccounting"), "yes");
    assert_eq!(c.prop("krill-res-mem.service", "TasksAccounting"), "yes");
    let res = |name: &str| svc(&c, "res", name)["resources"].clone();
    c.wait_for("burn measured busy", T, || {
        res("burn")["cpu_percent"].as_f64().unwrap_or(0.0) > 20.0
    });
    let burn = res("burn");
    assert!(burn["cpu_s"].as_f64().unwrap() > 0.1, "{burn}");
    assert!(res("mem")["cpu_percent"].as_f64().unwrap() < 20.0);
    // Memory and tasks need the memory and pids controllers in the container's
    // cgroup tree; a host with hybrid cgroups (v1 controllers, as this test machine)
    // has none to delegate, and then the figures are unknown (null), never wrong.
    let controllers = c.ok("cat /sys/fs/cgroup/cgroup.controllers");
    let mem = res("mem");
    if controllers.contains("memory") {
        c.wait_for("mem holds its 64 MiB", T, || {
            res("mem")["memory_bytes"].as_u64().unwrap_or(0) >= 64 << 20
        });
        let mem = res("mem");
        assert!(
            mem["memory_peak_bytes"].as_u64().unwrap() >= mem["memory_bytes"].as_u64().unwrap(),
            "{mem}"
        );
    } else {
        eprintln!("no memory controller in the container: memory figures are null");
        assert!(mem["memory_bytes"].is_null(), "{mem}");
    }
    if controllers.contains("pids") {
        assert!(res("mem")["tasks"].as_u64().unwrap() >= 1);
    }
    let table = c.status("res");
    let head = table.lines().nth(1).unwrap();
    assert!(head.contains(" CPU ") && head.contains(" MEM "), "{table}");
    let burn_row = table.lines().find(|l| l.starts_with("burn ")).unwrap();
    assert!(burn_row.contains('%'), "{table}");

    // Without the supervisor: systemd's figures, no percentage.
    c.ok("systemctl stop krill-supervisor.socket krill-supervisor.service");
    let burn = res("burn");
    assert!(burn["cpu_percent"].is_null(), "{burn}");
    assert!(burn["cpu_s"].as_f64().unwrap() > 0.1, "{burn}");
    // A stopped service has no resources.
    c.ok("systemctl stop krill-res-burn.service");
    assert!(res("burn").is_null());
}

/// Parses OpenMetrics text with the reference parser (PyPI `prometheus_client`):
/// `[[name, {labels}, value], ...]` of every sample.
fn parse_metrics(text: &str) -> Vec<(String, serde_json::Value, f64)> {
    use std::io::Write;
    let mut p = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys\n\
             from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
             out = [[s.name, s.labels, s.value] for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]\n\
             print(json.dumps(out))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with prometheus_client (scripts/deps.sh)");
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused:\n{text}");
    let v: Vec<(String, serde_json::Value, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    v
}

/// Issue 11, metrics: the opt-in `krill-metrics.socket` (127.0.0.1:9464) answers
/// `GET /metrics` with OpenMetrics text that the reference parser reads, whose values
/// agree with `krill status --json`; other paths get 404.
#[test]
fn metrics_endpoint_agrees_with_status() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("status-metrics");
    c.ok("systemctl enable --now krill-metrics.socket");
    c.install_ok(
        "met",
        r#"
version: "1"
name: met
services:
  steady:
    execute: {type: shell, command: sleep infinity}
  flaky:
    execute: {type: shell, command: "sh -c 'sleep 0.2; exit 3'"}
    policy: {restart: on-failure, max_restarts: 2, restart_delay: 100ms}
"#,
        "--now",
    );
    c.wait_for("flaky gave up", T, || {
        svc(&c, "met", "flaky")["state"] == "failed"
    });
    let get = |path: &str| {
        c.ok(&format!(
            "python3 -c \"import urllib.request, urllib.error\n\
             try:\n    r = urllib.request.urlopen('http://127.0.0.1:9464{path}')\n    print(r.status); print(r.headers['Content-Type']); print(r.read().decode(), end='')\n\
             except urllib.error.HTTPError as e:\n    print(e.code); print(e.read().decode())\""
        ))
    };
    let answer = get("/metrics");
    let mut lines = answer.splitn(3, '\n');
    assert_eq!(lines.next(), Some("200"), "{answer}");
    assert!(lines
        .next()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let samples = parse_metrics(lines.next().unwrap());
    let value = |name: &str, labels: serde_json::Value| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && *l == labels)
            .map(|s| s.2)
            .unwrap_or_else(|| panic!("no {name} {labels}"))
    };
    let report = report(&c, "met");
    for s in report["workspaces"][0]["services"].as_array().unwrap() {
        let l = serde_json::json!({"workspace": "met", "service": s["service"]});
        assert_eq!(
            value("krill_service_up", l.clone()),
            if s["pid"].is_null() { 0.0 } else { 1.0 },
            "{s}"
        );
        assert_eq!(
            value("krill_service_restarts_total", l.clone()),
            s["restarts"].as_f64().unwrap()
        );
    }
    assert_eq!(
        value(
            "krill_service_restarts_total",
            serde_json::json!({"workspace": "met", "service": "flaky"})
        ),
        2.0
    );
    let state = report["workspaces"][0]["state"].as_str().unwrap();
    assert_eq!(
        value(
            "krill_workspace_state",
            serde_json::json!({"workspace": "met", "state": state})
        ),
        1.0
    );
    assert_eq!(value("krill_supervisor_up", serde_json::json!({})), 1.0);
    assert!(value("krill_watchdog_relays_total", serde_json::json!({})) >= 0.0);
    assert!(get("/other").starts_with("404\n"));
    // The cost of a scrape: one socket-activated process each.
    let ms = c.ok("python3 -c \"import time, urllib.request\n\
         t = time.monotonic()\n\
         for _ in range(20): urllib.request.urlopen('http://127.0.0.1:9464/metrics').read()\n\
         print(round((time.monotonic() - t) / 20 * 1000, 1))\"");
    println!("MEASURE metrics_scrape_ms={}", ms.trim());
    // Loopback only.
    let listen = c.ok("cat /proc/net/tcp");
    assert!(
        listen.contains("0100007F:24F8"),
        "127.0.0.1:9464 listens: {listen}"
    );
}
