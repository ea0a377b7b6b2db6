//! How `krill top` draws its [`Model`]: a header, the table of services (a row per
//! workspace above its services), the selected service's reason, and the keys. Fits
//! 80×24; every text from the report is made printable first (a service's reason is
//! hostile input to a terminal).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use krill::runtime::status::{
    cpu_cell, human_bytes, human_duration, printable, ServiceStatus, WorkspaceState,
};

use super::model::{Model, Source, View};

/// The keys, as the bottom line lists them.
pub const KEYS: &str = "↑↓/jk move  Enter logs  d details  r restart  s stop  S e-stop  q quit";

fn state_style(s: &ServiceStatus) -> Style {
    if s.state == "failed" || s.health.as_deref() == Some("unhealthy") {
        Style::new().fg(Color::Red)
    } else if !s.ok {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new()
    }
}

fn workspace_style(s: WorkspaceState) -> Style {
    match s {
        WorkspaceState::Failed | WorkspaceState::EmergencyStopped => Style::new().fg(Color::Red),
        WorkspaceState::Degraded => Style::new().fg(Color::Yellow),
        _ => Style::new(),
    }
    .add_modifier(Modifier::BOLD)
}

/// `0.3s` since the last heartbeat; `-` for other checks.
fn beat_cell(s: &ServiceStatus) -> String {
    s.heartbeat_age_s
        .map_or_else(|| "-".into(), |a| format!("{a:.1}s"))
}

