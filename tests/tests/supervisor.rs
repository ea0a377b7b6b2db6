//! krill-supervisor in a real systemd 252: S1 (`healthy`), S7, S9, heartbeats,
//! probes, status and estop on D-Bus.

use std::time::Duration;

use krill_e2e::{now_us, text, Container};

const T: Duration = Duration::from_secs(30);

/// A heartbeat service for tests, using the Python SDK as installed by krill.
/// Files under /run steer it: `stop-S` silences it, `degrade-S` makes it report
/// degraded with the file's text as reason. It writes the CLOCK_MONOTONIC time of its
/// last heartbeat (µs) to `lastbeat-S`.
const HB_PY: &str = r#"import os, time
from krill import KrillClient
name = os.environ["KRILL_SERVICE"]
c = KrillClient()
while True:
    if not os.path.exists("/run/stop-" + name):
        if os.path.exists("/run/degrade-" + name):
            c.report_degraded(open("/run/degrade-" + name).read().strip())
        else:
            c.heartbeat()
        with open("/run/lastbeat-" + name + ".tmp", "w") as f:
            f.write(str(time.monotonic_ns() // 1000))
        os.rename("/run/lastbeat-" + name + ".tmp", "/run/lastbeat-" + name)
    time.sleep(0.1)
"#;

/// S1/S7 for heartbeats: a `healthy` dependent starts only after the first
/// heartbeat; degraded keeps the service alive and shows the reason; silence beyond
/// `timeout` fails the service, its restart policy applies, and the dependent keeps
/// running (S3).
#[test]
fn heartbeat_gates_degrades_and_times_out() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("sup-hb");
    c.write("/opt/hb/hb.py", HB_PY);
    c.install_ok(
        "hb",
        r#"
version: "1"
name: hb
services:
  sensor:
    execute: {type: shell, command: python3 /opt/hb/hb.py}
    health_check: {type: heartbeat, timeout: 1s}
    policy: {restart: on-failure, restart_delay: 200ms}
  fusion:
    execute: {type: shell, command: sleep infinity}
    dependencies:
      - sensor: healthy
"#,
        "--now",
    );
    let (s, f) = ("krill-hb-sensor.service", "krill-hb-fusion.service");
    c.wait_state(f, "active/running", T);
    let first_beat: u64 = std::fs::read_to_string(c.path("/run/lastbeat-sensor"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = first_beat;
    assert!(
        c.num(f, "ExecMainStartTimestampMonotonic")
            > c.num(
                "krill-healthy@krill-hb-sensor.service",
                "ActiveEnterTimestampMonotonic"
            ) - 1,
        "fusion started after the healthy gate passed"
    );
    c.wait_for("sensor healthy in status", T, || {
        c.service_status("hb", "sensor")["health"] == "healthy"
    });

    c.write("/run/degrade-sensor", "lidar dirty");
    c.wait_for("degraded with reason", T, || {
        let s = c.service_status("hb", "sensor");
        s["health"] == "degraded" && s["reason"] == "degraded: lidar dirty"
    });
    let table = c.status("hb");
    assert!(
        table.contains("degraded") && table.contains("lidar dirty"),
        "{table}"
    );
    std::fs::remove_file(c.path("/run/degrade-sensor")).unwrap();

    // The supervisor times the heartbeats itself and pings systemd's (widened)
    // watchdog at most every half timeout: 10 Hz heartbeats cost PID 1 two pings a
    // second, not ten.
    let (a0, r0) = (c.sup_stat("accepted"), c.sup_stat("relayed"));
    c.wait_for("50 more heartbeats", T, || {
        c.sup_stat("accepted") >= a0 + 50
    });
    let (a1, r1) = (c.sup_stat("accepted"), c.sup_stat("relayed"));
    eprintln!(
        "MEASURE relayed_per_heartbeat={:.2} ({} relays for {} heartbeats)",
        (r1 - r0) as f64 / (a1 - a0) as f64,
        r1 - r0,
        a1 - a0
    );
    assert!(
        (r1 - r0) * 4 <= a1 - a0,
        "relays {} for {} heartbeats",
        r1 - r0,
        a1 - a0
    );
    assert_eq!(
        c.ok(&format!("cat /run/krill/backstop/{s}")).trim(),
        c.prop(s, "InvocationID"),
        "the run's watchdog is recorded as widened"
    );

    let fusion_pid = c.num(f, "MainPID");
    let sensor_pid = c.num(s, "MainPID");
    c.write("/run/stop-sensor", "");
    c.wait_for("watchdog to fail the sensor", T, || {
        c.num(s, "NRestarts") >= 1
    });
    // Read the last beat while the stop file still silences every run: the restarted
    // process beats (and rewrites the file) as soon as it is removed.
    let last: u64 = std::fs::read_to_string(c.path("/run/lastbeat-sensor"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let acted = c.num(s, "ActiveExitTimestampMonotonic");
    std::fs::remove_file(c.path("/run/stop-sensor")).unwrap();
    eprintln!(
        "MEASURE missed_heartbeat_to_systemd_ms={:.1} (timeout 1000 ms; from the last heartbeat to systemd failing the unit)",
        (acted - last) as f64 / 1000.0
    );
    assert!(acted >= last + 1_000_000, "failed before the timeout");
    assert!(
        acted < last + 1_500_000,
        "the supervisor, not the 2 s backstop, failed it"
    );
    c.wait_state(s, "active/running", T);
    assert_ne!(c.num(s, "MainPID"), sensor_pid);
    // WATCHDOG=trigger: systemd's own watchdog path, asked by the supervisor.
    // The supervisor triggered systemd's watchdog.
    c.wait_journal(&format!("-u {s}"), "Watchdog request", T);
    assert_eq!(
        c.num(f, "MainPID"),
        fusion_pid,
        "the dependent kept running"
    );
    assert_eq!(c.state(f), "active/running");
    c.wait_for("healthy again", T, || {
        c.service_status("hb", "sensor")["health"] == "healthy"
    });
}

/// The supervisor times heartbeats and leaves systemd's watchdog as a backstop: a
/// supervisor killed with SIGKILL is replaced and its successor still fails a
/// silent service about one timeout after its last heartbeat (the widened run is
/// recorded); a hung supervisor (SIGSTOP) blinds nothing: systemd's backstop, twice
/// the timeout, fails the service by itself.
#[test]
fn the_watchdog_backstop_outlives_a_killed_or_hung_supervisor() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("sup-backstop");
    c.write("/opt/hb/hb.py", HB_PY);
    c.install_ok(
        "bs",
        r#"
version: "1"
name: bs
services:
  sensor:
    execute: {type: shell, command: python3 /opt/hb/hb.py}
    health_check: {type: heartbeat, timeout: 1s}
    policy: {restart: on-failure, restart_delay: 200ms}
"#,
        "--now",
    );
    let s = "krill-bs-sensor.service";
    c.wait_for("sensor healthy", T, || {
        c.service_status("bs", "sensor")["health"] == "healthy"
    });
    // systemd's backstop counts from the latest relay, which may be up to half a
    // timeout older than the latest heartbeat. Each round starts right after a relay
    // (systemd's watchdog timestamp just moved), so the backstop is due about 2 s
    // after the last heartbeat, well apart from the supervisor's 1 s.
    let after_a_relay = |c: &Container| {
        let w0 = c.num(s, "WatchdogTimestampMonotonic");
        c.wait_for("a relay", T, || {
            c.num(s, "WatchdogTimestampMonotonic") != w0
        });
    };
    let last_beat = |c: &Container| -> u64 {
        let mut last = 0;
        c.wait_for("the sensor's last heartbeat", T, || {
            let l = c.ok("cat /run/lastbeat-sensor").trim().parse().unwrap_or(0);
            let settled = l == last && now_us() > l + 300_000;
            last = l;
            settled
        });
        last
    };
    // Killed: its successor (the socket restarts it) finds the run widened in
    // /run/krill/backstop and times it, with no heartbeat of its own to go by.
    // Hung: nobody times it but systemd's backstop.
    for (round, stall) in [("killed", "kill -KILL"), ("hung", "kill -STOP")] {
        let pid = c.num(s, "MainPID");
        let restarts = c.num(s, "NRestarts");
        let sup = c.num("krill-supervisor.service", "MainPID");
        after_a_relay(&c);
        c.write("/run/stop-sensor", "");
        c.ok(&format!("{stall} {sup}"));
        let last = last_beat(&c);
        c.wait_for(&format!("{round}: the sensor failed"), T, || {
            c.num(s, "NRestarts") > restarts && c.num(s, "MainPID") != pid
        });
        let acted = c.num(s, "ActiveExitTimestampMonotonic");
        let after_ms = (acted - last) as f64 / 1000.0;
        eprintln!("MEASURE backstop_{round}_supervisor_ms={after_ms:.1} (timeout 1000 ms)");
        if round == "killed" {
            assert!(
                (1000.0..1800.0).contains(&after_ms),
                "the next supervisor timed it: {after_ms} ms"
            );
            c.wait_journal(&format!("-u {s}"), "Watchdog request", T);
        } else {
            assert!(
                (1500.0..2600.0).contains(&after_ms),
                "systemd's backstop acted, about twice the timeout after the last relay: {after_ms} ms"
            );
            c.wait_journal(&format!("-u {s}"), "Watchdog timeout", T);
            c.ok(&format!("kill -CONT {sup}"));
        }
        c.ok("rm /run/stop-sensor");
        c.ok(&format!("systemctl reset-failed {s} || true"));
        c.wait_for("sensor healthy again", T, || {
            c.service_status("bs", "sensor")["health"] == "healthy"
        });
    }
}

/// S2 for `healthy`: a dependency that never becomes healthy keeps its dependent from
/// starting; the gate says why.
#[test]
fn never_healthy_dependency_blocks_dependent() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("sup-never");
    c.install_ok(
        "nh",
        r#"
version: "1"
name: nh
services:
  db:
    execute: {type: shell, command: sleep infinity}
    health_check: {type: tcp, port: 5999}
  app:
    execute: {type: shell, command: sleep infinity}
    dependencies:
      - db: healthy
"#,
        "",
    );
    // Shorten the start timeout of this gate for the test (a drop-in, as an operator would).
    c.write(
        "/etc/systemd/system/krill-healthy@krill-nh-db.service.d/timeout.conf",
        "[Service]\nTimeoutStartSec=3s\n",
    );
    c.ok("systemctl daemon-reload");
    let _ = c.sh("systemctl start krill-nh.target");
    c.wait_state("krill-healthy@krill-nh-db.service", "failed/failed", T);
    assert_eq!(
        c.num("krill-nh-app.service", "ExecMainStartTimestampMonotonic"),
        0,
        "app never started"
    );
    assert_eq!(c.state("krill-nh-db.service"), "active/running");
    assert_eq!(
        c.prop("krill-healthy@krill-nh-db.service", "Result"),
        "timeout"
    );
    let st = c.service_status("nh", "db");
    assert_eq!(st["health"], "starting");
    assert!(
        st["reason"].as_str().unwrap_or_default().contains("tcp port 5999"),
        "{st}\n{}\n{}",
        c.journal("-u krill-supervisor"),
        text(&c.sh("busctl call org.krill.Supervisor1 /org/krill/Supervisor1 org.krill.Supervisor1 GetStatus s nh"))
    );
}

/// tcp, http and script checks pass, then fail; after 3 failed checks the service
/// is failed and its restart policy applies.
#[test]
fn probes_pass_fail_and_restart() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("sup-probes");
    // A tiny server: healthy while /run/sick-NAME does not exist.
    c.write(
        "/opt/srv.py",
        r#"import http.server, os, sys, socket
name, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 500 if os.path.exists("/run/sick-" + name) else 200
        self.send_response(code); self.end_headers()
    def log_message(self, *a): pass
if name == "tcp":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(16)
    import time
    while not os.path.exists("/run/sick-tcp"):
        s.settimeout(0.05)
        try: s.accept()[0].close()
        except OSError: pass
    s.close()
    while True: time.sleep(1)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"#,
    );
    c.install_ok(
        "pr",
        r#"
version: "1"
name: pr
services:
  tcp:
    execute: {type: shell, command: python3 /opt/srv.py tcp 7001}
    health_check: {type: tcp, port: 7001, timeout: 500ms}
    policy: {restart: on-failure, restart_delay: 100ms}
  http:
    execute: {type: shell, command: python3 /opt/srv.py http 7002}
    health_check: {type: http, port: 7002, path: /health}
    policy: {restart: always, restart_delay: 100ms}
  script:
    execute: {type: shell, command: sleep infinity}
    health_check: {type: script, command: test ! -e /run/sick-script, timeout: 2s}
    policy: {restart: on-failure, restart_delay: 100ms}
"#,
        "--now",
    );
    for s in ["tcp", "http", "script"] {
        c.wait_for(&format!("{s} healthy"), T, || {
            c.service_status("pr", s)["health"] == "healthy"
        });
    }
    for s in ["tcp", "http", "script"] {
        let u = format!("krill-pr-{s}.service");
        let pid = c.num(&u, "MainPID");
        c.write(&format!("/run/sick-{s}"), "");
        c.wait_for(&format!("{s} failed and restarted"), T, || {
            c.num(&u, "NRestarts") == 1
        });
        let _ = std::fs::remove_file(c.path(&format!("/run/sick-{s}")));
        c.wait_state(&u, "active/running", T);
        assert_ne!(c.num(&u, "MainPID"), pid);
        let st = c.service_status("pr", s);
        assert!(
            st["last_failure"]["reason"]
                .as_str()
                .unwrap()
                .contains("(3 checks in a row)"),
            "{st}"
        );
        c.wait_for(&format!("{s} healthy again"), T, || {
            c.service_status("pr", s)["health"] == "healthy"
        });
    }
    let log = c.journal("-u krill-supervisor.service");
    assert!(log.contains("krill-pr-http.service is unhealthy: GET http://127.0.0.1:7002/health: status 500, expected 200"), "{log}");
}

/// A process outside a service's unit cannot mark it healthy; malformed, oversized
/// and unknown messages are refused and counted, and the supervisor keeps running.
#[test]
fn spoofed_and_malformed_heartbeats_are_refused() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("sup-spoof");
    c.write("/opt/hb/hb.py", HB_PY);
    let out = c.install(
        "/root/sp.yaml",
        r#"
version: "1"
name: sp
services:
  quiet:
    execute: {type: shell, command: sleep infinity}
    health_check: {type: heartbeat, timeout: 30s}
  victim-dep:
    execute: {type: shell, command: sleep infinity}
    dependencies:
      - quiet: healthy
  other:
    execute: {type: shell, command: python3 /opt/hb/hb.py}
    health_check: {type: heartbeat, timeout: 5s}
  liar:
    execute: {type: shell, command: python3 /opt/hb/liar.py}
"#,
        "--now",
    );
    // liar.py is written later: liar exits at once, before or after plain `--now`
    // looked (it waits for the processes to start, not to stay up).
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", text(&out));
    c.wait_for("other healthy", T, || {
        c.service_status("sp", "other")["health"] == "healthy"
    });
    let sup_pid = c.num("krill-supervisor.service", "MainPID");
    // From outside any service unit (the test's shell in the container), and from a
    // transient unit impersonating `quiet`: both are closed at accept.
    let spoof = r#"python3 -c 'import krill; c = krill.KrillClient("quiet", "/run/krill/krill.sock"); [c.heartbeat() for _ in range(5)]'"#;
    let _ = c.sh(spoof);
    let _ = c.sh(&format!(
        "systemd-run --wait --quiet --unit=impostor {spoof}"
    ));
    // From inside a krill service (`liar`): garbage, an oversized line, an unknown
    // type, then a heartbeat naming another service, on one connection: the
    // connection survives bad lines, and each is refused and counted.
    c.write(
        "/opt/hb/liar.py",
        r#"import socket, time
s = socket.socket(socket.AF_UNIX); s.connect("/run/krill/krill.sock")
s.sendall(b'{"type":"heartbeat","service":"quiet","status":"healthy","metadata":{}}\n' + b"not json\n" + b"x" * 100000 + b"\n" + b'{"type":"shutdown","service":"quiet","status":"healthy"}\n')
time.sleep(3600)
"#,
    );
    c.ok("systemctl start krill-sp-liar.service");
    let stats = || -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&c.ok("busctl --json=short get-property org.krill.Supervisor1 /org/krill/Supervisor1 org.krill.Supervisor1 Stats")).unwrap();
        serde_json::from_str(v["data"].as_str().unwrap()).unwrap()
    };
    c.wait_for("counters", T, || {
        let s = stats();
        s["malformed"] == 1
            && s["oversized"] == 1
            && s["unknown_type"] == 1
            && s["refused_sender"] == 1
            && s["refused_connections"].as_u64() >= Some(2)
    });
    assert_eq!(
        c.num("krill-supervisor.service", "MainPID"),
        sup_pid,
        "the supervisor did not crash"
    );
    assert_eq!(c.num("krill-supervisor.service", "NRestarts"), 0);
    assert_eq!(
        c.service_status("sp", "quiet")["health"],
        "starting",
        "nobody made `quiet` healthy"
    );
    assert_eq!(
        c.prop("krill-sp-victim-dep.service", "ActiveState"),
        "inactive",
        "its dependent still waits"
    );
    let log = c.journal("-u krill-supervisor.service");
    assert!(
        log.contains("heartbeat for service \"quiet\" from pid")
            && log.contains("runs in krill-sp-liar.service, not in that service's unit"),
        "{log}"
    );
    // Refusals at accept are logged at most once a second; the counter has them all.
    assert!(log.contains("is not a krill service"), "{log}");
    assert!(
        log.contains("refused: line longer than 4096 bytes"),
        "{log}"
    );
    assert_eq!(c.service_status("sp", "other")["health"], "healthy");
}

