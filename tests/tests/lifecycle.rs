//! Install, boot, bad input, quoting and GPU checks, in a real systemd 252.

use std::time::Duration;

use krill_e2e::{now_us, text, Container};

const T: Duration = Duration::from_secs(20);

const GOOD: &str = r#"
version: "1"
name: robot
services:
  driver:
    execute: {type: shell, command: sleep infinity}
  app:
    execute: {type: shell, command: sleep infinity}
    dependencies: [driver]
"#;

/// A recipe installed with --enable comes up at boot: reboot the container to prove it.
/// Also measures boot-to-all-running for the demo workspace.
#[test]
fn enabled_workspace_comes_up_at_boot() {
    let Some(_g) = krill_e2e::guard() else { return };
    let mut c = Container::boot("boot");
    // The demo workspace from examples/, installed from a copy of the examples dir.
    let demo = krill_e2e::repo().join("examples/demo");
    for f in ["demo.yaml", "services/sensor.py", "services/processor.py"] {
        c.write(
            &format!("/opt/demo/{f}"),
            &std::fs::read_to_string(demo.join(f)).unwrap(),
        );
    }
    let out = c.sh("krill install /opt/demo/demo.yaml --enable");
    assert!(out.status.success(), "{}", text(&out));
    let out = c.install("/root/robot.yaml", GOOD, "");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        c.prop("krill-demo.target", "ActiveState"),
        "inactive",
        "--enable alone does not start"
    );
    c.reboot();
    let booted = now_us();
    for s in ["sensor", "processor", "dashboard"] {
        c.wait_state(&format!("krill-demo-{s}.service"), "active/running", T);
    }
    let all_running = ["sensor", "processor", "dashboard"]
        .iter()
        .map(|s| {
            c.num(
                &format!("krill-demo-{s}.service"),
                "ExecMainStartTimestampMonotonic",
            )
        })
        .max()
        .unwrap();
    // The manager's own start (PID 1 exec'd) in the container.
    let userspace: u64 = c
        .ok("systemctl show -p UserspaceTimestampMonotonic")
        .trim()
        .trim_start_matches("UserspaceTimestampMonotonic=")
        .parse()
        .unwrap();
    assert!(userspace > 0 && all_running > userspace);
    eprintln!(
        "MEASURE demo_boot_to_all_running_ms={:.1} (from the container's PID 1 start; all running {:.1} ms after is-system-running)",
        (all_running - userspace) as f64 / 1000.0,
        (now_us() - booted) as f64 / 1000.0
    );
    // The dashboard really serves, from the recipe's own working_dir.
    c.wait_for("dashboard answers", T, || c.sh("python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:8080/sensor.py')\"").status.success());
    assert_eq!(
        c.prop("krill-robot.target", "ActiveState"),
        "inactive",
        "not enabled, not started"
    );
    assert_eq!(c.prop("krill-robot-app.service", "LoadState"), "loaded");
}

