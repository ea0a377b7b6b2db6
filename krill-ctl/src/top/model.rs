//! The state of `krill top` and what each key does to it. No terminal and no bus
//! here: the loop ([`super::run`]) feeds reports and keys in and carries actions out.

use std::collections::VecDeque;

use krill::runtime::status::{Report, ServiceStatus, WorkspaceStatus};

/// Lines of a service's journal the logs view keeps (the newest).
pub const LOG_LINES: usize = 500;

/// A key, as the views understand it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Up,
    Down,
    Enter,
    Esc,
    Char(char),
}

/// What is on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// Every workspace and service.
    List,
    /// The selected service: unit, command, dependencies, dependents, last failure.
    Details,
    /// The selected service's journal, following.
    Logs,
    /// "Emergency stop workspace W? y/N".
    Confirm { workspace: String },
}

/// Where the figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// krill-supervisor's `GetStatus`, refreshed on its `StateChanged` signals.
    Supervisor,
    /// systemd's facts (the supervisor is down), refreshed on systemd's signals.
    Systemd,
}

/// What the loop must do for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Restart {
        unit: String,
    },
    /// The service's unit and its dependents' (transitively), as `krill stop W/S`.
    Stop {
        units: Vec<String>,
    },
    EmergencyStop {
        workspace: String,
    },
    /// Follow this unit's journal (the logs view opened).
    FollowLogs {
        unit: String,
    },
    /// Read this unit's command (the details view opened).
    ReadCommand {
        unit: String,
    },
    /// The logs view closed: stop following.
    StopLogs,
    Quit,
}

/// All `krill top` shows.
#[derive(Debug)]
pub struct Model {
    /// The host the view is of (`localhost`, or `-H`/`-M`'s).
    pub host: String,
    pub report: Report,
    pub source: Source,
    /// Index into [`Model::rows`].
    pub selected: usize,
    pub view: View,
    /// The selected service's command line (details view), once read.
    pub command: Option<String>,
    /// The selected service's journal (logs view), oldest first.
    pub logs: VecDeque<String>,
    /// The outcome of the latest action, or why the figures may be stale.
    pub message: Option<String>,
}

impl Model {
    pub fn new(host: &str) -> Model {
        Model {
            host: host.to_owned(),
            report: Report {
                version: krill::runtime::status::VERSION,
                workspaces: vec![],
                skipped_recipes: vec![],
            },
            source: Source::Supervisor,
            selected: 0,
            view: View::List,
            command: None,
            logs: VecDeque::new(),
            message: None,
        }
    }

    /// Every service, in workspace order.
    pub fn rows(&self) -> Vec<(&WorkspaceStatus, &ServiceStatus)> {
        self.report
            .workspaces
            .iter()
            .flat_map(|w| w.services.iter().map(move |s| (w, s)))
            .collect()
    }

    /// The selected service, if any.
    pub fn current(&self) -> Option<(&WorkspaceStatus, &ServiceStatus)> {
        self.rows().get(self.selected).copied()
    }

    /// Takes a new report; the selection stays on the same service if it still exists.
    pub fn set_report(&mut self, report: Report, source: Source) {
        let was = self
            .current()
            .map(|(w, s)| (w.workspace.clone(), s.service.clone()));
        self.report = report;
        self.source = source;
        let rows = self.rows();
        self.selected = was
            .and_then(|(w, s)| {
                rows.iter()
                    .position(|(rw, rs)| rw.workspace == w && rs.service == s)
            })
            .unwrap_or(self.selected.min(rows.len().saturating_sub(1)));
    }

    /// Appends a journal line to the logs view.
    pub fn log_line(&mut self, line: String) {
        if self.logs.len() == LOG_LINES {
            self.logs.pop_front();
        }
        self.logs.push_back(line);
    }

    /// The selected service's unit and those of everything that depends on it,
    /// transitively (`dependents` in the report).
    pub fn stop_set(&self) -> Vec<String> {
        let Some((w, s)) = self.current() else {
            return vec![];
        };
        let mut names = vec![s.service.as_str()];
        let mut i = 0;
        while i < names.len() {
            if let Some(svc) = w.services.iter().find(|x| x.service == names[i]) {
                for d in &svc.dependents {
                    if !names.contains(&d.as_str()) {
                        names.push(d);
                    }
                }
            }
            i += 1;
        }
        names
            .iter()
            .filter_map(|n| w.services.iter().find(|x| x.service == *n))
            .map(|x| x.unit.clone())
            .collect()
    }

    /// Applies key `k`; returns what the loop must do.
    pub fn key(&mut self, k: Key) -> Option<Action> {
        // An outcome stays on screen until the next key.
        self.message = None;
        match self.view.clone() {
            View::List => self.list_key(k),
            View::Details | View::Logs => match k {
                Key::Esc | Key::Char('q') | Key::Enter | Key::Char('d') => {
                    let was_logs = self.view == View::Logs;
                    self.view = View::List;
                    was_logs.then_some(Action::StopLogs)
                }
                _ => None,
            },
            View::Confirm { workspace } => {
                self.view = View::List;
                if matches!(k, Key::Char('y' | 'Y')) {
                    Some(Action::EmergencyStop { workspace })
                } else {
                    self.message = Some(format!("emergency stop of {workspace} cancelled"));
                    None
                }
            }
        }
    }

