//! The recipe contract S1–S6 (design.md), proven in a real systemd 252.
//!
//! Every test boots its own container, installs a recipe with `krill install`, and
//! asserts what systemd reports: ActiveState, MainPID, NRestarts, InvocationID,
//! timestamps, and the processes in the workspace's cgroup.

use std::time::Duration;

use krill_e2e::{now_us, text, Container};

const T: Duration = Duration::from_secs(20);

fn unit(ws: &str, s: &str) -> String {
    format!("krill-{ws}-{s}.service")
}

/// S1: a 3-level DAG starts in dependency order; services of one layer start
/// together (neither waits for the other).
#[test]
fn s1_dag_starts_in_dependency_order_with_parallel_layers() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("s1-order");
    c.install_ok(
        "order",
        r#"
version: "1"
name: order
services:
  top:
    execute: {type: shell, command: sleep infinity}
    dependencies: [left, right]
  left:
    execute: {type: shell, command: sleep infinity}
    dependencies: [base]
  right:
    execute: {type: shell, command: sleep infinity}
    dependencies: [base]
  base:
    execute: {type: shell, command: sleep infinity}
"#,
        "--now",
    );
    for s in ["base", "left", "right", "top"] {
        c.wait_state(&unit("order", s), "active/running", T);
    }
    let t = |s: &str| c.num(&unit("order", s), "ExecMainStartTimestampMonotonic");
    let (base, left, right, top) = (t("base"), t("left"), t("right"), t("top"));
    assert!(
        base < left && base < right,
        "layer 1 after layer 0: {base} {left} {right}"
    );
    assert!(
        left < top && right < top,
        "layer 2 after layer 1: {left} {right} {top}"
    );
    // Parallel: the later of the two layer-1 services started before the earlier one
    // could have been followed by a gate round trip of its own (well under 100 ms).
    let spread = left.abs_diff(right);
    eprintln!(
        "MEASURE s1_layer_spread_us={spread} bringup_overhead_us={}",
        top - base
    );
    assert!(
        spread < top - base,
        "layer-1 services started one after the other"
    );
}

/// S2: a dependency that fails for good keeps its dependent from starting, and the
/// dependent's status says why.
#[test]
fn s2_dependent_does_not_start_when_dependency_fails() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("s2");
    c.install_ok(
        "s2",
        r#"
version: "1"
name: s2
services:
  broken:
    execute: {type: shell, command: /nonexistent/driver}
  app:
    execute: {type: shell, command: sleep infinity}
    dependencies: [broken]
"#,
        "",
    );
    let out = c.sh("systemctl start krill-s2.target");
    assert!(out.status.success(), "target start job itself succeeds");
    c.wait_state(&unit("s2", "broken"), "failed/failed", T);
    c.wait_for("app's start to fail on its dependency", T, || {
        c.prop(&unit("s2", "app"), "ActiveState") != "activating"
            && c.num(&unit("s2", "app"), "ExecMainStartTimestampMonotonic") == 0
            && c.prop("krill-started@krill-s2-broken.service", "ActiveState") == "failed"
    });
    assert_eq!(
        c.num(&unit("s2", "app"), "ExecMainStartTimestampMonotonic"),
        0,
        "app never ran"
    );
    assert_eq!(c.prop(&unit("s2", "app"), "ActiveState"), "inactive");
    let gate_log = c.journal("-u krill-started@krill-s2-broken.service");
    assert!(
        gate_log.contains("dependency not met: krill-s2-broken.service is not started"),
        "{gate_log}"
    );
    let status = c.status("s2");
    assert!(
        status.contains("broken") && status.contains("failed/failed"),
        "{status}"
    );
}

/// S6: max_restarts: 3 gives exactly 3 restarts, then the service fails for good.
#[test]
fn s6_max_restarts_is_exact() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("s6-max");
    let out = c.install(
        "/root/mx.yaml",
        r#"
version: "1"
name: mx
services:
  flaky:
    execute: {type: shell, command: "sh -c 'echo run >> /run/runs; exit 3'"}
    policy: {restart: on-failure, max_restarts: 3, restart_delay: 100ms}
"#,
        "--now",
    );
    // Plain `--now` exits 0 or 3 depending on whether it looked before or after the
    // first exit (it waits for the processes to start, not to stay up).
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", text(&out));
    let u = unit("mx", "flaky");
    c.wait_state(&u, "failed/failed", T);
    let runs = std::fs::read_to_string(c.path("/run/runs")).unwrap();
    assert_eq!(
        runs.lines().count(),
        4,
        "the first run and exactly 3 restarts"
    );
    assert_eq!(c.prop(&u, "ExecMainStatus"), "3");
    // systemd counts the refused 4th attempt in NRestarts; krill status shows real ones.
    let status = c.status("mx --json");
    assert!(status.contains("\"restarts\": 3"), "{status}");
}

