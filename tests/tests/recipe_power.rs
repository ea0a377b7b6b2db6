//! Recipe extensions (issue 12) in a real systemd: `user:`/`group:` and `resources:`.
//! Runs on every systemd of the matrix (247, 252, 257).

use std::time::Duration;

use krill_e2e::{text, Container};

/// A user as a robot has one: its own home, a program of its own in ~/.local/bin,
/// and the video group for the GPU.
fn add_robot_user(c: &Container) {
    c.ok("useradd -m -s /bin/sh robot && usermod -aG video robot");
    c.ok("mkdir -p /home/robot/.local/bin && printf '#!/bin/sh\\necho mine\\nexec sleep infinity\\n' > /home/robot/.local/bin/hello-robot && chmod 755 /home/robot/.local/bin/hello-robot && chown -R robot: /home/robot/.local");
    c.write(
        "/opt/hb10.py",
        "import os, time\nfrom krill import KrillClient\nwith open(os.path.expanduser('~/env.txt'), 'w') as f:\n    f.write(open('/proc/self/status').read())\n    f.write('CWD=' + os.getcwd() + '\\n')\n    for k in ('HOME', 'USER', 'PATH'):\n        f.write(k + '=' + os.environ.get(k, '') + '\\n')\nc = KrillClient()\nwhile True:\n    c.heartbeat()\n    time.sleep(0.1)\n",
    );
}

const USERS: &str = r#"
version: "1"
name: users
services:
  beat:
    execute: {type: shell, command: python3 /opt/hb10.py}
    user: robot
    health_check: {type: heartbeat, timeout: 2s}
  mine:
    execute: {type: shell, command: hello-robot}
    user: robot
    group: video
"#;

#[test]
fn a_user_service_runs_as_its_user_with_home_and_path_and_its_heartbeats_count() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("rp-user");
    add_robot_user(&c);
    let v = c.systemd_version();
    // The program only the user has is found through ExecSearchPath= (systemd ≥ 250);
    // 247 looks in its compiled-in path only (documented: give an absolute path).
    let recipe = if v >= 250 {
        USERS.to_owned()
    } else {
        USERS.replace(
            "command: hello-robot",
            "command: /home/robot/.local/bin/hello-robot",
        )
    };
    c.install_ok("users", &recipe, "--now --wait");
    let st = c.service_status("users", "beat");
    assert_eq!(
        st["health"], "healthy",
        "heartbeats of a non-root user count: {st}"
    );
    let env = c.ok("cat /home/robot/env.txt");
    let uid = c.ok("id -u robot").trim().to_owned();
    let video = c.ok("getent group video | cut -d: -f3").trim().to_owned();
    let line = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("{k} missing:\n{env}"))
            .trim()
            .to_owned()
    };
    assert!(line("Uid:").starts_with(&format!("{uid}\t")), "{env}");
    assert!(
        line("Groups:").split_whitespace().any(|g| g == video),
        "supplementary group video: {env}"
    );
    assert_eq!(line("HOME="), "/home/robot");
    assert_eq!(line("USER="), "robot");
    assert_eq!(line("CWD="), "/home/robot", "starts in its home");
    assert!(
        line("PATH=").starts_with("/home/robot/.pixi/bin:/home/robot/.local/bin:"),
        "{env}"
    );
    // group: sets the primary group.
    let pid = c.num("krill-users-mine.service", "MainPID");
    let status = c.ok(&format!("cat /proc/{pid}/status"));
    let gid = status
        .lines()
        .find_map(|l| l.strip_prefix("Gid:"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(gid, video, "{status}");
    assert!(c.journal("-u krill-users-mine.service").contains("mine"));
}

const LIMITS: &str = r#"
version: "1"
name: limits
services:
  pinned:
    execute: {type: shell, command: sleep infinity}
    resources:
      cpu_affinity: [1]
      cpu_quota: 50%
      nice: 5
      io_weight: 200
      tasks_max: 16
      memory_max: 256M
      memory_high: 192M
"#;

#[test]
fn resources_reach_the_process_and_systemd_reads_every_directive() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("rp-limits");
    c.install_ok("limits", LIMITS, "--now --wait");
    let pid = c.num("krill-limits-pinned.service", "MainPID");
    let status = c.ok(&format!("cat /proc/{pid}/status"));
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Cpus_allowed_list:", "1"]),
        "{status}"
    );
    let stat = c.ok(&format!("cat /proc/{pid}/stat"));
    let nice: i32 = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .nth(16)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(nice, 5, "{stat}");
    for (prop, want) in [
        ("CPUQuotaPerSecUSec", "500ms"),
        ("TasksMax", "16"),
        ("IOWeight", "200"),
        ("MemoryMax", "268435456"),
        ("MemoryHigh", "201326592"),
    ] {
        assert_eq!(c.prop("krill-limits-pinned.service", prop), want, "{prop}");
    }
    // Every directive krill writes for the extensions, as this systemd reads it.
    let o = c.sh("systemd-analyze verify /run/systemd/generator/krill-limits-pinned.service 2>&1");
    let out = text(&o);
    assert!(
        !out.contains("Unknown key") && !out.contains("Failed to parse"),
        "{out}"
    );
}

