//! Colour for people at a terminal: red for failed, yellow for degraded or unhealthy.
//! Only when stdout is a terminal, and never when `NO_COLOR` is set (no-color.org).

use std::io::IsTerminal;

use krill::runtime::status::{render_table, WorkspaceState, WorkspaceStatus};

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// Whether to colour stdout.
pub fn enabled() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

fn paint(line: &str, colour: Option<&str>) -> String {
    match colour {
        Some(c) => format!("{c}{line}{RESET}"),
        None => line.to_owned(),
    }
}

/// [`render_table`], with failed rows red and degraded ones yellow when `colour`.
/// The text is the same either way: colour only wraps whole lines, so the columns
/// stay aligned.
pub fn table(ws: &WorkspaceStatus, colour: bool) -> String {
    let text = render_table(ws);
    if !colour {
        return text;
    }
    let head = match ws.state {
        WorkspaceState::Failed | WorkspaceState::EmergencyStopped => Some(RED),
        WorkspaceState::Degraded => Some(YELLOW),
        _ => None,
    };
    let mut out = String::with_capacity(text.len() + 64);
    for (i, line) in text.lines().enumerate() {
        let c = match i {
            0 => head,
            1 => None,
            n => ws.services.get(n - 2).and_then(|s| {
                if s.state == "failed" || s.health.as_deref() == Some("unhealthy") {
                    Some(RED)
                } else if !s.ok {
                    Some(YELLOW)
                } else {
                    None
                }
            }),
        };
        out.push_str(&paint(line, c));
        out.push('\n');
    }
    out
}
