//! User-level workspaces (issue 12): `krill --user` with a lingering user's own
//! `systemd --user`, its user generator, its supervisor on the session bus and its
//! heartbeat socket in `$XDG_RUNTIME_DIR/krill`. Runs on every systemd of the matrix.

use std::time::Duration;

use krill_e2e::{Container, Flavor};

const T: Duration = Duration::from_secs(60);

const MINE: &str = r#"
version: "1"
name: mine
log_dir: ~/logs
services:
  sensor:
    execute: {type: shell, command: python3 /opt/beat.py}
    health_check: {type: heartbeat, timeout: 2s}
  planner:
    execute: {type: shell, command: sleep infinity}
    dependencies: [{sensor: healthy}]
  silent:
    execute: {type: shell, command: sleep infinity}
    health_check: {type: heartbeat, timeout: 2s}
    policy: {restart: never}
  child:
    execute: {type: shell, command: sleep infinity}
    dependencies: [silent]
"#;

/// A workspace with nothing that ever connects to the heartbeat socket: installed
/// first, it is timed only if installing it starts the user's supervisor (socket
/// activation never would).
const QUIET: &str = r#"
version: "1"
name: quiet
services:
  mute:
    execute: {type: shell, command: sleep infinity}
    health_check: {type: heartbeat, timeout: 1s}
    policy: {restart: never}
"#;

/// A lingering user whose manager is up: runs commands as that user, in its session.
struct Robot<'a> {
    c: &'a Container,
    uid: String,
}

impl Robot<'_> {
    fn sh(&self, cmd: &str) -> std::process::Output {
        let uid = &self.uid;
        self.c.sh(&format!(
            "cd /home/robot && runuser -u robot -- env HOME=/home/robot XDG_RUNTIME_DIR=/run/user/{uid} DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/{uid}/bus sh -c {}",
            krill_ctl::remote::sh_quote(cmd)
        ))
    }

    fn ok(&self, cmd: &str) -> String {
        let o = self.sh(cmd);
        assert!(
            o.status.success(),
            "as robot: `{cmd}` failed ({}): {}",
            o.status,
            krill_e2e::text(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn active(&self, unit: &str) -> String {
        String::from_utf8_lossy(
            &self
                .sh(&format!("systemctl --user is-active {unit}"))
                .stdout,
        )
        .trim()
        .to_owned()
    }

    fn status(&self) -> serde_json::Value {
        let o = self.sh("krill --user status mine --json");
        serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null)
    }

    fn service(&self, svc: &str) -> serde_json::Value {
        self.status()["workspaces"][0]["services"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["service"] == svc).cloned())
            .unwrap_or(serde_json::Value::Null)
    }
}

fn lingering_robot(c: &Container) -> Robot<'_> {
    c.ok("useradd -m -s /bin/sh robot");
    // Not a wait for the boot's own start of logind: a start job merges with it, and
    // says why when logind cannot start.
    c.ok("systemctl start systemd-logind.service");
    if c.systemd_version() < 257 {
        c.ok("loginctl enable-linger robot");
    } else {
        // Stand-in, labelled: logind 257 answers SetUserLinger with EUNATCH inside
        // this nspawn container (not diagnosed). Lingering is logind's flag file,
        // read at every boot; for this boot, logind would start the user's manager.
        c.ok("mkdir -p /var/lib/systemd/linger && touch /var/lib/systemd/linger/robot && systemctl start user@$(id -u robot).service");
    }
    let uid = c.ok("id -u robot").trim().to_owned();
    c.wait_for("robot's user manager", T, || {
        c.sh(&format!("systemctl is-active user@{uid}.service"))
            .status
            .success()
            && c.path(&format!("/run/user/{uid}/bus")).exists()
    });
    Robot { c, uid }
}

#[test]
fn a_user_workspace_runs_under_the_users_manager_cascades_estops_and_starts_at_boot_with_lingering()
{
    let Some(_g) = krill_e2e::guard() else { return };
    let mut c = Container::boot_flavor("user-ws", Flavor::User);
    c.write(
        "/opt/beat.py",
        "import time\nfrom krill import KrillClient\nc = KrillClient()\nwhile True:\n    c.heartbeat()\n    time.sleep(0.2)\n",
    );
    {
        let r = lingering_robot(&c);
        r.ok("mkdir -p src");
        c.write("/home/robot/src/quiet.yaml", QUIET);
        c.ok("chown robot: /home/robot/src/quiet.yaml");
        r.ok("krill --user install src/quiet.yaml --now");
        c.wait_for("mute failed by the user's supervisor", T, || {
            r.active("krill-quiet-mute.service") == "failed"
        });
        assert_eq!(r.active("krill-supervisor.socket"), "active");
        c.write("/home/robot/src/mine.yaml", MINE);
        c.ok("chown robot: /home/robot/src/mine.yaml");
        r.ok("krill --user install src/mine.yaml --now --enable");
        assert!(c
            .path("/home/robot/.config/krill/recipes/mine.yaml")
            .exists());
        // The user's own manager runs it, not PID 1.
        assert_ne!(
            c.prop("krill-mine-sensor.service", "LoadState"),
            "loaded",
            "the system manager must not know a user's workspace"
        );
        // Heartbeats reach the user's supervisor through its own socket.
        c.wait_for("sensor healthy, planner running", T, || {
            r.service("sensor")["health"] == "healthy"
                && r.active("krill-mine-planner.service") == "active"
        });
        let sock = format!("/run/user/{}/krill/krill.sock", r.uid);
        assert!(c.path(&sock).exists(), "{sock}");
        assert_eq!(c.ok(&format!("stat -c %U:%a {sock}")).trim(), "robot:600");
        let env = r.ok("systemctl --user show -p Environment krill-mine-sensor.service");
        assert!(env.contains(&format!("KRILL_SOCKET={sock}")), "{env}");
        // A heartbeat that never comes fails the run (the supervisor times it, a
        // user manager has no relayed watchdog), and its dependent is cascaded.
        c.wait_for("silent failed, child stopped", T, || {
            r.active("krill-mine-silent.service") == "failed"
                && r.active("krill-mine-child.service") != "active"
        });
        let silent = r.service("silent");
        assert!(
            silent["reason"]
                .as_str()
                .unwrap_or("")
                .contains("heartbeat"),
            "{silent}"
        );
        // log_dir's ~ is the user's home.
        c.wait_for("the user's log files", T, || {
            c.path("/home/robot/logs/mine.timeline.log").exists()
                && c.path("/home/robot/logs/mine/sensor.log").exists()
        });
        // The emergency stop works the same.
        r.ok("krill --user estop mine --reason 'test stop'");
        for s in ["sensor", "planner"] {
            let u = format!("krill-mine-{s}.service");
            c.wait_for(&format!("{u} stopped"), T, || r.active(&u) != "active");
        }
        let st = r.status();
        assert!(
            st.to_string().contains("test stop"),
            "status explains the stop: {st}"
        );
        r.ok("krill --user start mine");
    }
    // Lingering: the workspace comes up at boot with the user's manager.
    c.reboot();
    let uid = c.ok("id -u robot").trim().to_owned();
    let r = Robot { c: &c, uid };
    c.wait_for("sensor up after boot", T, || {
        r.active("krill-mine-sensor.service") == "active"
    });
    c.wait_for("healthy after boot", T, || {
        r.service("sensor")["health"] == "healthy"
    });
}
