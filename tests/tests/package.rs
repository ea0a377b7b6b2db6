//! Issue 9 (ship it), in a real systemd: the .deb's life on a robot, and upstream's
//! verbs. Every container already got krill by `dpkg -i` of the .deb under test.

use std::time::Duration;

use krill_e2e::{text, Container};

const T: Duration = Duration::from_secs(60);

/// Rebuilds the .deb under test as version `0.1.0-2` (same files): a newer package
/// for the upgrade, without a second cargo build.
fn newer_deb(c: &Container) -> String {
    let dir = c.path("/tmp/newer");
    let _ = std::fs::remove_dir_all(&dir);
    let st = std::process::Command::new("dpkg-deb")
        .arg("-R")
        .arg(krill_e2e::deb())
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let control = dir.join("DEBIAN/control");
    let t = std::fs::read_to_string(&control).unwrap();
    std::fs::write(&control, t.replace("Version: 0.1.0-1", "Version: 0.1.0-2")).unwrap();
    let st = std::process::Command::new("dpkg-deb")
        .args(["-b", "--root-owner-group"])
        .arg(&dir)
        .arg(c.path("/tmp/krill-newer.deb"))
        .status()
        .unwrap();
    assert!(st.success());
    "/tmp/krill-newer.deb".into()
}

fn pids(c: &Container, units: &[&str]) -> Vec<String> {
    units
        .iter()
        .map(|u| c.prop(&format!("krill-demo-{u}.service"), "MainPID"))
        .collect()
}