/// S9: kill -9 of the supervisor while services run causes no service restart or
/// stop; heartbeat connections are kept across its restart (fd store).
#[test]
fn supervisor_crash_touches_no_service() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("sup-s9");
    c.write("/opt/hb/hb.py", HB_PY);
    c.install_ok(
        "s9",
        r#"
version: "1"
name: s9
services:
  beat:
    execute: {type: shell, command: python3 /opt/hb/hb.py}
    health_check: {type: heartbeat, timeout: 2s}
    policy: {restart: on-failure}
  web:
    execute: {type: shell, command: python3 -m http.server 7100 --bind 127.0.0.1}
    health_check: {type: http, port: 7100, path: /}
    policy: {restart: on-failure}
  dep:
    execute: {type: shell, command: sleep infinity}
    dependencies:
      - beat: healthy
      - web: healthy
"#,
        "--now",
    );
    let units = [
        "krill-s9-beat.service",
        "krill-s9-web.service",
        "krill-s9-dep.service",
    ];
    c.wait_state(units[2], "active/running", T);
    let before: Vec<(u64, u64)> = units
        .iter()
        .map(|u| (c.num(u, "MainPID"), c.num(u, "NRestarts")))
        .collect();
    for round in 0..3 {
        let pid = c.num("krill-supervisor.service", "MainPID");
        c.ok(&format!("kill -9 {pid}"));
        c.wait_for("supervisor back", T, || {
            let p = c.num("krill-supervisor.service", "MainPID");
            p != 0 && p != pid && c.prop("krill-supervisor.service", "ActiveState") == "active"
        });
        assert_eq!(c.num("krill-supervisor.service", "NRestarts"), round + 1);
    }
    // Well past the heartbeat timeout: the relayed heartbeats kept systemd's watchdog fed.
    let t0 = now_us();
    c.wait_for("3 s of heartbeats after the crashes", T, || {
        now_us() - t0 > 3_000_000 && c.service_status("s9", "beat")["health"] == "healthy"
    });
    let after: Vec<(u64, u64)> = units
        .iter()
        .map(|u| (c.num(u, "MainPID"), c.num(u, "NRestarts")))
        .collect();
    assert_eq!(before, after, "no service was restarted or stopped");
    let log = c.journal("-u krill-supervisor.service");
    assert!(
        log.contains("took back heartbeat connection"),
        "fd store used: {log}"
    );
    assert_eq!(c.service_status("s9", "web")["health"], "healthy");
}

