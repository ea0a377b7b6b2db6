//! Fleet control (issue 11, part 4) against real robots: two systemd containers with
//! sshd, each on a veth link of its own to the host, and a third robot that is down
//! (its address is on a host interface that drops every packet: connections hang,
//! as they do to a robot that lost power). The host's `krill-ctl` reaches them as an
//! operator's laptop would: `krill -H`, `krill fleet status`, `krill fleet estop`,
//! over SSH and each robot's `systemd-stdio-bridge`; no krill daemon or port.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use krill_e2e::{bindir, text, Container, Flavor};

const T: Duration = Duration::from_secs(30);

const FLEET: &str = r#"
version: "1"
name: fleet
services:
  base:
    execute: {type: shell, command: "sh -c 'echo base-up; exec sleep infinity'"}
  arm:
    execute: {type: shell, command: sleep infinity}
    dependencies: [base]
"#;

/// An SSH identity and a `KRILL_SSH` wrapper that uses it (the operator's
/// ~/.ssh/config, without touching the host's).
struct Ssh {
    dir: tempfile::TempDir,
}

impl Ssh {
    fn new() -> Ssh {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(st.success());
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!(
                "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
                key.display()
            ),
        )
        .unwrap();
        let wrapper = dir.path().join("ssh");
        std::fs::write(
            &wrapper,
            format!("#!/bin/sh\nexec ssh -F {} \"$@\"\n", config.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        Ssh { dir }
    }

    fn authorize(&self, c: &Container) {
        let key = std::fs::read_to_string(self.dir.path().join("id.pub")).unwrap();
        c.ok("mkdir -p -m 700 /root/.ssh");
        c.write("/root/.ssh/authorized_keys", &key);
        c.ok("chmod 600 /root/.ssh/authorized_keys");
    }

    fn wrapper(&self) -> PathBuf {
        self.dir.path().join("ssh")
    }

    /// The host's krill-ctl with `args`.
    fn krill(&self, args: &[&str]) -> Output {
        Command::new(bindir().join("krill-ctl"))
            .args(args)
            .env("KRILL_SSH", self.wrapper())
            .output()
            .unwrap()
    }
}

/// A host link whose far end drops everything: a veth pair whose peer has no
/// address, and a permanent neighbour entry so that packets leave without ARP. The
/// address behind it never answers: connections hang, as to a robot without power.
struct BlackHole {
    dev: String,
}

impl BlackHole {
    fn new() -> (BlackHole, String) {
        let dev = format!("kb{:05}", std::process::id() % 100_000);
        let slot = 16_000 + std::process::id() % 300;
        let (net, peer) = (slot * 4 + 1, slot * 4 + 2);
        let sh = |c: &str| {
            let o = Command::new("sh").arg("-c").arg(c).output().unwrap();
            assert!(o.status.success(), "{c}: {}", text(&o));
        };
        sh(&format!(
            "ip link add {dev} type veth peer name {dev}p && ip link set {dev}p up && \
             ip addr add 10.77.{}.{}/30 dev {dev} && ip link set {dev} up && \
             ip neigh replace 10.77.{}.{} lladdr 02:00:00:00:00:01 dev {dev} nud permanent",
            net >> 8,
            net & 0xff,
            peer >> 8,
            peer & 0xff
        ));
        (
            BlackHole { dev },
            format!("10.77.{}.{}", peer >> 8, peer & 0xff),
        )
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.dev]).status();
    }
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn answer<'a>(v: &'a serde_json::Value, host: &str) -> &'a serde_json::Value {
    v.as_array()
        .unwrap()
        .iter()
        .find(|a| a["host"] == host)
        .unwrap_or_else(|| panic!("no answer from {host}: {v}"))
}

fn robot(name: &str, ssh: &Ssh) -> Container {
    let c = Container::boot_flavor(name, Flavor::Ops);
    ssh.authorize(&c);
    c.wait_for("sshd", T, || {
        c.sh("systemctl is-active ssh.service").status.success()
    });
    c.install_ok("fleet", FLEET, "--now --wait");
    c
}

