//! Where the CLI's D-Bus calls go, as `systemctl -H`/`-M` decide it: the local system
//! bus, a robot's system bus over SSH (`-H [user@]host`), or a local container's
//! (`-M name`). Both remote transports are D-Bus's `unixexec:` (zbus spawns the
//! command and speaks D-Bus on its stdin/stdout) to `systemd-stdio-bridge`, so no new
//! daemon or port exists: SSH's keys and the remote bus's D-Bus policy decide who may
//! do what. Everything that builds a command line for another host is here.

use std::ffi::OsString;
use std::process::Command;
use std::sync::OnceLock;

use zbus::address::transport::{Transport, Unixexec};

/// The bridge from stdin/stdout to a system bus, part of systemd on every host.
pub const BRIDGE: &str = "systemd-stdio-bridge";

/// Overrides the `ssh` program (a path, as `SYSTEMD_SSH` does for systemctl): for a
/// wrapper that adds options such as `-F config`.
pub const SSH_ENV: &str = "KRILL_SSH";

/// Whose system bus a command talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// This machine's system bus.
    Local,
    /// `[user@]host[:port]` over SSH. `batch` is `Some(seconds)` for `krill fleet`,
    /// which talks to many hosts at once: never prompt (`BatchMode=yes`), and give up
    /// connecting after that long (`ConnectTimeout=`).
    Ssh { dest: String, batch: Option<u64> },
    /// A local container registered with systemd-machined (`systemctl -M`'s meaning).
    Machine(String),
}

/// Why a `-H`/`-M` argument is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("invalid host {0:?}: expected [user@]host[:port]")]
    BadHost(String),
    #[error("invalid machine name {0:?}")]
    BadMachine(String),
}

static CURRENT: OnceLock<Host> = OnceLock::new();

/// Sets the host of this process's commands (once, from `-H`/`-M`).
pub fn set(host: Host) {
    let _ = CURRENT.set(host);
}

/// The host this process's commands talk to ([`Host::Local`] unless set).
pub fn current() -> &'static Host {
    CURRENT.get_or_init(|| Host::Local)
}

impl Host {
    /// `[user@]host[:port]`: no option-like or shell-special text can reach `ssh`.
    pub fn ssh(dest: &str, batch: Option<u64>) -> Result<Host, Error> {
        let ok = !dest.is_empty()
            && !dest.starts_with('-')
            && dest.len() <= 255
            && dest.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'@' | b':' | b'%')
            })
            && dest.matches('@').count() <= 1;
        ok.then(|| Host::Ssh {
            dest: dest.to_owned(),
            batch,
        })
        .ok_or_else(|| Error::BadHost(dest.to_owned()))
    }

    /// A machine name as machined accepts it (a hostname-like label).
    pub fn machine(name: &str) -> Result<Host, Error> {
        let ok = !name.is_empty()
            && !name.starts_with(['-', '.'])
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        ok.then(|| Host::Machine(name.to_owned()))
            .ok_or_else(|| Error::BadMachine(name.to_owned()))
    }

    pub fn is_local(&self) -> bool {
        *self == Host::Local
    }

    /// How tables and messages name the host.
    pub fn label(&self) -> &str {
        match self {
            Host::Local => "localhost",
            Host::Ssh { dest, .. } => dest,
            Host::Machine(m) => m,
        }
    }

    /// `ssh -xT [-o BatchMode=yes -o ConnectTimeout=N] [-p PORT] [user@]host --`: the
    /// prefix of every command run on an SSH host (systemctl's own flags: no X11, no
    /// terminal).
    fn ssh_prefix(dest: &str, batch: Option<u64>) -> (OsString, Vec<OsString>) {
        let program = std::env::var_os(SSH_ENV).unwrap_or_else(|| "ssh".into());
        let mut args: Vec<OsString> = vec!["-xT".into()];
        if let Some(secs) = batch {
            args.extend([
                "-o".into(),
                "BatchMode=yes".into(),
                "-o".into(),
                format!("ConnectTimeout={}", secs.max(1)).into(),
            ]);
        }
        let (host, port) = match dest.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
            _ => (dest, None),
        };
        if let Some(p) = port {
            args.extend(["-p".into(), p.into()]);
        }
        args.extend(["--".into(), host.into()]);
        (program, args)
    }

    /// The D-Bus address of the host's system bus; `None` is the local system bus.
    pub fn address(&self) -> Option<zbus::Address> {
        let (program, args) = match self {
            Host::Local => return None,
            Host::Ssh { dest, batch } => {
                let (p, mut a) = Host::ssh_prefix(dest, *batch);
                a.push(BRIDGE.into());
                (p, a)
            }
            Host::Machine(m) => (BRIDGE.into(), vec![format!("--machine={m}").into()]),
        };
        Some(Transport::Unixexec(Unixexec::new(program.into(), None, args)).into())
    }

    /// A connection to the host's system bus.
    pub async fn connect(&self) -> zbus::Result<zbus::Connection> {
        match self.address() {
            None => krill::runtime::scope::bus().await,
            Some(a) => zbus::connection::Builder::address(a)?.build().await,
        }
    }

    /// `argv` as a command that runs on the host: as is here, through `ssh` (each
    /// word quoted for the remote shell), or `journalctl -M` for a container.
    pub fn command(&self, argv: &[String]) -> Command {
        match self {
            Host::Local => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
            Host::Ssh { dest, batch } => {
                let (p, a) = Host::ssh_prefix(dest, *batch);
                let mut c = Command::new(p);
                c.args(a).arg(
                    argv.iter()
                        .map(|w| sh_quote(w))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
                c
            }
            Host::Machine(m) => {
                let mut c = Command::new(&argv[0]);
                // Only journalctl runs on a host here; it reads a container's journal
                // itself.
                c.arg(format!("--machine={m}")).args(&argv[1..]);
                c
            }
        }
    }
}

