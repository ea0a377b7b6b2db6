//! `user:`, `group:` and `resources:` (krill extensions): accounts as systemd names
//! them, and limits within the ranges systemd accepts. Whether the machine has the
//! account or the CPUs is not known here (a recipe may be validated elsewhere): see
//! [`crate::compile::recipe::Recipe::machine_problems`].

use serde_saphyr::Spanned;

use super::{pos, Validator};
use crate::compile::error::suggest;
use crate::compile::raw::{self, RawAffinity, RawResources};
use crate::compile::recipe::{Realtime, RealtimePolicy, Resources};
use crate::runtime::host::{parse_cpus, MAX_CPU};

/// `2G`, `512M`, `4096`: bytes (powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, shift) = match t.chars().last() {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        Some('T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            format!(
                "invalid size {text:?}: expected bytes, or a number with K, M, G or T (e.g. 512M)"
            )
        })
}

/// Whether `s` is a user or group name systemd accepts in `User=`/`Group=` (its
/// portable subset: what `useradd` makes), or a numeric id.
pub fn valid_account(s: &str) -> bool {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u32>().is_ok_and(|n| n < u32::MAX - 1);
    }
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && s.len() <= 31
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

impl Validator {
    pub(super) fn account(&mut self, s: &raw::SString, field: &str, what: &str) -> String {
        if !valid_account(&s.value) {
            self.err(
                pos(s),
                field,
                format!(
                    "invalid {what} name {:?}: expected a name of letters, digits, '_' and '-' (at most 31, not starting with a digit or '-'), or a number",
                    s.value
                ),
            );
        }
        s.value.clone()
    }

    fn ranged(&mut self, v: &Spanned<i64>, field: &str, min: i64, max: i64) -> Option<i64> {
        if (min..=max).contains(&v.value) {
            Some(v.value)
        } else {
            self.err(
                pos(v),
                field,
                format!("invalid value {}: expected {min} to {max}", v.value),
            );
            None
        }
    }

    fn bytes(&mut self, v: &Spanned<raw::Scalar>, field: &str) -> Option<u64> {
        parse_bytes(&v.value.0)
            .map_err(|m| self.err(pos(v), field, m))
            .ok()
    }

    pub(super) fn resources(&mut self, r: &RawResources, field: &str) -> Resources {
        let mut out = Resources::default();
        if let Some(a) = &r.cpu_affinity {
            let f = format!("{field}.cpu_affinity");
            let cpus = match &a.value {
                RawAffinity::Text(t) => parse_cpus(t),
                RawAffinity::List(l) if l.is_empty() => Err("no CPU given".into()),
                RawAffinity::List(l) => l
                    .iter()
                    .map(|n| {
                        u32::try_from(*n)
                            .ok()
                            .filter(|v| *v <= MAX_CPU)
                            .ok_or_else(|| format!("invalid CPU {n}: expected 0 to {MAX_CPU}"))
                    })
                    .collect::<Result<Vec<u32>, String>>()
                    .map(|mut v| {
                        v.sort_unstable();
                        v.dedup();
                        v
                    }),
            };
            match cpus {
                Ok(c) => out.cpu_affinity = c,
                Err(m) => self.err(pos(a), f, m),
            }
        }
        if let Some(q) = &r.cpu_quota {
            let n = q
                .value
                .trim()
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<u32>().ok())
                .filter(|n| (1..=100_000).contains(n));
            match n {
                Some(n) => out.cpu_quota_percent = Some(n),
                None => self.err(
                    pos(q),
                    format!("{field}.cpu_quota"),
                    format!(
                        "invalid cpu_quota {:?}: expected a percentage of one CPU, 1% to 100000% (150% = one and a half CPUs)",
                        q.value
                    ),
                ),
            }
        }
        out.memory_max = r
            .memory_max
            .as_ref()
            .and_then(|v| self.bytes(v, &format!("{field}.memory_max")));
        out.memory_high = r
            .memory_high
            .as_ref()
            .and_then(|v| self.bytes(v, &format!("{field}.memory_high")));
        if let (Some(h), Some(m), Some(raw)) = (out.memory_high, out.memory_max, &r.memory_high) {
            if h > m {
                self.err(
                    pos(raw),
                    format!("{field}.memory_high"),
                    "memory_high is above memory_max: the service would be killed before it is ever throttled",
                );
            }
        }
        out.nice = r
            .nice
            .as_ref()
            .and_then(|v| self.ranged(v, &format!("{field}.nice"), -20, 19))
            .map(|n| n as i8);
        out.io_weight = r
            .io_weight
            .as_ref()
            .and_then(|v| self.ranged(v, &format!("{field}.io_weight"), 1, 10_000))
            .map(|n| n as u16);
        out.tasks_max = r
            .tasks_max
            .as_ref()
            .and_then(|v| self.ranged(v, &format!("{field}.tasks_max"), 1, i64::from(u32::MAX - 1)))
            .map(|n| n as u32);
        if let Some(rt) = &r.realtime {
            let f = format!("{field}.realtime");
            let policy = match rt.policy.value.as_str() {
                "fifo" => Some(RealtimePolicy::Fifo),
                "rr" => Some(RealtimePolicy::RoundRobin),
                other => {
                    self.err(
                        pos(&rt.policy),
                        format!("{f}.policy"),
                        format!(
                            "unknown real-time policy {other:?}: {}",
                            suggest(other, &["fifo", "rr"])
                        ),
                    );
                    None
                }
            };
            let priority = self.ranged(&rt.priority, &format!("{f}.priority"), 1, 99);
            if let (Some(policy), Some(p)) = (policy, priority) {
                out.realtime = Some(Realtime {
                    policy,
                    priority: p as u8,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("2G").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("512M").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        for bad in ["0", "2GB", "-1", "1.5G", "99999999999T"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accounts() {
        for ok in ["robot", "_apt", "ros-user", "1000"] {
            assert!(valid_account(ok), "{ok}");
        }
        for bad in [
            "",
            "-x",
            "1x",
            "a b",
            "a:b",
            "root\n",
            "4294967295",
            &"a".repeat(32),
        ] {
            assert!(!valid_account(bad), "{bad:?}");
        }
    }
}