#[test]
fn install_refuses_what_the_machine_lacks_and_render_warns() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("rp-machine");
    let bad = "version: \"1\"\nname: lack\nservices:\n  a:\n    execute: {type: shell, command: sleep infinity}\n    user: nobody-here\n    resources: {cpu_affinity: [0, 64]}\n";
    let o = c.install("/root/lack.yaml", bad, "--now");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = text(&o);
    assert!(
        err.contains(
            "/root/lack.yaml:6:11: services.a.user: no user \"nobody-here\" on this machine"
        ),
        "{err}"
    );
    assert!(
        err.contains("services.a.resources.cpu_affinity: CPU 64 does not exist"),
        "{err}"
    );
    c.ok("test ! -e /etc/krill/recipes/lack.yaml");
    let o = c.sh("krill render /root/lack.yaml");
    assert!(o.status.success(), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("warning: ") && stderr.contains("no user \"nobody-here\""),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("User=nobody-here"));
}

const READY: &str = r#"
version: "1"
name: rdy
services:
  filed:
    execute: {type: shell, command: "sh -c 'sleep 1; touch /tmp/filed-ready; exec sleep infinity'"}
    ready: {file: /tmp/filed-ready, timeout: 20s}
  ported:
    execute: {type: shell, command: python3 /opt/listen.py 7311}
    ready: {tcp: 7311, timeout: 20s}
  notified:
    execute: {type: shell, command: python3 /opt/notify.py}
    ready: {notify: true, timeout: 20s}
  after-file:
    execute: {type: shell, command: sleep infinity}
    dependencies: [filed]
  after-port:
    execute: {type: shell, command: sleep infinity}
    dependencies: [ported]
  after-notify:
    execute: {type: shell, command: sleep infinity}
    dependencies: [notified]
  never:
    execute: {type: shell, command: sleep infinity}
    ready: {file: /tmp/never, timeout: 1s}
  blocked:
    execute: {type: shell, command: sleep infinity}
    dependencies: [never]
"#;

#[test]
fn each_ready_strategy_gates_its_dependent_and_a_late_one_fails_with_its_reason() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("rp-ready");
    c.write(
        "/opt/listen.py",
        "import socket, sys, time\ntime.sleep(1)\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', int(sys.argv[1])))\ns.listen()\nwhile True:\n    s.accept()[0].close()\n",
    );
    c.write(
        "/opt/notify.py",
        "import os, socket, time\ntime.sleep(1)\naddr = os.environ['NOTIFY_SOCKET']\nif addr.startswith('@'):\n    addr = '\\0' + addr[1:]\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.connect(addr)\ns.send(b'READY=1')\nwhile True:\n    time.sleep(3600)\n",
    );
    // `never` is never ready: install --now says so with exit 3.
    let o = c.install("/root/rdy.yaml", READY, "--now");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let unit = |s: &str| format!("krill-rdy-{s}.service");
    for (svc, dependent) in [
        ("filed", "after-file"),
        ("ported", "after-port"),
        ("notified", "after-notify"),
    ] {
        c.wait_state(&unit(dependent), "active/running", Duration::from_secs(30));
        let spawned = c.num(&unit(svc), "ExecMainStartTimestampMonotonic");
        let ready = c.num(&unit(svc), "ActiveEnterTimestampMonotonic");
        let dep = c.num(&unit(dependent), "ExecMainStartTimestampMonotonic");
        println!(
            "MEASURE ready_{svc}_gate_ms={:.1}",
            dep.saturating_sub(ready) as f64 / 1000.0
        );
        assert!(
            ready >= spawned + 900_000,
            "{svc} counted as started {} ms after its spawn, before it was ready",
            (ready - spawned) / 1000
        );
        assert!(dep >= ready, "{dependent} started before {svc} was ready");
    }
    c.wait_state(&unit("never"), "failed/failed", Duration::from_secs(30));
    assert_eq!(c.prop(&unit("never"), "Result"), "timeout");
    let st = c.service_status("rdy", "never");
    let why = st["reason"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("not ready within 1") && why.ends_with("waited for /tmp/never to exist"),
        "{st}"
    );
    assert!(
        c.prop(&unit("blocked"), "ExecMainStartTimestampMonotonic") == "0",
        "blocked started although never was never ready"
    );
}

