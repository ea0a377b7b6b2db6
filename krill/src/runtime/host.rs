//! This machine: its accounts and CPUs, as the generator may read them: the files, not
//! NSS (a generator runs before most NSS services exist, and must not wait on one).
//! An account only a network directory knows is "not found" here; that is a warning
//! at render and an error at install, never a failed boot.

use std::path::{Path, PathBuf};

/// The local user database.
pub const PASSWD: &str = "/etc/passwd";
/// The local group database.
pub const GROUP: &str = "/etc/group";

/// systemd's default `PATH` of system services.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A local user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    pub home: PathBuf,
}

/// `name` (or a numeric uid) in [`PASSWD`].
pub fn user(name: &str) -> Option<User> {
    user_in(Path::new(PASSWD), name)
}

fn user_in(file: &Path, name: &str) -> Option<User> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        let uid: u32 = f[2].parse().ok()?;
        let gid: u32 = f[3].parse().ok()?;
        (f[0] == name || name.parse::<u32>() == Ok(uid)).then(|| User {
            name: f[0].to_owned(),
            uid,
            gid,
            home: PathBuf::from(f[5]),
        })
    })
}

/// Whether `name` (or a numeric gid) is in [`GROUP`].
pub fn group_exists(name: &str) -> bool {
    group_in(Path::new(GROUP), name)
}

fn group_in(file: &Path, name: &str) -> bool {
    std::fs::read_to_string(file).is_ok_and(|text| {
        text.lines().any(|l| {
            let mut f = l.split(':');
            let n = f.next();
            let gid = f.nth(1);
            n == Some(name) || (name.parse::<u32>().is_ok() && gid == Some(name))
        })
    })
}

/// `PATH` for a service that runs as `user`: its `~/.pixi/bin` and `~/.local/bin`
/// (where pixi and pip put programs), then systemd's default. `None` when the user is
/// not in [`PASSWD`].
pub fn user_path(user: &str) -> Option<String> {
    let home = self::user(user)?.home;
    Some(format!(
        "{h}/.pixi/bin:{h}/.local/bin:{DEFAULT_PATH}",
        h = home.display()
    ))
}

/// The most CPUs an affinity may name (systemd's `CPUAffinity=` takes up to 8192).
pub const MAX_CPU: u32 = 8191;

/// Parses `0-3`, `0,2`, `0 2-3` into sorted CPU numbers, each once.
pub fn parse_cpus(text: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in text.split([',', ' ']).filter(|p| !p.trim().is_empty()) {
        let part = part.trim();
        let num = |n: &str| {
            n.trim()
                .parse::<u32>()
                .ok()
                .filter(|v| *v <= MAX_CPU)
                .ok_or_else(|| format!("invalid CPU {n:?}: expected a number from 0 to {MAX_CPU}"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("invalid CPU range {part:?}: {a} is above {b}"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    if out.is_empty() {
        return Err("no CPU given".into());
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// How many CPUs this machine can have online (`/sys/devices/system/cpu/possible`);
/// `None` if it cannot tell.
pub fn cpu_count() -> Option<u32> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").ok()?;
    parse_cpus(text.trim()).ok()?.last().map(|m| m + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_and_ranges() {
        assert_eq!(parse_cpus("0-3").unwrap(), [0, 1, 2, 3]);
        assert_eq!(parse_cpus(" 2, 0 ,2-3").unwrap(), [0, 2, 3]);
        assert!(parse_cpus("3-1").unwrap_err().contains("above"));
        assert!(parse_cpus("x").is_err());
        assert!(parse_cpus("").is_err());
        assert!(parse_cpus("9000").is_err());
    }

    #[test]
    fn users_and_groups_by_name_or_number() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("passwd");
        std::fs::write(
            &p,
            "root:x:0:0:root:/root:/bin/bash\nrobot:x:1000:1000:,,,:/home/robot:/bin/bash\nbroken\n",
        )
        .unwrap();
        assert_eq!(user_in(&p, "robot").unwrap().home, Path::new("/home/robot"));
        assert_eq!(user_in(&p, "1000").unwrap().name, "robot");
        assert!(user_in(&p, "nobody").is_none());
        let g = dir.path().join("group");
        std::fs::write(&g, "video:x:44:robot\nrender:x:105:\n").unwrap();
        assert!(group_in(&g, "video") && group_in(&g, "105"));
        assert!(!group_in(&g, "44x") && !group_in(&g, "docker"));
    }
}
