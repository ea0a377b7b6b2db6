//! A service that heartbeats to krill with the async client, as a krill recipe runs
//! it (`health_check: {type: heartbeat, timeout: 2s}`): no configuration, the name
//! and socket come from `KRILL_SERVICE` and `KRILL_SOCKET`.
//!
//! `cargo run -p krill-sdk --example heartbeat`

use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), krill_sdk::KrillError> {
    let client = krill_sdk::KrillClient::from_env().await?;
    for frame in 0u64.. {
        // A failed heartbeat never stops the robot's work: report it and go on; a
        // later call reconnects.
        let beat = if frame % 50 == 0 {
            client
                .heartbeat_with_metadata([("frame".to_owned(), frame.to_string())].into())
                .await
        } else {
            client.heartbeat().await
        };
        if let Err(e) = beat {
            eprintln!("{e}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
