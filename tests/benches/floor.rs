//! `cargo bench -p krill-e2e --bench floor` (root, systemd-container; see README): krill
//! side by side with its floor, plain systemd doing the same job with hand-written
//! units (`tests/benches/floor/`), in one real systemd 252 container, interleaved
//! (krill, floor, krill, floor, …), medians and ratios. The rows of the performance
//! issue:
//!
//! * kill → new process: a service killed with SIGKILL, `Restart=always`,
//!   `RestartSec=` 0: from the kill to the new process's `ExecMainStartTimestamp`
//!   (the container shares the kernel's monotonic clock);
//! * bring-up of a 5-service, 3-level DAG with `systemctl start` of its target: from
//!   the first service leaving `inactive` to the last one active (systemd's own
//!   timestamps);
//! * `krill install --now` of the same DAG, against copying the floor's units,
//!   `daemon-reload` and `systemctl start`: from the command to the later of its
//!   return and the last service active;
//! * emergency stop of 14 processes (7 services with a child each): `krill estop`
//!   against `systemctl stop` of the floor's target: from the command to the last of
//!   the 14 processes gone;
//! * `krill status` of the 5 services with the supervisor stopped, against
//!   `systemctl show` of their state: wall time of the command in the container;
//! * 50 services sending heartbeats at 10 Hz (timeout 2 s), through krill's SDK and
//!   supervisor, against 50 plain units whose process pings systemd's watchdog
//!   itself (`floor-hb@.service`, `WatchdogSec=2s`): the CPU of the system's side
//!   (PID 1, journald, dbus-daemon, and krill-supervisor for krill), % of one core
//!   over a window;
//! * the same services' timeout detection: from the last heartbeat of a silenced
//!   service to systemd failing it, less the timeout (ms late).
//!
//! The generator row is `cargo bench -p krill-gen`; heartbeat detection and CPU are
//! `--bench supervisor`.

use std::time::Duration;

use krill_e2e::{now_us, Container};

/// Rounds per row (each one krill and one floor run).
const ROUNDS: usize = 15;

/// A pause before every measured run, so that it starts on an idle system: the
/// previous run's aftermath (signals, the supervisor's refresh, journald) is over.
/// A measurement's setup, not an assertion.
const SETTLE: Duration = Duration::from_millis(300);

const DAG: &str = r#"
version: "1"
name: dag
services:
  a:
    execute: {type: shell, command: sleep infinity}
    policy: {restart: always, restart_delay: 0s}
  b:
    execute: {type: shell, command: sleep infinity}
    dependencies: [a]
  c:
    execute: {type: shell, command: sleep infinity}
    dependencies: [a]
  d:
    execute: {type: shell, command: sleep infinity}
    dependencies: [b, c]
  e:
    execute: {type: shell, command: sleep infinity}
    dependencies: [c]
"#;

const SERVICES: [&str; 5] = ["a", "b", "c", "d", "e"];

/// The heartbeat client of both sides, at 10 Hz: `krill NAME` through the Python SDK,
/// `notify NAME` as `WATCHDOG=1` to `$NOTIFY_SOCKET`. `/run/stop-NAME` silences it;
/// it writes the CLOCK_MONOTONIC µs of its last heartbeat to `/run/lastbeat-NAME`.
const BEAT10: &str = r#"import os, socket, sys, time
mode, name = sys.argv[1], sys.argv[2]
if mode == "krill":
    from krill import KrillClient
    c = KrillClient()
    beat = c.heartbeat
