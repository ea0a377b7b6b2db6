//! Layer 2: the validated recipe, the model every later layer reads.
//!
//! [`Recipe::parse`] turns YAML text into real types (durations, ports, argv, enums)
//! and checks every rule of the configuration guide plus Krill's own (no shell
//! operators, no cycles, unambiguous unit names): [`file`] reads the file, [`yaml`]
//! parses it and explains syntax errors, [`validate`] checks each section.

mod file;
mod shape;
pub(crate) mod validate;
mod yaml;

pub use crate::runtime::check::{HealthCheck, HealthKind};
pub use crate::runtime::names::Condition;
pub use file::{read_recipe_file, MAX_RECIPE_BYTES};
pub(crate) use validate::{cycle_diagnostic, topological_order};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;

use crate::compile::error::{Diagnostic, Pos, RecipeError};

/// The only recipe schema version.
pub const VERSION: &str = "1";

/// A validated recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// Workspace name (`name:`), `^[a-zA-Z0-9_-]+$`.
    pub name: String,
    /// The file this recipe was read from, as given.
    pub source: PathBuf,
    /// Directory that relative paths resolve against: `base_dir:` if set, else the
    /// directory of `source`.
    pub base_dir: PathBuf,
    /// `log_dir:` (and the extension `log_rotate:`): per-service log files besides the
    /// journal; `None`: the journal only.
    pub logs: Option<crate::runtime::logfiles::LogFiles>,
    /// Global environment, in recipe order.
    pub env: Vec<(String, String)>,
    /// Services in recipe order.
    pub services: IndexMap<String, Service>,
    /// Problems that do not stop the recipe (e.g. `healthy` on a service without check).
    pub warnings: Vec<Diagnostic>,
}

/// One service.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    /// Where the service's name is written in the recipe.
    pub pos: Pos,
    pub execute: Execute,
    pub dependencies: Vec<Dependency>,
    pub health_check: Option<HealthCheck>,
    pub policy: Policy,
    /// Default false. A critical service that fails for good stops the workspace.
    pub critical: bool,
    /// Default false. Check for a usable GPU before every start.
    pub gpu: bool,
    /// Krill extension: the user it runs as (`User=`); `None`: root.
    pub user: Option<String>,
    /// Krill extension: its primary group (`Group=`); `None`: the user's.
    pub group: Option<String>,
    /// Whether `execute.working_dir` is written (else it is the recipe's directory, and
    /// a `user:` service starts in its home instead).
    pub working_dir_written: bool,
    /// Where `user:`, `group:` and `resources.cpu_affinity:` are written: the
    /// machine checks ([`Recipe::machine_problems`]) point there.
    pub ext_pos: ExtensionPositions,
    /// Krill extension: its limits; all `None`/empty by default (no limit).
    pub resources: Resources,
    /// Krill extension: when it counts as started; `None`: once spawned.
    pub ready: Option<crate::runtime::ready::Ready>,
    /// Krill extension: commands around its life; empty by default.
    pub hooks: Hooks,
}

/// `hooks:` (a krill extension): argv lists, in recipe order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub pre_start: Vec<Vec<String>>,
    pub post_start: Vec<Vec<String>>,
    pub pre_stop: Vec<Vec<String>>,
    pub post_stop: Vec<Vec<String>>,
    pub on_restart: Vec<Vec<String>>,
}

/// Positions of the fields [`Recipe::machine_problems`] checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionPositions {
    pub user: Pos,
    pub group: Pos,
    pub cpu_affinity: Pos,
}