/// Draws `m` on `f`.
pub fn draw(f: &mut Frame, m: &Model) {
    let [head, body, reason, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let services: usize = m.report.workspaces.iter().map(|w| w.services.len()).sum();
    let source = match m.source {
        Source::Supervisor => "live: supervisor",
        Source::Systemd => "live: systemd (supervisor down)",
    };
    f.render_widget(
        Line::from(vec![
            Span::styled("krill top", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!(
                " {} · {} workspaces, {services} services · {source}",
                printable(&m.host),
                m.report.workspaces.len()
            )),
        ]),
        head,
    );
    match &m.view {
        View::List | View::Confirm { .. } => table(f, m, body),
        View::Details => details(f, m, body),
        View::Logs => logs(f, m, body),
    }
    let line = match (&m.message, m.current()) {
        (Some(msg), _) => Line::styled(printable(msg), Style::new().fg(Color::Cyan)),
        (None, Some((_, s))) => match &s.reason {
            Some(r) => Line::styled(
                format!("{}: {}", printable(&s.service), printable(r)),
                state_style(s),
            ),
            None => Line::raw(format!("{}: ok", printable(&s.service))),
        },
        (None, None) => Line::raw("no workspaces loaded"),
    };
    f.render_widget(line, reason);
    let help = match m.view {
        View::List => KEYS,
        View::Details | View::Logs => "Esc/q back",
        View::Confirm { .. } => "y stop everything  any other key cancels",
    };
    f.render_widget(
        Line::styled(help, Style::new().add_modifier(Modifier::DIM)),
        keys,
    );
    if let View::Confirm { workspace } = &m.view {
        confirm(f, workspace, body);
    }
}

/// The fixed columns and their widths; REASON takes the rest of the line.
const COLUMNS: [(&str, usize); 9] = [
    ("SERVICE", 16),
    ("STATE", 12),
    ("HEALTH", 9),
    ("PID", 7),
    ("RST", 3),
    ("UP", 4),
    ("CPU", 5),
    ("MEM", 5),
    ("BEAT", 5),
];

/// One line of the table: each cell cut or padded to its column, then the reason.
fn columns(cells: [&str; 9], reason: &str) -> String {
    let mut line = String::with_capacity(96);
    for (c, (_, w)) in cells.iter().zip(COLUMNS) {
        let cut: String = c.chars().take(w).collect();
        line.push_str(&format!("{cut:<w$} "));
    }
    line.push_str(reason);
    line
}

/// The table as a list: a full-width line per workspace (its state and why), then a
/// line per service; only services are selectable.
fn table(f: &mut Frame, m: &Model, area: Rect) {
    let [head, list] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    f.render_widget(
        Line::styled(
            columns(COLUMNS.map(|(h, _)| h), "REASON"),
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        ),
        head,
    );
    let mut items = vec![];
    let mut selected_item = None;
    let mut i = 0;
    for w in &m.report.workspaces {
        let detail = w
            .detail
            .as_deref()
            .map(|d| format!(" ({})", printable(d)))
            .unwrap_or_default();
        items.push(
            ListItem::new(format!(
                "{}: {}{detail}",
                printable(&w.workspace),
                w.state.as_str()
            ))
            .style(workspace_style(w.state)),
        );
        for s in &w.services {
            if i == m.selected {
                selected_item = Some(items.len());
            }
            i += 1;
            let r = s.resources.as_ref();
            let cells = [
                format!(" {}", printable(&s.service)),
                printable(&s.sub_state),
                s.health.as_deref().map_or("-".into(), printable),
                s.pid.map_or("-".into(), |p| p.to_string()),
                s.restarts.to_string(),
                human_duration(s.uptime_s),
                cpu_cell(r),
                human_bytes(r.and_then(|r| r.memory_bytes)),
                beat_cell(s),
            ];
            let reason = s.reason.as_deref().map(printable).unwrap_or_default();
            items.push(
                ListItem::new(columns(cells.each_ref().map(String::as_str), &reason))
                    .style(state_style(s)),
            );
        }
    }
    let l = List::new(items).highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut st = ListState::default().with_selected(selected_item);
    f.render_stateful_widget(l, list, &mut st);
}

fn details(f: &mut Frame, m: &Model, area: Rect) {
    let Some((w, s)) = m.current() else {
        return;
    };
    let list = |v: Vec<String>| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    let r = s.resources.as_ref();
    let text = vec![
        format!("unit:        {}", printable(&s.unit)),
        format!(
            "workspace:   {} ({})",
            printable(&w.workspace),
            w.state.as_str()
        ),
        format!(
            "command:     {}",
            m.command.as_deref().map_or("…".into(), printable)
        ),
        format!(
            "state:       {}/{}",
            printable(&s.state),
            printable(&s.sub_state)
        ),
        format!(
            "health:      {}",
            s.health.as_deref().map_or("-".into(), printable)
        ),
        format!(
            "pid:         {}   restarts: {}   uptime: {}",
            s.pid.map_or("-".into(), |p| p.to_string()),
            s.restarts,
            human_duration(s.uptime_s)
        ),
        format!(
            "cpu:         {}   memory: {} (peak {})   tasks: {}",
            cpu_cell(r),
            human_bytes(r.and_then(|r| r.memory_bytes)),
            human_bytes(r.and_then(|r| r.memory_peak_bytes)),
            r.and_then(|r| r.tasks)
                .map_or("-".into(), |t| t.to_string())
        ),
        format!(
            "depends on:  {}",
            list(
                s.depends_on
                    .iter()
                    .map(|d| format!(
                        "{} ({})",
                        printable(&d.service),
                        serde_json::to_value(d.condition)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    ))
                    .collect()
            )
        ),
        format!(
            "dependents:  {}",
            list(s.dependents.iter().map(|d| printable(d)).collect())
        ),
        format!(
            "reason:      {}",
            s.reason.as_deref().map_or("-".into(), printable)
        ),
        format!(
            "last failure: {}",
            s.last_failure
                .as_ref()
                .map_or("none".into(), |f| printable(&f.reason))
        ),
    ];
    let p = Paragraph::new(text.into_iter().map(Line::raw).collect::<Vec<_>>())
        .wrap(Wrap { trim: false })
        .block(
            Block::new()
                .borders(Borders::TOP)
                .title(format!(" {} ", printable(&s.service))),
        );
    f.render_widget(p, area);
}

fn logs(f: &mut Frame, m: &Model, area: Rect) {
    let title = m
        .current()
        .map(|(_, s)| format!(" journal of {} (following) ", printable(&s.unit)))
        .unwrap_or_default();
    let height = area.height.saturating_sub(1) as usize;
    let skip = m.logs.len().saturating_sub(height);
    let lines: Vec<Line> = m
        .logs
        .iter()
        .skip(skip)
        .map(|l| Line::raw(printable(l)))
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::TOP).title(title)),
        area,
    );
}

