//! `krill-supervisor`: see the library documentation. Runs under
//! `krill-supervisor.service` (Type=notify, socket-activated).

use tracing_subscriber::prelude::*;

fn main() -> std::process::ExitCode {
    // journald when it is there (structured fields, priorities), else stderr. Our
    // messages from info up; libraries only when something is wrong.
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("krill_supervisor", tracing::Level::INFO)
        .with_default(tracing::Level::WARN);
    match tracing_journald::layer() {
        Ok(j) => tracing_subscriber::registry()
            .with(j.with_filter(filter))
            .init(),
        Err(_) => tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .init(),
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("krill-supervisor: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(krill_supervisor::daemon::run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("krill-supervisor failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