/// Status over D-Bus for everyone; EmergencyStop only for root and group krill (as
/// `krill estop` too); root's `krill estop` needs no supervisor.
#[test]
fn status_and_estop_on_dbus() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("sup-dbus");
    c.install_ok("db",
        "version: \"1\"\nname: db\nservices:\n  a:\n    execute: {type: shell, command: sleep infinity}\n  b:\n    execute: {type: shell, command: sleep infinity}\n    dependencies: [a]\n",
        "--now",
    );
    c.wait_state("krill-db-b.service", "active/running", T);
    let as_nobody = "setpriv --reuid=nobody --regid=nogroup --clear-groups";
    let st = c.ok(&format!("{as_nobody} busctl --json=short call org.krill.Supervisor1 /org/krill/Supervisor1 org.krill.Supervisor1 GetStatus s db"));
    assert!(
        st.contains("krill-db-b.service") && st.contains(r#"\"sub_state\": \"running\""#),
        "{st}"
    );
    let ws = c.ok(&format!("{as_nobody} busctl call org.krill.Supervisor1 /org/krill/Supervisor1 org.krill.Supervisor1 ListWorkspaces"));
    assert_eq!(ws.trim(), "as 1 \"db\"");
    let denied = c.sh(&format!("{as_nobody} busctl call org.krill.Supervisor1 /org/krill/Supervisor1 org.krill.Supervisor1 EmergencyStop ss db test"));
    assert!(
        !denied.status.success() && text(&denied).to_lowercase().contains("access denied"),
        "{}",
        text(&denied)
    );
    assert_eq!(c.state("krill-db-b.service"), "active/running");

    // `krill estop` as a user outside group krill: refused, nothing stops.
    let refused = c.sh(&format!("{as_nobody} krill estop db --reason nope"));
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("needs root, or group krill"),
        "{}",
        text(&refused)
    );
    assert_eq!(c.state("krill-db-b.service"), "active/running");

    // A member of group krill: through the supervisor, which logs it. A real user in
    // /etc/group: dbus-daemon before 1.14 (Debian 11) reads a peer's groups from the
    // user database, not from the process.
    c.ok("useradd --no-create-home --user-group --groups krill krill-operator");
    let as_operator = "setpriv --reuid=krill-operator --regid=krill-operator --init-groups";
    let out = c.ok(&format!(
        "{as_operator} krill estop db --reason 'operator pressed the button'"
    ));
    assert!(out.contains("(via krill-supervisor)"), "{out}");
    c.wait_state("krill-db-a.service", "inactive/dead", T);
    c.wait_state("krill-db-b.service", "inactive/dead", T);
    assert!(c
        .journal("-u krill-supervisor.service")
        .contains("EMERGENCY STOP of workspace db: operator pressed the button"));
    assert!(c
        .status("db")
        .contains("emergency-stopped (operator pressed the button)"));

    // Root acts on systemd directly: the supervisor, even stopped, is not in the path.
    c.ok("krill start db");
    c.wait_state("krill-db-b.service", "active/running", T);
    c.ok("systemctl stop krill-supervisor.service krill-supervisor.socket");
    let out = c.ok("krill estop db --reason 'supervisor down'");
    assert!(
        out.contains("emergency stop of workspace db") && out.contains("(via systemd)"),
        "{out}"
    );
    c.wait_state("krill-db-b.service", "inactive/dead", T);
    assert!(c
        .status("db")
        .contains("emergency-stopped (supervisor down)"));
}

