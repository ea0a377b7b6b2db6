//! `krill-gen`: the systemd generator (`krill-gen NORMAL_DIR [EARLY_DIR LATE_DIR]`) and
//! a dry run (`krill-gen --dry-run RECIPE...`). See [`generator`].

use std::path::PathBuf;
use std::process::ExitCode;

mod generator;
mod syslog;

use syslog::{Logger, Priority};

const USAGE: &str =
    "usage: krill-gen NORMAL_DIR [EARLY_DIR LATE_DIR]\n       krill-gen --dry-run RECIPE...";

fn main() -> ExitCode {
    // A user manager runs generators from `user-generators/` (and, from systemd 251
    // on, says so in SYSTEMD_SCOPE): then recipes, output and socket are the user's.
    let argv0 = std::env::args().next().unwrap_or_default();
    if argv0.contains("/user-generators/")
        || std::env::var("SYSTEMD_SCOPE").as_deref() == Ok("user")
    {
        krill::runtime::scope::init(krill::runtime::scope::Scope::User);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("--dry-run") if args.len() > 1 => {
            let recipes: Vec<PathBuf> = args[1..].iter().map(PathBuf::from).collect();
            krill::compile::dry_run(
                &recipes,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            )
        }
        Some("--help" | "-h") => {
            println!("{USAGE}");
            0
        }
        Some("--version" | "-V") => {
            println!("krill-gen {}", krill::VERSION);
            0
        }
        Some(dir) if !dir.starts_with('-') && args.len() <= 3 => {
            let mut log = Logger::new("krill-gen");
            let dir = PathBuf::from(dir);
            // A generator must never take boot down: contain any panic and log it.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                generator::run(&dir, &mut Logger::new("krill-gen"))
            })) {
                Ok(c) => c,
                Err(_) => {
                    log.log(
                        Priority::Err,
                        "internal error (panic); no units written for the remaining recipes",
                    );
                    1
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    ExitCode::from(code as u8)
}
