//! Reading a recipe file, bounded: a hostile file must not block or exhaust the
//! generator.

use std::path::Path;

/// Largest recipe file accepted, in bytes (1 MiB). Real recipes are a few kB; the cap
/// bounds what one hostile file can cost every `daemon-reload`.
pub const MAX_RECIPE_BYTES: u64 = 1 << 20;

/// Reads a recipe file: a regular file (after symlinks) of at most
/// [`MAX_RECIPE_BYTES`], as UTF-8. A FIFO, a device (`/dev/zero`), a directory or an
/// oversized file is refused without blocking or reading it whole: the file is opened
/// with `O_NONBLOCK` and checked with `fstat` on the opened descriptor.
pub fn read_recipe_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a recipe must be a plain file)",
        ));
    }
    if meta.len() > MAX_RECIPE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "file is {} bytes; the limit for a recipe is {MAX_RECIPE_BYTES}",
                meta.len()
            ),
        ));
    }
    let mut text = String::new();
    // The file may grow after fstat: never read more than the cap.
    f.take(MAX_RECIPE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_RECIPE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("file grew past the recipe limit of {MAX_RECIPE_BYTES} bytes while read"),
        ));
    }
    Ok(text)
}
