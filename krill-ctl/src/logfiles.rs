//! `log_dir:` at runtime: `krill-ctl log-files W` (the `krill-logs@W.service` writer)
//! and `krill logs NAME --files` (the reader). Where files go and how they rotate is
//! [`krill::runtime::logfiles`]; this module follows the journal and appends.
//!
//! The writer runs one `journalctl -f -o json` for the workspace: its processes'
//! lines (`_SYSTEMD_SLICE=`) and systemd's own (`_PID=1`, kept when `UNIT=` is one of
//! the workspace's services). Each entry is appended to its service's file and to
//! the timeline; files are flushed, and the journal cursor saved, whenever the
//! input runs dry, so a restarted writer continues after the last line it wrote.
//! A service's file is opened, created and rotated with that service's user as the
//! filesystem identity (`setfsuid`), so a user who owns the directory cannot point
//! root's writes anywhere else (a symlink to `/etc/shadow` is refused as it would be
//! for that user), and the files belong to that user.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use krill::runtime::logfiles::{self, ManifestLogs, Source};
use krill::runtime::manifest::{self, Manifest};

use crate::error::Error;

/// Where the writer keeps its journal cursors without `$STATE_DIRECTORY` (the unit's
/// `StateDirectory=krill/logs`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/krill/logs";

/// How long a file that cannot be opened is left alone before the next try.
const RETRY_OPEN: Duration = Duration::from_secs(10);

/// A filesystem identity (`setfsuid`/`setfsgid`): the service's user and group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    uid: u32,
    gid: u32,
}

/// Runs `f` with `owner` as the filesystem identity of this (single) thread, then
/// returns to our own. `None` runs it as we are.
fn as_owner<T>(owner: Option<Owner>, f: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    let Some(o) = owner else { return f() };
    // SAFETY: plain syscalls on this thread's credentials; the writer is
    // single-threaded, and both are restored below before anything else runs.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    unsafe {
        libc::setfsgid(o.gid);
        libc::setfsuid(o.uid);
    }
    // setfsuid reports the previous value, never an error: ask again to be sure.
    let took = unsafe { libc::setfsuid(u32::MAX) } as u32 == o.uid;
    let r = if took {
        f()
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("cannot act as uid {} (not root)", o.uid),
        ))
    };
    unsafe {
        libc::setfsuid(euid);
        libc::setfsgid(egid);
    }
    r
}

/// One log file: opened on first use, rotated before a line would take it past the
/// cap.
struct Sink {
    path: PathBuf,
    owner: Option<Owner>,
    out: Option<BufWriter<File>>,
    size: u64,
    /// After a failed open: not before then.
    retry_at: Option<Instant>,
}

impl Sink {
    fn new(path: PathBuf, owner: Option<Owner>) -> Sink {
        Sink {
            path,
            owner,
            out: None,
            size: 0,
            retry_at: None,
        }
    }

