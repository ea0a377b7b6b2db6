//! `cargo bench -p krill-e2e --bench top` (root, systemd-container; see README): the
//! cost of keeping `krill top` open on a 50-service workspace whose services send
//! heartbeats at 10 Hz, in a real systemd 252, side by side with its floor: plain
//! systemd's live view, `watch -n 2 systemctl list-units 'krill-top-*'`, at the same
//! refresh interval. Windows interleave (nothing open, krill top, the floor), three
//! rounds; medians. Figures: the view's own CPU (% of one core, with its reaped
//! children for the floor), and what it adds to the system (the view + PID 1 +
//! dbus-daemon + krill-supervisor) over the window with nothing open.

use std::time::{Duration, Instant};

use krill_e2e::{Container, Flavor};

/// One measurement window.
const WINDOW: Duration = Duration::from_secs(15);

/// CPU time of `pid` in ns: its threads' (schedstat, ns resolution) and its reaped
/// children's (cutime + cstime, in 10 ms ticks: `watch` runs a process per refresh).
fn cpu_ns(c: &Container, pid: u64) -> u64 {
    let own: u64 = std::fs::read_dir(c.path(&format!("/proc/{pid}/task")))
        .map(|d| {
            d.flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let stat = std::fs::read_to_string(c.path(&format!("/proc/{pid}/stat"))).unwrap_or_default();
    let children: u64 = stat
        .rfind(')')
        .map(|close| {
            stat[close + 2..]
                .split_whitespace()
                .skip(13)
                .take(2)
                .map(|f| f.parse::<u64>().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    own + children * 10_000_000
}

fn pid_of(c: &Container, cmd: &str) -> u64 {
    c.ok(&format!("pgrep -o -x {cmd}")).trim().parse().unwrap()
}

/// CPU % of one core of the view (`view` pid, if any) and of the system processes,
/// over one window.
fn window(c: &Container, view: Option<u64>) -> (f64, f64) {
    let system = [
        1,
        c.num("krill-supervisor.service", "MainPID"),
        c.num("dbus.service", "MainPID"),
    ];
    let sum = |pids: &[u64]| pids.iter().map(|p| cpu_ns(c, *p)).sum::<u64>();
    let (v0, s0) = (view.map_or(0, |p| cpu_ns(c, p)), sum(&system));
    let t = Instant::now();
    // A measurement window, not an assertion: the figure is the CPU used in it.
    std::thread::sleep(WINDOW);
    let secs = t.elapsed().as_secs_f64();
    let (v1, s1) = (view.map_or(0, |p| cpu_ns(c, p)), sum(&system));
    let pct = |a: u64, b: u64| (b - a) as f64 / 1e9 / secs * 100.0;
    (pct(v0, v1), pct(s0, s1))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo test --all-targets` runs bench targets too (without `--bench`).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot_flavor("bench-top", Flavor::Ops);
    c.install_beating("top", 50);
    c.ok("tmux new-session -d -s view -x 80 -y 24 /bin/bash --norc --noprofile");
    let run = |cmd: &str| {
        c.ok(&format!(
            "tmux send-keys -t view -l '{cmd}' && tmux send-keys -t view Enter"
        ));
    };
    let (mut idle_sys, mut top_own, mut top_sys, mut floor_own, mut floor_sys) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..3 {
        idle_sys.push(window(&c, None).1);

        run("krill top --interval 2s");
        c.wait_for("krill top", Duration::from_secs(10), || {
            c.sh("pgrep -x krill").status.success()
        });
        let (own, sys) = window(&c, Some(pid_of(&c, "krill")));
        top_own.push(own);
        top_sys.push(sys);
        c.ok("tmux send-keys -t view q");
        c.wait_for("krill top to quit", Duration::from_secs(10), || {
            !c.sh("pgrep -x krill").status.success()
        });

        run("watch -n 2 systemctl list-units \"krill-top-*\"");
        c.wait_for("watch", Duration::from_secs(10), || {
            c.sh("pgrep -x watch").status.success()
        });
        let (own, sys) = window(&c, Some(pid_of(&c, "watch")));
        floor_own.push(own);
        floor_sys.push(sys);
        c.ok("tmux send-keys -t view C-c");
        c.wait_for("watch to quit", Duration::from_secs(10), || {
            !c.sh("pgrep -x watch").status.success()
        });
    }
    let idle = median(idle_sys);
    let (to, ts, fo, fs) = (
        median(top_own),
        median(top_sys) - idle,
        median(floor_own),
        median(floor_sys) - idle,
    );
    println!(
        "live view of 50 services at 10 Hz heartbeats, refresh 2 s, medians of 3 windows of {}s:",
        WINDOW.as_secs()
    );
    println!("  krill top: own CPU {to:.2} % of one core (target < 1), adds {ts:.2} % to systemd + dbus + supervisor");
    println!("  floor (watch -n 2 systemctl list-units): own CPU {fo:.2} %, adds {fs:.2} %");
    println!(
        "  ratio krill/floor: own CPU {:.2}; the system figures differ by {:.2} points (the idle system itself varies by about half a point between windows)",
        to / fo.max(0.01),
        (to + ts) - (fo + fs)
    );
}
