//! A vanished supervisor never kills the process with SIGPIPE, even where SIGPIPE's
//! default action (terminate) is restored, as many C and C++ hosts have it. Its own
//! test binary: the signal disposition is process-wide.

use std::os::unix::net::UnixListener;

#[test]
fn a_closed_peer_is_an_error_not_a_signal() {
    // SAFETY: restoring the default disposition of SIGPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    std::env::remove_var("NOTIFY_SOCKET");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.sock");
    let l = UnixListener::bind(&path).unwrap();
    let c = krill_sdk::blocking::KrillClient::connect("S", &path).unwrap();
    let (peer, _) = l.accept().unwrap();
    drop(peer);
    drop(l);
    let mut errors = 0;
    for _ in 0..5 {
        errors += c.heartbeat().is_err() as u32;
    }
    // Still alive to count them.
    assert!(errors >= 4, "{errors}");
}
