//! `log_dir:`: each service's output in a file of its own besides the journal, and the
//! workspace's merged timeline, both rotated by size.
//!
//! The journal stays the record: krill-gen resolves where each file goes (a `~` is
//! the home of the user the service runs as) into the manifest, and
//! `krill-logs@W.service` (`krill-ctl log-files W`) follows the workspace's journal
//! lines and appends them. The layout under the directory:
//!
//! | file | what |
//! |---|---|
//! | `DIR/W/S.log` | service S: its output, and systemd's lines about its unit |
//! | `DIR/W.timeline.log` | every service of W, in journal order, each line named |
//! | `….log.1` … `….log.N` | rotated copies, `.1` the newest |
//!
//! The timeline sits beside the workspace's directory, not in it, because service
//! names may be anything `[a-zA-Z0-9_-]` (a service called `timeline` exists), while
//! no workspace or service name contains a dot.

use std::path::{Path, PathBuf};

/// Default size at which a log file is rotated: 10 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 << 20;
/// Default number of rotated copies kept besides the live file.
pub const DEFAULT_KEEP: u32 = 5;
/// Smallest `log_rotate.max_size` accepted: 1 KiB.
pub const MIN_MAX_BYTES: u64 = 1 << 10;
/// Most rotated copies accepted in `log_rotate.keep`.
pub const MAX_KEEP: u32 = 100;

/// The recipe's `log_dir:` once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDir {
    /// `~` or `~/REST`: REST (possibly empty) under the home of each service's user.
    Home(PathBuf),
    /// An absolute path (a relative one is resolved against the recipe's directory).
    Absolute(PathBuf),
}

impl LogDir {
    /// Reads `log_dir:` text. `~user/…` is refused: the user is the service's.
    pub fn parse(text: &str, base: &Path) -> Result<LogDir, String> {
        if text == "~" {
            return Ok(LogDir::Home(PathBuf::new()));
        }
        if let Some(rest) = text.strip_prefix("~/") {
            return Ok(LogDir::Home(PathBuf::from(rest.trim_start_matches('/'))));
        }
        if text.starts_with('~') {
            return Err(format!(
                "invalid log_dir {text:?}: only `~` (the home of the user each service runs as) is expanded, not `~user`"
            ));
        }
        let p = Path::new(text);
        Ok(LogDir::Absolute(if p.is_absolute() {
            p.to_owned()
        } else {
            base.join(p)
        }))
    }

    /// The directory for a service whose user's home is `home`.
    pub fn resolve(&self, home: &Path) -> PathBuf {
        match self {
            LogDir::Home(rest) if rest.as_os_str().is_empty() => home.to_owned(),
            LogDir::Home(rest) => home.join(rest),
            LogDir::Absolute(p) => p.clone(),
        }
    }
}

/// `log_dir:` and the krill extension `log_rotate:` of a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFiles {
    pub dir: LogDir,
    /// Rotate a file before it grows past this many bytes; default
    /// [`DEFAULT_MAX_BYTES`].
    pub max_bytes: u64,
    /// Rotated copies kept (0: the file restarts empty); default [`DEFAULT_KEEP`].
    pub keep: u32,
}

/// The manifest's part: where the workspace's timeline goes and how files rotate.
/// Each service's own file is in its `ManifestService::log_file`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestLogs {
    /// `DIR/W.timeline.log`, `DIR` resolved for the workspace's own user (root for a
    /// system workspace).
    pub timeline: PathBuf,
    pub max_bytes: u64,
    pub keep: u32,
}

/// The home a `~` in `log_dir` stands for: `user`'s from the local user database, or,
/// for `None`, the manager's own user's (root's for the system manager, whose
/// generator has no `$HOME`; the user's for a user manager). `None` when the database does not know
/// the user.
pub fn home_of(user: Option<&str>) -> Option<PathBuf> {
    if user.is_none() && crate::runtime::scope::is_user() {
        return Some(crate::runtime::scope::home());
    }
    let name = user.unwrap_or("0");
    crate::runtime::host::user(name)
        .map(|u| u.home)
        .or_else(|| user.is_none().then(|| PathBuf::from("/root")))
}

/// `DIR/W/S.log`.
pub fn service_file(dir: &Path, ws: &str, service: &str) -> PathBuf {
    dir.join(ws).join(format!("{service}.log"))
}

/// `DIR/W.timeline.log`.
pub fn timeline_file(dir: &Path, ws: &str) -> PathBuf {
    dir.join(format!("{ws}.timeline.log"))
}

