//! The Rust SDK never harms its process: exact wire bytes, zero configuration,
//! reconnect, bounded calls, the systemd watchdog fallback, thread safety. Real
//! sockets, no mocks. (No SIGPIPE: tests/sigpipe.rs, a process of its own.)

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use krill_sdk::{blocking, KrillError, SEND_TIMEOUT};

/// Environment variables are process-wide: tests that read them take turns.
static ENV: Mutex<()> = Mutex::new(());

/// A krill socket that collects every newline-terminated line of every connection.
/// The unterminated tail of a connection the client dropped (a send that timed out
/// halfway) is not a line: krill-supervisor drops it too.
struct Server {
    lines: Arc<Mutex<Vec<String>>>,
    conns: Arc<Mutex<Vec<UnixStream>>>,
    listener: UnixListener,
}

impl Server {
    fn bind(path: &Path) -> Server {
        let listener = UnixListener::bind(path).unwrap();
        let lines = Arc::new(Mutex::new(vec![]));
        let conns = Arc::new(Mutex::new(vec![]));
        let (l, out, kept) = (listener.try_clone().unwrap(), lines.clone(), conns.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { return };
                kept.lock().unwrap().push(s.try_clone().unwrap());
                let out = out.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(s);
                    loop {
                        let mut line = vec![];
                        match r.read_until(b'\n', &mut line) {
                            Ok(_) if line.pop() == Some(b'\n') => {
                                out.lock()
                                    .unwrap()
                                    .push(String::from_utf8_lossy(&line).into_owned());
                            }
                            _ => return,
                        }
                    }
                });
            }
        });
        Server {
            lines,
            conns,
            listener,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Stops accepting, and closes every accepted connection's peer side.
    fn stop(self, path: &Path) {
        // SAFETY: shutdown(2) of our own listening socket wakes the accept thread.
        unsafe {
            libc::shutdown(
                std::os::fd::AsRawFd::as_raw_fd(&self.listener),
                libc::SHUT_RDWR,
            )
        };
        for c in self.conns.lock().unwrap().iter() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        std::fs::remove_file(path).unwrap();
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sends_the_exact_upstream_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.sock");
    let srv = Server::bind(&path);
    let c = blocking::KrillClient::connect("S", &path).unwrap();
    c.heartbeat().unwrap();
    c.report_degraded("low \"battery\"\n").unwrap();
    c.heartbeat_with_metadata(HashMap::from([("fps".into(), "30".into())]))
        .unwrap();
    c.report_healthy().unwrap();
    wait_for("4 lines", || srv.lines().len() == 4);
    assert_eq!(
        srv.lines(),
        [
            r#"{"type":"heartbeat","service":"S","status":"healthy","metadata":{}}"#,
            r#"{"type":"heartbeat","service":"S","status":"degraded","metadata":{"reason":"low \"battery\"\n"}}"#,
            r#"{"type":"heartbeat","service":"S","status":"healthy","metadata":{"fps":"30"}}"#,
            r#"{"type":"heartbeat","service":"S","status":"healthy","metadata":{}}"#,
        ]
    );
}

#[test]
fn zero_configuration_reads_krills_environment() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.sock");
    let srv = Server::bind(&path);
    std::env::set_var("KRILL_SERVICE", "from-env");
    std::env::set_var("KRILL_SOCKET", &path);
    blocking::KrillClient::from_env()
        .unwrap()
        .heartbeat()
        .unwrap();
    std::env::remove_var("KRILL_SERVICE");
    std::env::remove_var("KRILL_SOCKET");
    wait_for("the line", || srv.lines().len() == 1);
    assert!(srv.lines()[0].contains(r#""service":"from-env""#));
}

#[test]
fn blocking_client_reconnects_and_reports_the_gap() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    std::env::remove_var("NOTIFY_SOCKET");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.sock");
    assert!(matches!(
        blocking::KrillClient::connect("S", &path),
        Err(KrillError::Connection(_))
    ));
    let srv = Server::bind(&path);
    let c = blocking::KrillClient::connect("S", &path).unwrap();
    c.heartbeat().unwrap();
    wait_for("first line", || srv.lines().len() == 1);
    srv.stop(&path);
    // The peer is gone: a clear error, not a crash; calls go on failing cleanly.
    wait_for("the break noticed", || c.heartbeat().is_err());
    let e = c.heartbeat().unwrap_err();
    assert!(e.to_string().contains("a later call reconnects"), "{e}");
    let srv = Server::bind(&path);
    wait_for("reconnected and delivered", || {
        let _ = c.heartbeat();
        !srv.lines().is_empty()
    });
}

#[test]
fn a_call_never_blocks_longer_than_the_bound() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    std::env::remove_var("NOTIFY_SOCKET");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.sock");
    // Accepts, never reads: the socket buffer fills.
    let _l = UnixListener::bind(&path).unwrap();
    let c = blocking::KrillClient::connect("S", &path).unwrap();
    let big = HashMap::from([("k".to_owned(), "x".repeat(60_000))]);
    let mut worst = Duration::ZERO;
    let mut failed = false;
    for _ in 0..100 {
        let t0 = Instant::now();
        failed |= c.heartbeat_with_metadata(big.clone()).is_err();
        worst = worst.max(t0.elapsed());
    }
    assert!(failed, "the full buffer was reported");
    assert!(
        worst < SEND_TIMEOUT + Duration::from_millis(200),
        "{worst:?}"
    );
}