/// A bad recipe is refused by install and skipped by the generator; good ones keep
/// running, untouched.
#[test]
fn bad_input_changes_nothing() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("bad");
    let out = c.install("/root/robot.yaml", GOOD, "--now");
    assert!(out.status.success(), "{}", text(&out));
    let out = c.install(
        "/root/other.yaml",
        &GOOD.replace("name: robot", "name: other"),
        "--now",
    );
    assert!(out.status.success(), "{}", text(&out));
    let app = "krill-robot-app.service";
    c.wait_state(app, "active/running", T);
    c.wait_state("krill-other-app.service", "active/running", T);
    let before = (c.num(app, "MainPID"), c.prop(app, "InvocationID"));
    let installed = std::fs::read_to_string(c.path("/etc/krill/recipes/robot.yaml")).unwrap();

    // 1. install refuses a bad recipe of the same workspace, with file:line:column.
    let bad = GOOD.replace(
        "command: sleep infinity}\n    dependencies",
        "command: sleep infinity | tee x}\n    dependencies",
    );
    let out = c.install("/root/robot-bad.yaml", &bad, "--now");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("/root/robot-bad.yaml:8:5")
            || text(&out).contains("/root/robot-bad.yaml:8:"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("services.app.execute.command: pipe (|)"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(c.path("/etc/krill/recipes/robot.yaml")).unwrap(),
        installed
    );

    // 2. install refuses a recipe whose units collide with another workspace's:
    //    workspace "a-b" service "c" and workspace "a" service "b-c" would both be
    //    krill-a-b-c.service.
    let one = "version: \"1\"\nname: a-b\nservices:\n  c:\n    execute: {type: shell, command: sleep infinity}\n";
    assert!(c.install("/root/a-b.yaml", one, "").status.success());
    let out = c.install(
        "/root/a.yaml",
        &one.replace("name: a-b", "name: a")
            .replace("  c:", "  b-c:"),
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out)
            .contains("unit krill-a-b-c.service is also produced by installed workspace \"a-b\""),
        "{}",
        text(&out)
    );
    assert!(!c.path("/etc/krill/recipes/a.yaml").exists());

    // 3. a bad recipe dropped in by hand is skipped by the generator at reload; the
    //    others stay loaded and running.
    c.write(
        "/etc/krill/recipes/broken.yaml",
        "version: \"1\"\nname: broken\nservices:\n  a: {execute: {type: shell}}\n",
    );
    c.ok("systemctl daemon-reload");
    assert_eq!(c.prop("krill-broken.target", "LoadState"), "not-found");
    assert_eq!(c.prop(app, "LoadState"), "loaded");
    assert_eq!((c.num(app, "MainPID"), c.prop(app, "InvocationID")), before);
    assert_eq!(c.state("krill-other-app.service"), "active/running");
    let log = c.journal("-b");
    assert!(
        log.contains("skipping recipe /etc/krill/recipes/broken.yaml")
            && log.contains("requires `command`"),
        "generator log missing"
    );

    // 4. validate reports errors without touching anything.
    let out = c.sh("krill validate /etc/krill/recipes/broken.yaml");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("/etc/krill/recipes/broken.yaml:4:23: services.a.execute.command"),
        "{}",
        text(&out)
    );

    // 5. uninstall stops the workspace first, then removes it (no not-found leftovers).
    c.ok("krill uninstall other");
    assert_eq!(c.prop("krill-other-app.service", "LoadState"), "not-found");
    assert_eq!(c.prop("krill-other-app.service", "ActiveState"), "inactive");
    assert!(c.cgroup_pids("krill.slice/krill-other.slice").is_empty());
    assert_eq!((c.num(app, "MainPID"), c.prop(app, "InvocationID")), before);
}

/// `krill plan` shows what install would change, and install restarts exactly the
/// running services whose unit changed.
#[test]
fn plan_and_reinstall_restart_only_changed_services() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("plan");
    assert!(c
        .install("/root/robot.yaml", GOOD, "--now")
        .status
        .success());
    c.wait_state("krill-robot-app.service", "active/running", T);
    let driver_pid = c.num("krill-robot-driver.service", "MainPID");
    let app_pid = c.num("krill-robot-app.service", "MainPID");
    let changed = GOOD.replace(
        "  app:\n    execute: {type: shell, command: sleep infinity}",
        "  app:\n    execute: {type: shell, command: sleep 100000}",
    ) + "  extra:\n    execute: {type: shell, command: sleep infinity}\n";
    c.write("/root/robot2.yaml", &changed);
    let plan = c.ok("krill plan /root/robot2.yaml");
    assert!(plan.contains("add     krill-robot-extra.service"), "{plan}");
    assert!(plan.contains("change  krill-robot-app.service"), "{plan}");
    assert!(plan.contains("restart krill-robot-app.service"), "{plan}");
    // The summary names only what changes (the target's diff may mention others).
    let summary: Vec<&str> = plan
        .lines()
        .filter(|l| {
            ["add ", "change ", "remove ", "restart "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    assert!(!summary.iter().any(|l| l.contains("driver")), "{plan}");
    assert!(
        plan.contains("-ExecStart=") || plan.contains("+ExecStart="),
        "the diff shows the changed command: {plan}"
    );
    c.ok("krill install /root/robot2.yaml --now");
    c.wait_state("krill-robot-extra.service", "active/running", T);
    c.wait_state("krill-robot-app.service", "active/running", T);
    assert_eq!(
        c.num("krill-robot-driver.service", "MainPID"),
        driver_pid,
        "unchanged service untouched"
    );
    assert_ne!(
        c.num("krill-robot-app.service", "MainPID"),
        app_pid,
        "changed service restarted"
    );
    assert!(c
        .ok("systemctl show -p ExecStart krill-robot-app.service")
        .contains("100000"));
}

/// Every recipe value reaches the process literally: spaces, quotes, `$`, `%`, `\`,
/// newlines, `;`, non-ASCII, in argv and in the environment.
#[test]
fn values_reach_the_process_literally() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("quote");
    c.write(
        "/root/dump.py",
        "import json, os, sys\nkeys = ['SPACES', 'QUOTES', 'DOLLAR', 'PERCENT', 'BACKSLASH', 'NEWLINE', 'UNICODE', 'KRILL_WORKSPACE', 'KRILL_SERVICE', 'KRILL_SOCKET']\nwith open('/run/dump.json.tmp', 'w') as f: json.dump({'argv': sys.argv[1:], 'env': {k: os.environ.get(k) for k in keys}, 'cwd': os.getcwd()}, f)\nos.rename('/run/dump.json.tmp', '/run/dump.json')\nimport time\nwhile True: time.sleep(1)\n",
    );
    c.ok("mkdir -p '/root/dir with spaces/100%'");
    let recipe = r#"
version: "1"
name: quoting
env:
  SPACES: "a b  c"
  QUOTES: "say \"hi\" and 'bye'"
  DOLLAR: "$HOME ${HOME} $$"
  PERCENT: "100% %n %%"
  BACKSLASH: 'C:\path\n'
  NEWLINE: "line1\nline2"
  UNICODE: "héllo ロボット"
services:
  echo:
    execute:
      type: shell
      command: python3 /root/dump.py "a b" 'it''s' "say \"hi\"" '$HOME' '${X}' '100%' 'back\slash' ';' ロボット "%n"
      working_dir: "dir with spaces/100%"
"#;
    let out = c.install("/root/quoting.yaml", recipe, "--now");
    assert!(out.status.success(), "{}", text(&out));
    c.wait_for("dump written", T, || c.path("/run/dump.json").exists());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.path("/run/dump.json")).unwrap()).unwrap();
    assert_eq!(
        v["argv"],
        serde_json::json!([
            "a b",
            "its",
            "say \"hi\"",
            "$HOME",
            "${X}",
            "100%",
            "back\\slash",
            ";",
            "ロボット",
            "%n"
        ])
    );
    let env = &v["env"];
    assert_eq!(env["SPACES"], "a b  c");
    assert_eq!(env["QUOTES"], "say \"hi\" and 'bye'");
    assert_eq!(env["DOLLAR"], "$HOME ${HOME} $$");
    assert_eq!(env["PERCENT"], "100% %n %%");
    assert_eq!(env["BACKSLASH"], "C:\\path\\n");
    assert_eq!(env["NEWLINE"], "line1\nline2");
    assert_eq!(env["UNICODE"], "héllo ロボット");
    assert_eq!(env["KRILL_WORKSPACE"], "quoting");
    assert_eq!(env["KRILL_SERVICE"], "echo");
    assert_eq!(env["KRILL_SOCKET"], "/run/krill/krill.sock");
    assert_eq!(v["cwd"], "/root/dir with spaces/100%");
}

