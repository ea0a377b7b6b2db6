//! Duration strings of the configuration guide: an integer followed by `ms`, `s`, `m`
//! or `h` (`500ms`, `5s`, `2m`, `1h`).

use std::time::Duration;

/// Parses a recipe duration. Returns a message that says what was expected on error.
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let expected = "expected a whole number followed by ms, s, m or h (e.g. 500ms, 5s, 2m, 1h)";
    if num.is_empty() {
        return Err(format!("invalid duration {s:?}: {expected}"));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: number too large"))?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "" => return Err(format!("invalid duration {s:?}: missing unit; {expected}")),
        _ => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {unit:?}; {expected}"
            ))
        }
    };
    // systemd stores times in µs in a u64; a year is plenty for any robot timeout.
    match ms {
        Some(ms) if ms <= 365 * 24 * 3_600_000 => Ok(Duration::from_millis(ms)),
        _ => Err(format!("invalid duration {s:?}: longer than a year")),
    }
}

/// Formats a duration the way systemd reads it: whole seconds as `5s`, else `500ms`.
pub fn to_systemd(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_of_the_guide() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_durations_with_the_reason() {
        assert!(parse("5").unwrap_err().contains("missing unit"));
        assert!(parse("5 sec").unwrap_err().contains("unknown unit"));
        assert!(parse("s").unwrap_err().contains("expected a whole number"));
        assert!(parse("-1s")
            .unwrap_err()
            .contains("expected a whole number"));
        assert!(parse("1.5s").unwrap_err().contains("unknown unit"));
        assert!(parse("99999999999999999999s")
            .unwrap_err()
            .contains("too large"));
        assert!(parse("9000h").unwrap_err().contains("longer than a year"));
    }

    #[test]
    fn renders_for_systemd() {
        assert_eq!(to_systemd(Duration::from_millis(1500)), "1500ms");
        assert_eq!(to_systemd(Duration::from_secs(10)), "10s");
        assert_eq!(to_systemd(Duration::ZERO), "0s");
    }
}