/// `s` quoted for a POSIX shell: the remote side of `ssh` runs its command line
/// through the user's shell.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_destinations_cannot_smuggle_options_or_shell() {
        for bad in [
            "-oProxyCommand=x",
            "a b",
            "a;b",
            "h$(x)",
            "",
            "a@b@c",
            "h\n",
        ] {
            assert!(Host::ssh(bad, None).is_err(), "{bad:?} accepted");
        }
        for good in [
            "robot1",
            "root@10.0.0.2",
            "op@robot-1.lan:2222",
            "fe80::1%eth0",
        ] {
            assert!(Host::ssh(good, None).is_ok(), "{good:?} refused");
        }
        assert!(Host::machine("-x").is_err() && Host::machine("a/b").is_err());
    }

    #[test]
    fn the_bus_address_is_systemctls() {
        let h = Host::ssh("op@robot1:2222", Some(3)).unwrap();
        let a = h.address().unwrap().to_string();
        assert!(a.starts_with("unixexec:path=ssh,"), "{a}");
        for part in [
            "argv1=-xT",
            "argv2=-o",
            "argv3=BatchMode%3dyes",
            "argv5=ConnectTimeout%3d3",
            "argv6=-p",
            "argv7=2222",
            "argv8=--",
            "argv9=op%40robot1",
            "argv10=systemd-stdio-bridge",
        ] {
            assert!(a.contains(part), "{part} not in {a}");
        }
        let m = Host::machine("krill-a")
            .unwrap()
            .address()
            .unwrap()
            .to_string();
        assert!(
            m.contains("path=systemd-stdio-bridge") && m.contains("argv1=--machine%3dkrill-a"),
            "{m}"
        );
        assert!(Host::Local.address().is_none());
    }

    #[test]
    fn remote_commands_are_quoted_for_the_remote_shell() {
        let c = Host::ssh("robot1", None).unwrap().command(&[
            "journalctl".into(),
            "-u".into(),
            "krill-a-b.service".into(),
            "--grep=it's $HOME".into(),
        ]);
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(&args[..3], ["-xT", "--", "robot1"]);
        assert_eq!(
            args[3],
            r"journalctl -u krill-a-b.service '--grep=it'\''s $HOME'"
        );
        assert_eq!(sh_quote(""), "''");
    }
}