    fn open(&mut self) -> std::io::Result<()> {
        let path = &self.path;
        let f = as_owner(self.owner, || {
            if let Some(dir) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o750)
                    .create(dir)?;
            }
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
        })?;
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        self.size = meta.size();
        self.out = Some(BufWriter::with_capacity(16 << 10, f));
        Ok(())
    }

    /// Appends `line`; an error is reported once and the file is retried later, so
    /// one unwritable file never stops the others.
    fn write(&mut self, line: &str, logs: &ManifestLogs) {
        if let Err(e) = self.try_write(line, logs) {
            self.out = None;
            if self.retry_at.is_none_or(|t| Instant::now() >= t) {
                eprintln!("krill: cannot write {}: {e}", self.path.display());
            }
            self.retry_at = Some(Instant::now() + RETRY_OPEN);
        }
    }

    fn try_write(&mut self, line: &str, logs: &ManifestLogs) -> std::io::Result<()> {
        if self.out.is_none() {
            if self.retry_at.is_some_and(|t| Instant::now() < t) {
                return Ok(());
            }
            self.open()?;
            self.retry_at = None;
        }
        let len = line.len() as u64;
        if self.size > 0 && self.size + len > logs.max_bytes {
            self.flush()?;
            self.out = None;
            let (path, keep) = (&self.path, logs.keep);
            as_owner(self.owner, || logfiles::rotate(path, keep))?;
            self.open()?;
        }
        if let Some(out) = &mut self.out {
            out.write_all(line.as_bytes())?;
            self.size += len;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

/// The writer's view of one loaded manifest.
struct Files {
    logs: ManifestLogs,
    /// By unit name: (service name, its file, if it has one).
    services: BTreeMap<String, (String, Option<Sink>)>,
    timeline: Sink,
}

impl Files {
    fn new(m: &Manifest, logs: ManifestLogs) -> Files {
        let services = m
            .services
            .iter()
            .map(|s| {
                let owner = s
                    .user
                    .as_deref()
                    .and_then(krill::runtime::host::user)
                    .map(|u| Owner {
                        uid: u.uid,
                        gid: u.gid,
                    });
                let sink = s.log_file.clone().map(|p| Sink::new(p, owner));
                (s.unit.clone(), (s.name.clone(), sink))
            })
            .collect();
        Files {
            timeline: Sink::new(logs.timeline.clone(), None),
            logs,
            services,
        }
    }

    fn flush(&mut self) {
        let sinks = self
            .services
            .values_mut()
            .filter_map(|(_, s)| s.as_mut())
            .chain(std::iter::once(&mut self.timeline));
        for s in sinks {
            if let Err(e) = s.flush() {
                eprintln!("krill: cannot write {}: {e}", s.path.display());
                s.out = None;
            }
        }
    }
}

/// The fields of a journal entry the writer reads (`journalctl -o json`).
#[derive(serde::Deserialize)]
struct Entry {
    #[serde(rename = "__CURSOR")]
    cursor: String,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: String,
    #[serde(rename = "MESSAGE", default)]
    message: serde_json::Value,
    #[serde(rename = "_SYSTEMD_UNIT", default)]
    unit: serde_json::Value,
    #[serde(rename = "UNIT", default)]
    about: serde_json::Value,
    #[serde(rename = "_PID", default)]
    pid: serde_json::Value,
    #[serde(rename = "_SYSTEMD_USER_UNIT", default)]
    user_unit: serde_json::Value,
    #[serde(rename = "USER_UNIT", default)]
    user_about: serde_json::Value,
}

/// A journal field as text: a string, bytes (non-UTF-8 data, an array of numbers),
/// or the first of several values.
fn text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) if a.iter().all(|b| b.is_u64()) => {
            let bytes: Vec<u8> = a
                .iter()
                .filter_map(|b| b.as_u64())
                .map(|b| b as u8)
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        serde_json::Value::Array(a) => a.first().and_then(text),
        _ => None,
    }
}

fn rfc3339(realtime_us: &str) -> String {
    let us: u64 = realtime_us.parse().unwrap_or(0);
    humantime::format_rfc3339_micros(SystemTime::UNIX_EPOCH + Duration::from_micros(us)).to_string()
}

/// Whom an entry is about: (unit, source), if it is one of ours.
fn attribute(e: &Entry, files: &Files) -> Option<(String, Source)> {
    let (unit, source) = if krill::runtime::scope::is_user() {
        // A user manager logs from its own init.scope, about USER_UNIT=.
        match text(&e.user_unit)?.as_str() {
            "init.scope" => (text(&e.user_about)?, Source::Manager),
            u => (u.to_owned(), Source::Service),
        }
    } else if text(&e.pid).as_deref() == Some("1") {
        (text(&e.about)?, Source::Manager)
    } else {
        (text(&e.unit)?, Source::Service)
    };
    files.services.contains_key(&unit).then_some((unit, source))
}

/// The identity of the manifest directory: systemd recreates it at every reload.
fn manifest_generation() -> Option<(u64, i64, i64)> {
    std::fs::metadata(manifest::dir())
        .ok()
        .map(|m| (m.ino(), m.mtime(), m.mtime_nsec()))
}

