//! `execute:`: which fields each execute type takes, and their values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{join, pos, resolve_program, Validator};
use crate::compile::error::{suggest, Pos};
use crate::compile::raw::{self, RawExecute};
use crate::compile::recipe::{Execute, ExecuteKind};

impl Validator {
    pub(super) fn execute(
        &mut self,
        service: &str,
        e: &RawExecute,
        field: &str,
        base: &Path,
    ) -> Execute {
        let Some(kind) = ExecuteKind::parse(&e.kind.value) else {
            self.err(
                pos(&e.kind),
                format!("{field}.type"),
                format!(
                    "unknown execute type {:?}: {}",
                    e.kind.value,
                    suggest(&e.kind.value, &ExecuteKind::ALL.map(ExecuteKind::as_str))
                ),
            );
            return Execute::Shell {
                argv: vec![],
                stop_argv: None,
                working_dir: PathBuf::new(),
            };
        };
        let allowed = kind.fields();
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
            ExecuteKind::Pixi => Execute::Pixi {
                task: required(self, &e.task, "task"),
                environment: opt_text(self, &e.environment, "environment")
                    .unwrap_or_else(|| service.to_owned()),
                stop_task: opt_text(self, &e.stop_task, "stop_task"),
                working_dir: wd(self),
            },
            ExecuteKind::Ros2 => Execute::Ros2 {
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
            ExecuteKind::Docker => {
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
            ExecuteKind::Shell => {
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
}