/// Install, `krill up` the demo, upgrade to a newer .deb (zero service restarts),
/// remove (no krill process, unit or generator left), purge (no /etc/krill).
#[test]
fn deb_install_up_upgrade_remove_purge() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("pkg-life");
    // What the package put in place.
    let v = c.ok("krill --version");
    assert!(v.starts_with("krill 0.1.0 ("), "{v}");
    assert!(c
        .ok("krill-supervisor --version")
        .starts_with("krill-supervisor 0.1.0"));
    assert_eq!(
        c.ok("readlink /usr/lib/systemd/system-generators/krill-gen")
            .trim(),
        "../../../bin/krill-gen"
    );
    c.wait_state("krill-supervisor.service", "active/running", T);
    c.ok("getent group krill");
    c.ok("getent passwd krill-metrics");
    // Upstream's name of the live view.
    assert_eq!(c.ok("readlink /usr/bin/krill-tui").trim(), "krill-ctl");
    for f in [
        "/usr/share/man/man1/krill-top.1.gz",
        "/usr/share/man/man1/krill-tui.1.gz",
        "/usr/share/man/man1/krill-fleet.1.gz",
        "/usr/share/man/man1/krill.1.gz",
        "/usr/share/man/man1/krill-up.1.gz",
        "/usr/share/bash-completion/completions/krill",
        "/usr/share/zsh/vendor-completions/_krill",
        "/usr/share/fish/vendor_completions.d/krill.fish",
        "/usr/include/krill.hpp",
        "/usr/share/pkgconfig/krill.pc",
        "/usr/share/cmake/krill/krillConfig.cmake",
        "/etc/krill/recipes",
    ] {
        c.ok(&format!("test -e {f}"));
    }
    // The bash completion knows the verbs.
    let words = c.ok(
        "bash -c '. /usr/share/bash-completion/completions/krill; COMP_WORDS=(krill u); COMP_CWORD=1; _krill krill u krill; printf \"%s\\n\" \"${COMPREPLY[@]}\"'",
    );
    assert!(
        words.contains("up") && words.contains("uninstall"),
        "{words}"
    );

    // Upstream's verbs: up, ps, logs SERVICE.
    c.ok("cp -r /usr/share/doc/krill/examples/demo /opt/demo");
    let up = c.sh("krill up /opt/demo/demo.yaml --timeout 60s");
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    assert!(
        text(&up).contains("workspace demo is running"),
        "{}",
        text(&up)
    );
    let ps = c.sh("krill ps");
    assert_eq!(ps.status.code(), Some(0), "{}", text(&ps));
    assert!(text(&ps).contains("dashboard"), "{}", text(&ps));
    let bare = c.sh("krill");
    assert_eq!(bare.status.code(), Some(0), "{}", text(&bare));
    assert!(text(&bare).contains("workspace demo"), "{}", text(&bare));
    c.wait_for("sensor logged", T, || {
        c.sh("krill logs sensor --no-pager").status.success()
            && text(&c.sh("krill logs sensor --no-pager")).contains("krill-demo-sensor.service")
    });

    // Upgrade: every service keeps its process; only the supervisor reloads.
    let svcs = ["sensor", "processor", "dashboard"];
    let before = pids(&c, &svcs);
    let sup_before = c.prop("krill-supervisor.service", "MainPID");
    let newer = newer_deb(&c);
    let o = c.sh(&format!("dpkg -i {newer}"));
    assert!(o.status.success(), "{}", text(&o));
    assert!(c.ok("dpkg-query -W krill").contains("0.1.0-2"));
    assert_eq!(pids(&c, &svcs), before, "an upgrade restarted a service");
    for s in svcs {
        assert_eq!(c.prop(&format!("krill-demo-{s}.service"), "NRestarts"), "0");
    }
    c.wait_state("krill-supervisor.service", "active/running", T);
    // The upgrade reloads the supervisor: it re-execs the new binary in place (same
    // PID, not the deleted old file) and keeps its heartbeat connections.
    let sup = c.prop("krill-supervisor.service", "MainPID");
    assert_eq!(sup, sup_before);
    assert_eq!(
        c.ok(&format!("readlink /proc/{sup}/exe")).trim(),
        "/usr/bin/krill-supervisor"
    );
    assert!(c
        .journal("-u krill-supervisor.service")
        .contains("reloading: re-executing /usr/bin/krill-supervisor"));
    assert_eq!(
        c.status("demo").lines().next().unwrap(),
        "workspace demo (krill-demo.target): running"
    );

    // Remove: the workspace stops cleanly, nothing of krill stays loaded or running.
    let o = c.sh("dpkg -r krill");
    assert!(o.status.success(), "{}", text(&o));
    let left = c.cgroup_pids("krill.slice");
    assert!(
        left.is_empty(),
        "processes left in krill.slice: {left:?}\n{}",
        c.ok("ps -eo pid,cgroup:70,args")
    );
    let left = c.ok("systemctl list-units --all --plain --no-legend 'krill*'");
    assert!(left.trim().is_empty(), "units left behind: {left}");
    c.ok("test ! -e /usr/lib/systemd/system-generators/krill-gen");
    c.ok("test ! -e /usr/bin/krill");
    c.ok("test ! -e /usr/bin/krill-tui");
    c.ok("test -e /etc/krill/recipes/demo.yaml");
    // Purge: the recipes go too.
    let o = c.sh("dpkg -P krill");
    assert!(o.status.success(), "{}", text(&o));
    c.ok("test ! -e /etc/krill");
    assert!(!c.sh("getent passwd krill-metrics").status.success());
    assert!(!c.sh("getent group krill-metrics").status.success());
}

/// `krill down` stops every loaded workspace (and only stops: recipes stay); `logs`
/// with an ambiguous service name lists the candidates.
#[test]
fn upstream_down_and_ambiguous_logs() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("pkg-verbs");
    for ws in ["one", "two"] {
        c.install_ok(
            ws,
            &format!("version: \"1\"\nname: {ws}\nservices:\n  nav:\n    execute: {{type: shell, command: sleep infinity}}\n"),
            "--now",
        );
        c.wait_state(&format!("krill-{ws}-nav.service"), "active/running", T);
    }
    let o = c.sh("krill logs nav");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("one/nav") && text(&o).contains("two/nav"),
        "{}",
        text(&o)
    );
    let o = c.ok("krill down");
    assert!(
        o.contains("stopped workspace one") && o.contains("stopped workspace two"),
        "{o}"
    );
    assert_eq!(c.state("krill-one-nav.service"), "inactive/dead");
    assert_eq!(c.state("krill-two-nav.service"), "inactive/dead");
    c.ok("test -e /etc/krill/recipes/one.yaml");
    let st = c.sh("krill ps");
    assert_eq!(st.status.code(), Some(3), "{}", text(&st));
}
