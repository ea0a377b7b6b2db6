//! Layer 2: the validated recipe.
//!
//! [`Recipe::parse`] turns YAML text into real types (durations, ports, argv, enums)
//! and checks every rule of the configuration guide plus Krill's own (no shell
//! operators, no cycles, unambiguous unit names). It collects *all* problems before
//! failing, so an operator fixes a recipe in one round.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_saphyr::Spanned;

use crate::error::{Diagnostic, Pos, RecipeError};
use crate::raw::{self, RawDependency, RawExecute, RawHealthCheck, RawPolicy, RawService};
use crate::{duration, shell};

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
    /// `log_dir:` as written. Krill logs to the journal; this is kept for compatibility.
    pub log_dir: Option<String>,
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
    /// `pixi`, `ros2`, `docker` or `shell`.
    pub fn kind(&self) -> &'static str {
        match self {
            Execute::Pixi { .. } => "pixi",
            Execute::Ros2 { .. } => "ros2",
            Execute::Docker { .. } => "docker",
            Execute::Shell { .. } => "shell",
        }
    }
}

/// `started` (default) or `healthy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Condition {
    Started,
    Healthy,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Healthy => "healthy",
        }
    }
}

/// An edge of the DAG: this service waits for `name` to meet `condition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub condition: Condition,
}

/// Health checks. `None` timeouts mean the supervisor's documented default.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum HealthCheck {
    Heartbeat {
        timeout: Duration,
    },
    Tcp {
        port: u16,
        timeout: Option<Duration>,
    },
    Http {
        port: u16,
        /// Default `/health`.
        path: String,
        /// Default 200.
        expected_status: u16,
    },
    Script {
        argv: Vec<String>,
        timeout: Option<Duration>,
    },
}

impl HealthCheck {
    pub fn kind(&self) -> &'static str {
        match self {
            HealthCheck::Heartbeat { .. } => "heartbeat",
            HealthCheck::Tcp { .. } => "tcp",
            HealthCheck::Http { .. } => "http",
            HealthCheck::Script { .. } => "script",
        }
    }
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

/// Longest name we accept for a workspace or service, so that every derived unit
/// name stays well below systemd's 255-byte limit.
pub const MAX_NAME_LEN: usize = 100;

impl Recipe {
    /// Reads and validates a recipe file (see [`read_recipe_file`]).
    pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
        let text = read_recipe_file(path).map_err(|source| RecipeError::Io {
            path: path.to_owned(),
            source,
        })?;
        Recipe::parse(&text, path)
    }

    /// Validates recipe text; `source` names the file in errors and anchors relative
    /// paths.
    pub fn parse(text: &str, source: &Path) -> Result<Recipe, RecipeError> {
        let file = source.display().to_string();
        let raw = parse_raw(text).map_err(|diagnostic| RecipeError::Syntax {
            file: file.clone(),
            diagnostic,
        })?;
        let mut v = Validator::default();
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

/// Largest recipe file accepted, in bytes (1 MiB). Real recipes are a few kB; the cap
/// bounds what one hostile file can cost every `daemon-reload`.
pub const MAX_RECIPE_BYTES: u64 = 1 << 20;

/// Reads a recipe file: a regular file (after symlinks) of at most
/// [`MAX_RECIPE_BYTES`], as UTF-8. A FIFO, a device (`/dev/zero`), a directory or an
/// oversized file is refused without blocking or reading it whole: the file is opened
/// with `O_NONBLOCK` and checked with `fstat` on the opened descriptor.
pub fn read_recipe_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a recipe must be a plain file)",
        ));
    }
    if meta.len() > MAX_RECIPE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "file is {} bytes; the limit for a recipe is {MAX_RECIPE_BYTES}",
                meta.len()
            ),
        ));
    }
    let mut text = String::new();
    // The file may grow after fstat: never read more than the cap.
    f.take(MAX_RECIPE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_RECIPE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("file grew past the recipe limit of {MAX_RECIPE_BYTES} bytes while read"),
        ));
    }
    Ok(text)
}