#[test]
fn fleet_status_and_estop_reach_every_robot_and_name_the_one_that_is_down() {
    let _g = krill_e2e::guard();
    let ssh = Ssh::new();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| robot("fleet-a", &ssh));
        let b = s.spawn(|| robot("fleet-b", &ssh));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (_hole, down) = BlackHole::new();
    let (ha, hb, hd) = (
        format!("root@{}", a.ip()),
        format!("root@{}", b.ip()),
        format!("root@{down}"),
    );

    // One robot, as `systemctl -H` would: status and logs over SSH.
    let o = ssh.krill(&["-H", &ha, "status"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        t.contains("workspace fleet (krill-fleet.target): running"),
        "{t}"
    );
    let o = ssh.krill(&["-H", &ha, "logs", "fleet/base", "--no-pager"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("base-up"),
        "{}",
        text(&o)
    );
    // The live view of a robot, from the operator's terminal (a tmux pane on the host).
    let sock = format!("krill-e2e-{}", std::process::id());
    let tmux = |args: &str| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("tmux -L {sock} {args}"))
            .output()
            .unwrap();
        assert!(o.status.success(), "tmux {args}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    tmux(&format!(
        "new-session -d -s top -x 80 -y 24 'KRILL_SSH={} {} -H {ha} top --interval 1h'",
        ssh.wrapper().display(),
        bindir().join("krill-ctl").display()
    ));
    a.wait_for("the remote live view", T, || {
        let s = tmux("capture-pane -p -t top");
        s.contains(&format!("krill top {ha}")) && s.contains("fleet: running") && s.contains(" arm")
    });
    tmux("send-keys -t top q");
    a.wait_for("the remote live view to quit", T, || {
        !Command::new("tmux")
            .args(["-L", &sock, "has-session", "-t", "top"])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    });

    // Commands that need the robot's files are refused, not half done.
    let o = ssh.krill(&["-H", &ha, "install", "/dev/null"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // Status of the fleet: every robot at once; the one that is down does not hold
    // the others back beyond the timeout, and is named.
    let hosts = Path::new(&ssh.dir.path().to_path_buf()).join("robots");
    std::fs::write(&hosts, format!("# lab\n{ha}\n{hb}\n")).unwrap();
    let o = ssh.krill(&[
        "fleet",
        "status",
        "-f",
        hosts.to_str().unwrap(),
        &hd,
        "--timeout",
        "3s",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(3), "a robot is down: {}", text(&o));
    let v = json(&o);
    for h in [&ha, &hb] {
        let r = answer(&v, h);
        let ws = &r["ok"][0];
        assert_eq!(ws["workspace"], "fleet", "{r}");
        assert_eq!(ws["state"], "running", "{r}");
        assert!(
            ws["services"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["ok"] == true),
            "{r}"
        );
        assert!(
            r["elapsed_ms"].as_u64().unwrap() < 3000,
            "{h} waited for the dead robot: {r}"
        );
    }
    let d = answer(&v, &hd);
    assert!(
        d["error"].as_str().unwrap().starts_with("unreachable"),
        "{d}"
    );
    let o = ssh.krill(&["fleet", "status", &ha, &hb, &hd, "--timeout", "3s"]);
    let t = String::from_utf8_lossy(&o.stdout).to_string();
    let line = |h: &str| {
        t.lines()
            .find(|l| l.starts_with(h))
            .unwrap_or("")
            .to_owned()
    };
    assert!(
        line(&ha).contains("running") && line(&ha).contains("2/2 ok"),
        "{t}"
    );
    assert!(line(&hd).contains("unreachable"), "{t}");

    // Emergency stop of the fleet: both robots stop, each says how fast, the reason
    // reaches each robot's own status, and the dead one is reported as not stopped.
    let o = ssh.krill(&[
        "fleet",
        "estop",
        &ha,
        &hb,
        &hd,
        "--reason",
        "lab door opened",
        "--timeout",
        "3s",
        "--json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a robot was not stopped: {}",
        text(&o)
    );
    let v = json(&o);
    for (h, c) in [(&ha, &a), (&hb, &b)] {
        let r = answer(&v, h);
        let s = &r["ok"][0];
        assert_eq!(s["workspace"], "fleet", "{r}");
        let gone = s["gone_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("{h} not all gone: {r}"));
        println!(
            "MEASURE fleet_estop host={h} connected_ms={} queued_ms={} gone_ms={gone} via={}",
            s["connected_ms"], s["queued_ms"], s["via"]
        );
        assert!(s["connected_ms"].as_u64() <= s["queued_ms"].as_u64(), "{r}");
        for u in ["base", "arm"] {
            assert!(c
                .state(&format!("krill-fleet-{u}.service"))
                .starts_with("inactive"));
        }
        assert!(c.cgroup_pids("krill.slice/krill-fleet.slice").is_empty());
        let st = c.service_status("fleet", "base");
        assert_eq!(st["reason"], "emergency stop: lab door opened", "{st}");
    }
    assert!(answer(&v, &hd)["error"]
        .as_str()
        .unwrap()
        .starts_with("unreachable"));
}

/// The record systemd-machined keeps of a registered container
/// (`/run/systemd/machines/NAME`), written by the test: the host has no machined (its
/// PID 1 is not systemd), and `--register=no` keeps nspawn from needing one. A
/// labelled stand-in for the registration only; the transport is systemd's own
/// (`systemd-stdio-bridge --machine`), the bus is the container's.
struct Registration {
    file: PathBuf,
}

impl Registration {
    fn new(c: &Container) -> (Registration, String) {
        let name = format!("krill-e2e-{}", std::process::id());
        let file = Path::new("/run/systemd/machines").join(&name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, format!("LEADER={}\nCLASS=container\n", c.pid1)).unwrap();
        (Registration { file }, name)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

#[test]
fn machine_flag_reaches_a_local_container_as_systemctl_m_does() {
    let _g = krill_e2e::guard();
    let c = Container::boot("fleet-m");
    c.install_ok("fleet", FLEET, "--now --wait");
    let (_reg, name) = Registration::new(&c);
    let krill = |args: &[&str]| {
        Command::new(bindir().join("krill-ctl"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = krill(&["-M", &name, "status", "fleet", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json(&o)["workspaces"][0]["state"], "running");
    let o = krill(&["-M", &name, "estop", "--reason", "from the host"]);
    assert!(o.status.success(), "{}", text(&o));
    c.wait_state("krill-fleet-base.service", "inactive/dead", T);
    assert_eq!(
        c.service_status("fleet", "base")["reason"],
        "emergency stop: from the host"
    );
    let o = krill(&["-M", "no-such-machine", "status"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}