/// The seed Try-It table with `healthy` dependencies: Python services sending
/// heartbeats, started through the labelled pixi stand-in from a pixi.toml.
#[test]
fn seed_try_it_with_healthy_dependencies_and_pixi() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("sup-tryit");
    c.install_standins();
    for svc in ["data-processor", "data-analyzer", "decision-controller"] {
        c.write(
            &format!("/opt/krill-pixi/services/{svc}/pixi.toml"),
            &format!(
                "[tasks]\nrun-{} = \"python3 service.py\"\n",
                svc.split('-').nth(1).unwrap()
            ),
        );
        c.write(&format!("/opt/krill-pixi/services/{svc}/service.py"), HB_PY);
    }
    // The seed recipe with its delays shortened (5 s -> 200 ms) to keep the test quick.
    let recipe = std::fs::read_to_string(krill_e2e::repo().join("examples/krill-pixi.yaml"))
        .unwrap()
        .replace("restart_delay: 5s", "restart_delay: 200ms");
    c.write("/opt/krill-pixi/krill-pixi.yaml", &recipe);
    let out = c.sh("krill install /opt/krill-pixi/krill-pixi.yaml --now");
    assert!(out.status.success(), "{}", text(&out));
    let [p, a, d] = ["data-processor", "data-analyzer", "decision-controller"]
        .map(|s| format!("krill-krill-pixi-{s}.service"));
    c.wait_state(&d, "active/running", T);
    let log = std::fs::read_to_string(c.path("/run/pixi-standin.log")).unwrap();
    assert!(log.contains("run --manifest-path /opt/krill-pixi/services/data-processor/pixi.toml -e default run-processor"), "{log}");
    // Start order follows health: each dependent started after its dependencies' first heartbeat.
    let start = |u: &str| c.num(u, "ExecMainStartTimestampMonotonic");
    let gate = |s: &str| {
        c.num(
            &format!("krill-healthy@krill-krill-pixi-{s}.service"),
            "ActiveEnterTimestampMonotonic",
        )
    };
    assert!(gate("data-processor") > start(&p) && start(&a) >= gate("data-processor"));
    assert!(start(&d) >= gate("data-analyzer"));
    // Kill processor: restarts, dependents keep running.
    let pids = (c.num(&a, "MainPID"), c.num(&d, "MainPID"));
    c.kill_main(&p);
    c.wait_for("processor restarted", T, || {
        c.num(&p, "NRestarts") == 1 && c.state(&p) == "active/running"
    });
    assert_eq!((c.num(&a, "MainPID"), c.num(&d, "MainPID")), pids);
    // Kill analyzer 4 times: 3 restarts, then it fails for good and the controller stops.
    for i in 1..=3 {
        c.kill_main(&a);
        c.wait_for("analyzer restarted", T, || {
            c.num(&a, "NRestarts") == i && c.state(&a) == "active/running"
        });
    }
    c.kill_main(&a);
    c.wait_state(&a, "failed/failed", T);
    c.wait_state(&d, "inactive/dead", T);
    assert_eq!(c.state(&p), "active/running");
    // Restart; kill the controller 4 times: emergency stop.
    c.ok("krill restart krill-pixi");
    c.wait_state(&d, "active/running", T);
    for i in 1..=3 {
        c.kill_main(&d);
        c.wait_for("controller restarted", T, || {
            c.num(&d, "NRestarts") == i && c.state(&d) == "active/running"
        });
    }
    c.kill_main(&d);
    c.wait_state(&p, "inactive/dead", T);
    c.wait_state(&a, "inactive/dead", T);
    assert!(c
        .cgroup_pids("krill.slice/krill-krill\\x2dpixi.slice")
        .is_empty());
    assert!(c
        .status("krill-pixi")
        .contains("emergency-stopped (critical service decision-controller failed for good"));
}

