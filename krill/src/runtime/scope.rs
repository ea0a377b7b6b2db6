//! System or user: which systemd manager a krill program works with.
//!
//! A system workspace is run by PID 1 from `/etc/krill/recipes`; a user workspace
//! (`krill --user`) by the user's own `systemd --user` from
//! `~/.config/krill/recipes`, with its own generator run, supervisor, heartbeat
//! socket and records, all under the user's runtime directory. Every path and bus
//! that differs is decided here, from one process-wide setting:
//!
//! | | system | user |
//! |---|---|---|
//! | recipes | `/etc/krill/recipes` (+ `/run`, `/usr/lib`) | `~/.config/krill/recipes` |
//! | boot start | `/etc/krill/enabled` | `~/.config/krill/enabled` (needs lingering) |
//! | records, socket | `/run/krill` | `$XDG_RUNTIME_DIR/krill` |
//! | generator output | `/run/systemd/generator` | `$XDG_RUNTIME_DIR/systemd/generator` |
//! | bus | system bus | the user's session bus |
//!
//! The setting is [`init`] (krill-ctl's `--user`, krill-gen run from
//! `user-generators/`), else `KRILL_SCOPE=user` in the environment (the user units
//! krill ships set it), else system.

use std::path::PathBuf;
use std::sync::OnceLock;

/// Which manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// PID 1 and the system bus (the default).
    #[default]
    System,
    /// The calling user's `systemd --user` and session bus.
    User,
}

/// The environment variable the user units set: `KRILL_SCOPE=user`.
pub const ENV: &str = "KRILL_SCOPE";

static SCOPE: OnceLock<Scope> = OnceLock::new();

/// Sets this process's scope; the first call wins (call it before anything reads a
/// path).
pub fn init(scope: Scope) {
    let _ = SCOPE.set(scope);
}

/// This process's scope: [`init`], else `KRILL_SCOPE`, else system.
pub fn current() -> Scope {
    *SCOPE.get_or_init(|| match std::env::var(ENV).as_deref() {
        Ok("user") => Scope::User,
        _ => Scope::System,
    })
}

/// Whether this process works with a user manager.
pub fn is_user() -> bool {
    current() == Scope::User
}

/// The bus of this scope's manager.
pub async fn bus() -> zbus::Result<zbus::Connection> {
    match current() {
        Scope::System => zbus::Connection::system().await,
        Scope::User => zbus::Connection::session().await,
    }
}

/// The user's runtime directory: `$XDG_RUNTIME_DIR`, else `/run/user/UID`.
pub fn runtime_dir() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        // SAFETY: getuid cannot fail.
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{}", unsafe { libc::getuid() })))
}

/// The user's home: `$HOME`, else the user database's.
pub fn home() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            // SAFETY: getuid cannot fail.
            let uid = unsafe { libc::getuid() };
            crate::runtime::host::user(&uid.to_string()).map(|u| u.home)
        })
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The user's configuration directory: `$XDG_CONFIG_HOME`, else `~/.config`.
pub fn config_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".config"))
}

/// Where the flag that selects this scope is spelled for the operator: `--user ` or
/// nothing, for messages that suggest a command.
pub fn flag() -> &'static str {
    match current() {
        Scope::System => "",
        Scope::User => "--user ",
    }
}
