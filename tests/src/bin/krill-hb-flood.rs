//! Benchmark client: sends N heartbeats for $KRILL_SERVICE as fast as the socket
//! takes them (batched into large writes, as a stream socket allows), then sleeps so
//! that the unit stays up. Used by `cargo bench -p krill-e2e`.

use std::collections::BTreeMap;
use std::io::Write;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let service = std::env::var("KRILL_SERVICE").expect("KRILL_SERVICE");
    let path = std::env::var("KRILL_SOCKET").unwrap_or_else(|_| "/run/krill/krill.sock".into());
    let one = krill_sdk::encode(&service, "healthy", &BTreeMap::new());
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
    let mut s = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    let t = std::time::Instant::now();
    for _ in 0..n / 1000 {
        s.write_all(&batch).expect("write");
    }
    eprintln!("sent {n} heartbeats in {:?}", t.elapsed());
    loop {
        s.write_all(&one).expect("write");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
