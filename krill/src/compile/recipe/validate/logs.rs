//! `log_dir:` (upstream's field, honoured) and `log_rotate:` (a krill extension).

use std::path::Path;

use super::{pos, Validator};
use crate::compile::raw::RawRecipe;
use crate::compile::recipe::validate::resources::parse_bytes;
use crate::runtime::logfiles::{
    LogDir, LogFiles, DEFAULT_KEEP, DEFAULT_MAX_BYTES, MAX_KEEP, MIN_MAX_BYTES,
};

impl Validator {
    pub(super) fn logs(&mut self, r: &RawRecipe, base: &Path) -> Option<LogFiles> {
        let (max_bytes, keep) = self.log_rotate(r);
        let Some(d) = &r.log_dir else {
            if let Some(rot) = &r.log_rotate {
                self.err(
                    pos(rot),
                    "log_rotate",
                    "log_rotate without log_dir rotates nothing: add log_dir, or remove it",
                );
            }
            return None;
        };
        // It lands in the manifest (JSON), never in a unit file.
        let text = self.text(d, "log_dir", "log_dir");
        let dir = LogDir::parse(&text, base)
            .map_err(|m| self.err(pos(d), "log_dir", m))
            .ok()?;
        Some(LogFiles {
            dir,
            max_bytes,
            keep,
        })
    }

    /// `log_rotate:`'s (max_bytes, keep), defaults where not written.
    fn log_rotate(&mut self, r: &RawRecipe) -> (u64, u32) {
        let mut out = (DEFAULT_MAX_BYTES, DEFAULT_KEEP);
        let Some(rot) = &r.log_rotate else {
            return out;
        };
        if let Some(m) = &rot.value.max_size {
            match parse_bytes(&m.value.0) {
                Ok(n) if n >= MIN_MAX_BYTES => out.0 = n,
                Ok(n) => self.err(
                    pos(m),
                    "log_rotate.max_size",
                    format!("max_size {n} is below the smallest, 1K"),
                ),
                Err(e) => self.err(pos(m), "log_rotate.max_size", e),
            }
        }
        if let Some(k) = &rot.value.keep {
            match u32::try_from(k.value).ok().filter(|k| *k <= MAX_KEEP) {
                Some(k) => out.1 = k,
                None => self.err(
                    pos(k),
                    "log_rotate.keep",
                    format!("invalid keep {}: expected 0 to {MAX_KEEP}", k.value),
                ),
            }
        }
        out
    }
}