#[test]
fn falls_back_to_the_systemd_watchdog() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify");
    let n = UnixDatagram::bind(&notify).unwrap();
    n.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    std::env::set_var("NOTIFY_SOCKET", &notify);
    let c = blocking::KrillClient::connect("S", dir.path().join("absent.sock"));
    std::env::remove_var("NOTIFY_SOCKET");
    let c = c.expect("no krill socket, but a watchdog to fall back to");
    std::env::set_var("NOTIFY_SOCKET", &notify);
    c.heartbeat().unwrap();
    c.report_degraded("low battery").unwrap();
    std::env::remove_var("NOTIFY_SOCKET");
    let mut buf = [0u8; 256];
    let k = n.recv(&mut buf).unwrap();
    assert_eq!(&buf[..k], b"WATCHDOG=1");
    let k = n.recv(&mut buf).unwrap();
    assert_eq!(&buf[..k], b"WATCHDOG=1\nSTATUS=degraded: low battery");
}

#[test]
fn threads_never_tear_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.sock");
    let srv = Server::bind(&path);
    let c = Arc::new(blocking::KrillClient::connect("S", &path).unwrap());
    let meta = HashMap::from([("blob".to_owned(), "y".repeat(3000))]);
    // Each call is bounded (SEND_TIMEOUT): on a loaded machine a send can time out
    // halfway, which drops that connection. Such a call fails, and its bytes never
    // make a line; every call that succeeded must arrive whole.
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ts: Vec<_> = (0..8)
        .map(|_| {
            let (c, meta, sent) = (c.clone(), meta.clone(), sent.clone());
            std::thread::spawn(move || {
                for _ in 0..50 {
                    if c.heartbeat_with_metadata(meta.clone()).is_ok() {
                        sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent > 0, "no heartbeat was sent");
    wait_for("a line per heartbeat sent", || srv.lines().len() == sent);
    let want = krill_sdk::encode("S", "healthy", &meta.into_iter().collect());
    let want = String::from_utf8(want).unwrap();
    assert!(srv.lines().iter().all(|l| l == want.trim_end()));
}

#[tokio::test]
// The environment lock is held across awaits on purpose: this single-threaded test
// must not see another test's NOTIFY_SOCKET.
#[allow(clippy::await_holding_lock)]
async fn async_client_has_upstreams_api_and_reconnects() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    std::env::remove_var("NOTIFY_SOCKET");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.sock");
    let srv = Server::bind(&path);
    let c = krill_sdk::KrillClient::connect("S", path.clone())
        .await
        .unwrap();
    c.heartbeat().await.unwrap();
    c.report_degraded("x").await.unwrap();
    wait_for("2 lines", || srv.lines().len() == 2);
    srv.stop(&path);
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.heartbeat().await.is_ok() {
        assert!(Instant::now() < deadline, "the break was never noticed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let srv = Server::bind(&path);
    while srv.lines().is_empty() {
        assert!(
            Instant::now() < deadline + Duration::from_secs(5),
            "never reconnected"
        );
        let _ = c.heartbeat().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.close().await;
    assert!(c.heartbeat().await.is_err(), "closed");
}