/// A plain sd_notify client (no krill SDK: `WATCHDOG=1` straight to systemd) is a
/// heartbeat too: it passes `healthy` gates, and systemd fails it when it goes
/// silent. Each change is a `StateChanged` signal on the bus.
#[test]
fn plain_sd_notify_clients_and_state_signals() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("sup-native");
    c.write(
        "/opt/native.py",
        r#"import os, socket, time
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
while True:
    if not os.path.exists("/run/stop-native"):
        s.sendto(b"WATCHDOG=1", addr)
    time.sleep(0.2)
"#,
    );
    c.ok("(timeout 60 busctl --json=short monitor --match=\"type='signal',interface='org.krill.Supervisor1',member='StateChanged'\" > /run/signals.json 2>&1 &)");
    c.wait_for("monitor attached", T, || {
        c.path("/run/signals.json").exists()
    });
    c.install_ok(
        "nat",
        r#"
version: "1"
name: nat
services:
  native:
    execute: {type: shell, command: python3 /opt/native.py}
    health_check: {type: heartbeat, timeout: 1s}
    policy: {restart: on-failure, restart_delay: 100ms}
  app:
    execute: {type: shell, command: sleep infinity}
    dependencies:
      - native: healthy
"#,
        "--now",
    );
    c.wait_state("krill-nat-app.service", "active/running", T);
    let st = c.service_status("nat", "native");
    assert_eq!(st["health"], "healthy", "{st}");
    c.wait_for("StateChanged signals", T, || {
        let s = std::fs::read_to_string(c.path("/run/signals.json")).unwrap_or_default();
        s.contains("StateChanged") && s.contains("\"native\"") && s.contains("\"healthy\"")
    });
    c.write("/run/stop-native", "");
    c.wait_for("systemd's watchdog to fail it", T, || {
        c.num("krill-nat-native.service", "NRestarts") >= 1
    });
    assert!(c
        .journal("-u krill-nat-native.service")
        .contains("Watchdog timeout"));
    std::fs::remove_file(c.path("/run/stop-native")).unwrap();
    c.wait_state("krill-nat-native.service", "active/running", T);
    assert_eq!(
        c.state("krill-nat-app.service"),
        "active/running",
        "S3: the dependent kept running"
    );
}