/// S6: on-failure restarts after a stray SIGTERM (`kill <pid>`) but not after exit 0;
/// always restarts after exit 0; never does not restart.
#[test]
fn s6_restart_policies() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("s6-policy");
    c.install_ok(
        "pol",
        r#"
version: "1"
name: pol
services:
  onfail:
    execute: {type: shell, command: sleep infinity}
    policy: {restart: on-failure, restart_delay: 100ms}
  onfail-clean:
    execute: {type: shell, command: "sh -c 'while [ ! -e /run/exit-now ]; do sleep 0.02; done'"}
    policy: {restart: on-failure, restart_delay: 100ms}
  always:
    execute: {type: shell, command: "sh -c 'while [ ! -e /run/exit-now ]; do sleep 0.02; done'"}
    policy: {restart: always, restart_delay: 100ms}
  never:
    execute: {type: shell, command: sleep infinity}
"#,
        "--now",
    );
    for s in ["onfail", "onfail-clean", "always", "never"] {
        c.wait_state(&unit("pol", s), "active/running", T);
    }
    // A stray SIGTERM counts as a failure for on-failure.
    let u = unit("pol", "onfail");
    let old = c.kill_main(&u);
    c.wait_for("onfail restarted", T, || {
        c.num(&u, "NRestarts") == 1 && c.state(&u) == "active/running"
    });
    assert_ne!(c.num(&u, "MainPID"), old);
    // never: a kill stops it for good, and a stray SIGTERM is a failure (S6), even
    // though systemd alone would call it a clean exit.
    let n = unit("pol", "never");
    c.kill_main(&n);
    c.wait_for("never to stop", T, || !c.state(&n).starts_with("active"));
    c.wait_state(&n, "failed/failed", T);
    assert_eq!(c.num(&n, "NRestarts"), 0, "never means no restart");
    // Exit 0: on-failure is done (inactive/dead, no restart scheduled), always restarts.
    let clean = unit("pol", "onfail-clean");
    let always = unit("pol", "always");
    let always_pid = c.num(&always, "MainPID");
    c.ok("touch /run/exit-now");
    c.wait_for("onfail-clean to exit", T, || {
        c.prop(&clean, "ActiveState") != "active"
    });
    // A scheduled restart shows as activating/auto-restart at once; inactive/dead
    // with Result=success means none is coming.
    assert_eq!(c.state(&clean), "inactive/dead");
    assert_eq!(c.prop(&clean, "Result"), "success");
    assert_eq!(c.num(&clean, "NRestarts"), 0);
    c.wait_for("always to restart after exit 0", T, || {
        c.num(&always, "NRestarts") >= 1
    });
    c.ok("rm /run/exit-now");
    c.wait_state(&always, "active/running", T);
    assert_ne!(c.num(&always, "MainPID"), always_pid);

    // The units suit the systemd that loaded them (krill::compile::target): one
    // failure call per final failure on 257, and no ExecStopPost= on a Type=exec
    // service below 252 (247's PID 1 spins on it; see the next test).
    let v = c.systemd_version();
    let never = c.ok(&format!("systemctl cat {n}"));
    assert_eq!(
        never.contains("ExecStopPost=/usr/bin/krill-ctl exited"),
        v >= 252,
        "systemd {v}:\n{never}"
    );
    assert_eq!(
        never.contains("ExecStop=/usr/bin/krill-ctl exited"),
        v < 252,
        "systemd {v}:\n{never}"
    );
    let onfail = c.ok(&format!("systemctl cat {u}"));
    assert_eq!(
        onfail.contains("RestartMode=direct"),
        v >= 257,
        "systemd {v}:\n{onfail}"
    );
}

