//! `cargo bench -p krill-e2e` (root, systemd-container; see README): krill-supervisor
//! in a real systemd 252.
//!
//! * heartbeat ingest: messages per second through the socket, authenticated and
//!   applied (target ≥ 100k/s);
//! * footprint: supervisor RSS and CPU with 50 services sending heartbeats at 10 Hz
//!   (targets < 6 MB, < 0.02 %);
//! * from a missed heartbeat to systemd failing the unit (target: timeout + < 50 ms).

use std::time::{Duration, Instant};

use krill_e2e::Container;

const T: Duration = Duration::from_secs(60);

fn kb(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

/// (VmRSS, RssAnon, RssFile) in kB.
fn rss(c: &Container, pid: u64) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(c.path(&format!("/proc/{pid}/status"))).unwrap();
    (
        kb(&status, "VmRSS:"),
        kb(&status, "RssAnon:"),
        kb(&status, "RssFile:"),
    )
}

/// (RSS kB, CPU time ns from /proc/PID/schedstat: nanosecond resolution).
fn proc_stat(c: &Container, pid: u64) -> (u64, u64) {
    let rss_kb = rss(c, pid).0;
    let sched = std::fs::read_to_string(c.path(&format!("/proc/{pid}/schedstat"))).unwrap();
    (
        rss_kb,
        sched.split_whitespace().next().unwrap().parse().unwrap(),
    )
}

fn ingest(c: &Container) {
    let n = 2_000_000u64;
    c.write("/usr/local/bin/krill-hb-flood", "");
    std::fs::copy(
        krill_e2e::bindir().join("krill-hb-flood"),
        c.path("/usr/local/bin/krill-hb-flood"),
    )
    .unwrap();
    let recipe = format!(
        "version: \"1\"\nname: flood\nservices:\n  flood:\n    execute: {{type: shell, command: /usr/local/bin/krill-hb-flood {n}}}\n    health_check: {{type: heartbeat, timeout: 60s}}\n"
    );
    assert!(c.install("/root/flood.yaml", &recipe, "").status.success());
    let before = c.sup_stat("accepted");
    let t0 = Instant::now();
    c.ok("systemctl start krill-flood.target");
    c.wait_for("all heartbeats ingested", T, || {
        c.sup_stat("accepted") >= before + n
    });
    let secs = t0.elapsed().as_secs_f64();
    println!("heartbeat ingest: {n} messages in {secs:.2} s = {:.0} messages/s (target >= 100000), through the socket, authenticated", n as f64 / secs);
    c.ok("systemctl stop krill-flood.target");
}

fn footprint(c: &Container) {
    c.install_beating("fifty", 50);
    let pid = c.num("krill-supervisor.service", "MainPID");
    let (_, t0) = proc_stat(c, pid);
    let a0 = c.sup_stat("accepted");
    let start = Instant::now();
    // A measurement window, not an assertion: the figure is the CPU used in it.
    std::thread::sleep(Duration::from_secs(20));
    let (_, t1) = proc_stat(c, pid);
    let (rss_kb, anon, file) = rss(c, pid);
    let a1 = c.sup_stat("accepted");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "supervisor with 50 services at 10 Hz: RSS {:.1} MB (target < 6; {:.1} MB anonymous, {:.1} MB its own code pages), CPU {:.2} % of one core (target < 0.02), {:.0} heartbeats/s",
        rss_kb as f64 / 1024.0,
        anon as f64 / 1024.0,
        file as f64 / 1024.0,
        (t1 - t0) as f64 / 1e9 / secs * 100.0,
        (a1 - a0) as f64 / secs
    );
    let restarts: u64 = (0..50)
        .map(|i| c.num(&format!("krill-fifty-s{i}.service"), "NRestarts"))
        .sum();
    println!("  (service restarts during the run: {restarts}; must be 0)");
    c.ok("krill stop fifty");
    // Let the 50 stops' signals settle before the idle window.
    std::thread::sleep(Duration::from_secs(2));
    let (_, i0) = proc_stat(c, pid);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let (rss, i1) = proc_stat(c, pid);
    println!(
        "supervisor idle (workspace stopped): RSS {:.1} MB, CPU {:.3} % of one core",
        rss as f64 / 1024.0,
        (i1 - i0) as f64 / 1e9 / start.elapsed().as_secs_f64() * 100.0
    );
}

fn main() {
    // `cargo test --all-targets` runs bench targets too (without `--bench`); a
    // benchmark only runs under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("bench");
    let pid = c.num("krill-supervisor.service", "MainPID");
    let (r, a, f) = rss(&c, pid);
    println!(
        "supervisor at boot, no recipes: RSS {:.1} MB ({:.1} MB anonymous, {:.1} MB code pages)",
        r as f64 / 1024.0,
        a as f64 / 1024.0,
        f as f64 / 1024.0
    );
    footprint(&c);
    ingest(&c);
}
