//! Issue 7 (safety and security), unit files, the generator and install as a
//! transaction, probes and output, in a real systemd.

use std::time::Duration;

use krill_e2e::{text, Container};

const T: Duration = Duration::from_secs(30);

fn recipe(cmd: &str) -> String {
    format!(
        "version: \"1\"\nname: tx\nservices:\n  a:\n    execute: {{type: shell, command: {cmd}}}\n"
    )
}

/// The command line systemd runs for `unit` now.
fn cmdline(c: &Container, unit: &str) -> String {
    let pid = c.num(unit, "MainPID");
    c.ok(&format!("tr '\\0' ' ' < /proc/{pid}/cmdline"))
}

/// Items 8, 9, 11: values systemd would misread (a trailing backslash that swallows
/// the next unit line, a NUL), and files that would hang a reader (a FIFO, a link to
/// /dev/zero) get a clear error naming file, line and field, and change nothing. A
/// unit that systemd refuses to load (here broken by an admin's drop-in) rolls the
/// install back.
#[test]
fn bad_values_and_files_change_nothing() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("safe-values");
    c.install_ok("tx", &recipe("sleep infinity"), "--now");
    c.wait_state("krill-tx-a.service", "active/running", T);
    let before = c.ok("cat /etc/krill/recipes/tx.yaml");
    let pid = c.num("krill-tx-a.service", "MainPID");
    for (bad, expect) in [
        (
            "version: \"1\"\nname: tx\nservices:\n  a:\n    execute: {type: shell, command: sleep infinity, working_dir: \"/tmp\\\\\"}\n    gpu: true\n".to_owned(),
            "/root/tx.yaml:5:66: services.a.execute.working_dir: path must not end with a backslash",
        ),
        (
            recipe("\"sleep\\0 infinity\""),
            "/root/tx.yaml:5:37: services.a.execute.command: control character '\\0' at character 6",
        ),
        (
            "version: \"1\"\nname: tx\nenv: {A: \"x\\0y\"}\nservices:\n  a:\n    execute: {type: shell, command: sleep infinity}\n".to_owned(),
            "/root/tx.yaml:3:10: env.A: value must not contain NUL",
        ),
    ] {
        let o = c.install("/root/tx.yaml", &bad, "");
        assert!(!o.status.success());
        assert!(text(&o).contains(expect), "{}", text(&o));
    }
    c.ok("mkfifo /root/fifo.yaml && ln -s /dev/zero /root/zero.yaml");
    for f in ["fifo", "zero"] {
        let o = c.sh(&format!("timeout 10 krill validate /root/{f}.yaml"));
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("not a regular file"), "{}", text(&o));
    }
    assert_eq!(c.ok("cat /etc/krill/recipes/tx.yaml"), before);
    assert_eq!(c.num("krill-tx-a.service", "MainPID"), pid);
    // A drop-in that leaves the unit without ExecStart=: systemd marks it bad-setting.
    c.write(
        "/etc/systemd/system/krill-tx-a.service.d/broken.conf",
        "[Service]\nExecStart=\n",
    );
    let o = c.install("/root/tx.yaml", &recipe("sleep 1000"), "");
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("krill-tx-a.service: bad-setting") && t.contains("previous state was restored"),
        "{t}"
    );
    assert_eq!(c.ok("cat /etc/krill/recipes/tx.yaml"), before);
    c.ok("rm -r /etc/systemd/system/krill-tx-a.service.d && systemctl daemon-reload");
    assert_eq!(c.num("krill-tx-a.service", "MainPID"), pid);
}

/// Item 10: a hostile 2.5 MB recipe put in place by hand neither stalls
/// daemon-reload nor takes another workspace's units away.
#[test]
fn a_huge_recipe_cannot_take_the_others_down() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("safe-huge");
    c.install_ok("tx", &recipe("sleep infinity"), "--now");
    c.wait_state("krill-tx-a.service", "active/running", T);
    let huge = format!(
        "version: \"1\"\nname: huge\nservices:\n  a:\n    execute: {{type: shell, command: \"echo {}\"}}\n",
        "a ".repeat(1_250_000)
    );
    c.write("/etc/krill/recipes/huge.yaml", &huge);
    let t0 = std::time::Instant::now();
    c.ok("systemctl daemon-reload");
    eprintln!(
        "MEASURE daemon-reload with a 2.5 MB recipe: {:?}",
        t0.elapsed()
    );
    assert_eq!(c.prop("krill-tx-a.service", "LoadState"), "loaded");
    assert_eq!(c.state("krill-tx-a.service"), "active/running");
    let st = c.sh("krill status");
    assert!(
        text(&st).contains("huge.yaml is not loaded") && text(&st).contains("limit for a recipe"),
        "{}",
        text(&st)
    );
    // 500 kB, under the cap: accepted, in linear time.
    let big = format!(
        "version: \"1\"\nname: big\nservices:\n  a:\n    execute: {{type: shell, command: \"echo {}\"}}\n",
        "a ".repeat(250_000)
    );
    c.ok("rm /etc/krill/recipes/huge.yaml");
    c.install_ok("big", &big, "");
    assert_eq!(c.prop("krill-big-a.service", "LoadState"), "loaded");
}