/// S2/S6 on every systemd: services that die at once (a missing binary, an exit at
/// start) fail, again and again, and systemd keeps answering. With `ExecStopPost=` on
/// a `Type=exec` unit, systemd 247 stopped answering at the first or second such
/// death ("Looping too fast"), and took every unit on the machine with it.
#[test]
fn s2_services_that_die_at_start_never_hang_systemd() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("s2-dies");
    c.install_ok(
        "dies",
        r#"
version: "1"
name: dies
services:
  missing:
    execute: {type: shell, command: /nonexistent/driver}
  quits:
    execute: {type: shell, command: /bin/false}
"#,
        "",
    );
    for i in 0..10 {
        for s in ["missing", "quits"] {
            // `timeout`: a hung PID 1 must fail the test, not hang it.
            let o = c.sh(&format!("timeout 10 systemctl start {}", unit("dies", s)));
            assert_ne!(o.status.code(), Some(124), "start #{i} of {s} hung systemd");
        }
        let o = c.sh("timeout 10 systemctl is-system-running");
        assert_ne!(
            o.status.code(),
            Some(124),
            "systemd stopped answering after start #{i}"
        );
    }
    c.wait_state(&unit("dies", "missing"), "failed/failed", T);
    c.wait_state(&unit("dies", "quits"), "failed/failed", T);
}

/// S6: restart_delay is honoured between exit and restart.
#[test]
fn s6_restart_delay_is_honoured() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("s6-delay");
    c.install_ok(
        "dl",
        r#"
version: "1"
name: dl
services:
  slow:
    execute: {type: shell, command: sleep infinity}
    policy: {restart: on-failure, restart_delay: 700ms}
"#,
        "--now",
    );
    let u = unit("dl", "slow");
    c.wait_state(&u, "active/running", T);
    c.kill_main(&u);
    c.wait_for("restart", T, || {
        c.num(&u, "NRestarts") == 1 && c.state(&u) == "active/running"
    });
    // ActiveExitTimestamp is when the killed run left `active`; the new run has not
    // left it yet, so the value is still the kill's.
    let exited = c.num(&u, "ActiveExitTimestampMonotonic");
    let restarted = c.num(&u, "ExecMainStartTimestampMonotonic");
    let gap = restarted - exited;
    eprintln!("MEASURE exit_to_restart_us={gap} (restart_delay=700ms)");
    assert!(
        gap >= 700_000,
        "restarted after {gap} µs, before restart_delay"
    );
    assert!(
        gap < 1_700_000,
        "restarted {gap} µs after exit: far beyond restart_delay"
    );
}

/// S6: stop_timeout: a service that ignores SIGTERM is SIGKILLed after it, with its
/// grandchildren (even one in its own session).
#[test]
fn s6_stop_timeout_kills_the_whole_tree() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("s6-stop");
    c.write(
        "/root/stubborn.py",
        r#"import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open("/run/grandchild.pid", "w").write(str(os.getpid()))
        while True:
            time.sleep(1)
    while True:
        time.sleep(1)
while True:
    time.sleep(1)
"#,
    );
    c.install_ok(
        "st",
        r#"
version: "1"
name: st
services:
  stubborn:
    execute: {type: shell, command: python3 /root/stubborn.py}
    policy: {restart: on-failure, stop_timeout: 1s}
"#,
        "--now",
    );
    let u = unit("st", "stubborn");
    c.wait_state(&u, "active/running", T);
    // The file exists before its number is written: wait for the number.
    let pid = || {
        std::fs::read_to_string(c.path("/run/grandchild.pid"))
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
    };
    c.wait_for("grandchild pid file", T, || pid().is_some());
    let gc: u32 = pid().unwrap();
    assert!(c.alive(gc));
    let t0 = now_us();
    let _ = c.sh(&format!("systemctl stop {u}"));
    let took = now_us() - t0;
    assert!(!c.alive(gc), "grandchild survived the stop");
    assert!(c.cgroup_pids("krill.slice/krill-st.slice").is_empty());
    assert_eq!(
        c.prop(&u, "Result"),
        "timeout",
        "SIGKILL came from the stop timeout"
    );
    assert!(
        took >= 1_000_000,
        "stop returned after {took} µs, before stop_timeout"
    );
    assert_eq!(c.num(&u, "NRestarts"), 0, "an explicit stop never restarts");
}