/// `resources:` (a krill extension). `None` or empty: systemd's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU numbers, sorted, each once (`CPUAffinity=`).
    pub cpu_affinity: Vec<u32>,
    /// % of one CPU per second (`CPUQuota=`), at least 1.
    pub cpu_quota_percent: Option<u32>,
    /// Bytes (`MemoryMax=`).
    pub memory_max: Option<u64>,
    /// Bytes (`MemoryHigh=`).
    pub memory_high: Option<u64>,
    /// -20 to 19 (`Nice=`).
    pub nice: Option<i8>,
    /// 1 to 10000 (`IOWeight=`).
    pub io_weight: Option<u16>,
    /// At least 1 (`TasksMax=`).
    pub tasks_max: Option<u32>,
    pub realtime: Option<Realtime>,
}

/// Real-time scheduling (`CPUSchedulingPolicy=`, `CPUSchedulingPriority=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Realtime {
    /// `fifo` or `rr`.
    pub policy: RealtimePolicy,
    /// 1 to 99.
    pub priority: u8,
}

/// A real-time scheduling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealtimePolicy {
    Fifo,
    RoundRobin,
}

impl RealtimePolicy {
    /// systemd's name (`CPUSchedulingPolicy=`).
    pub fn as_systemd(self) -> &'static str {
        match self {
            RealtimePolicy::Fifo => "fifo",
            RealtimePolicy::RoundRobin => "rr",
        }
    }
}

/// How a service runs. Working directories are absolute after validation.
#[derive(Debug, Clone, PartialEq)]
pub enum Execute {
    Pixi {
        task: String,
        /// Default: the service name (configuration guide).
        environment: String,
        stop_task: Option<String>,
        working_dir: PathBuf,
    },
    Ros2 {
        package: String,
        launch_file: String,
        /// Sorted by key, so the command line is stable.
        launch_args: BTreeMap<String, String>,
        stop_task: Option<String>,
        working_dir: PathBuf,
        setup_script: Option<PathBuf>,
    },
    Docker {
        image: String,
        /// `host:container[:opts]`, with relative host paths made absolute.
        volumes: Vec<String>,
        ports: Vec<String>,
        /// Default false.
        privileged: bool,
        network: Option<String>,
    },
    Shell {
        argv: Vec<String>,
        stop_argv: Option<Vec<String>>,
        working_dir: PathBuf,
    },
}

impl Execute {
    /// Which execute type this is.
    pub fn kind(&self) -> ExecuteKind {
        match self {
            Execute::Pixi { .. } => ExecuteKind::Pixi,
            Execute::Ros2 { .. } => ExecuteKind::Ros2,
            Execute::Docker { .. } => ExecuteKind::Docker,
            Execute::Shell { .. } => ExecuteKind::Shell,
        }
    }
}

/// The execute types: the one list that validation, the JSON schema and unit
/// descriptions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecuteKind {
    Pixi,
    Ros2,
    Docker,
    Shell,
}

impl ExecuteKind {
    /// Every execute type, in the order the documentation lists them.
    pub const ALL: [ExecuteKind; 4] = [
        ExecuteKind::Pixi,
        ExecuteKind::Ros2,
        ExecuteKind::Docker,
        ExecuteKind::Shell,
    ];

    /// The `type:` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecuteKind::Pixi => "pixi",
            ExecuteKind::Ros2 => "ros2",
            ExecuteKind::Docker => "docker",
            ExecuteKind::Shell => "shell",
        }
    }

    /// The kind written as `s`, if any.
    pub fn parse(s: &str) -> Option<ExecuteKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The optional and required fields this type takes besides `type`.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            ExecuteKind::Pixi => &["task", "environment", "stop_task", "working_dir"],
            ExecuteKind::Ros2 => &[
                "package",
                "launch_file",
                "launch_args",
                "stop_task",
                "working_dir",
                "setup_script",
            ],
            ExecuteKind::Docker => &["image", "volumes", "ports", "privileged", "network"],
            ExecuteKind::Shell => &["command", "stop_command", "working_dir"],
        }
    }

    /// The fields this type cannot run without.
    pub fn required(self) -> &'static [&'static str] {
        match self {
            ExecuteKind::Pixi => &["task"],
            ExecuteKind::Ros2 => &["package", "launch_file"],
            ExecuteKind::Docker => &["image"],
            ExecuteKind::Shell => &["command"],
        }
    }
}

