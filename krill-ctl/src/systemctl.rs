//! A thin wrapper around `systemctl`, so that every action krill takes is one an
//! operator could type.

use std::collections::BTreeMap;
use std::process::Command;

/// Why a systemctl call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot run systemctl: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("`systemctl {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
}

/// Runs `systemctl ARGS` and returns stdout.
pub fn run<S: AsRef<str>>(args: &[S]) -> Result<String, Error> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let out = Command::new("systemctl").args(&args).output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// `systemctl show -p P1 -p P2 UNIT`, parsed as key=value (never `--value`: its order
/// is systemd's, not ours).
pub fn show(unit: &str, props: &[&str]) -> Result<BTreeMap<String, String>, Error> {
    let mut args = vec!["show".to_owned()];
    for p in props {
        args.push(format!("--property={p}"));
    }
    args.push("--".into());
    args.push(unit.to_owned());
    Ok(parse_show(&run(&args)?))
}

/// `systemctl show` of several units in one call; one map per unit, in order.
pub fn show_many(units: &[String], props: &[&str]) -> Result<Vec<BTreeMap<String, String>>, Error> {
    if units.is_empty() {
        return Ok(vec![]);
    }
    let mut args = vec!["show".to_owned()];
    for p in props {
        args.push(format!("--property={p}"));
    }
    args.push("--".into());
    args.extend(units.iter().cloned());
    let text = run(&args)?;
    // systemctl separates units with an empty line.
    Ok(text
        .split("\n\n")
        .map(parse_show)
        .take(units.len())
        .collect())
}

/// Parses `key=value` lines.
pub fn parse_show(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_key_value_in_any_order() {
        let m = super::parse_show("Result=exit-code\nActiveState=failed\nStatusText=a=b\n");
        assert_eq!(m["ActiveState"], "failed");
        assert_eq!(m["Result"], "exit-code");
        assert_eq!(m["StatusText"], "a=b");
    }

    #[test]
    fn splits_multi_unit_output() {
        let blocks: Vec<_> = "A=1\nB=2\n\nA=3\nB=4\n"
            .split("\n\n")
            .map(super::parse_show)
            .collect();
        assert_eq!(blocks[1]["A"], "3");
    }
}