/// Item 12: a new version that removes a service that is not running still restarts
/// the changed ones.
#[test]
fn install_removing_a_stopped_service_completes() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("safe-remove");
    let v1 = "version: \"1\"\nname: tx\nservices:\n  a:\n    execute: {type: shell, command: sleep infinity}\n  b:\n    execute: {type: shell, command: sleep infinity}\n";
    c.install_ok("tx", v1, "--now");
    c.wait_state("krill-tx-a.service", "active/running", T);
    c.ok("systemctl stop krill-tx-b.service");
    c.install_ok("tx", &recipe("sleep 1000"), "");
    assert!(cmdline(&c, "krill-tx-a.service").starts_with("sleep 1000"));
    assert_eq!(c.prop("krill-tx-b.service", "LoadState"), "not-found");
}

/// Items 13 and 14: `install` killed at every step converges when re-run with the
/// same recipe; a failed daemon-reload rolls back. Every write is durable (item 15:
/// fsync before rename, see `krill::generator::write_durable`).
#[test]
fn install_converges_after_a_crash_at_every_step_and_rolls_back_a_failed_reload() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("safe-tx");
    c.install_ok("tx", &recipe("sleep 100"), "--now");
    c.wait_state("krill-tx-a.service", "active/running", T);
    for (i, step) in ["after-intent", "after-write", "after-reload", "after-stop"]
        .iter()
        .enumerate()
    {
        let cmd = format!("sleep {}", 200 + i);
        c.write("/root/tx.yaml", &recipe(&cmd));
        let o = c.sh(&format!(
            "KRILL_FAULT=install:{step} krill install /root/tx.yaml"
        ));
        assert!(!o.status.success(), "{step}: {}", text(&o));
        let o = c.sh("krill install /root/tx.yaml");
        assert!(o.status.success(), "{step}: {}", text(&o));
        c.wait_state("krill-tx-a.service", "active/running", T);
        assert!(
            cmdline(&c, "krill-tx-a.service").starts_with(&cmd),
            "after a crash {step}, a re-run must leave the new command running: {}",
            cmdline(&c, "krill-tx-a.service")
        );
        assert!(!c.path("/run/krill/pending/tx").exists(), "{step}");
    }
    let before = c.ok("cat /etc/krill/recipes/tx.yaml");
    let pid = c.num("krill-tx-a.service", "MainPID");
    c.write("/root/tx.yaml", &recipe("sleep 999"));
    let o = c.sh("KRILL_FAULT=install:reload krill install /root/tx.yaml");
    assert!(!o.status.success());
    assert!(
        text(&o).contains("daemon-reload failed") && text(&o).contains("restored"),
        "{}",
        text(&o)
    );
    assert_eq!(c.ok("cat /etc/krill/recipes/tx.yaml"), before);
    assert_eq!(c.num("krill-tx-a.service", "MainPID"), pid);
    assert!(!c.ok("systemctl cat krill-tx-a.service").contains("999"));
}

/// Items 16 and 17: a script probe that leaves children behind leaks nothing, and it
/// sees the service's environment (KRILL_SOCKET); reasons cannot forge status rows
/// or send escape codes to the operator's terminal.
#[test]
fn probes_leak_nothing_and_reasons_are_escaped() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("safe-probe");
    c.write(
        "/opt/hb/degrade.py",
        "import os, socket, time\nname = os.environ['KRILL_SERVICE']\nmsg = ('{\"type\":\"heartbeat\",\"service\":\"%s\",\"status\":\"degraded\",\"metadata\":{\"reason\":\"ok\\\\nforged  active/running  healthy\\\\u001b[2J\"}}\\n' % name).encode()\ns = socket.socket(socket.AF_UNIX); s.connect(os.environ['KRILL_SOCKET'])\nwhile True:\n    s.sendall(msg)\n    time.sleep(0.2)\n",
    );
    c.install_ok(
        "pr",
        r#"
version: "1"
name: pr
services:
  leaky:
    execute: {type: shell, command: sleep infinity}
    health_check:
      type: script
      command: sh -c "sleep 1000 & echo x >> /run/probe-runs; test \"$KRILL_SOCKET\" = /run/krill/krill.sock"
  liar:
    execute: {type: shell, command: python3 /opt/hb/degrade.py}
    health_check: {type: heartbeat, timeout: 2s}
"#,
        "--now",
    );
    c.wait_for("leaky healthy (KRILL_SOCKET seen by the probe)", T, || {
        c.status("pr --json").contains("\"healthy\"")
    });
    // Four probe rounds (one a second), each of which forks a `sleep 1000` and counts
    // itself. A round's scope is stopped as it ends, so at most the latest child can
    // still be on its way out; without scopes, every round's child stays.
    c.wait_for("4 probe rounds", T, || {
        std::fs::read_to_string(c.path("/run/probe-runs")).is_ok_and(|r| r.lines().count() >= 4)
    });
    let left = c.sh("pgrep -f '^sleep 1000$'");
    let left = String::from_utf8_lossy(&left.stdout).lines().count();
    assert!(left <= 1, "probe children leaked: {left}");
    c.wait_for("liar degraded", T, || c.status("pr").contains("degraded"));
    let st = c.status("pr");
    assert!(!st.contains('\x1b'), "{st:?}");
    assert!(!st.lines().any(|l| l.starts_with("forged")), "{st}");
    assert!(st.contains("ok\\nforged"), "{st}");
}