/// S8: `gpu: true` fails the service (not a skip) when no GPU is usable, with a message
/// that says what was looked for, and its dependents do not start. With a prepared
/// fake device tree the same unit starts.
#[test]
fn gpu_check_fails_without_gpu_and_passes_with_one() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("gpu");
    let recipe = r#"
version: "1"
name: gpu
services:
  detector:
    execute: {type: shell, command: sleep infinity}
    gpu: true
  tracker:
    execute: {type: shell, command: sleep infinity}
    dependencies: [detector]
"#;
    assert!(c.install("/root/gpu.yaml", recipe, "").status.success());
    let _ = c.sh("systemctl start krill-gpu.target");
    c.wait_state("krill-gpu-detector.service", "failed/failed", T);
    c.wait_for("tracker's gate to fail", T, || {
        c.prop("krill-started@krill-gpu-detector.service", "ActiveState") == "failed"
    });
    assert_eq!(
        c.num(
            "krill-gpu-tracker.service",
            "ExecMainStartTimestampMonotonic"
        ),
        0,
        "dependent never started"
    );
    assert_eq!(
        c.num(
            "krill-gpu-detector.service",
            "ExecMainStartTimestampMonotonic"
        ),
        0,
        "the service itself never ran"
    );
    let log = c.journal("-u krill-gpu-detector.service");
    assert!(
        log.contains("no usable GPU: looked for NVIDIA (/dev/nvidiactl and /dev/nvidia<N>)")
            && log.contains("AMD ROCm (/dev/kfd"),
        "{log}"
    );

    // A fake NVIDIA device tree (test-only probe root), passed through the manager's
    // environment to ExecStartPre=.
    c.ok("mkdir -p /fake-gpu/dev && touch /fake-gpu/dev/nvidiactl /fake-gpu/dev/nvidia0");
    c.ok("systemctl set-environment KRILL_GPU_ROOT=/fake-gpu");
    c.ok("krill start gpu");
    c.wait_state("krill-gpu-detector.service", "active/running", T);
    c.wait_state("krill-gpu-tracker.service", "active/running", T);
    assert!(c
        .journal("-u krill-gpu-detector.service")
        .contains("GPU found: nvidia (/fake-gpu/dev/nvidia0)"));
}
