//! Heartbeat call latency of each SDK (Rust blocking and async, Python, C++), side by
//! side with its floor: a raw write of the same bytes on a connected socket, in the
//! same language and run. A reader thread drains the socket, as the supervisor does.
//! Prints p50/p99 in µs and the SDK/floor ratios. `cargo bench -p krill-e2e --bench sdk`
//! (no root needed).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const N: usize = 100_000;

fn drain(path: &Path) {
    let l = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 65536];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
}

fn percentiles(mut ns: Vec<u64>) -> (u64, u64) {
    ns.sort_unstable();
    (ns[ns.len() / 2], ns[ns.len() * 99 / 100])
}

fn measure(mut call: impl FnMut()) -> (u64, u64) {
    for _ in 0..N / 10 {
        call();
    }
    percentiles(
        (0..N)
            .map(|_| {
                let t = Instant::now();
                call();
                t.elapsed().as_nanos() as u64
            })
            .collect(),
    )
}

fn report(rows: &[(String, (u64, u64))]) {
    let floor = |name: &str| {
        rows.iter()
            .find(|(n, _)| *n == format!("{}-floor", name.split('-').next().unwrap()))
            .map(|(_, v)| *v)
    };
    for (name, (p50, p99)) in rows {
        if name.ends_with("-floor") {
            continue;
        }
        let (f50, f99) = floor(name).unwrap();
        println!(
            "sdk={name:<14} p50={:>6.2}µs p99={:>6.2}µs | floor p50={:>6.2}µs p99={:>6.2}µs | ratio p50={:.2} p99={:.2}",
            *p50 as f64 / 1e3,
            *p99 as f64 / 1e3,
            f50 as f64 / 1e3,
            f99 as f64 / 1e3,
            *p50 as f64 / f50 as f64,
            *p99 as f64 / f99 as f64
        );
    }
}

fn main() {
    std::env::remove_var("NOTIFY_SOCKET");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.sock");
    drain(&path);
    let repo = krill_e2e::repo();
    let mut rows: Vec<(String, (u64, u64))> = vec![];

    let blocking = krill_sdk::blocking::KrillClient::connect("bench", &path).unwrap();
    rows.push((
        "rust-blocking".into(),
        measure(|| blocking.heartbeat().unwrap()),
    ));
    let line = krill_sdk::encode("bench", "healthy", &Default::default());
    let mut raw = UnixStream::connect(&path).unwrap();
    rows.push((
        "rust-floor".into(),
        measure(|| raw.write_all(&line).unwrap()),
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt
        .block_on(krill_sdk::KrillClient::connect("bench", path.clone()))
        .unwrap();
    rows.push((
        "rust-async".into(),
        measure(|| rt.block_on(client.heartbeat()).unwrap()),
    ));

    let out = Command::new("python3")
        .arg(repo.join("sdk/bench/bench.py"))
        .arg(&path)
        .arg(N.to_string())
        .output()
        .expect("python3");
    let exe = dir.path().join("bench-cpp");
    let built = Command::new("g++")
        .args(["-std=c++17", "-O2", "-I"])
        .arg(repo.join("sdk/cpp"))
        .arg(repo.join("sdk/bench/bench.cpp"))
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("g++");
    assert!(built.success());
    let cpp = Command::new(&exe)
        .arg(&path)
        .arg(N.to_string())
        .output()
        .unwrap();
    for o in [out, cpp] {
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            rows.push((f[0].into(), (f[1].parse().unwrap(), f[2].parse().unwrap())));
        }
    }
    report(&rows);
}