    fn list_key(&mut self, k: Key) -> Option<Action> {
        let n = self.rows().len();
        let unit = self.current().map(|(_, s)| s.unit.clone());
        match k {
            Key::Up | Key::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
                None
            }
            Key::Down | Key::Char('j') => {
                self.selected = (self.selected + 1).min(n.saturating_sub(1));
                None
            }
            Key::Char('q') => Some(Action::Quit),
            Key::Enter => unit.map(|unit| {
                self.view = View::Logs;
                self.logs.clear();
                Action::FollowLogs { unit }
            }),
            Key::Char('d') => unit.map(|unit| {
                self.view = View::Details;
                self.command = None;
                Action::ReadCommand { unit }
            }),
            Key::Char('r') => unit.map(|unit| Action::Restart { unit }),
            Key::Char('s') => unit.map(|_| Action::Stop {
                units: self.stop_set(),
            }),
            Key::Char('S') => {
                let ws = self
                    .current()
                    .map(|(w, _)| w.workspace.clone())
                    .or_else(|| self.report.workspaces.first().map(|w| w.workspace.clone()));
                if let Some(workspace) = ws {
                    self.view = View::Confirm { workspace };
                }
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use krill::runtime::status::WorkspaceState;

    pub(crate) fn service(name: &str) -> ServiceStatus {
        serde_json::from_value(serde_json::json!({
            "service": name, "unit": format!("krill-robot-{name}.service"),
            "state": "active", "sub_state": "running", "health": "healthy",
            "reason": null, "pid": 100, "restarts": 0, "uptime_s": 5, "result": "success",
            "heartbeat_age_s": 0.1, "last_failure": null, "ok": true
        }))
        .unwrap()
    }

    pub(crate) fn report(names: &[&str]) -> Report {
        Report {
            version: 1,
            workspaces: vec![WorkspaceStatus {
                workspace: "robot".into(),
                target: "krill-robot.target".into(),
                state: WorkspaceState::Running,
                detail: None,
                services: names.iter().map(|n| service(n)).collect(),
            }],
            skipped_recipes: vec![],
        }
    }

    #[test]
    fn keys_move_and_act_on_the_selected_service() {
        let mut m = Model::new("localhost");
        m.set_report(report(&["a", "b", "c"]), Source::Supervisor);
        assert_eq!(m.key(Key::Char('j')), None);
        assert_eq!(m.key(Key::Down), None);
        assert_eq!(m.key(Key::Down), None, "stays on the last row");
        assert_eq!(m.current().unwrap().1.service, "c");
        assert_eq!(m.key(Key::Char('k')), None);
        assert_eq!(
            m.key(Key::Char('r')),
            Some(Action::Restart {
                unit: "krill-robot-b.service".into()
            })
        );
        assert_eq!(
            m.key(Key::Char('s')),
            Some(Action::Stop {
                units: vec!["krill-robot-b.service".into()]
            })
        );
        assert_eq!(m.key(Key::Up), None);
        assert_eq!(m.key(Key::Up), None);
        assert_eq!(m.selected, 0);
        assert_eq!(m.key(Key::Char('q')), Some(Action::Quit));
    }

    #[test]
    fn emergency_stop_needs_a_yes() {
        let mut m = Model::new("localhost");
        m.set_report(report(&["a"]), Source::Supervisor);
        assert_eq!(m.key(Key::Char('S')), None);
        assert!(matches!(m.view, View::Confirm { .. }));
        assert_eq!(m.key(Key::Char('n')), None);
        assert_eq!(m.view, View::List);
        m.key(Key::Char('S'));
        assert_eq!(m.key(Key::Char('q')), None, "q cancels, it does not quit");
        m.key(Key::Char('S'));
        assert_eq!(
            m.key(Key::Char('y')),
            Some(Action::EmergencyStop {
                workspace: "robot".into()
            })
        );
    }

    #[test]
    fn views_open_and_close() {
        let mut m = Model::new("localhost");
        m.set_report(report(&["a"]), Source::Supervisor);
        assert_eq!(
            m.key(Key::Enter),
            Some(Action::FollowLogs {
                unit: "krill-robot-a.service".into()
            })
        );
        assert_eq!(m.view, View::Logs);
        assert_eq!(m.key(Key::Char('r')), None, "no actions from the logs view");
        assert_eq!(m.key(Key::Esc), Some(Action::StopLogs));
        assert_eq!(
            m.key(Key::Char('d')),
            Some(Action::ReadCommand {
                unit: "krill-robot-a.service".into()
            })
        );
        assert_eq!(m.key(Key::Char('q')), None);
        assert_eq!(m.view, View::List);
    }

    #[test]
    fn the_selection_follows_its_service_across_reports() {
        let mut m = Model::new("localhost");
        m.set_report(report(&["a", "b", "c"]), Source::Supervisor);
        m.key(Key::Down);
        m.key(Key::Down);
        m.set_report(report(&["x", "c"]), Source::Systemd);
        assert_eq!(m.current().unwrap().1.service, "c");
        m.set_report(report(&["x"]), Source::Systemd);
        assert_eq!(m.selected, 0);
        m.set_report(report(&[]), Source::Systemd);
        assert_eq!(m.key(Key::Char('r')), None);
        assert_eq!(m.key(Key::Enter), None);
    }

    #[test]
    fn stop_takes_the_dependents_along_transitively() {
        let mut r = report(&["a", "b", "c", "d"]);
        r.workspaces[0].services[0].dependents = vec!["b".into()];
        r.workspaces[0].services[1].dependents = vec!["c".into(), "a".into()];
        let mut m = Model::new("localhost");
        m.set_report(r, Source::Supervisor);
        assert_eq!(
            m.stop_set(),
            ["a", "b", "c"].map(|n| format!("krill-robot-{n}.service"))
        );
    }

    #[test]
    fn the_log_keeps_the_newest_lines() {
        let mut m = Model::new("localhost");
        for i in 0..LOG_LINES + 3 {
            m.log_line(i.to_string());
        }
        assert_eq!(m.logs.len(), LOG_LINES);
        assert_eq!(m.logs.front().unwrap(), "3");
    }
}
