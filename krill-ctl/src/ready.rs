//! `krill-ctl ready file PATH|tcp PORT`: the `ExecStartPost=` of a service with
//! `ready: {file: …}` or `ready: {tcp: …}`. It returns once the service is ready;
//! until then systemd keeps the unit `activating`, so `started` dependents wait. It
//! never gives up by itself: the unit's `TimeoutStartSec=` (the recipe's
//! `ready.timeout`) ends it, and the start fails with `Result=timeout`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// How often a file is looked for (20 ms): a start is not slowed by more.
pub const FILE_POLL: Duration = Duration::from_millis(20);

/// How often a port is tried (50 ms), each attempt bounded by [`CONNECT_TIMEOUT`].
pub const TCP_POLL: Duration = Duration::from_millis(50);

/// One connection attempt (200 ms): a port that drops SYNs does not hold a try longer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);

/// Whether `path` exists now.
pub fn file_ready(path: &Path) -> bool {
    path.exists()
}

/// Whether 127.0.0.1 or ::1 accepts a connection on `port` now.
pub fn tcp_ready(port: u16) -> bool {
    [
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
    ]
    .iter()
    .any(|a| TcpStream::connect_timeout(a, CONNECT_TIMEOUT).is_ok())
}

/// Waits until `ready()` holds, looking every `poll`.
pub fn wait(mut ready: impl FnMut() -> bool, poll: Duration) {
    while !ready() {
        std::thread::sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_and_a_listening_port_are_ready() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ready");
        assert!(!file_ready(&f));
        let g = f.clone();
        let t = std::thread::spawn(move || wait(|| file_ready(&g), FILE_POLL));
        std::fs::write(&f, "").unwrap();
        t.join().unwrap();
        let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        assert!(tcp_ready(l.local_addr().unwrap().port()));
        let port = l.local_addr().unwrap().port();
        drop(l);
        assert!(!tcp_ready(port));
    }
}
