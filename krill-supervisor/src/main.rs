//! `krill-supervisor`: see the library documentation. Runs under
//! `krill-supervisor.service` (Type=notify, socket-activated).

use tracing_subscriber::prelude::*;

const USAGE: &str = "usage: krill-supervisor [--version | --help]

krill's D-Bus daemon: health checks, heartbeats relayed to systemd's watchdog,
readiness gates, emergency stop and status. It runs as krill-supervisor.service
(socket-activated); it is not meant to be started by hand.";

fn main() -> std::process::ExitCode {
    // Answer --version and --help without starting anything.
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("--version" | "-V") => {
            println!("krill-supervisor {}", krill::VERSION);
            return std::process::ExitCode::SUCCESS;
        }
        Some("--help" | "-h") => {
            println!("{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("krill-supervisor: unknown argument {other:?}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    }
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
