//! `health_check:`: which fields each check type takes, and their values.

use std::time::Duration;

use super::{pos, Validator};
use crate::compile::duration;
use crate::compile::error::suggest;
use crate::compile::raw::RawHealthCheck;
use crate::runtime::check::{HealthCheck, HealthKind};

impl Validator {
    pub(super) fn health_check(&mut self, h: &RawHealthCheck, field: &str) -> HealthCheck {
        let Some(kind) = HealthKind::parse(&h.kind.value) else {
            self.err(
                pos(&h.kind),
                format!("{field}.type"),
                format!(
                    "unknown health check type {:?}: {}",
                    h.kind.value,
                    suggest(&h.kind.value, &HealthKind::ALL.map(HealthKind::as_str))
                ),
            );
            return HealthCheck::Heartbeat {
                timeout: Duration::ZERO,
            };
        };
        let allowed = kind.fields();
        for (f, p) in [
            ("timeout", h.timeout.as_ref().map(pos)),
            ("port", h.port.as_ref().map(pos)),
            ("path", h.path.as_ref().map(pos)),
            ("expected_status", h.expected_status.as_ref().map(pos)),
            ("command", h.command.as_ref().map(pos)),
        ] {
            if let (Some(p), false) = (p, allowed.contains(&f)) {
                self.err(
                    p,
                    format!("{field}.{f}"),
                    format!("field `{f}` does not apply to health check type {kind}"),
                );
            }
        }
        let kpos = pos(&h.kind);
        let timeout = |v: &mut Self| {
            h.timeout.as_ref().map(|t| {
                let d = v.duration(t, &format!("{field}.timeout"));
                if d.is_zero() && duration::parse(&t.value).is_ok() {
                    v.err(
                        pos(t),
                        format!("{field}.timeout"),
                        "timeout must be greater than 0",
                    );
                }
                d
            })
        };
        let port = |v: &mut Self| match &h.port {
            Some(p) => v.port(p, &format!("{field}.port")),
            None => {
                v.err(
                    kpos,
                    format!("{field}.port"),
                    format!("health check type {kind} requires `port`"),
                );
                0
            }
        };
        match kind {
            HealthKind::Heartbeat => {
                let t = timeout(self);
                if t.is_none() {
                    self.err(
                        kpos,
                        format!("{field}.timeout"),
                        "health check type heartbeat requires `timeout`",
                    );
                }
                HealthCheck::Heartbeat {
                    timeout: t.unwrap_or_default(),
                }
            }
            HealthKind::Tcp => HealthCheck::Tcp {
                port: port(self),
                timeout: timeout(self),
            },
            HealthKind::Http => {
                let port = port(self);
                let path = h
                    .path
                    .as_ref()
                    .map(|p| self.text(p, &format!("{field}.path"), "path"))
                    .unwrap_or_else(|| "/health".into());
                if !path.starts_with('/') || path.contains(char::is_whitespace) {
                    let p = h.path.as_ref().map(pos).unwrap_or(kpos);
                    self.err(
                        p,
                        format!("{field}.path"),
                        format!(
                            "invalid path {path:?}: expected an absolute URL path such as /health"
                        ),
                    );
                }
                let expected_status = match &h.expected_status {
                    Some(s) if (100..=599).contains(&s.value) => s.value as u16,
                    Some(s) => {
                        self.err(
                            pos(s),
                            format!("{field}.expected_status"),
                            format!("invalid HTTP status {}: expected 100 to 599", s.value),
                        );
                        0
                    }
                    None => 200,
                };
                HealthCheck::Http {
                    port,
                    path,
                    expected_status,
                }
            }
            HealthKind::Script => {
                let argv = match &h.command {
                    Some(c) => self.command(c, &format!("{field}.command")),
                    None => {
                        self.err(
                            kpos,
                            format!("{field}.command"),
                            "health check type script requires `command`",
                        );
                        vec![]
                    }
                };
                HealthCheck::Script {
                    argv,
                    timeout: timeout(self),
                }
            }
        }
    }
}
