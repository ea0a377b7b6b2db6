//! `ready:` (a krill extension): exactly one strategy, and its timeout.

use std::path::Path;

use super::{pos, Validator};
use crate::compile::error::Pos;
use serde_saphyr::Spanned;

use crate::compile::raw::RawReady;
use crate::runtime::ready::{Ready, ReadyKind, DEFAULT_TIMEOUT};

impl Validator {
    pub(super) fn ready(
        &mut self,
        spanned: &Spanned<RawReady>,
        field: &str,
        base: &Path,
    ) -> Option<Ready> {
        let r = &spanned.value;
        let mut kinds: Vec<(ReadyKind, Pos)> = vec![];
        if let Some(f) = &r.file {
            kinds.push((
                ReadyKind::File(self.path(f, &format!("{field}.file"), base)),
                pos(f),
            ));
        }
        if let Some(p) = &r.tcp {
            kinds.push((
                ReadyKind::Tcp(self.port(p, &format!("{field}.tcp"))),
                pos(p),
            ));
        }
        if let Some(n) = &r.notify {
            if n.value {
                kinds.push((ReadyKind::Notify, pos(n)));
            } else {
                self.err(
                    pos(n),
                    format!("{field}.notify"),
                    "notify: false asks for nothing: remove it, or use file or tcp",
                );
            }
        }
        let timeout = match &r.timeout {
            Some(t) => {
                let d = self.duration(t, &format!("{field}.timeout"));
                if d.is_zero() && crate::compile::duration::parse(&t.value).is_ok() {
                    self.err(
                        pos(t),
                        format!("{field}.timeout"),
                        "timeout must be greater than 0",
                    );
                }
                d
            }
            None => DEFAULT_TIMEOUT,
        };
        match kinds.len() {
            1 => kinds.pop().map(|(kind, _)| Ready { kind, timeout }),
            0 => {
                if r.notify.as_ref().is_none_or(|n| n.value) {
                    self.err(
                        pos(spanned),
                        field,
                        "ready needs one of file, tcp or notify",
                    );
                }
                None
            }
            _ => {
                self.err(
                    kinds[1].1,
                    field,
                    "ready takes one of file, tcp or notify, not several",
                );
                None
            }
        }
    }
}