/// A burst of unit changes (40 services stopping and starting at once) while
/// heartbeats flow: the supervisor keeps reading and relaying heartbeats (no
/// watchdog kill) and keeps answering on D-Bus. (Regression: a D-Bus signal consumer
/// that waited for method replies could deadlock the connection.)
#[test]
fn supervisor_stays_responsive_during_a_burst_of_changes() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("sup-burst");
    c.write("/opt/hb/hb.py", HB_PY);
    let mut beats = String::from("version: \"1\"\nname: beats\nservices:\n");
    for i in 0..10 {
        beats.push_str(&format!("  b{i}:\n    execute: {{type: shell, command: python3 /opt/hb/hb.py}}\n    health_check: {{type: heartbeat, timeout: 3s}}\n    policy: {{restart: on-failure}}\n"));
    }
    let mut churn = String::from("version: \"1\"\nname: churn\nservices:\n");
    for i in 0..40 {
        churn.push_str(&format!("  c{i}:\n    execute: {{type: shell, command: sleep infinity}}\n    health_check: {{type: tcp, port: {}}}\n", 9000 + i));
    }
    c.install_ok("beats", &beats, "--now");
    c.install_ok("churn", &churn, "");
    for i in 0..10 {
        c.wait_for("beats healthy", T, || {
            c.path(&format!("/run/krill/health/krill-beats-b{i}.service"))
                .exists()
        });
    }
    for _ in 0..3 {
        c.ok("systemctl start krill-churn.target");
        c.status("churn --json >/dev/null");
        c.ok("systemctl stop krill-churn.target");
    }
    let st = c.status_json("beats");
    for s in st["workspaces"][0]["services"].as_array().unwrap() {
        // `late` is status's early warning (a heartbeat older than twice its
        // interval, e.g. while two test containers share two cores); the contract is
        // that no heartbeat timed out and nothing restarted.
        assert_eq!(s["restarts"], 0, "{s}");
        assert!(
            matches!(s["health"].as_str(), Some("healthy" | "late")),
            "{s}"
        );
    }
    assert!(!c
        .journal("-u krill-supervisor.service")
        .contains("heartbeat timed out"));
}