fn parse_raw(text: &str) -> Result<raw::RawRecipe, Diagnostic> {
    let opts = serde_saphyr::options! { with_snippet: false };
    // The fast path; tracking the field path costs a third more, so it is only done
    // again to explain an error.
    if let Ok(r) = serde_saphyr::from_str_with_options(text, opts.clone()) {
        return Ok(r);
    }
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, opts, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| {
        let pos = e.location().map(Pos::from).unwrap_or_default();
        // The library's message is "line L column C: MSG at line L, column C"; the
        // position is printed in front by us, so keep MSG only.
        let msg = e.to_string();
        let msg = msg.lines().next().unwrap_or("").trim();
        let msg = msg.strip_prefix("error: ").unwrap_or(msg);
        let msg = match msg.split_once(": ") {
            Some((head, rest)) if head.starts_with("line ") => rest,
            _ => msg,
        };
        let msg = match msg.rfind(" at line ") {
            Some(i) => &msg[..i],
            None => msg,
        };
        let msg = match msg {
            m if m.starts_with("duplicate mapping key: ") => {
                format!(
                    "{} is defined twice",
                    &m["duplicate mapping key: ".len()..]
                        .split(',')
                        .next()
                        .unwrap_or("")
                )
            }
            "invalid boolean" => "invalid boolean: expected true or false".to_owned(),
            m => m.to_owned(),
        };
        Diagnostic::new(pos, field_path(text, &path, pos), msg)
    })
}

