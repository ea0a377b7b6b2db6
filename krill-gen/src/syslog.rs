//! Logging for a generator, whose stdout and stderr systemd discards.
//!
//! Messages go to `/dev/kmsg` when it can be opened (early boot, before journald),
//! otherwise to journald's native socket. A copy always goes to stderr so that a
//! manual run shows them. Hand-written (30 lines) because the crates on offer do
//! either kmsg or journald, not the fallback between them that a generator needs.

use std::io::Write;
use std::os::unix::net::UnixDatagram;

/// syslog priorities used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Err = 3,
    Warning = 4,
    Info = 6,
}

/// Where messages go.
pub struct Logger {
    ident: &'static str,
    kmsg: Option<std::fs::File>,
    journal: Option<UnixDatagram>,
}

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

impl Logger {
    pub fn new(ident: &'static str) -> Logger {
        let kmsg = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/kmsg")
            .ok();
        let journal = if kmsg.is_none() {
            UnixDatagram::unbound()
                .ok()
                .filter(|s| s.connect(JOURNAL_SOCKET).is_ok())
        } else {
            None
        };
        Logger {
            ident,
            kmsg,
            journal,
        }
    }

    /// Logs one message; newlines are folded so that each call is one record.
    pub fn log(&mut self, prio: Priority, msg: &str) {
        let msg = msg.replace('\n', " | ");
        let _ = writeln!(std::io::stderr(), "{}: {msg}", self.ident);
        if let Some(k) = &mut self.kmsg {
            let _ = k.write_all(
                format!(
                    "<{}>{}[{}]: {msg}\n",
                    prio as u8,
                    self.ident,
                    std::process::id()
                )
                .as_bytes(),
            );
        } else if let Some(j) = &self.journal {
            let _ = j.send(
                format!(
                    "PRIORITY={}\nSYSLOG_IDENTIFIER={}\nMESSAGE={msg}\n",
                    prio as u8, self.ident
                )
                .as_bytes(),
            );
        }
    }
}
