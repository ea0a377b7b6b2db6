//! Replacing files so that readers never see a partial one.

use std::path::Path;

/// Writes `contents` to `dir/name` through a temporary file and a rename (for
/// tmpfs: the generator's output and runtime records, where durability means
/// nothing). Errors name the file.
pub fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    write_replacing(dir, name, contents, false)
}

/// [`write_atomic`] that survives a power cut: the temporary file is fsynced before
/// the rename, and the directory after it, so that after a crash `dir/name` holds
/// either the old or the new contents, never an empty or partial file.
pub fn write_durable(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    write_replacing(dir, name, contents, true)
}

fn write_replacing(dir: &Path, name: &str, contents: &[u8], durable: bool) -> std::io::Result<()> {
    use std::io::Write;
    let context = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{}: {e}", dir.join(name).display()))
    };
    let tmp = dir.join(format!(".{name}.krill-tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(context)?;
    f.write_all(contents).map_err(context)?;
    if durable {
        f.sync_all().map_err(context)?;
    }
    drop(f);
    std::fs::rename(&tmp, dir.join(name)).map_err(context)?;
    if durable {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(context)?;
    }
    Ok(())
}