/// Turns serde's path (`services.?.policy.value`) into ours (`services.lidar.policy`):
/// map keys are spanned, so serde cannot name them; the service is the last one whose
/// key precedes the error.
fn field_path(text: &str, path: &str, at: Pos) -> String {
    #[derive(serde::Deserialize)]
    struct Services {
        #[serde(default)]
        services: IndexMap<raw::SString, serde::de::IgnoredAny>,
    }
    let service = serde_saphyr::from_str::<Services>(text).ok().and_then(|s| {
        s.services
            .keys()
            .rfind(|k| (k.referenced.line(), k.referenced.column()) <= (at.line, at.column))
            .map(|k| k.value.clone())
    });
    let mut parts: Vec<String> = path
        .split('.')
        .filter(|p| *p != "value" && *p != "referenced" && *p != "defined")
        .map(str::to_owned)
        .collect();
    if parts.len() > 1 && parts[0] == "services" && parts[1] == "?" {
        match service {
            Some(s) => parts[1] = s,
            None => parts.truncate(1),
        }
    }
    while parts.last().is_some_and(|p| p == "?") {
        parts.pop();
    }
    let p = parts.join(".");
    if p == "." {
        String::new()
    } else {
        p
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

fn pos<T>(s: &Spanned<T>) -> Pos {
    s.referenced.into()
}

/// A workspace or service name: `^[a-zA-Z0-9_-]+$`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Validator {
    fn err(&mut self, pos: Pos, field: impl Into<String>, msg: impl Into<String>) {
        self.errors.push(Diagnostic::new(pos, field, msg));
    }

    fn name(&mut self, s: &raw::SString, field: &str, what: &str) {
        if !valid_name(&s.value) {
            self.err(
                pos(s),
                field,
                format!(
                    "invalid {what} {:?}: expected only letters, digits, '-' and '_' (^[a-zA-Z0-9_-]+$)",
                    s.value
                ),
            );
        } else if s.value.len() > MAX_NAME_LEN {
            self.err(
                pos(s),
                field,
                format!(
                    "{what} is {} characters long; the limit is {MAX_NAME_LEN}",
                    s.value.len()
                ),
            );
        }
    }

    fn duration(&mut self, s: &raw::SString, field: &str) -> Duration {
        duration::parse(&s.value).unwrap_or_else(|m| {
            self.err(pos(s), field, m);
            Duration::ZERO
        })
    }

    fn port(&mut self, p: &Spanned<i64>, field: &str) -> u16 {
        match u16::try_from(p.value) {
            Ok(v) if v > 0 => v,
            _ => {
                self.err(
                    pos(p),
                    field,
                    format!(
                        "invalid port {}: expected an integer from 1 to 65535",
                        p.value
                    ),
                );
                0
            }
        }
    }

    fn command(&mut self, s: &raw::SString, field: &str) -> Vec<String> {
        let parsed = shell::parse(&s.value).and_then(|argv| match argv[0].chars().next() {
            Some(c @ ('-' | '@' | ':' | '+' | '!' | '|')) => Err(format!(
                "program name must not start with {c:?}: systemd reads it as an ExecStart= prefix"
            )),
            _ => Ok(argv),
        });
        parsed.unwrap_or_else(|m| {
            self.err(pos(s), field, m);
            vec![]
        })
    }

    /// A free-form text that ends up in a unit file: anything but control characters
    /// that systemd cannot represent in the place it goes.
    fn text(&mut self, s: &raw::SString, field: &str, what: &str) -> String {
        if s.value.is_empty() {
            self.err(pos(s), field, format!("{what} must not be empty"));
        } else if s.value.contains('\0') {
            self.err(pos(s), field, format!("{what} must not contain NUL"));
        } else if s.value.contains(['\n', '\r']) {
            self.err(pos(s), field, format!("{what} must be a single line"));
        } else if s.value.contains(|c: char| c.is_control() && c != '\t') {
            self.err(
                pos(s),
                field,
                format!("{what} must not contain control characters"),
            );
        }
        s.value.clone()
    }

    /// A path; it lands unquoted in a unit file (`WorkingDirectory=`), where a
    /// trailing backslash would join the next line to it.
    fn path(&mut self, s: &raw::SString, field: &str, base: &Path) -> PathBuf {
        let t = self.text(s, field, "path");
        if t.ends_with('\\') {
            self.err(
                pos(s),
                field,
                "path must not end with a backslash (systemd would join the next unit line to it)",
            );
        }
        let p = Path::new(&t);
        join(base, p)
    }

    fn recipe(&mut self, r: raw::RawRecipe, source: &Path) -> Option<Recipe> {
        if r.version.value != VERSION {
            self.err(
                pos(&r.version),
                "version",
                format!("unsupported version {:?}: expected \"1\"", r.version.value),
            );
        }
        self.name(&r.name, "name", "workspace name");
        let base_dir = match &r.base_dir {
            Some(b) if Path::new(&b.value).is_absolute() => {
                self.path(b, "base_dir", Path::new("/"))
            }
            Some(b) => {
                self.err(pos(b), "base_dir", "expected an absolute path");
                PathBuf::new()
            }
            None => {
                let dir = source.parent().unwrap_or(Path::new("."));
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned())
            }
        };
        let log_dir = r
            .log_dir
            .as_ref()
            .map(|l| self.text(l, "log_dir", "log_dir"));
        let mut env = Vec::new();
        for (k, v) in &r.env {
            env.push(self.env_entry(k, v, &format!("env.{}", k.value)));
        }
        if r.services.is_empty() {
            self.err(
                Pos::default(),
                "services",
                "a recipe needs at least one service",
            );
        }
        let mut services = IndexMap::new();
        for (name, svc) in &r.services {
            let field = format!("services.{}", name.value);
            self.name(name, &field, "service name");
            let mut s = self.service(&name.value, svc, &field, &base_dir);
            s.pos = pos(name);
            services.insert(name.value.clone(), s);
        }
        self.dependencies(&r, &mut services);
        Some(Recipe {
            name: r.name.value.clone(),
            source: source.to_owned(),
            base_dir,
            log_dir,
            env,
            services,
            warnings: vec![],
        })
    }

    fn env_entry(
        &mut self,
        k: &raw::SString,
        v: &Spanned<raw::Scalar>,
        field: &str,
    ) -> (String, String) {
        let ok = k
            .value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            self.err(
                pos(k),
                field,
                format!(
                    "invalid environment variable name {:?}: expected [A-Za-z_][A-Za-z0-9_]*",
                    k.value
                ),
            );
        }
        if v.value.0.contains('\0') {
            self.err(pos(v), field, "value must not contain NUL");
        }
        (k.value.clone(), v.value.0.clone())
    }

    fn service(&mut self, name: &str, s: &RawService, field: &str, base: &Path) -> Service {
        let execute = self.execute(name, &s.execute, &format!("{field}.execute"), base);
        let health_check = s
            .health_check
            .as_ref()
            .map(|h| self.health_check(h, &format!("{field}.health_check")));
        let policy = s
            .policy
            .as_ref()
            .map(|p| self.policy(p, &format!("{field}.policy")))
            .unwrap_or_default();
        Service {
            name: name.to_owned(),
            pos: Pos::default(),
            execute,
            dependencies: vec![],
            health_check,
            policy,
            critical: s.critical.as_ref().is_some_and(|c| c.value),
            gpu: s.gpu.as_ref().is_some_and(|c| c.value),
        }
    }

    fn execute(&mut self, service: &str, e: &RawExecute, field: &str, base: &Path) -> Execute {
        let kind = e.kind.value.as_str();
        // Which optional fields each type accepts.
        let allowed: &[&str] = match kind {
            "pixi" => &["task", "environment", "stop_task", "working_dir"],
            "ros2" => &[
                "package",
                "launch_file",
                "launch_args",
                "stop_task",
                "working_dir",
                "setup_script",
            ],
            "docker" => &["image", "volumes", "ports", "privileged", "network"],
            "shell" => &["command", "stop_command", "working_dir"],
            _ => {
                self.err(
                    pos(&e.kind),
                    format!("{field}.type"),
                    format!(
                        "unknown execute type {kind:?}: expected one of pixi, ros2, docker, shell"
                    ),
                );
                return Execute::Shell {
                    argv: vec![],
                    stop_argv: None,
                    working_dir: PathBuf::new(),
                };
            }
        };
        let present: [(&str, Option<Pos>); 14] = [
            ("task", e.task.as_ref().map(pos)),
            ("environment", e.environment.as_ref().map(pos)),
            ("stop_task", e.stop_task.as_ref().map(pos)),
            ("working_dir", e.working_dir.as_ref().map(pos)),
            ("package", e.package.as_ref().map(pos)),
            ("launch_file", e.launch_file.as_ref().map(pos)),
            ("launch_args", e.launch_args.as_ref().map(pos)),
            ("setup_script", e.setup_script.as_ref().map(pos)),
            ("image", e.image.as_ref().map(pos)),
            (
                "volumes",
                e.volumes.as_ref().and_then(|v| v.first()).map(pos),
            ),
            ("ports", e.ports.as_ref().and_then(|v| v.first()).map(pos)),
            ("privileged", e.privileged.as_ref().map(pos)),
            ("network", e.network.as_ref().map(pos)),
            ("command", e.command.as_ref().map(pos)),
        ];
        for (f, p) in present {
            if let Some(p) = p {
                if !allowed.contains(&f) {
                    self.err(
                        p,
                        format!("{field}.{f}"),
                        format!("field `{f}` does not apply to execute type {kind}"),
                    );
                }
            }
        }
        if let (Some(sc), false) = (&e.stop_command, allowed.contains(&"stop_command")) {
            self.err(
                pos(sc),
                format!("{field}.stop_command"),
                format!("field `stop_command` does not apply to execute type {kind}"),
            );
        }
        let kpos = pos(&e.kind);
        let required = |v: &mut Self, s: &Option<raw::SString>, f: &str| -> String {
            match s {
                Some(s) => v.text(s, &format!("{field}.{f}"), f),
                None => {
                    v.err(
                        kpos,
                        format!("{field}.{f}"),
                        format!("execute type {kind} requires `{f}`"),
                    );
                    String::new()
                }
            }
        };
        let wd = |v: &mut Self| match &e.working_dir {
            Some(w) => v.path(w, &format!("{field}.working_dir"), base),
            None => base.to_owned(),
        };
        let opt_text = |v: &mut Self, s: &Option<raw::SString>, f: &str| {
            s.as_ref().map(|s| v.text(s, &format!("{field}.{f}"), f))
        };
        match kind {
            "pixi" => Execute::Pixi {
                task: required(self, &e.task, "task"),
                environment: opt_text(self, &e.environment, "environment")
                    .unwrap_or_else(|| service.to_owned()),
                stop_task: opt_text(self, &e.stop_task, "stop_task"),
                working_dir: wd(self),
            },
            "ros2" => Execute::Ros2 {
                package: required(self, &e.package, "package"),
                launch_file: required(self, &e.launch_file, "launch_file"),
                launch_args: e
                    .launch_args
                    .as_ref()
                    .map(|a| {
                        let mut out = BTreeMap::new();
                        for (k, v) in &a.value {
                            if k.is_empty()
                                || k.contains([':', '=', ' ', '\n', '\0'])
                                || v.0.contains(['\n', '\0'])
                            {
                                self.err(
                                    pos(a),
                                    format!("{field}.launch_args.{k}"),
                                    "launch argument names must be non-empty without ':', '=', spaces or NUL, values a single line without NUL",
                                );
                            }
                            out.insert(k.clone(), v.0.clone());
                        }
                        out
                    })
                    .unwrap_or_default(),
                stop_task: opt_text(self, &e.stop_task, "stop_task"),
                working_dir: wd(self),
                setup_script: e
                    .setup_script
                    .as_ref()
                    .map(|s| self.path(s, &format!("{field}.setup_script"), base)),
            },
            "docker" => {
                let image = required(self, &e.image, "image");
                if image.contains(char::is_whitespace) || image.starts_with('-') {
                    self.err(kpos, format!("{field}.image"), format!("invalid image name {image:?}"));
                }
                Execute::Docker {
                    image,
                    volumes: e
                        .volumes
                        .iter()
                        .flatten()
                        .map(|v| self.volume(v, &format!("{field}.volumes"), base))
                        .collect(),
                    ports: e
                        .ports
                        .iter()
                        .flatten()
                        .map(|p| self.port_mapping(p, &format!("{field}.ports")))
                        .collect(),
                    privileged: e.privileged.as_ref().is_some_and(|p| p.value),
                    network: e.network.as_ref().map(|n| {
                        let t = self.text(n, &format!("{field}.network"), "network");
                        if t.contains(char::is_whitespace) {
                            self.err(pos(n), format!("{field}.network"), "network must be one word (bridge, host, none or a network name)");
                        }
                        t
                    }),
                }
            }
            _ => {
                let argv = match &e.command {
                    Some(c) => self.command(c, &format!("{field}.command")),
                    None => {
                        self.err(kpos, format!("{field}.command"), "execute type shell requires `command`");
                        vec![]
                    }
                };
                let working_dir = wd(self);
                let argv = resolve_program(argv, &working_dir);
                let stop_argv = e.stop_command.as_ref().map(|c| {
                    resolve_program(self.command(c, &format!("{field}.stop_command")), &working_dir)
                });
                Execute::Shell { argv, stop_argv, working_dir }
            }
        }
    }

    fn volume(&mut self, v: &raw::SString, field: &str, base: &Path) -> String {
        let t = self.text(v, field, "volume");
        let parts: Vec<&str> = t.split(':').collect();
        if !(2..=3).contains(&parts.len()) || parts[0].is_empty() || !parts[1].starts_with('/') {
            self.err(
                pos(v),
                field,
                format!("invalid volume {t:?}: expected host:container or host:container:options, with an absolute container path"),
            );
            return t;
        }
        let host = parts[0];
        // `./x`, `../x` and other paths with a slash are host paths; a bare word is a
        // named docker volume and stays as it is.
        let host = if host.contains('/') && !host.starts_with('/') {
            join(base, Path::new(host)).display().to_string()
        } else {
            host.to_owned()
        };
        std::iter::once(host.as_str())
            .chain(parts[1..].iter().copied())
            .collect::<Vec<_>>()
            .join(":")
    }

    fn port_mapping(&mut self, p: &raw::SString, field: &str) -> String {
        let t = self.text(p, field, "port mapping");
        let (spec, proto) = match t.split_once('/') {
            Some((s, pr)) => (s, Some(pr)),
            None => (t.as_str(), None),
        };
        let nums: Vec<&str> = spec.rsplitn(3, ':').collect();
        let ok_port = |s: &str| s.parse::<u16>().is_ok_and(|n| n > 0);
        let ok = matches!(proto, None | Some("tcp") | Some("udp") | Some("sctp"))
            && nums.len() >= 2
            && nums[..2].iter().all(|n| ok_port(n));
        if !ok {
            self.err(
                pos(p),
                field,
                format!("invalid port mapping {t:?}: expected host:container with ports 1-65535 (optionally ip: in front and /tcp or /udp after)"),
            );
        }
        t
    }

    fn health_check(&mut self, h: &RawHealthCheck, field: &str) -> HealthCheck {
        let kind = h.kind.value.as_str();
        let allowed: &[&str] = match kind {
            "heartbeat" => &["timeout"],
            "tcp" => &["port", "timeout"],
            "http" => &["port", "path", "expected_status"],
            "script" => &["command", "timeout"],
            _ => {
                self.err(
                    pos(&h.kind),
                    format!("{field}.type"),
                    format!("unknown health check type {kind:?}: expected one of heartbeat, tcp, http, script"),
                );
                return HealthCheck::Heartbeat {
                    timeout: Duration::ZERO,
                };
            }
        };
        for (f, p) in [
            ("timeout", h.timeout.as_ref().map(pos)),
            ("port", h.port.as_ref().map(pos)),
            ("path", h.path.as_ref().map(pos)),
            ("expected_status", h.expected_status.as_ref().map(pos)),
            ("command", h.command.as_ref().map(pos)),
        ] {
            if let (Some(p), false) = (p, allowed.contains(&f)) {
                self.err(
                    p,
                    format!("{field}.{f}"),
                    format!("field `{f}` does not apply to health check type {kind}"),
                );
            }
        }
        let kpos = pos(&h.kind);
        let timeout = |v: &mut Self| {
            h.timeout.as_ref().map(|t| {
                let d = v.duration(t, &format!("{field}.timeout"));
                if d.is_zero() && duration::parse(&t.value).is_ok() {
                    v.err(
                        pos(t),
                        format!("{field}.timeout"),
                        "timeout must be greater than 0",
                    );
                }
                d
            })
        };
        let port = |v: &mut Self| match &h.port {
            Some(p) => v.port(p, &format!("{field}.port")),
            None => {
                v.err(
                    kpos,
                    format!("{field}.port"),
                    format!("health check type {kind} requires `port`"),
                );
                0
            }
        };
        match kind {
            "heartbeat" => {
                let t = timeout(self);
                if t.is_none() {
                    self.err(
                        kpos,
                        format!("{field}.timeout"),
                        "health check type heartbeat requires `timeout`",
                    );
                }
                HealthCheck::Heartbeat {
                    timeout: t.unwrap_or_default(),
                }
            }
            "tcp" => HealthCheck::Tcp {
                port: port(self),
                timeout: timeout(self),
            },
            "http" => {
                let port = port(self);
                let path = h
                    .path
                    .as_ref()
                    .map(|p| self.text(p, &format!("{field}.path"), "path"))
                    .unwrap_or_else(|| "/health".into());
                if !path.starts_with('/') || path.contains(char::is_whitespace) {
                    let p = h.path.as_ref().map(pos).unwrap_or(kpos);
                    self.err(
                        p,
                        format!("{field}.path"),
                        format!(
                            "invalid path {path:?}: expected an absolute URL path such as /health"
                        ),
                    );
                }
                let expected_status = match &h.expected_status {
                    Some(s) if (100..=599).contains(&s.value) => s.value as u16,
                    Some(s) => {
                        self.err(
                            pos(s),
                            format!("{field}.expected_status"),
                            format!("invalid HTTP status {}: expected 100 to 599", s.value),
                        );
                        0
                    }
                    None => 200,
                };
                HealthCheck::Http {
                    port,
                    path,
                    expected_status,
                }
            }
            _ => {
                let argv = match &h.command {
                    Some(c) => self.command(c, &format!("{field}.command")),
                    None => {
                        self.err(
                            kpos,
                            format!("{field}.command"),
                            "health check type script requires `command`",
                        );
                        vec![]
                    }
                };
                HealthCheck::Script {
                    argv,
                    timeout: timeout(self),
                }
            }
        }
    }

    fn policy(&mut self, p: &RawPolicy, field: &str) -> Policy {
        let mut out = Policy::default();
        if let Some(r) = &p.restart {
            out.restart = match r.value.as_str() {
                "never" => Restart::Never,
                "always" => Restart::Always,
                "on-failure" => Restart::OnFailure,
                other => {
                    self.err(pos(r), format!("{field}.restart"), format!("unknown restart policy {other:?}: expected one of never, always, on-failure"));
                    Restart::Never
                }
            };
        }
        if let Some(m) = &p.max_restarts {
            match u32::try_from(m.value) {
                Ok(v) if v < 10_000 => out.max_restarts = v,
                _ => self.err(
                    pos(m),
                    format!("{field}.max_restarts"),
                    format!(
                        "invalid max_restarts {}: expected 0 (unlimited) to 9999",
                        m.value
                    ),
                ),
            }
        }
        if let Some(d) = &p.restart_delay {
            out.restart_delay = self.duration(d, &format!("{field}.restart_delay"));
        }
        if let Some(d) = &p.stop_timeout {
            out.stop_timeout = self.duration(d, &format!("{field}.stop_timeout"));
            if out.stop_timeout.is_zero() && duration::parse(&d.value).is_ok() {
                self.err(
                    pos(d),
                    format!("{field}.stop_timeout"),
                    "stop_timeout must be greater than 0",
                );
            }
        }
        out
    }

    /// Resolves dependency lists; checks missing, self and duplicate dependencies and
    /// cycles.
    fn dependencies(&mut self, r: &raw::RawRecipe, services: &mut IndexMap<String, Service>) {
        for (name, svc) in &r.services {
            let field = format!("services.{}.dependencies", name.value);
            let mut deps: Vec<Dependency> = Vec::new();
            for d in svc.dependencies.iter().flatten() {
                let entries: Vec<(String, Option<String>)> = match &d.value {
                    RawDependency::Bare(n) => vec![(n.clone(), None)],
                    RawDependency::Conditional(m) => {
                        if m.len() != 1 {
                            self.err(
                                pos(d),
                                field.clone(),
                                "write one dependency per list item: `- name: started|healthy`",
                            );
                        }
                        m.iter()
                            .map(|(k, v)| (k.clone(), Some(v.clone())))
                            .collect()
                    }
                };
                for (dep, cond) in entries {
                    let condition = match cond.as_deref() {
                        None | Some("started") => Condition::Started,
                        Some("healthy") => Condition::Healthy,
                        Some(other) => {
                            self.err(
                                pos(d),
                                format!("{field}.{dep}"),
                                format!("unknown condition {other:?}: expected started or healthy"),
                            );
                            Condition::Started
                        }
                    };
                    if dep == name.value {
                        self.err(
                            pos(d),
                            format!("{field}.{dep}"),
                            format!("service {dep:?} depends on itself"),
                        );
                        continue;
                    }
                    let Some(target) = services.get(&dep) else {
                        self.err(pos(d), format!("{field}.{dep}"), format!("unknown service {dep:?}: no service of that name is defined in this recipe"));
                        continue;
                    };
                    let condition = if condition == Condition::Healthy
                        && target.health_check.is_none()
                    {
                        self.warnings.push(Diagnostic::new(pos(d), format!("{field}.{dep}"), format!("service {dep:?} has no health_check; `healthy` is treated as `started`")));
                        Condition::Started
                    } else {
                        condition
                    };
                    if deps.iter().any(|x| x.name == dep) {
                        self.err(
                            pos(d),
                            format!("{field}.{dep}"),
                            format!("dependency {dep:?} is listed twice"),
                        );
                        continue;
                    }
                    deps.push(Dependency {
                        name: dep,
                        condition,
                    });
                }
            }
            if let Some(s) = services.get_mut(&name.value) {
                s.dependencies = deps;
            }
        }
        if let Some(cycle) = find_cycle(services) {
            let first = &cycle[0];
            let p = r
                .services
                .iter()
                .find(|(k, _)| &k.value == first)
                .map(|(k, _)| pos(k))
                .unwrap_or_default();
            self.err(
                p,
                "services",
                format!(
                    "dependency cycle: {} (each depends on the next)",
                    cycle.join(" -> ")
                ),
            );
        }
    }
}