/// S3: a dependency's automatic restart leaves its dependents running, same PIDs.
#[test]
fn s3_dependency_restart_leaves_dependents_running() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("s3");
    c.install_ok(
        "s3",
        r#"
version: "1"
name: s3
services:
  driver:
    execute: {type: shell, command: sleep infinity}
    policy: {restart: always, restart_delay: 100ms}
  slam:
    execute: {type: shell, command: sleep infinity}
    dependencies: [driver]
  planner:
    execute: {type: shell, command: sleep infinity}
    dependencies: [slam]
"#,
        "--now",
    );
    let (d, s, p) = (
        unit("s3", "driver"),
        unit("s3", "slam"),
        unit("s3", "planner"),
    );
    for u in [&d, &s, &p] {
        c.wait_state(u, "active/running", T);
    }
    let before: Vec<(u64, String)> = [&s, &p]
        .iter()
        .map(|u| (c.num(u, "MainPID"), c.prop(u, "InvocationID")))
        .collect();
    for round in 1..=3 {
        c.kill_main(&d);
        c.wait_for("driver restarted", T, || {
            c.num(&d, "NRestarts") == round && c.state(&d) == "active/running"
        });
    }
    let after: Vec<(u64, String)> = [&s, &p]
        .iter()
        .map(|u| (c.num(u, "MainPID"), c.prop(u, "InvocationID")))
        .collect();
    assert_eq!(before, after, "dependents were restarted");
    for u in [&s, &p] {
        assert_eq!(c.state(u), "active/running");
        assert_eq!(c.num(u, "NRestarts"), 0);
    }
}

/// S4: a dependency that fails for good stops all transitive dependents; a critical
/// dependent stopped by the cascade does not count as failed (no emergency stop).
#[test]
fn s4_failure_for_good_cascades_to_transitive_dependents() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("s4");
    c.install_ok(
        "s4",
        r#"
version: "1"
name: s4
services:
  lidar:
    execute: {type: shell, command: sleep infinity}
    policy: {restart: on-failure, max_restarts: 1, restart_delay: 100ms}
  slam:
    execute: {type: shell, command: sleep infinity}
    dependencies: [lidar]
  nav:
    execute: {type: shell, command: sleep infinity}
    dependencies: [slam]
    critical: true
  camera:
    execute: {type: shell, command: sleep infinity}
"#,
        "--now",
    );
    let [l, s, n, cam] = ["lidar", "slam", "nav", "camera"].map(|x| unit("s4", x));
    for u in [&l, &s, &n, &cam] {
        c.wait_state(u, "active/running", T);
    }
    c.kill_main(&l);
    c.wait_for("lidar restarted once", T, || {
        c.num(&l, "NRestarts") == 1 && c.state(&l) == "active/running"
    });
    c.kill_main(&l);
    c.wait_state(&l, "failed/failed", T);
    c.wait_state(&s, "inactive/dead", T);
    c.wait_state(&n, "inactive/dead", T);
    assert_eq!(
        c.state(&cam),
        "active/running",
        "an unrelated service keeps running"
    );
    assert_eq!(
        c.prop("krill-s4.target", "ActiveState"),
        "active",
        "no emergency stop"
    );
    assert!(
        !c.path("/run/krill/estop/s4").exists(),
        "no emergency stop recorded"
    );
    let log = c.journal("-u krill-cascade@krill-s4-lidar.service");
    assert!(log.contains("stopped its dependents"), "{log}");
    let status = c.status("s4");
    assert!(
        status.contains("stopped by a cascade from lidar (gave up after 1 restarts; last run: killed by SIGTERM)")
            || status.contains("stopped by a cascade from lidar"),
        "{status}"
    );
}

