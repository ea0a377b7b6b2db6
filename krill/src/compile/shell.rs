//! Shell-like commands from recipes (`command`, `stop_command`, script health checks).
//!
//! Krill never runs them through `/bin/sh`: a command is split into argv with POSIX
//! quoting rules and executed directly. Anything that only a shell would interpret is
//! rejected, so that a recipe cannot silently mean something else than it says:
//! pipes, redirections, `;`, `&` (and so `&&`), `||`, backticks, `$(`, newlines and
//! unbalanced quotes. Inside single quotes every character is literal; inside double
//! quotes a shell would still expand backticks and `$(`, so those stay forbidden there.

/// Splits `cmd` into argv, or says what is wrong with it.
pub fn parse(cmd: &str) -> Result<Vec<String>, String> {
    check(cmd)?;
    let argv = shell_words::split(cmd).map_err(|e| format!("cannot split command: {e}"))?;
    if argv.is_empty() {
        return Err("command is empty".into());
    }
    Ok(argv)
}

#[derive(Clone, Copy, PartialEq)]
enum Quote {
    None,
    Single,
    Double,
}

fn check(cmd: &str) -> Result<(), String> {
    let hint = "krill runs commands without a shell; put pipelines and redirections in a script";
    let mut q = Quote::None;
    // The column is counted as we go: recomputing it per character made a 500 kB
    // command cost seconds (quadratic) on every daemon-reload.
    let mut col = 0usize;
    let mut chars = cmd.chars().peekable();
    while let Some(c) = chars.next() {
        col += 1;
        let reject = |what: &str| Err(format!("{what} at character {col} is not allowed; {hint}"));
        if c == '\n' || c == '\r' {
            return Err(format!(
                "newline at character {col} is not allowed: a command is one line"
            ));
        }
        if c.is_control() && c != '\t' {
            return Err(format!(
                "control character {c:?} at character {col} is not allowed in a command"
            ));
        }
        match q {
            Quote::Single => {
                if c == '\'' {
                    q = Quote::None;
                }
            }
            Quote::Double => match c {
                '"' => q = Quote::None,
                '\\' => {
                    col += usize::from(chars.next().is_some());
                }
                '`' => return reject("command substitution (`)"),
                '$' if chars.peek() == Some(&'(') => return reject("command substitution ($()"),
                _ => {}
            },
            Quote::None => match c {
                '\'' => q = Quote::Single,
                '"' => q = Quote::Double,
                '\\' => {
                    col += usize::from(chars.next().is_some());
                }
                '|' if chars.peek() == Some(&'|') => return reject("`||`"),
                '|' => return reject("pipe (|)"),
                '&' if chars.peek() == Some(&'&') => return reject("`&&`"),
                '&' => return reject("background operator (&)"),
                ';' => return reject("command separator (;)"),
                '>' | '<' => return reject(&format!("redirection ({c})")),
                '`' => return reject("command substitution (`)"),
                '$' if chars.peek() == Some(&'(') => return reject("command substitution ($()"),
                _ => {}
            },
        }
    }
    match q {
        Quote::None => Ok(()),
        Quote::Single => Err("unbalanced single quote (')".into()),
        Quote::Double => Err("unbalanced double quote (\")".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_into_argv_with_quoting() {
        assert_eq!(parse(r#"echo "it's""#).unwrap(), vec!["echo", "it's"]);
        assert_eq!(
            parse(r#"python3 -m http.server 8000"#).unwrap(),
            vec!["python3", "-m", "http.server", "8000"]
        );
        assert_eq!(
            parse(r#"pkill -f "http.server 8000""#).unwrap(),
            vec!["pkill", "-f", "http.server 8000"]
        );
        assert_eq!(parse(r"echo 'a|b;c>d'").unwrap(), vec!["echo", "a|b;c>d"]);
        assert_eq!(parse(r#"echo "a|b""#).unwrap(), vec!["echo", "a|b"]);
        assert_eq!(parse(r"echo \|").unwrap(), vec!["echo", "|"]);
        assert_eq!(
            parse("echo $HOME 100%").unwrap(),
            vec!["echo", "$HOME", "100%"]
        );
    }

    #[test]
    fn long_commands_are_checked_in_linear_time() {
        // 2.5 MB: the quadratic column count never finished this test (hours); the
        // linear one takes milliseconds.
        let long = format!("echo {}", "a ".repeat(1_250_000));
        check(&long).unwrap();
        let bad = format!("{long}|");
        assert!(check(&bad).unwrap_err().contains("character 2500006"));
    }

    #[test]
    fn rejects_what_only_a_shell_would_do() {
        for (cmd, what) in [
            ("a | b", "pipe"),
            ("a || b", "`||`"),
            ("a && b", "`&&`"),
            ("a &", "background"),
            ("a; b", "separator"),
            ("a > f", "redirection (>)"),
            ("a < f", "redirection (<)"),
            ("a 2>&1", "redirection"),
            ("echo `id`", "substitution (`)"),
            ("echo $(id)", "substitution ($()"),
            ("echo \"$(id)\"", "substitution ($()"),
            ("echo \"`id`\"", "substitution (`)"),
            ("a\nb", "newline"),
            ("echo a\0b", "control character '\\0' at character 7"),
            ("echo \x1b[2J", "control character"),
            ("echo 'x", "unbalanced single"),
            ("echo \"x", "unbalanced double"),
            ("", "empty"),
            ("   ", "empty"),
        ] {
            let err = parse(cmd).unwrap_err();
            assert!(err.contains(what), "{cmd:?}: {err}");
        }
    }
}