else:
    addr = os.environ["NOTIFY_SOCKET"]
    addr = "\0" + addr[1:] if addr.startswith("@") else addr
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    beat = lambda: s.sendto(b"WATCHDOG=1", addr)
while True:
    if not os.path.exists("/run/stop-" + name):
        beat()
        with open("/run/lastbeat-" + name + ".tmp", "w") as f:
            f.write(str(time.monotonic_ns() // 1000))
        os.rename("/run/lastbeat-" + name + ".tmp", "/run/lastbeat-" + name)
    time.sleep(0.1)
"#;

/// Heartbeat services per side.
const BEATERS: usize = 50;

/// The CPU window of the heartbeat row (per round and side).
const CPU_WINDOW: Duration = Duration::from_secs(10);

/// CPU time (ns) of the container's processes named by their unit's MainPID, plus
/// PID 1 (from each `/proc/PID/schedstat`).
fn cpu_ns(c: &Container, units: &[&str]) -> u64 {
    let mut pids: Vec<u64> = units.iter().map(|u| c.num(u, "MainPID")).collect();
    pids.push(1);
    pids.iter()
        .filter(|p| **p != 0)
        .map(|p| {
            std::fs::read_to_string(c.path(&format!("/proc/{p}/schedstat")))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// % of one core the system's side spends while `BEATERS` services beat.
fn beat_cpu(c: &Container, units: &[&str]) -> f64 {
    let t0 = cpu_ns(c, units);
    let start = now_us();
    // The measurement window (what is measured is the CPU spent in it).
    std::thread::sleep(CPU_WINDOW);
    let t1 = cpu_ns(c, units);
    (t1 - t0) as f64 / 1e3 / (now_us() - start) as f64 * 100.0
}

/// Silences `name` (unit `unit`, timeout 2 s) and returns how late systemd failed it:
/// from its last heartbeat to the run's exit, less the timeout, ms. Then lets it beat
/// again and waits until it runs.
fn detection(c: &Container, name: &str, unit: &str) -> f64 {
    let restarts = c.num(unit, "NRestarts");
    let pid = c.num(unit, "MainPID");
    c.write(&format!("/run/stop-{name}"), "");
    c.wait_for(
        "the silenced service restarted",
        Duration::from_secs(30),
        || c.num(unit, "NRestarts") > restarts && c.num(unit, "MainPID") != pid,
    );
    let last: u64 = c
        .ok(&format!("cat /run/lastbeat-{name}"))
        .trim()
        .parse()
        .unwrap();
    let acted = mono(c, unit, "ActiveExit");
    c.ok(&format!("rm /run/stop-{name}"));
    c.wait_state(unit, "active/running", Duration::from_secs(30));
    (acted.saturating_sub(last) as f64 / 1000.0) - 2000.0
}

fn krill_unit(s: &str) -> String {
    format!("krill-dag-{s}.service")
}

fn floor_unit(s: &str) -> String {
    format!("floor-dag-{s}.service")
}

/// The 14-process workspace: 7 services, each a shell with a child.
fn estop_recipe() -> String {
    let mut r = String::from("version: \"1\"\nname: es\nservices:\n");
    for i in 0..7 {
        r.push_str(&format!(
            "  p{i}:\n    execute: {{type: shell, command: /opt/two.sh}}\n"
        ));
    }
    r
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A systemd `*TimestampMonotonic` property in µs.
fn mono(c: &Container, unit: &str, prop: &str) -> u64 {
    c.num(unit, &format!("{prop}TimestampMonotonic"))
}

/// Waits until every unit is active (a condition with a deadline, not a timing).
fn wait_active(c: &Container, units: &[String]) {
    for u in units {
        c.wait_state(u, "active/running", Duration::from_secs(30));
    }
}

fn wait_inactive(c: &Container, units: &[String]) {
    c.wait_for("stopped", Duration::from_secs(30), || {
        units.iter().all(|u| c.prop(u, "ActiveState") != "active")
    });
}

/// Runs `cmd`, then waits for `units`: ms from the command's start (host monotonic
/// µs; the container shares the kernel's clock) to whichever comes last, the command
/// returning or the last of `units` becoming active (what an operator waits for).
fn until_active(c: &Container, cmd: &str, units: &[String]) -> f64 {
    let t0 = now_us();
    c.ok(cmd);
    let returned = now_us();
    wait_active(c, units);
    let last = units
        .iter()
        .map(|u| mono(c, u, "ActiveEnter"))
        .max()
        .unwrap_or(0);
    last.max(returned).saturating_sub(t0) as f64 / 1000.0
}

/// Kill → new process, ms: SIGKILL sent from here to the main process (by its
/// host pid, read from the unit's cgroup) until systemd's start timestamp of the next.
fn respawn(c: &Container, unit: &str, cgroup: &str) -> f64 {
    let old = c.num(unit, "MainPID");
    let pids = c.cgroup_pids(cgroup);
    assert_eq!(pids.len(), 1, "{unit}: one process");
    let t0 = now_us();
    // SAFETY: a plain kill(2) of the service's process.
    assert_eq!(unsafe { libc::kill(pids[0] as i32, libc::SIGKILL) }, 0);
    c.wait_for("a new process", Duration::from_secs(30), || {
        let p = c.num(unit, "MainPID");
        p != 0 && p != old
    });
    mono(c, unit, "ExecMainStart").saturating_sub(t0) as f64 / 1000.0
}

/// Bring-up of a target, ms: from the first service's start (its job leaving
/// `inactive`) to the last service active, by systemd's own timestamps.
fn bring_up(c: &Container, target: &str, units: &[String]) -> f64 {
    c.ok(&format!("systemctl start {target}"));
    wait_active(c, units);
    let t0 = units
        .iter()
        .map(|u| mono(c, u, "InactiveExit"))
        .min()
        .unwrap_or(0);
    let last = units
        .iter()
        .map(|u| mono(c, u, "ActiveEnter"))
        .max()
        .unwrap_or(0);
    let ms = last.saturating_sub(t0) as f64 / 1000.0;
    c.ok(&format!("systemctl stop {target} {}", units.join(" ")));
    wait_inactive(c, units);
    ms
}

/// Wall time of `cmd` inside the container, ms (`date` on both sides: the same
/// overhead for krill and its floor).
fn timed(c: &Container, cmd: &str) -> f64 {
    let out = c.ok(&format!(
        "a=$(date +%s%N); {cmd} >/dev/null 2>&1; b=$(date +%s%N); echo $((b-a))"
    ));
    out.trim().parse::<f64>().unwrap() / 1e6
}

/// From the command to the last process of cgroup `slice` gone, ms.
fn all_gone(c: &Container, cmd: &str, slice: &str) -> f64 {
    let t0 = now_us();
    std::thread::scope(|s| {
        let h = s.spawn(|| c.ok(cmd));
        // Reads the slice's cgroup.procs from the host (no process spawned per
        // look): the figure is when the last process disappears, not a sleep.
        while !c.cgroup_pids(slice).is_empty() {
            std::thread::yield_now();
        }
        let gone = now_us();
        h.join().unwrap();
        gone.saturating_sub(t0) as f64 / 1000.0
    })
}

struct Row {
    name: &'static str,
    /// What the figures are in ("ms", "%").
    unit: &'static str,
    krill: Vec<f64>,
    floor: Vec<f64>,
}

impl Row {
    fn new(name: &'static str) -> Row {
        Row::in_unit(name, "ms")
    }

    fn in_unit(name: &'static str, unit: &'static str) -> Row {
        Row {
            name,
            unit,
            krill: vec![],
            floor: vec![],
        }
    }

    /// One round: krill's run and the floor's, in alternating order (so neither
    /// always runs in the other's wake), each after [`SETTLE`].
    fn round(&mut self, i: usize, mut krill: impl FnMut() -> f64, mut floor: impl FnMut() -> f64) {
        let mut k = || {
            std::thread::sleep(SETTLE);
            krill()
        };
        let mut f = || {
            std::thread::sleep(SETTLE);
            floor()
        };
        if i.is_multiple_of(2) {
            self.krill.push(k());
            self.floor.push(f());
        } else {
            self.floor.push(f());
            self.krill.push(k());
        }
    }

    fn print(&self) {
        let (k, f) = (median(self.krill.clone()), median(self.floor.clone()));
        let u = self.unit;
        println!(
            "| {} | {k:.2} {u} | {f:.2} {u} | {:.2} |",
            self.name,
            if f > 0.0 { k / f } else { f64::NAN }
        );
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("bench-floor");
    let floor = krill_e2e::repo().join("tests/benches/floor");
    c.ok("mkdir -p /root/floor");
    for e in std::fs::read_dir(&floor).unwrap() {
        let p = e.unwrap().path();
        c.write(
            &format!("/root/floor/{}", p.file_name().unwrap().to_string_lossy()),
            &std::fs::read_to_string(&p).unwrap(),
        );
    }
    c.write(
        "/opt/two.sh",
        "#!/bin/sh\nsleep infinity &\nexec sleep infinity\n",
    );
    c.ok("chmod 755 /opt/two.sh");
    c.write("/root/dag.yaml", DAG);
    c.write("/root/es.yaml", &estop_recipe());
    let k_units: Vec<String> = SERVICES.iter().map(|s| krill_unit(s)).collect();
    let f_units: Vec<String> = SERVICES.iter().map(|s| floor_unit(s)).collect();
    let install_floor = "cp /root/floor/floor-dag* /etc/systemd/system/ && systemctl daemon-reload && systemctl start floor-dag.target";
    let remove_floor = "systemctl stop floor-dag.target floor-dag-a.service floor-dag-b.service floor-dag-c.service floor-dag-d.service floor-dag-e.service; rm -f /etc/systemd/system/floor-dag*; systemctl daemon-reload";

    // install --now, from nothing installed.
    let mut install = Row::new("`krill install --now` of the DAG (floor: reload + start)");
    for i in 0..ROUNDS {
        install.round(
            i,
            || {
                let ms = until_active(&c, "krill install /root/dag.yaml --now", &k_units);
                c.ok("krill uninstall dag");
                ms
            },
            || {
                let ms = until_active(&c, install_floor, &f_units);
                c.ok(remove_floor);
                ms
            },
        );
    }

    // Both installed, stopped: bring-up and respawn.
    c.ok("krill install /root/dag.yaml");
    c.ok(&format!(
        "{install_floor} && systemctl stop floor-dag.target {}",
        f_units.join(" ")
    ));
    let mut up = Row::new("bring-up of a 5-service 3-level DAG, `systemctl start`");
    let mut kill = Row::new("kill → new process");
    for i in 0..ROUNDS {
        up.round(
            i,
            || bring_up(&c, "krill-dag.target", &k_units),
            || bring_up(&c, "floor-dag.target", &f_units),
        );
    }
    c.ok("systemctl start krill-dag.target floor-dag.target");
    wait_active(&c, &k_units);
    wait_active(&c, &f_units);
    for i in 0..ROUNDS {
        kill.round(
            i,
            || {
                respawn(
                    &c,
                    &krill_unit("a"),
                    "krill.slice/krill-dag.slice/krill-dag-a.service",
                )
            },
            || {
                respawn(
                    &c,
                    &floor_unit("a"),
                    "floor.slice/floor-dag.slice/floor-dag-a.service",
                )
            },
        );
    }

    // Status with the supervisor stopped.
    c.ok("systemctl stop krill-supervisor.socket krill-supervisor.service");
    let mut status =
        Row::new("`krill status` of 5 services, supervisor down (floor: `systemctl show`)");
    let show = format!(
        "systemctl show -p ActiveState,SubState,MainPID,NRestarts,Result {}",
        k_units.join(" ")
    );
    for i in 0..ROUNDS {
        status.round(i, || timed(&c, "krill status dag"), || timed(&c, &show));
    }
    c.ok("systemctl start krill-supervisor.socket krill-supervisor.service");

    // Emergency stop of 14 processes.
    c.ok("krill install /root/es.yaml");
    c.ok("cp /root/floor/floor-es* /etc/systemd/system/ && systemctl daemon-reload");
    let mut estop = Row::new("emergency stop, 14 processes gone (floor: `systemctl stop` target)");
    let procs = |slice: &str| c.cgroup_pids(slice).len();
    let ready = |start: &str, prefix: &str, slice: &str| {
        c.ok(start);
        let units: Vec<String> = (0..7).map(|i| format!("{prefix}-p{i}.service")).collect();
        wait_active(&c, &units);
        c.wait_for("14 processes", Duration::from_secs(30), || {
            procs(slice) == 14
        });
    };
    for i in 0..ROUNDS {
        estop.round(
            i,
            || {
                ready("krill start es", "krill-es", "krill.slice/krill-es.slice");
                std::thread::sleep(SETTLE);
                all_gone(
                    &c,
                    "krill estop es --reason bench",
                    "krill.slice/krill-es.slice",
                )
            },
            || {
                ready(
                    "systemctl start floor-es.target",
                    "floor-es",
                    "floor.slice/floor-es.slice",
                );
                std::thread::sleep(SETTLE);
                all_gone(
                    &c,
                    "systemctl stop floor-es.target",
                    "floor.slice/floor-es.slice",
                )
            },
        );
    }

    // Heartbeats: 50 services at 10 Hz on each side, both running throughout (the
    // other side's clients cost the same in both windows).
    c.write("/opt/beat10.py", BEAT10);
    let mut recipe = String::from("version: \"1\"\nname: hb\nservices:\n");
    for i in 0..BEATERS {
        recipe.push_str(&format!("  s{i}:\n    execute: {{type: shell, command: python3 /opt/beat10.py krill s{i}}}\n    health_check: {{type: heartbeat, timeout: 2s}}\n    policy: {{restart: on-failure, restart_delay: 200ms}}\n"));
    }
    c.write("/root/hb.yaml", &recipe);
    c.ok("krill install /root/hb.yaml");
    c.ok("cp /root/floor/floor-hb* /etc/systemd/system/ && systemctl daemon-reload");
    let base = ["systemd-journald.service", "dbus.service"];
    let with_sup = [base[0], base[1], "krill-supervisor.service"];
    let mut cpu = Row::in_unit(
        "system CPU, 50 services × 10 Hz heartbeats (PID 1 + journald + dbus [+ supervisor])",
        "%",
    );
    let mut late = Row::new("heartbeat timeout detection, ms after the 2 s timeout");
    // One side at a time: its 50 services started, all beating, a CPU window, one
    // silenced service's detection, stopped.
    let side = |krill: bool| -> (f64, f64) {
        let unit = |i: usize| {
            if krill {
                format!("krill-hb-s{i}.service")
            } else {
                format!("floor-hb@s{i}.service")
            }
        };
        c.ok(if krill {
            "systemctl start krill-hb.target"
        } else {
            "systemctl start floor-hb.target"
        });
        c.wait_for(
            "every heartbeat service beating",
            Duration::from_secs(60),
            || {
                (0..BEATERS).all(|i| c.prop(&unit(i), "SubState") == "running")
                    && (!krill
                        || c.status_json("hb")["workspaces"][0]["services"]
                            .as_array()
                            .is_some_and(|a| {
                                a.iter().filter(|s| s["health"] == "healthy").count() == BEATERS
                            }))
            },
        );
        std::thread::sleep(SETTLE);
        let pct = beat_cpu(&c, if krill { &with_sup[..] } else { &base[..] });
        let ms = detection(&c, "s1", &unit(1));
        c.ok(if krill {
            "systemctl stop krill-hb.target"
        } else {
            "systemctl stop floor-hb.target"
        });
        let all: Vec<String> = (0..BEATERS).map(unit).collect();
        wait_inactive(&c, &all);
        (pct, ms)
    };
    for i in 0..3 {
        let order = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for krill in order {
            let (pct, ms) = side(krill);
            if krill {
                cpu.krill.push(pct);
                late.krill.push(ms);
            } else {
                cpu.floor.push(pct);
                late.floor.push(ms);
            }
        }
    }
    c.ok("krill uninstall hb");

    println!(
        "\nkrill beside plain systemd (systemd {}), medians of {ROUNDS} interleaved rounds (heartbeats: 3 rounds of a {CPU_WINDOW:?} CPU window and a detection)\n",
        c.systemd_version()
    );
    println!("| metric | krill | floor | krill / floor |");
    println!("|---|---|---|---|");
    for r in [&kill, &up, &install, &estop, &status, &cpu, &late] {
        r.print();
    }
}
