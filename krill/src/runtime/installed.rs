//! Installed recipes: where they are looked for, and which one wins for a workspace.
//!
//! * Search path: `/etc/krill/recipes`, `/run/krill/recipes`, `/usr/lib/krill/recipes`,
//!   or the colon-separated `KRILL_RECIPE_PATH`. A recipe is `<workspace>.yaml` (or
//!   `.yml`); for one workspace name the first directory wins, and an empty file or a
//!   symlink to `/dev/null` masks the workspace.
//! * Boot start: `/etc/krill/enabled/<workspace>` (or `KRILL_ENABLED_DIR`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::runtime::scope;

/// Default recipe directories, highest precedence first.
pub const DEFAULT_RECIPE_PATH: &[&str] = &[
    "/etc/krill/recipes",
    "/run/krill/recipes",
    "/usr/lib/krill/recipes",
];
/// Default directory of boot-start markers.
pub const DEFAULT_ENABLED_DIR: &str = "/etc/krill/enabled";

/// Recipe directories from `KRILL_RECIPE_PATH`, or the defaults (a user workspace's:
/// `~/.config/krill/recipes`).
pub fn recipe_path() -> Vec<PathBuf> {
    match std::env::var_os("KRILL_RECIPE_PATH") {
        Some(p) if !p.is_empty() => std::env::split_paths(&p).collect(),
        _ if scope::is_user() => vec![install_dir()],
        _ => DEFAULT_RECIPE_PATH.iter().map(PathBuf::from).collect(),
    }
}

/// Where `krill install` puts recipes: the first default directory of the scope
/// (`/etc/krill/recipes`, or `~/.config/krill/recipes`).
pub fn install_dir() -> PathBuf {
    if scope::is_user() {
        scope::config_dir().join("krill/recipes")
    } else {
        PathBuf::from(DEFAULT_RECIPE_PATH[0])
    }
}

/// Directory of boot-start markers, from `KRILL_ENABLED_DIR` or the default (a user
/// workspace's: `~/.config/krill/enabled`).
pub fn enabled_dir() -> PathBuf {
    std::env::var_os("KRILL_ENABLED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            if scope::is_user() {
                scope::config_dir().join("krill/enabled")
            } else {
                PathBuf::from(DEFAULT_ENABLED_DIR)
            }
        })
}

/// Installed recipes by workspace name, after precedence. Masked workspaces are left
/// out. Unreadable directories are skipped (a missing one is normal).
pub fn discover(dirs: &[PathBuf]) -> BTreeMap<String, PathBuf> {
    let mut found: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let (Some(stem), Some(ext)) = (f.file_stem(), f.extension()) else {
                continue;
            };
            if ext != "yaml" && ext != "yml" {
                continue;
            }
            let Some(stem) = stem.to_str() else { continue };
            if stem.starts_with('.') || found.contains_key(stem) {
                continue;
            }
            let masked = std::fs::read_link(&f).is_ok_and(|t| t == Path::new("/dev/null"))
                || std::fs::metadata(&f).is_ok_and(|m| m.is_file() && m.len() == 0);
            found.insert(stem.to_owned(), (!masked).then_some(f));
        }
    }
    found
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}