const HOOKS: &str = r#"
version: "1"
name: hk
services:
  arm:
    execute: {type: shell, command: "sh -c 'echo main >> /var/lib/hk.log; exec sleep infinity'"}
    hooks:
      pre_start: ["sh -c 'echo pre_start >> /var/lib/hk.log'"]
      post_start: ["sh -c 'echo post_start >> /var/lib/hk.log'"]
      pre_stop: ["sh -c 'echo pre_stop >> /var/lib/hk.log'"]
      post_stop: ["sh -c 'echo post_stop >> /var/lib/hk.log'"]
      on_restart: ["sh -c 'echo on_restart >> /var/lib/hk.log'"]
    policy: {restart: on-failure, restart_delay: 100ms}
  gated:
    execute: {type: shell, command: sleep infinity}
    hooks:
      pre_start: ["sh -c 'exit 7'"]
"#;

#[test]
fn hooks_run_in_order_on_restart_only_on_automatic_restarts_and_a_failing_pre_start_says_so() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("rp-hooks");
    let o = c.install("/root/hk.yaml", HOOKS, "--now");
    assert_eq!(o.status.code(), Some(3), "gated cannot start: {}", text(&o));
    // post_start runs once the main process is spawned (Type=exec), concurrently
    // with it: whether the main process or the hook writes its line first is up to
    // the scheduler (this raced on loaded CI machines). Order within that pair is not
    // the contract, so the pair is read as main, then post_start.
    let log = || -> Vec<String> {
        let mut l: Vec<String> = std::fs::read_to_string(c.path("/var/lib/hk.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        for i in 1..l.len() {
            if l[i - 1] == "post_start" && l[i] == "main" {
                l.swap(i - 1, i);
            }
        }
        l
    };
    let wait_log = |want: &[&str]| {
        c.wait_for(
            &format!("hook log {want:?}"),
            Duration::from_secs(30),
            || log() == want,
        );
    };
    wait_log(&["pre_start", "main", "post_start"]);
    // The failing pre_start is the reason, in words (before `krill restart`, which
    // clears the workspace's failed units).
    let st = c.service_status("hk", "gated");
    assert_eq!(
        st["reason"], "pre_start hook failed: sh -c exit 7 exited with code 7",
        "{st}"
    );
    assert_eq!(st["state"], "failed", "{st}");
    // A manual restart is no automatic restart: no on_restart.
    c.ok("krill restart hk/arm");
    wait_log(&[
        "pre_start",
        "main",
        "post_start",
        "pre_stop",
        "post_stop",
        "pre_start",
        "main",
        "post_start",
    ]);
    // A crash, restarted by the policy: on_restart runs first.
    c.kill_main("krill-hk-arm.service");
    c.wait_for("the automatic restart", Duration::from_secs(30), || {
        log().len() >= 14
    });
    let l = log();
    assert_eq!(
        l[8..],
        [
            "pre_stop",
            "post_stop",
            "on_restart",
            "pre_start",
            "main",
            "post_start"
        ],
        "{l:?}"
    );
    assert_eq!(c.num("krill-hk-arm.service", "NRestarts"), 1);
}

const LOGS: &str = r#"
version: "1"
name: logs
log_dir: ~/.krill/logs
log_rotate: {max_size: 2K, keep: 2}
services:
  talker:
    execute: {type: shell, command: /opt/talk.sh}
  quiet:
    execute: {type: shell, command: /opt/once.sh}
    user: robot
  sneaky:
    execute: {type: shell, command: /opt/once.sh}
    user: robot
"#;