/// The `n`th rotated copy of `path` (`path.n`); `n == 0` is `path` itself.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return path.to_owned();
    }
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Shifts `path` to `path.1`, `path.1` to `path.2`, …, dropping `path.keep`; with
/// `keep == 0` removes `path`. Missing copies are skipped. `rename(2)` never follows
/// a symlink, so a copy replaced by one moves as a link and nothing else is touched.
pub fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    if keep == 0 {
        return ignore_missing(std::fs::remove_file(path));
    }
    for n in (1..=keep).rev() {
        ignore_missing(std::fs::rename(rotated(path, n - 1), rotated(path, n)))?;
    }
    Ok(())
}

fn ignore_missing(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Every file of `path`, oldest first: `path.keep` … `path.1`, `path`, those that
/// exist.
pub fn oldest_first(path: &Path, keep: u32) -> Vec<PathBuf> {
    (0..=keep)
        .rev()
        .map(|n| rotated(path, n))
        .filter(|p| p.exists())
        .collect()
}

/// Who wrote a journal line, for the log files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The service's own output.
    Service,
    /// systemd, about the service's unit ("Started", "Main process exited").
    Manager,
}

/// One line of a service's file: `TIME MESSAGE`, or `TIME [systemd] MESSAGE`. TIME is
/// RFC 3339 UTC with microseconds; a message's own newlines continue indented, so
/// every record starts with its time.
pub fn service_line(time: &str, source: Source, message: &str) -> String {
    let tag = match source {
        Source::Service => "",
        Source::Manager => "[systemd] ",
    };
    format!("{time} {tag}{}\n", one_record(message))
}

/// One line of the timeline: `TIME SERVICE: MESSAGE`, or
/// `TIME SERVICE [systemd]: MESSAGE`.
pub fn timeline_line(time: &str, service: &str, source: Source, message: &str) -> String {
    let tag = match source {
        Source::Service => "",
        Source::Manager => " [systemd]",
    };
    format!("{time} {service}{tag}: {}\n", one_record(message))
}

fn one_record(message: &str) -> std::borrow::Cow<'_, str> {
    let m = message.trim_end_matches(['\n', '\r']);
    if m.contains('\n') {
        m.replace('\n', "\n\t").into()
    } else {
        m.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tilde_is_each_users_home() {
        let base = Path::new("/srv/recipes");
        let d = LogDir::parse("~/.krill/logs", base).unwrap();
        assert_eq!(
            d.resolve(Path::new("/home/robot")),
            Path::new("/home/robot/.krill/logs")
        );
        assert_eq!(
            d.resolve(Path::new("/root")),
            Path::new("/root/.krill/logs")
        );
        assert_eq!(
            LogDir::parse("~", base)
                .unwrap()
                .resolve(Path::new("/home/a")),
            Path::new("/home/a")
        );
        assert_eq!(
            LogDir::parse("logs", base)
                .unwrap()
                .resolve(Path::new("/x")),
            Path::new("/srv/recipes/logs")
        );
        assert_eq!(
            LogDir::parse("/var/log/robot", base)
                .unwrap()
                .resolve(Path::new("/x")),
            Path::new("/var/log/robot")
        );
        let e = LogDir::parse("~robot/logs", base).unwrap_err();
        assert!(e.contains("not `~user`"), "{e}");
    }

    #[test]
    fn the_layout_never_collides() {
        let d = Path::new("/l");
        assert_eq!(
            service_file(d, "w", "timeline"),
            Path::new("/l/w/timeline.log")
        );
        assert_eq!(timeline_file(d, "w"), Path::new("/l/w.timeline.log"));
        assert_eq!(
            rotated(Path::new("/l/w/a.log"), 2),
            Path::new("/l/w/a.log.2")
        );
    }

    #[test]
    fn rotation_shifts_and_drops_the_oldest() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        for round in 1..=4 {
            std::fs::write(&p, format!("{round}")).unwrap();
            rotate(&p, 2).unwrap();
        }
        assert!(!p.exists());
        assert_eq!(std::fs::read_to_string(rotated(&p, 1)).unwrap(), "4");
        assert_eq!(std::fs::read_to_string(rotated(&p, 2)).unwrap(), "3");
        assert!(!rotated(&p, 3).exists());
        std::fs::write(&p, "5").unwrap();
        let files = oldest_first(&p, 2);
        assert_eq!(files, vec![rotated(&p, 2), rotated(&p, 1), p.clone()]);
        rotate(&p, 0).unwrap();
        assert!(!p.exists());
    }

    #[test]
    fn lines_start_with_their_time() {
        let t = "2026-11-23T13:00:00.000001Z";
        assert_eq!(
            service_line(t, Source::Service, "hello\n"),
            format!("{t} hello\n")
        );
        assert_eq!(
            timeline_line(t, "lidar", Source::Manager, "Started x"),
            format!("{t} lidar [systemd]: Started x\n")
        );
        assert_eq!(
            service_line(t, Source::Service, "a\nb"),
            format!("{t} a\n\tb\n")
        );
    }
}
