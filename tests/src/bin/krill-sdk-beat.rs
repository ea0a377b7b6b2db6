//! A heartbeat service on the Rust SDK's async client, as upstream users write one:
//! `KrillClient::from_env().await?`, then `heartbeat().await` every 100 ms. Errors
//! are reported and the loop goes on (the SDK reconnects). `/run/stop-$KRILL_SERVICE`
//! silences it. Used by the e2e tests of issue 10.

use std::time::Duration;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let client = krill_sdk::KrillClient::from_env()
            .await
            .expect("connect to krill");
        let stop = format!(
            "/run/stop-{}",
            std::env::var("KRILL_SERVICE").unwrap_or_default()
        );
        loop {
            if !std::path::Path::new(&stop).exists() {
                if let Err(e) = client.heartbeat().await {
                    eprintln!("{e}");
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}
