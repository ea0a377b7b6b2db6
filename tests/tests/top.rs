//! `krill top` (issue 11, part 1) in a real systemd, driven as an operator drives it:
//! in an 80×24 tmux pane inside the container (`send-keys`, `capture-pane`). Every
//! view runs with `--interval 1h`, so whatever changes on screen came from a D-Bus
//! signal: krill-supervisor's, or systemd's while the supervisor is down.

use std::time::Duration;

use krill_e2e::{Container, Flavor};

const T: Duration = Duration::from_secs(30);

const LIVE: &str = r#"
version: "1"
name: live
services:
  lidar:
    execute: {type: shell, command: "sh -c 'echo lidar-up-$$; exec sleep infinity'"}
  slam:
    execute: {type: shell, command: sleep infinity}
    dependencies: [lidar]
  planner:
    execute: {type: shell, command: sleep infinity}
"#;

/// A tmux session of 80×24 running a shell in the container.
struct Pane<'a> {
    c: &'a Container,
}

impl<'a> Pane<'a> {
    fn open(c: &'a Container) -> Pane<'a> {
        c.ok("tmux new-session -d -s op -x 80 -y 24 /bin/bash --norc --noprofile");
        let p = Pane { c };
        // The terminal's settings before krill top: what it must give back.
        p.keys("stty -g > /tmp/stty-before", true);
        c.wait_for("stty saved", T, || c.path("/tmp/stty-before").exists());
        p
    }

    fn keys(&self, keys: &str, enter: bool) {
        let lit = keys.replace('\'', r"'\''");
        self.c.ok(&format!(
            "tmux send-keys -t op -l '{lit}'{}",
            if enter {
                " && tmux send-keys -t op Enter"
            } else {
                ""
            }
        ));
    }

    fn key(&self, name: &str) {
        self.c.ok(&format!("tmux send-keys -t op {name}"));
    }

    fn screen(&self) -> String {
        self.c.ok("tmux capture-pane -p -t op")
    }

    fn wait(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let deadline = std::time::Instant::now() + T;
        while std::time::Instant::now() < deadline {
            last = self.screen();
            if cond(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("screen never showed {what}:\n{last}");
    }

    fn wait_for_text(&self, text: &str) -> String {
        self.wait(text, |s| s.contains(text))
    }

    /// The terminal is as it was: the normal screen, the same stty settings, and the
    /// shell's prompt answering again.
    fn assert_restored(&self) {
        self.c.wait_for("krill top to exit", T, || {
            !self.c.sh("pgrep -x krill").status.success()
        });
        assert_eq!(
            self.c.ok("tmux display -p -t op '#{alternate_on}'").trim(),
            "0",
            "still on the alternate screen"
        );
        let _ = std::fs::remove_file(self.c.path("/tmp/stty-after"));
        self.keys("stty -g > /tmp/stty-after", true);
        self.c.wait_for("stty read again", T, || {
            std::fs::read_to_string(self.c.path("/tmp/stty-after")).is_ok_and(|s| !s.is_empty())
        });
        assert_eq!(
            std::fs::read_to_string(self.c.path("/tmp/stty-after")).unwrap(),
            std::fs::read_to_string(self.c.path("/tmp/stty-before")).unwrap(),
            "terminal settings not restored"
        );
        let s = self.screen();
        assert!(!s.contains("SERVICE"), "the view is still on screen:\n{s}");
    }
}

fn row<'s>(screen: &'s str, service: &str) -> &'s str {
    screen
        .lines()
        .find(|l| l.split_whitespace().next() == Some(service))
        .unwrap_or("")
}

#[test]
fn top_shows_every_service_and_its_keys_act() {
    let _g = krill_e2e::guard();
    let c = Container::boot_flavor("top-keys", Flavor::Ops);
    c.install_ok("live", LIVE, "--now --wait");
    let p = Pane::open(&c);
    p.keys("krill top --interval 1h", true);
    let s = p.wait("every service", |s| {
        ["lidar", "slam", "planner"]
            .iter()
            .all(|n| row(s, n).contains("running"))
    });
    assert!(s.contains("live: running"), "{s}");
    assert!(s.contains("live: supervisor"), "{s}");
    assert!(s.lines().count() <= 24 && s.lines().all(|l| l.chars().count() <= 80));

    // r restarts the selected service (the first: lidar): a new PID, on screen.
    let old = c.num("krill-live-lidar.service", "MainPID");
    assert!(row(&s, "lidar").contains(&old.to_string()), "{s}");
    p.keys("r", false);
    c.wait_for("lidar to run again with a new PID", T, || {
        let pid = c.num("krill-live-lidar.service", "MainPID");
        pid != 0 && pid != old
    });
    let new = c.num("krill-live-lidar.service", "MainPID").to_string();
    p.wait(&format!("lidar's new PID {new}"), |s| {
        row(s, "lidar").contains(&new)
    });

    // d: details with the command and the dependents; Esc: back.
    p.keys("d", false);
    let s = p.wait_for_text("dependents:  slam");
    assert!(s.contains("unit:        krill-live-lidar.service"), "{s}");
    p.wait_for_text("echo lidar-up-");
    p.key("Escape");
    p.wait_for_text("SERVICE");

    // j moves down to slam (rows are in the report's order), and s stops it only.
    let order: Vec<String> = c.status_json("live")["workspaces"][0]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap().to_owned())
        .collect();
    let at = |n: &str| order.iter().position(|o| o == n).unwrap();
    assert_eq!(
        at("lidar"),
        0,
        "the first row is selected at start: {order:?}"
    );
    p.keys(&"j".repeat(at("slam")), false);
    p.keys("s", false);
    p.wait("slam stopped", |s| row(s, "slam").contains("dead"));
    assert!(c.state("krill-live-slam.service").starts_with("inactive"));
    // The next key clears the outcome line: the selected service's reason shows.
    p.keys("kj", false);
    p.wait_for_text("slam: stopped by an operator");
    assert!(c.state("krill-live-lidar.service").starts_with("active"));