const HAND_RECIPE: &str = r#"
version: "1"
name: hand
services:
  beat:
    execute: {type: shell, command: python3 /opt/hb/hb.py}
    health_check: {type: heartbeat, timeout: 2s}
    policy: {restart: on-failure}
"#;

/// Issue 10: a supervisor stopped on purpose touches no service. It hands the
/// watchdog of each relayed heartbeat service back to systemd, so a service silent
/// well past its timeout is not killed while no supervisor watches; the next
/// supervisor re-arms the watchdog, and silence fails the service again.
#[test]
fn a_stopped_supervisor_hands_the_watchdog_back() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("sup-handback");
    c.write("/opt/hb/hb.py", HB_PY);
    c.install_ok("hand", HAND_RECIPE, "--now");
    let unit = "krill-hand-beat.service";
    c.wait_for("beat healthy", T, || {
        c.service_status("hand", "beat")["health"] == "healthy"
    });
    let pid = c.num(unit, "MainPID");
    // The socket too, so that no connection starts it again; then silence.
    c.ok("systemctl stop krill-supervisor.socket krill-supervisor.service");
    c.ok("touch /run/stop-beat");
    // 2.5 heartbeat timeouts with no heartbeat and no supervisor.
    c.observe_for(Duration::from_secs(5));
    assert_eq!(c.state(unit), "active/running");
    assert_eq!(c.num(unit, "MainPID"), pid, "not killed by its watchdog");
    assert_eq!(c.num(unit, "NRestarts"), 0);
    // Back: the watchdog is re-armed, and the silent service fails by it.
    c.ok("systemctl start krill-supervisor.socket krill-supervisor.service");
    // Still silent, each new run is failed by its watchdog too: at least one.
    c.wait_for("the re-armed watchdog fired", T, || {
        c.num(unit, "NRestarts") >= 1
    });
    c.wait_journal(
        "-u krill-supervisor.service",
        "re-armed the watchdog of 1 heartbeat services",
        T,
    );
    // systemd's own watchdog (the re-armed `WatchdogSec=`), not the supervisor.
    c.wait_journal(&format!("-u {unit}"), "Watchdog timeout", T);
    c.ok("rm /run/stop-beat");
    c.wait_for("beat healthy again", T, || {
        c.service_status("hand", "beat")["health"] == "healthy"
    });
}

