//! Krill's runtime records under `/run/krill` (lost at reboot, on purpose):
//!
//! * `cascade/<unit>`: `<InvocationID>\n<reason>` for a unit that krill stopped
//!   because a dependency failed for good, or in an emergency stop. A failure of that
//!   very invocation is not escalated (S4: a critical dependent stopped by a cascade
//!   does not count as failed).
//! * `handled/<unit>`: the InvocationID whose final failure was already handled
//!   (OnFailure= can fire more than once on systemd ≥ 253).
//! * `estop/<workspace>`: why and when the workspace was emergency-stopped.

use std::path::PathBuf;

/// `KRILL_RUN_DIR` or `/run/krill`.
pub fn run_dir() -> PathBuf {
    std::env::var_os("KRILL_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/krill"))
}

fn path(kind: &str, name: &str) -> PathBuf {
    run_dir().join(kind).join(name)
}

/// Writes a record, creating its directory.
pub fn write(kind: &str, name: &str, contents: &str) -> std::io::Result<()> {
    let p = path(kind, name);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, &p)
}

/// Reads a record, if present.
pub fn read(kind: &str, name: &str) -> Option<String> {
    std::fs::read_to_string(path(kind, name)).ok()
}

/// Removes a record; a missing one is fine.
pub fn remove(kind: &str, name: &str) {
    let _ = std::fs::remove_file(path(kind, name));
}