    // Enter: the selected service's journal, live.
    p.keys(&"k".repeat(at("slam")), false);
    p.key("Enter");
    p.wait_for_text(&format!("lidar-up-{new}"));
    p.key("Escape");
    p.wait_for_text("SERVICE");

    // S asks first; anything but y cancels.
    p.keys("S", false);
    p.wait_for_text("Stop every process of workspace live?");
    p.keys("n", false);
    p.wait_for_text("emergency stop of live cancelled");
    assert!(c.state("krill-live.target").starts_with("active"));
    p.keys("S", false);
    p.wait_for_text("Stop every process of workspace live?");
    p.keys("y", false);
    for u in ["lidar", "planner"] {
        c.wait_state(&format!("krill-live-{u}.service"), "inactive/dead", T);
    }
    p.wait_for_text("live: emergency-stopped");

    p.keys("q", false);
    p.assert_restored();
}

#[test]
fn top_follows_systemd_without_the_supervisor_and_restores_the_terminal_on_sigterm() {
    let _g = krill_e2e::guard();
    let c = Container::boot_flavor("top-fallback", Flavor::Ops);
    c.install_ok("live", LIVE, "--now --wait");
    c.ok("systemctl stop krill-supervisor.service");
    let p = Pane::open(&c);
    p.keys("krill tui live --interval 1h", true);
    let s = p.wait_for_text("live: systemd (supervisor down)");
    assert!(row(&s, "planner").contains("running"), "{s}");
    // A change systemd signals reaches the screen without the supervisor.
    c.ok("systemctl stop krill-live-planner.service");
    p.wait("planner stopped, from systemd's signal", |s| {
        row(s, "planner").contains("dead")
    });
    // The supervisor comes back: its signals drive the view again.
    c.ok("systemctl start krill-supervisor.service");
    p.wait_for_text("live: supervisor");
    c.ok("pkill -TERM -x krill");
    p.assert_restored();

    // Upstream's `krill-tui` is the same view; it leaves as cleanly on q.
    p.keys("krill-tui --interval 1h", true);
    p.wait_for_text("live: supervisor");
    p.keys("q", false);
    p.assert_restored();
}