/// Issue 10: one heartbeat service per SDK (Python, Rust async, C++) and one on
/// upstream's unmodified Python SDK, which never reconnects, so only a surviving
/// connection keeps it. Ten reloads (re-exec in place) and ten restarts of the
/// supervisor restart none of them, on every systemd; then silence makes systemd
/// restart each. Measures how long the watchdog goes unfed across a reload and a
/// restart.
#[test]
fn supervisor_reloads_and_restarts_restart_no_service() {
    let Some(_g) = krill_e2e::guard() else { return };
    let Some(upstream) = krill_e2e::upstream() else {
        return;
    };
    let c = Container::boot("sup-reexec");
    c.write("/opt/hb/hb.py", HB_PY);
    c.install_sdk_beaters();
    std::fs::create_dir_all(c.path("/opt/upstream")).unwrap();
    std::fs::copy(
        upstream.join("sdk-python/krill.py"),
        c.path("/opt/upstream/krill.py"),
    )
    .unwrap();
    // Upstream's SDK as upstream users call it: its default socket, no error handling.
    c.write(
        "/opt/upstream/beat.py",
        "import os, sys, time\nsys.path.insert(0, '/opt/upstream')\nfrom krill import KrillClient\n\
         c = KrillClient(os.environ['KRILL_SERVICE'])\nwhile True:\n    c.heartbeat()\n    time.sleep(0.1)\n",
    );
    c.install_ok(
        "rx",
        r#"
version: "1"
name: rx
services:
  py:
    execute: {type: shell, command: python3 /opt/hb/hb.py}
    health_check: {type: heartbeat, timeout: 2s}
    policy: {restart: on-failure}
  rust:
    execute: {type: shell, command: /usr/local/bin/krill-sdk-beat}
    health_check: {type: heartbeat, timeout: 2s}
    policy: {restart: on-failure}
  cpp:
    execute: {type: shell, command: /usr/local/bin/beater}
    health_check: {type: heartbeat, timeout: 2s}
    policy: {restart: on-failure}
  theirs:
    execute: {type: shell, command: python3 /opt/upstream/beat.py}
    health_check: {type: heartbeat, timeout: 2s}
    policy: {restart: on-failure}
"#,
        "--now",
    );
    let ours = ["py", "rust", "cpp"];
    let unit = |s: &str| format!("krill-rx-{s}.service");
    let healthy = |s: &str| c.service_status("rx", s)["health"] == "healthy";
    for s in ours.iter().chain(&["theirs"]) {
        c.wait_for(&format!("{s} healthy"), T, || healthy(s));
    }
    let runs = |s: &str| (c.num(&unit(s), "MainPID"), c.num(&unit(s), "NRestarts"));
    let before: Vec<_> = ours.iter().chain(&["theirs"]).map(|s| runs(s)).collect();
    let after = || -> Vec<_> { ours.iter().chain(&["theirs"]).map(|s| runs(s)).collect() };

    // How long the watchdog of `s` goes unfed across one `systemctl ACTION`.
    let unfed_ms = |s: &str, action: &str| {
        let last = c.num(&unit(s), "WatchdogTimestampMonotonic");
        c.ok(&format!("systemctl {action} krill-supervisor.service"));
        let back = now_us();
        let mut first = 0;
        c.wait_for("a watchdog ping after the supervisor is back", T, || {
            first = c.num(&unit(s), "WatchdogTimestampMonotonic");
            first > back
        });
        (first - last) / 1000
    };
    println!(
        "MEASURE watchdog_unfed_across_reload_ms={}",
        unfed_ms("theirs", "reload")
    );
    println!(
        "MEASURE watchdog_unfed_across_restart_ms={}",
        unfed_ms("py", "restart")
    );

    let sup_pid = c.num("krill-supervisor.service", "MainPID");
    for _ in 0..10 {
        c.ok("systemctl reload krill-supervisor.service");
        c.wait_for("supervisor ready after reload", T, || {
            c.prop("krill-supervisor.service", "ActiveState") == "active"
        });
    }
    assert_eq!(
        c.num("krill-supervisor.service", "MainPID"),
        sup_pid,
        "re-exec in place"
    );
    // Well past the heartbeat timeout, all still heartbeat through the supervisor.
    let t0 = now_us();
    c.wait_for("3 s after the reloads, all healthy", T, || {
        now_us() - t0 > 3_000_000 && ours.iter().chain(&["theirs"]).all(|s| healthy(s))
    });
    assert_eq!(after(), before, "no restart by reloads");
    assert!(c
        .journal("-u krill-supervisor.service")
        .contains("reloading: re-executing /usr/bin/krill-supervisor"));

    for _ in 0..10 {
        c.ok("systemctl restart krill-supervisor.service");
        c.wait_for("supervisor back after restart", T, || {
            c.prop("krill-supervisor.service", "ActiveState") == "active"
        });
    }
    let t0 = now_us();
    c.wait_for("3 s after the restarts, all healthy", T, || {
        now_us() - t0 > 3_000_000 && ours.iter().chain(&["theirs"]).all(|s| healthy(s))
    });
    // systemd keeps the fd store through a restart job (only a stop empties it,
    // below 254): even upstream's client keeps its connection.
    assert_eq!(after(), before, "no restart by restarts");
    if c.systemd_version() >= 254 {
        assert_eq!(
            c.prop("krill-supervisor.service", "FileDescriptorStorePreserve"),
            "yes"
        );
    }

    // Silence: systemd restarts each, whatever the language.
    for s in ours {
        c.ok(&format!("touch /run/stop-{s}"));
    }
    for s in ours {
        c.wait_for(&format!("{s} restarted by its watchdog"), T, || {
            c.num(&unit(s), "NRestarts") >= 1
        });
    }
}

/// Issue 10: outside krill, the SDKs feed systemd's own watchdog. A hand-written
/// plain unit with `WatchdogSec=2s` and no krill socket stays up on each SDK
/// (Python; C++: tests/images/beater.cpp; Rust: krill-sdk-beat) for three times its
/// watchdog; when the Python one goes silent, systemd kills it (the watchdog is
/// real).
#[test]
fn sdk_heartbeats_feed_a_plain_units_watchdog() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("sup-plain-wd");
    c.write("/opt/hb/hb.py", HB_PY);
    c.install_sdk_beaters();
    for (name, cmd) in [
        ("plain-py", "/usr/bin/python3 /opt/hb/hb.py"),
        ("plain-cpp", "/usr/local/bin/beater"),
        ("plain-rs", "/usr/local/bin/krill-sdk-beat"),
    ] {
        c.write(
            &format!("/etc/systemd/system/{name}.service"),
            &format!(
                "[Service]\nExecStart={cmd}\nWatchdogSec=2s\nRestart=on-failure\n\
                 Environment=KRILL_SERVICE={name} KRILL_SOCKET=/run/no-krill.sock\n"
            ),
        );
    }
    c.ok("systemctl daemon-reload && systemctl start plain-py plain-cpp plain-rs");
    let units = ["plain-py.service", "plain-cpp.service", "plain-rs.service"];
    for u in units {
        c.wait_state(u, "active/running", T);
    }
    let pids: Vec<u64> = units.iter().map(|u| c.num(u, "MainPID")).collect();
    c.observe_for(Duration::from_secs(6));
    for (u, pid) in units.iter().zip(&pids) {
        assert_eq!(c.state(u), "active/running", "{u}");
        assert_eq!(c.num(u, "MainPID"), *pid, "{u} not killed by its watchdog");
        assert!(c.num(u, "WatchdogTimestampMonotonic") > 0, "{u} pinged");
    }
    c.ok("touch /run/stop-plain-py");
    c.wait_for("the silent one killed by its watchdog", T, || {
        c.num(units[0], "NRestarts") >= 1
    });
    assert!(c
        .journal("-u plain-py.service")
        .contains("Watchdog timeout"));
}