impl std::fmt::Display for ExecuteKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An edge of the DAG: this service waits for `name` to meet `condition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub condition: Condition,
}

/// `never` (default), `always` or `on-failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Never,
    Always,
    OnFailure,
}

/// Restart and stop behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub restart: Restart,
    /// Exactly this many automatic restarts, then the service fails for good.
    /// Default 0 = unlimited.
    pub max_restarts: u32,
    /// Default 1 s.
    pub restart_delay: Duration,
    /// Time from SIGTERM to SIGKILL of the whole process tree. Default 10 s.
    pub stop_timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            restart: Restart::Never,
            max_restarts: 0,
            restart_delay: Duration::from_secs(1),
            stop_timeout: Duration::from_secs(10),
        }
    }
}

impl Recipe {
    /// Reads and validates a recipe file (see [`read_recipe_file`]).
    pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
        let text = read_recipe_file(path).map_err(|source| RecipeError::Io {
            path: path.to_owned(),
            source,
        })?;
        Recipe::parse(&text, path)
    }

    /// What this machine lacks for the recipe: a `user:` or `group:` it does not
    /// have, CPUs of an affinity beyond its CPU count. Errors for `krill install`,
    /// warnings for `render` and the generator (the recipe may be meant for another
    /// machine, or the account may come later).
    pub fn machine_problems(&self) -> Vec<Diagnostic> {
        use crate::runtime::host;
        let cpus = host::cpu_count();
        let mut out = vec![];
        let user_manager = crate::runtime::scope::is_user();
        for (name, s) in &self.services {
            let field = |f: &str| format!("services.{name}.{f}");
            if user_manager {
                // What only root may do: a user manager fails such a start.
                let mut root_only = vec![];
                if s.user.is_some() {
                    root_only.push((
                        s.ext_pos.user,
                        "user",
                        "user: (a user workspace runs as its user)",
                    ));
                }
                if s.group.is_some() {
                    root_only.push((
                        s.ext_pos.group,
                        "group",
                        "group: (a user workspace runs with its user's groups)",
                    ));
                }
                if s.resources.realtime.is_some() {
                    root_only.push((s.pos, "resources.realtime", "realtime scheduling"));
                }
                if s.resources.nice.is_some_and(|n| n < 0) {
                    root_only.push((s.pos, "resources.nice", "a negative nice"));
                }
                for (pos, f, what) in root_only {
                    out.push(Diagnostic::new(
                        pos,
                        field(f),
                        format!("{what} needs the system manager: install it without --user"),
                    ));
                }
            }
            if let Some(u) = &s.user {
                if host::user(u).is_none() && !user_manager {
                    out.push(Diagnostic::new(
                        s.ext_pos.user,
                        field("user"),
                        format!("no user {u:?} on this machine"),
                    ));
                }
            }
            if let Some(g) = &s.group {
                if !host::group_exists(g) && !user_manager {
                    out.push(Diagnostic::new(
                        s.ext_pos.group,
                        field("group"),
                        format!("no group {g:?} on this machine"),
                    ));
                }
            }
            if let (Some(max), Some(n)) = (s.resources.cpu_affinity.last(), cpus) {
                if *max >= n {
                    out.push(Diagnostic::new(
                        s.ext_pos.cpu_affinity,
                        field("resources.cpu_affinity"),
                        format!(
                            "CPU {max} does not exist: this machine has {n} (0 to {})",
                            n - 1
                        ),
                    ));
                }
            }
        }
        out
    }

    /// This recipe with [`Recipe::machine_problems`] added to its warnings.
    pub fn with_machine_warnings(mut self) -> Recipe {
        let lacking = self.machine_problems();
        self.warnings.extend(lacking);
        self
    }

    /// Validates recipe text; `source` names the file in errors and anchors relative
    /// paths.
    pub fn parse(text: &str, source: &Path) -> Result<Recipe, RecipeError> {
        let file = source.display().to_string();
        let raw = yaml::parse_raw(text).map_err(|diagnostic| {
            // serde stopped at the first problem; the shape check finds them all.
            let mut all = shape::check(text);
            if all.is_empty() {
                return RecipeError::Syntax {
                    file: file.clone(),
                    diagnostic,
                };
            }
            if !all.iter().any(|d| d.pos.line == diagnostic.pos.line) {
                all.push(diagnostic);
                all.sort_by_key(|d| (d.pos.line, d.pos.column));
            }
            RecipeError::Invalid {
                file: file.clone(),
                diagnostics: all,
            }
        })?;
        let mut v = validate::Validator::default();
        let recipe = v.recipe(raw, source);
        if v.errors.is_empty() {
            let mut recipe = recipe.expect("no errors implies a recipe");
            recipe.warnings = v.warnings;
            Ok(recipe)
        } else {
            v.errors.sort_by_key(|d| (d.pos.line, d.pos.column));
            Err(RecipeError::Invalid {
                file,
                diagnostics: v.errors,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    fn parse(yaml: &str) -> Recipe {
        Recipe::parse(yaml, Path::new("/robot/ws.yaml")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_machine_lacks_a_user_a_group_or_a_cpu() {
        let r = parse(
            "version: \"1\"\nname: ws\nservices:\n  a:\n    execute: {type: shell, command: x}\n    user: krill-no-such-user\n    group: krill-no-such-group\n    resources: {cpu_affinity: [0, 8191]}\n  b:\n    execute: {type: shell, command: x}\n    user: root\n    resources: {cpu_affinity: 0}\n",
        );
        let p = r.machine_problems();
        let text: Vec<String> = p
            .iter()
            .map(|d| d.display_in("ws.yaml").to_string())
            .collect();
        assert_eq!(p.len(), 3, "{text:?}");
        assert_eq!(
            text[0],
            "ws.yaml:6:11: services.a.user: no user \"krill-no-such-user\" on this machine"
        );
        assert!(
            text[1].starts_with("ws.yaml:7:12: services.a.group: no group"),
            "{text:?}"
        );
        assert!(
            text[2].starts_with(
                "ws.yaml:8:31: services.a.resources.cpu_affinity: CPU 8191 does not exist"
            ),
            "{text:?}"
        );
    }

    fn err(yaml: &str) -> String {
        Recipe::parse(yaml, Path::new("ws.yaml"))
            .unwrap_err()
            .to_string()
    }

    const HEAD: &str = "version: \"1\"\nname: ws\nservices:\n";

    #[test]
    fn defaults_follow_the_configuration_guide() {
        let r = parse(&format!(
            "{HEAD}  a:\n    execute: {{type: pixi, task: run}}\n    health_check: {{type: http, port: 80}}\n  b:\n    execute: {{type: shell, command: x}}\n    dependencies: [a]\n"
        ));
        let a = &r.services["a"];
        assert_eq!(
            a.policy,
            Policy {
                restart: Restart::Never,
                max_restarts: 0,
                restart_delay: Duration::from_secs(1),
                stop_timeout: Duration::from_secs(10)
            }
        );
        assert!(!a.critical && !a.gpu);
        assert_eq!(
            a.health_check,
            Some(HealthCheck::Http {
                port: 80,
                path: "/health".into(),
                expected_status: 200
            })
        );
        match &a.execute {
            Execute::Pixi {
                environment,
                working_dir,
                stop_task,
                ..
            } => {
                assert_eq!(
                    environment, "a",
                    "pixi environment defaults to the service name"
                );
                assert_eq!(
                    working_dir,
                    Path::new("/robot"),
                    "working_dir defaults to the recipe's directory"
                );
                assert_eq!(stop_task, &None);
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(
            r.services["b"].dependencies,
            vec![Dependency {
                name: "a".into(),
                condition: Condition::Started
            }]
        );
        assert!(r.env.is_empty());
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn relative_paths_resolve_against_the_recipe_directory_or_base_dir() {
        let y = format!("{HEAD}  a:\n    execute: {{type: shell, command: ./run.sh --x, working_dir: sub}}\n  d:\n    execute: {{type: docker, image: i, volumes: ['./m:/m:ro', 'named:/n', '/abs:/a']}}\n");
        let r = parse(&y);
        assert_eq!(
            r.services["a"].execute,
            Execute::Shell {
                argv: vec!["/robot/sub/run.sh".into(), "--x".into()],
                stop_argv: None,
                working_dir: "/robot/sub".into()
            }
        );
        match &r.services["d"].execute {
            Execute::Docker { volumes, .. } => {
                assert_eq!(volumes, &["/robot/m:/m:ro", "named:/n", "/abs:/a"])
            }
            e => panic!("{e:?}"),
        }
        let r = parse(&y.replace("version", "base_dir: /opt/ws\nversion"));
        assert_eq!(r.base_dir, Path::new("/opt/ws"));
        assert!(
            matches!(&r.services["a"].execute, Execute::Shell { working_dir, .. } if working_dir == Path::new("/opt/ws/sub"))
        );
    }

    #[test]
    fn launch_args_are_sorted_and_scalars_kept_as_written() {
        let r = parse(&format!("{HEAD}  n:\n    execute:\n      type: ros2\n      package: p\n      launch_file: l.py\n      launch_args: {{z: 1, a: true, m: x}}\n"));
        match &r.services["n"].execute {
            Execute::Ros2 { launch_args, .. } => {
                let v: Vec<(&str, &str)> = launch_args
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                assert_eq!(v, [("a", "true"), ("m", "x"), ("z", "1")]);
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn healthy_on_a_service_without_check_is_a_warning_and_means_started() {
        let r = parse(&format!("{HEAD}  a:\n    execute: {{type: shell, command: x}}\n  b:\n    execute: {{type: shell, command: x}}\n    dependencies:\n      - a: healthy\n"));
        assert_eq!(
            r.services["b"].dependencies[0].condition,
            Condition::Started
        );
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].message.contains("has no health_check"));
        assert_eq!(r.warnings[0].pos, Pos { line: 9, column: 9 });
    }

    #[test]
    fn self_dependency_and_missing_dependency_are_errors() {
        let e = err(&format!(
            "{HEAD}  a:\n    execute: {{type: shell, command: x}}\n    dependencies: [a, b]\n"
        ));
        assert!(
            e.contains("ws.yaml:6:20: services.a.dependencies.a: service \"a\" depends on itself"),
            "{e}"
        );
        assert!(e.contains("unknown service \"b\""), "{e}");
    }

    #[test]
    fn cycles_are_reported_with_the_full_path() {
        let e = err(&format!("{HEAD}  a: {{execute: {{type: shell, command: x}}, dependencies: [b]}}\n  b: {{execute: {{type: shell, command: x}}, dependencies: [a]}}\n"));
        assert!(
            e.ends_with("dependency cycle: a -> b -> a (each depends on the next)"),
            "{e}"
        );
    }

    #[test]
    fn names_and_lengths_are_checked() {
        let long = "x".repeat(crate::runtime::names::MAX_NAME_LEN + 1);
        let e = err(&format!("version: \"1\"\nname: {long}\nservices:\n  a:\n    execute: {{type: shell, command: x}}\n"));
        assert!(e.contains("the limit is 100"), "{e}");
        assert!(err(&format!(
            "{HEAD}  'a b':\n    execute: {{type: shell, command: x}}\n"
        ))
        .contains("invalid service name \"a b\""));
    }
}