fn state_dir() -> PathBuf {
    std::env::var_os("STATE_DIRECTORY")
        .and_then(|v| {
            v.to_str()
                .and_then(|s| s.split(':').next())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

fn journal(m: &Manifest, cursor: Option<&str>) -> std::io::Result<Child> {
    let mut cmd = Command::new("journalctl");
    cmd.args(["--follow", "--output=json", "--lines=all"]);
    match cursor {
        Some(c) => cmd.arg(format!("--after-cursor={c}")),
        None => cmd.arg("--boot"),
    };
    if krill::runtime::scope::is_user() {
        cmd.args([
            "--user",
            "--output-fields=MESSAGE,_SYSTEMD_USER_UNIT,USER_UNIT",
            &format!("_SYSTEMD_USER_SLICE={}", m.slice),
            "+",
            "_SYSTEMD_USER_UNIT=init.scope",
        ]);
    } else {
        cmd.args([
            "--output-fields=MESSAGE,_SYSTEMD_UNIT,UNIT,_PID",
            &format!("_SYSTEMD_SLICE={}", m.slice),
            "+",
            "_PID=1",
        ]);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).spawn()
}

/// `krill-ctl log-files W`: writes W's `log_dir:` files until journalctl ends (an
/// error: systemd restarts the writer) or W no longer has `log_dir` (exit 0).
pub fn run(ws: &str) -> Result<u8, Error> {
    let fail = |what: &str, e: std::io::Error| Error::LogFiles(format!("{what}: {e}"));
    let Some(mut m) = manifest::read_workspace(ws) else {
        eprintln!("krill: workspace {ws} is not loaded: nothing to write");
        return Ok(0);
    };
    let Some(logs) = m.logs.clone() else {
        eprintln!("krill: workspace {ws} has no log_dir: nothing to write");
        return Ok(0);
    };
    let mut files = Files::new(&m, logs);
    let state = state_dir();
    let cursor_name = format!("{ws}.cursor");
    let mut cursor = std::fs::read_to_string(state.join(&cursor_name))
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let mut saved = cursor.clone();
    let mut generation = manifest_generation();
    let our_prefix = format!("krill-{ws}-");
    let mut child = journal(&m, cursor.as_deref()).map_err(|e| fail("journalctl", e))?;
    let stdout = child.stdout.take().expect("piped");
    let mut input = BufReader::with_capacity(64 << 10, stdout);
    let mut line = Vec::new();
    eprintln!(
        "krill: writing the log files of {ws} (timeline {})",
        files.logs.timeline.display()
    );
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| fail("reading journalctl", e))?;
        if n == 0 {
            files.flush();
            let status = child.wait().map_err(|e| fail("journalctl", e))?;
            return Err(Error::LogFiles(format!("journalctl ended ({status})")));
        }
        if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
            let mut who = attribute(&e, &files);
            // A unit of ours the manifest does not know yet: the recipe changed.
            let ours = [&e.about, &e.unit, &e.user_about, &e.user_unit]
                .into_iter()
                .find_map(text)
                .is_some_and(|u| u.starts_with(&our_prefix));
            if who.is_none() && ours && manifest_generation() != generation {
                files.flush();
                generation = manifest_generation();
                match manifest::read_workspace(ws) {
                    Some(new) if new.logs.is_some() => {
                        m = new;
                        files = Files::new(&m, m.logs.clone().expect("checked"));
                        who = attribute(&e, &files);
                    }
                    _ => {
                        eprintln!("krill: workspace {ws} no longer has log_dir: stopping");
                        let _ = child.kill();
                        return Ok(0);
                    }
                }
            }
            if let Some((unit, source)) = who {
                let time = rfc3339(&e.realtime);
                let msg = text(&e.message).unwrap_or_default();
                let (name, sink) = files.services.get_mut(&unit).expect("attributed");
                let name = name.clone();
                if let Some(sink) = sink {
                    sink.write(&logfiles::service_line(&time, source, &msg), &files.logs);
                }
                files.timeline.write(
                    &logfiles::timeline_line(&time, &name, source, &msg),
                    &files.logs,
                );
            }
            cursor = Some(e.cursor);
        }
        if input.buffer().is_empty() {
            files.flush();
            if cursor != saved {
                if let Some(c) = &cursor {
                    krill::runtime::files::write_atomic(&state, &cursor_name, c.as_bytes())
                        .map_err(|e| fail("saving the journal cursor", e))?;
                }
                saved = cursor.clone();
            }
        }
    }
}