/// The talker's numbers in its files, oldest first.
fn talk_numbers(files: &str) -> Vec<u64> {
    files
        .lines()
        .filter_map(|l| l.split_once(" talk ").map(|(_, n)| n.trim()))
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[test]
fn log_files_appear_per_user_rotate_and_merge_into_a_timeline_without_loss() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("rp-logs");
    add_robot_user(&c);
    c.write(
        "/opt/talk.sh",
        "#!/bin/sh\nwhile [ ! -e /run/talk-go ]; do sleep 0.1; done\ni=0\nwhile :; do i=$((i+1)); echo \"talk $i\"; sleep 0.02; done\n",
    );
    c.write(
        "/opt/once.sh",
        "#!/bin/sh\necho \"$KRILL_SERVICE says hi as $(id -un)\"\nexec sleep infinity\n",
    );
    c.ok("chmod 755 /opt/talk.sh /opt/once.sh");
    // A hostile user points the file root would write at /etc/shadow.
    c.ok("install -d -o robot -g robot /home/robot/.krill /home/robot/.krill/logs /home/robot/.krill/logs/logs && ln -s /etc/shadow /home/robot/.krill/logs/logs/sneaky.log && chown -h robot: /home/robot/.krill/logs/logs/sneaky.log");
    let shadow = c.ok("sha256sum /etc/shadow");
    c.install_ok("logs", LOGS, "--now");
    let root_dir = "/root/.krill/logs";
    let talker = format!("{root_dir}/logs/talker.log");
    let timeline = format!("{root_dir}/logs.timeline.log");
    // Before the talker floods the 2K files: a user: service's file is in that
    // user's home and belongs to that user.
    let quiet = "/home/robot/.krill/logs/logs/quiet.log";
    c.wait_for("quiet.log", Duration::from_secs(30), || {
        std::fs::read_to_string(c.path(quiet)).is_ok_and(|t| t.contains("quiet says hi as robot"))
    });
    assert_eq!(c.ok(&format!("stat -c %U {quiet}")).trim(), "robot");
    // The symlink was refused, as it would be for robot; shadow is untouched, and
    // the line still reached the timeline and the journal.
    c.wait_for("sneaky in the timeline", Duration::from_secs(30), || {
        std::fs::read_to_string(c.path(&timeline))
            .is_ok_and(|t| t.contains("sneaky: sneaky says hi as robot"))
    });
    assert_eq!(c.ok("sha256sum /etc/shadow"), shadow, "/etc/shadow changed");
    assert!(c
        .journal("-u krill-logs@logs.service")
        .contains("sneaky.log"));
    assert!(c
        .journal("-u krill-logs-sneaky.service")
        .contains("sneaky says hi"));
    // systemd's lines about a service are in its file and in the timeline.
    let t = std::fs::read_to_string(c.path(&timeline)).unwrap();
    assert!(t.contains("quiet [systemd]: Start"), "{t}");
    assert!(std::fs::read_to_string(c.path(quiet))
        .unwrap()
        .contains("[systemd] Start"));
    // Rotation: at most 2K a file, two copies kept, a third never.
    c.ok("touch /run/talk-go");
    c.wait_for("talker.log rotated twice", Duration::from_secs(60), || {
        c.path(&format!("{talker}.2")).exists()
    });
    for f in [talker.clone(), format!("{talker}.1"), format!("{talker}.2")] {
        let size = std::fs::metadata(c.path(&f)).map(|m| m.len()).unwrap_or(0);
        assert!(size <= 2048, "{f} is {size} bytes");
    }
    assert!(!c.path(&format!("{talker}.3")).exists());
    // A restarted writer neither loses nor repeats a line: stop the talker, wait for
    // systemd's stop line, and read every number kept.
    c.ok("systemctl restart krill-logs@logs.service");
    let before = talk_numbers(&c.ok("krill logs logs/talker --files"));
    let last = *before.last().unwrap();
    c.wait_for(
        "lines after the writer's restart",
        Duration::from_secs(30),
        || {
            talk_numbers(&c.ok("krill logs logs/talker --files"))
                .last()
                .is_some_and(|n| *n > last + 20)
        },
    );
    c.ok("systemctl restart krill-logs@logs.service");
    c.ok("systemctl stop krill-logs-talker.service");
    c.wait_for(
        "the talker's stop in its file",
        Duration::from_secs(30),
        || std::fs::read_to_string(c.path(&talker)).is_ok_and(|t| t.contains("[systemd] Stopped")),
    );
    let files = c.ok("krill logs logs/talker --files");
    let n = talk_numbers(&files);
    assert!(n.len() > 20, "{files}");
    for w in n.windows(2) {
        assert_eq!(w[1], w[0] + 1, "a line lost or repeated:\n{files}");
    }
    // The merged timeline reads in time order across its rotated copies.
    let merged = c.ok("krill logs logs --files");
    let times: Vec<&str> = merged
        .lines()
        .filter(|l| l.starts_with("20"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(times.len() > 20, "{merged}");
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{merged}");
    // The journal still has everything.
    assert!(c
        .journal("-u krill-logs-talker.service")
        .contains("talk 1\n"));
}
