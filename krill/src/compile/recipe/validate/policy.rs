//! `policy:`: restart policy, restart limits and timeouts.

use super::{pos, Validator};
use crate::compile::duration;
use crate::compile::error::suggest;
use crate::compile::raw::RawPolicy;
use crate::compile::recipe::{Policy, Restart};

impl Validator {
    pub(super) fn policy(&mut self, p: &RawPolicy, field: &str) -> Policy {
        let mut out = Policy::default();
        if let Some(r) = &p.restart {
            out.restart = match r.value.as_str() {
                "never" => Restart::Never,
                "always" => Restart::Always,
                "on-failure" => Restart::OnFailure,
                other => {
                    self.err(
                        pos(r),
                        format!("{field}.restart"),
                        format!(
                            "unknown restart policy {other:?}: {}",
                            suggest(other, &["never", "always", "on-failure"])
                        ),
                    );
                    Restart::Never
                }
            };
        }
        if let Some(m) = &p.max_restarts {
            match u32::try_from(m.value) {
                Ok(v) if v < 10_000 => out.max_restarts = v,
                _ => self.err(
                    pos(m),
                    format!("{field}.max_restarts"),
                    format!(
                        "invalid max_restarts {}: expected 0 (unlimited) to 9999",
                        m.value
                    ),
                ),
            }
        }
        if let Some(d) = &p.restart_delay {
            out.restart_delay = self.duration(d, &format!("{field}.restart_delay"));
        }
        if let Some(d) = &p.stop_timeout {
            out.stop_timeout = self.duration(d, &format!("{field}.stop_timeout"));
            if out.stop_timeout.is_zero() && duration::parse(&d.value).is_ok() {
                self.err(
                    pos(d),
                    format!("{field}.stop_timeout"),
                    "stop_timeout must be greater than 0",
                );
            }
        }
        out
    }
}
