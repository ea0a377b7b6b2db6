//! `krill-dist OUT_DIR`: writes the man pages and shell completions the .deb installs,
//! rendered from `krill_ctl::cli` (the CLI's one clap definition):
//!
//! * `OUT_DIR/man/krill.1`, `krill-<subcommand>.1` for each visible subcommand;
//! * `OUT_DIR/completions/{krill.bash, _krill, krill.fish}` and the same for `krill-ctl`.
//!
//! krill-gen and krill-supervisor are not operator commands; their pages
//! (`packaging/man/*.8`) are written by hand.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

fn write_man(cmd: &clap::Command, name: &str, dir: &Path) -> std::io::Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone().name(name.to_owned())).render(&mut buf)?;
    std::fs::write(dir.join(format!("{name}.1")), buf)
}

fn main() -> std::io::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/dist"));
    let man = out.join("man");
    let comp = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    let cmd = krill_ctl::cli::Cli::command();
    write_man(&cmd, "krill", &man)?;
    write_man(&cmd, "krill-ctl", &man)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_man(sub, &format!("krill-{}", sub.get_name()), &man)?;
        // Upstream's name of the live view is a command of its own (a link).
        if sub.get_name() == "top" {
            write_man(sub, "krill-tui", &man)?;
        }
    }
    for bin in ["krill", "krill-ctl"] {
        for (shell, file) in [
            (Shell::Bash, bin.to_owned()),
            (Shell::Zsh, format!("_{bin}")),
            (Shell::Fish, format!("{bin}.fish")),
        ] {
            let mut c = cmd.clone();
            let mut f = std::fs::File::create(comp.join(file))?;
            clap_complete::generate(shell, &mut c, bin, &mut f);
        }
    }
    println!("wrote {} and {}", man.display(), comp.display());
    Ok(())
}