/// S5: a critical service that fails for good stops every process of the workspace,
/// dependents before dependencies, and the reason is logged and shown in status.
#[test]
fn s5_critical_failure_is_an_emergency_stop() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("s5");
    c.write(
        "/root/forker.py",
        r#"import os, subprocess, time
subprocess.Popen(["sleep", "infinity"], start_new_session=True)
while True:
    time.sleep(1)
"#,
    );
    let mut recipe = String::from("version: \"1\"\nname: s5\nservices:\n  base:\n    execute: {type: shell, command: python3 /root/forker.py}\n");
    for i in 1..=8 {
        let dep = if i == 1 {
            "base".to_owned()
        } else {
            format!("w{}", i - 1)
        };
        recipe.push_str(&format!("  w{i}:\n    execute: {{type: shell, command: python3 /root/forker.py}}\n    dependencies: [{dep}]\n"));
    }
    recipe.push_str("  brain:\n    execute: {type: shell, command: \"sh -c 'while [ ! -e /run/fail-now ]; do sleep 0.01; done; exit 7'\"}\n    dependencies: [base]\n    critical: true\n");
    c.install_ok("s5", &recipe, "--now");
    let all: Vec<String> = std::iter::once("base".to_owned())
        .chain((1..=8).map(|i| format!("w{i}")))
        .map(|s| unit("s5", &s))
        .collect();
    for u in &all {
        c.wait_state(u, "active/running", T);
    }
    c.wait_state(&unit("s5", "brain"), "active/running", T);
    let slice = "krill.slice/krill-s5.slice";
    let procs = c.cgroup_pids(slice);
    assert!(
        procs.len() >= 19,
        "10 services with grandchildren: {procs:?}"
    );
    c.ok("touch /run/fail-now");
    // Poll the cgroup tree directly (cheap) at 1 ms to time the stop.
    let deadline = now_us() + T.as_micros() as u64;
    let gone_at = loop {
        if c.cgroup_pids(slice).is_empty() {
            break now_us();
        }
        assert!(
            now_us() < deadline,
            "processes left: {:?}",
            c.cgroup_pids(slice)
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    c.wait_state(&unit("s5", "brain"), "failed/failed", T);
    let failed_at = c.num(&unit("s5", "brain"), "ExecMainExitTimestampMonotonic");
    eprintln!(
        "MEASURE estop_failure_to_all_gone_ms={:.1}",
        (gone_at - failed_at) as f64 / 1000.0
    );
    for p in procs {
        assert!(!c.alive(p), "pid {p} survived the emergency stop");
    }
    // Dependents stopped before their dependencies.
    let stopped = |u: &str| c.num(u, "InactiveEnterTimestampMonotonic");
    for w in all.windows(2) {
        assert!(
            stopped(&w[1]) <= stopped(&w[0]),
            "{} stopped after its dependency {}",
            w[1],
            w[0]
        );
    }
    assert_eq!(c.prop("krill-s5.target", "ActiveState"), "inactive");
    let log = c.journal("-u krill-estop@krill-s5-brain.service");
    assert!(
        log.contains("EMERGENCY STOP: critical service brain failed for good"),
        "{log}"
    );
    let status = c.status("s5");
    assert!(
        status.contains("s5.target): emergency-stopped (critical service brain failed for good"),
        "{status}"
    );
}

/// The seed's Try-It table (000), with shell services and `started` dependencies.
/// Delays are shortened from 5 s to 200 ms to keep the test quick.
#[test]
fn seed_try_it_table_with_started_dependencies() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("tryit");
    c.install_ok(
        "tryit",
        r#"
version: "1"
name: tryit
services:
  data-processor:
    execute: {type: shell, command: sleep infinity}
    policy: {restart: always, restart_delay: 200ms}
  data-analyzer:
    execute: {type: shell, command: sleep infinity}
    dependencies: [data-processor]
    policy: {restart: on-failure, max_restarts: 3, restart_delay: 200ms}
  decision-controller:
    execute: {type: shell, command: sleep infinity}
    dependencies: [data-processor, data-analyzer]
    critical: true
    policy: {restart: on-failure, max_restarts: 3, restart_delay: 200ms}
"#,
        "--now",
    );
    let [p, a, d] =
        ["data-processor", "data-analyzer", "decision-controller"].map(|s| unit("tryit", s));
    for u in [&p, &a, &d] {
        c.wait_state(u, "active/running", T);
    }
    // Kill processor: restarts immediately, dependents keep running.
    let pids = (c.num(&a, "MainPID"), c.num(&d, "MainPID"));
    c.kill_main(&p);
    c.wait_for("processor restarted", T, || {
        c.num(&p, "NRestarts") == 1 && c.state(&p) == "active/running"
    });
    assert_eq!((c.num(&a, "MainPID"), c.num(&d, "MainPID")), pids);
    // Kill analyzer: restarts up to 3 times, then the controller stops.
    for i in 1..=3 {
        c.kill_main(&a);
        c.wait_for("analyzer restarted", T, || {
            c.num(&a, "NRestarts") == i && c.state(&a) == "active/running"
        });
    }
    c.kill_main(&a);
    c.wait_state(&a, "failed/failed", T);
    c.wait_state(&d, "inactive/dead", T);
    assert_eq!(
        c.state(&p),
        "active/running",
        "processor is not a dependent"
    );
    assert_eq!(
        c.prop("krill-tryit.target", "ActiveState"),
        "active",
        "a cascade is no emergency stop"
    );
    // Kill controller 3+ times: emergency stop, all services shut down.
    c.ok("krill restart tryit");
    for u in [&p, &a, &d] {
        c.wait_state(u, "active/running", T);
    }
    for i in 1..=3 {
        c.kill_main(&d);
        c.wait_for("controller restarted", T, || {
            c.num(&d, "NRestarts") == i && c.state(&d) == "active/running"
        });
    }
    c.kill_main(&d);
    c.wait_state(&d, "failed/failed", T);
    c.wait_state(&p, "inactive/dead", T);
    c.wait_state(&a, "inactive/dead", T);
    assert!(c.cgroup_pids("krill.slice/krill-tryit.slice").is_empty());
}