fn confirm(f: &mut Frame, workspace: &str, area: Rect) {
    let w = 52.min(area.width);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + area.height / 2 - 2.min(area.height / 2),
        width: w,
        height: 4.min(area.height),
    };
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(vec![
            Line::raw(format!(
                "Stop every process of workspace {}?",
                printable(workspace)
            )),
            Line::raw("y: emergency stop   any other key: cancel"),
        ])
        .block(
            Block::bordered()
                .title(" EMERGENCY STOP ")
                .style(Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)),
        ),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::super::model::tests::report;
    use super::super::model::{Key, Model, Source};
    use super::*;

    fn screen(m: &Model) -> String {
        let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
        t.draw(|f| draw(f, m)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..24)
            .map(|y| {
                (0..80)
                    .map(|x| buf[(x, y)].symbol().to_owned())
                    .collect::<String>()
                    .trim_end()
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn every_service_and_the_keys_fit_80_by_24() {
        let names: Vec<String> = (0..18).map(|i| format!("service-{i:02}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut m = Model::new("robot1");
        m.set_report(report(&refs), Source::Supervisor);
        let s = screen(&m);
        for n in &names {
            assert!(s.contains(n.as_str()), "{n} missing:\n{s}");
        }
        assert!(s.contains("robot: running"), "{s}");
        let row = s.lines().find(|l| l.starts_with(" service-03")).unwrap();
        assert!(
            row.starts_with(
                " service-03      running      healthy   100     0   5s   -     -     0.1s"
            ),
            "{row}"
        );
        assert!(s.contains("live: supervisor"), "{s}");
        assert!(s.lines().last().unwrap().starts_with("↑↓/jk move"), "{s}");
        for col in ["STATE", "HEALTH", "PID", "CPU", "MEM", "BEAT"] {
            assert!(s.contains(col), "{col} missing:\n{s}");
        }
    }

    #[test]
    fn hostile_text_is_printable_and_the_confirmation_names_the_workspace() {
        let mut r = report(&["a"]);
        r.workspaces[0].services[0].reason = Some("\x1b]0;pwned\x07evil".into());
        let mut m = Model::new("localhost");
        m.set_report(r, Source::Systemd);
        let s = screen(&m);
        assert!(!s.contains('\x1b') && !s.contains('\x07'), "{s:?}");
        assert!(s.contains("live: systemd (supervisor down)"), "{s}");
        m.key(Key::Char('S'));
        let s = screen(&m);
        assert!(s.contains("Stop every process of workspace robot?"), "{s}");
    }

    #[test]
    fn details_show_dependencies_and_the_command() {
        let mut r = report(&["a", "b"]);
        r.workspaces[0].services[1].depends_on = vec![krill::runtime::status::Dependency {
            service: "a".into(),
            condition: krill::runtime::names::Condition::Healthy,
        }];
        r.workspaces[0].services[0].dependents = vec!["b".into()];
        let mut m = Model::new("localhost");
        m.set_report(r, Source::Supervisor);
        m.key(Key::Char('d'));
        m.command = Some("/usr/bin/lidar --port 1".into());
        let s = screen(&m);
        assert!(s.contains("dependents:  b"), "{s}");
        assert!(s.contains("command:     /usr/bin/lidar --port 1"), "{s}");
        m.key(Key::Esc);
        m.key(Key::Down);
        m.key(Key::Char('d'));
        assert!(screen(&m).contains("depends on:  a (healthy)"));
    }
}