/// `base/rel` without `.` components (`./x` → `base/x`); absolute `rel` stays as is.
fn join(base: &Path, rel: &Path) -> PathBuf {
    let mut out = if rel.is_absolute() {
        PathBuf::new()
    } else {
        base.to_owned()
    };
    for c in rel.components() {
        if c != std::path::Component::CurDir {
            out.push(c);
        }
    }
    out
}

/// A program given as a relative path with a slash (`./run.sh`) is relative to the
/// working directory; systemd itself accepts only absolute paths or bare names.
fn resolve_program(mut argv: Vec<String>, working_dir: &Path) -> Vec<String> {
    if let Some(p) = argv.first_mut() {
        if p.contains('/') && !p.starts_with('/') {
            *p = join(working_dir, Path::new(p.as_str()))
                .display()
                .to_string();
        }
    }
    argv
}

/// Returns one dependency cycle as a closed path (`a -> b -> a`), if there is any.
fn find_cycle(services: &IndexMap<String, Service>) -> Option<Vec<String>> {
    use petgraph::graph::DiGraph;
    let mut g = DiGraph::<&str, ()>::new();
    let idx: IndexMap<&str, _> = services
        .keys()
        .map(|k| (k.as_str(), g.add_node(k.as_str())))
        .collect();
    for (name, s) in services {
        for d in &s.dependencies {
            g.add_edge(idx[name.as_str()], idx[d.name.as_str()], ());
        }
    }
    // Tarjan returns SCCs in reverse topological order; pick the first non-trivial one
    // in recipe order for a stable message.
    let mut sccs: Vec<Vec<_>> = petgraph::algo::tarjan_scc(&g)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    sccs.sort_by_key(|c| c.iter().map(|n| n.index()).min());
    let scc = sccs.into_iter().next()?;
    let start = *scc.iter().min_by_key(|n| n.index())?;
    // Walk inside the SCC, always taking the lowest-index successor not yet visited,
    // until we come back to a visited node; every node of an SCC reaches `start`.
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let mut next: Vec<_> = g.neighbors(cur).filter(|n| scc.contains(n)).collect();
        next.sort_by_key(|n| n.index());
        let n = next
            .iter()
            .copied()
            .find(|n| *n == start)
            .or_else(|| next.iter().copied().find(|n| !path.contains(n)));
        let Some(n) = n else {
            // Dead end within the SCC: take any successor; it closes a cycle.
            let n = next[0];
            let i = path.iter().position(|p| *p == n).unwrap_or(0);
            let mut cyc: Vec<String> = path[i..].iter().map(|p| g[*p].to_owned()).collect();
            cyc.push(g[n].to_owned());
            return Some(cyc);
        };
        path.push(n);
        if n == start {
            return Some(path.iter().map(|p| g[*p].to_owned()).collect());
        }
        cur = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Recipe {
        Recipe::parse(yaml, Path::new("/robot/ws.yaml")).unwrap_or_else(|e| panic!("{e}"))
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
        let long = "x".repeat(MAX_NAME_LEN + 1);
        let e = err(&format!("version: \"1\"\nname: {long}\nservices:\n  a:\n    execute: {{type: shell, command: x}}\n"));
        assert!(e.contains("the limit is 100"), "{e}");
        assert!(err(&format!(
            "{HEAD}  'a b':\n    execute: {{type: shell, command: x}}\n"
        ))
        .contains("invalid service name \"a b\""));
    }
}
