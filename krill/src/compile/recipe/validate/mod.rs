//! Validation: raw serde structs ([`crate::compile::raw`]) → [`Recipe`], one
//! validator per section (`execute`, `health`, `policy`, `dependencies`), the shared
//! field checks here. Every problem is collected, with its position and field path,
//! before failing, so an operator fixes a recipe in one round.

pub(crate) mod dependencies;
mod execute;
mod health;
mod logs;
mod policy;
mod ready;
pub(crate) mod resources;

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_saphyr::Spanned;

use super::{Recipe, Service, VERSION};
use crate::compile::error::{Diagnostic, Pos};
use crate::compile::raw::{self, RawService};
use crate::compile::{duration, shell};
use crate::runtime::names::{valid_name, MAX_NAME_LEN};

pub(crate) use dependencies::{cycle_diagnostic, topological_order};

/// Diagnostics collected while validating one recipe.
#[derive(Default)]
pub(super) struct Validator {
    pub(super) errors: Vec<Diagnostic>,
    pub(super) warnings: Vec<Diagnostic>,
}

fn pos<T>(s: &Spanned<T>) -> Pos {
    s.referenced.into()
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

    pub(super) fn recipe(&mut self, r: raw::RawRecipe, source: &Path) -> Option<Recipe> {
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
        let logs = self.logs(&r, &base_dir);
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
            logs,
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
            user: s
                .user
                .as_ref()
                .map(|u| self.account(u, &format!("{field}.user"), "user")),
            group: s
                .group
                .as_ref()
                .map(|g| self.account(g, &format!("{field}.group"), "group")),
            resources: s
                .resources
                .as_ref()
                .map(|r| self.resources(r, &format!("{field}.resources")))
                .unwrap_or_default(),
            ready: s
                .ready
                .as_ref()
                .and_then(|r| self.ready(r, &format!("{field}.ready"), base)),
            hooks: s
                .hooks
                .as_ref()
                .map(|h| self.hooks(h, &format!("{field}.hooks"), base))
                .unwrap_or_default(),
            working_dir_written: s.execute.working_dir.is_some(),
            ext_pos: super::ExtensionPositions {
                user: s.user.as_ref().map(pos).unwrap_or_default(),
                group: s.group.as_ref().map(pos).unwrap_or_default(),
                cpu_affinity: s
                    .resources
                    .as_ref()
                    .and_then(|r| r.cpu_affinity.as_ref())
                    .map(pos)
                    .unwrap_or_default(),
            },
        }
    }
}

impl Validator {
    fn hooks(&mut self, h: &raw::RawHooks, field: &str, base: &Path) -> super::Hooks {
        let mut list = |v: &Option<Vec<raw::SString>>, name: &str| -> Vec<Vec<String>> {
            v.iter()
                .flatten()
                .enumerate()
                .map(|(i, c)| {
                    resolve_program(self.command(c, &format!("{field}.{name}[{i}]")), base)
                })
                .collect()
        };
        super::Hooks {
            pre_start: list(&h.pre_start, "pre_start"),
            post_start: list(&h.post_start, "post_start"),
            pre_stop: list(&h.pre_stop, "pre_stop"),
            post_stop: list(&h.post_stop, "post_stop"),
            on_restart: list(&h.on_restart, "on_restart"),
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
