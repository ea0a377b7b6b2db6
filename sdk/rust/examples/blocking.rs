//! The same service without an async runtime (`krill_sdk::blocking`), sharing one
//! client between a worker thread and the main loop.
//!
//! `cargo run -p krill-sdk --example blocking`

use std::sync::Arc;
use std::time::Duration;

fn main() -> Result<(), krill_sdk::KrillError> {
    let client = Arc::new(krill_sdk::blocking::KrillClient::from_env()?);
    let worker = {
        let client = client.clone();
        std::thread::spawn(move || loop {
            if let Err(e) = client.report_degraded("calibrating") {
                eprintln!("{e}");
            }
            std::thread::sleep(Duration::from_secs(5));
        })
    };
    loop {
        if let Err(e) = client.heartbeat() {
            eprintln!("{e}");
        }
        std::thread::sleep(Duration::from_millis(200));
        if worker.is_finished() {
            return Ok(());
        }
    }
}