/// `krill logs NAME --files`: the timeline of workspace NAME, or the file of service
/// NAME (`W/S`, or a service name unique among the loaded workspaces), oldest first.
pub fn show(name: &str, out: &mut impl Write) -> Result<(), Error> {
    let loaded = manifest::Loaded::read();
    let pick = |m: &Manifest, s: Option<&str>| -> Result<(PathBuf, u32), Error> {
        let logs = m.logs.as_ref().ok_or_else(|| {
            Error::NotInstalled(format!(
                "workspace {} has no log_dir: its lines are in the journal (`krill logs {}`)",
                m.workspace, m.workspace
            ))
        })?;
        let path = match s {
            None => logs.timeline.clone(),
            Some(s) => m
                .services
                .iter()
                .find(|x| x.name == s)
                .ok_or_else(|| {
                    Error::NotInstalled(format!("workspace {} has no service {s:?}", m.workspace))
                })?
                .log_file
                .clone()
                .ok_or_else(|| {
                    Error::NotInstalled(format!(
                        "{}/{s} has no log file (its user's home is unknown here)",
                        m.workspace
                    ))
                })?,
        };
        Ok((path, logs.keep))
    };
    let (path, keep) = match name.split_once('/') {
        Some((ws, s)) => {
            let m = loaded
                .workspaces
                .get(ws)
                .ok_or_else(|| Error::NotInstalled(format!("no workspace {ws:?} is loaded")))?;
            pick(m, Some(s))?
        }
        None => match loaded.workspaces.get(name) {
            Some(m) => pick(m, None)?,
            None => {
                let found: Vec<&Manifest> = loaded
                    .workspaces
                    .values()
                    .filter(|m| m.services.iter().any(|s| s.name == name))
                    .collect();
                match found.as_slice() {
                    [m] => pick(m, Some(name))?,
                    [] => {
                        return Err(Error::NotInstalled(format!(
                            "no loaded workspace or service is named {name:?}"
                        )))
                    }
                    _ => {
                        return Err(Error::Usage(format!(
                            "service {name:?} is in several workspaces; write WORKSPACE/{name}"
                        )))
                    }
                }
            }
        },
    };
    let files = logfiles::oldest_first(&path, keep);
    if files.is_empty() {
        return Err(Error::NotInstalled(format!(
            "{} does not exist yet (is krill-logs@ running? `systemctl status 'krill-logs@*'`)",
            path.display()
        )));
    }
    for f in files {
        let mut r = File::open(&f).map_err(|e| Error::LogFiles(format!("{}: {e}", f.display())))?;
        std::io::copy(&mut r, out).map_err(|e| Error::LogFiles(format!("{}: {e}", f.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn logs(dir: &Path, max: u64) -> ManifestLogs {
        ManifestLogs {
            timeline: dir.join("w.timeline.log"),
            max_bytes: max,
            keep: 2,
        }
    }

    #[test]
    fn a_sink_rotates_before_passing_the_cap() {
        let d = tempfile::tempdir().unwrap();
        let l = logs(d.path(), 20);
        let p = d.path().join("w/a.log");
        let mut s = Sink::new(p.clone(), None);
        for i in 0..5 {
            s.write(&format!("line {i} .....\n"), &l);
        }
        s.flush().unwrap();
        // 15 bytes a line, cap 20: one line per file; 2 rotated copies kept.
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "line 4 .....\n");
        assert_eq!(
            std::fs::read_to_string(logfiles::rotated(&p, 1)).unwrap(),
            "line 3 .....\n"
        );
        assert!(!logfiles::rotated(&p, 3).exists());
    }

    #[test]
    fn a_symlinked_file_is_refused_and_the_others_go_on() {
        let d = tempfile::tempdir().unwrap();
        let l = logs(d.path(), 1 << 20);
        let victim = d.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::fs::create_dir(d.path().join("w")).unwrap();
        let p = d.path().join("w/a.log");
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        let mut bad = Sink::new(p, None);
        bad.write("x\n", &l);
        assert!(bad.out.is_none() && bad.retry_at.is_some());
        let mut good = Sink::new(d.path().join("w/b.log"), None);
        good.write("y\n", &l);
        good.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(
            std::fs::read_to_string(d.path().join("w/b.log")).unwrap(),
            "y\n"
        );
    }

    #[test]
    fn journal_fields_read_as_text() {
        let e: Entry = serde_json::from_str(
            r#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1700000000000001","MESSAGE":[104,105,255],"_SYSTEMD_UNIT":"krill-w-a.service","_PID":"7"}"#,
        )
        .unwrap();
        assert_eq!(text(&e.message).unwrap(), "hi\u{fffd}");
        assert_eq!(rfc3339(&e.realtime), "2023-11-14T22:13:20.000001Z");
        assert_eq!(text(&e.about), None);
    }
}
