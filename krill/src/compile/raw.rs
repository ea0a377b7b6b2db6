//! Layer 1: the recipe exactly as written.
//!
//! These structs mirror the YAML of the configuration guide field by field and reject
//! unknown fields. Values that need checking (names, durations, commands, enums) are
//! kept as spanned strings so that [`crate::compile::recipe`] can report *every* problem with
//! its line and column, instead of stopping at the first one.
//!
//! `execute` and `health_check` are flat structs with a `type` field rather than
//! serde-tagged enums: tagged enums lose source locations, and a flat struct lets the
//! validator say "field `image` does not apply to execute type `shell`".

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::compile::recipe::ExecuteKind;
use crate::runtime::check::HealthKind;

/// A string with the location it was read from.
pub type SString = Spanned<String>;

/// Top level of a recipe file.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Krill recipe")]
pub struct RawRecipe {
    /// Schema version; only "1".
    #[schemars(with = "String")]
    pub version: SString,
    /// Workspace name, ^[a-zA-Z0-9_-]+$; units are named krill-<name>-<service>.
    #[schemars(with = "String")]
    pub name: SString,
    #[serde(default)]
    /// Directory of per-service log files, besides the journal: DIR/<name>/<service>.log
    /// and the merged DIR/<name>.timeline.log. `~` is the home of the user each
    /// service runs as; a relative path is under the recipe's directory.
    #[schemars(with = "Option<String>")]
    pub log_dir: Option<SString>,
    /// Krill extension: when the files of `log_dir` rotate. Default: at 10M, keeping 5.
    #[serde(default)]
    #[schemars(with = "Option<RawLogRotate>")]
    pub log_rotate: Option<Spanned<RawLogRotate>>,
    /// Krill extension: directory that relative paths resolve against. `krill install`
    /// fills it in, so that an installed copy still finds the original directory.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub base_dir: Option<SString>,
    #[serde(default)]
    /// Environment for every service.
    #[schemars(with = "std::collections::BTreeMap<String, Scalar>")]
    pub env: IndexMap<SString, Spanned<Scalar>>,
    /// Services by name (^[a-zA-Z0-9_-]+$).
    #[schemars(with = "std::collections::BTreeMap<ServiceName, RawService>")]
    pub services: IndexMap<SString, RawService>,
}

/// `log_rotate:` (a krill extension).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLogRotate {
    /// Size at which a file is rotated: bytes, or with K, M, G (powers of 1024); at
    /// least 1K. Default 10M.
    #[serde(default)]
    #[schemars(with = "Option<Bytes>")]
    pub max_size: Option<Spanned<Scalar>>,
    /// Rotated copies kept besides the live file, 0 to 100. Default 5.
    #[serde(default)]
    #[schemars(with = "Option<LogKeep>")]
    pub keep: Option<Spanned<i64>>,
}

/// One entry under `services`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub execute: RawExecute,
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawDependency>>")]
    pub dependencies: Option<Vec<Spanned<RawDependency>>>,
    #[serde(default)]
    pub health_check: Option<RawHealthCheck>,
    #[serde(default)]
    pub policy: Option<RawPolicy>,
    #[serde(default)]
    /// Default false. Failing for good stops the whole workspace.
    #[schemars(with = "Option<bool>")]
    pub critical: Option<Spanned<bool>>,
    #[serde(default)]
    /// Default false. Check for a usable GPU before every start.
    #[schemars(with = "Option<bool>")]
    pub gpu: Option<Spanned<bool>>,
    /// Krill extension: run as this user (`User=`), with its HOME, USER, SHELL,
    /// supplementary groups, and ~/.pixi/bin and ~/.local/bin first on PATH. Default:
    /// root.
    #[serde(default)]
    #[schemars(with = "Option<AccountName>")]
    pub user: Option<SString>,
    /// Krill extension: run with this primary group (`Group=`). Default: the user's.
    #[serde(default)]
    #[schemars(with = "Option<AccountName>")]
    pub group: Option<SString>,
    /// Krill extension: CPU, memory, I/O and scheduling limits of the service.
    #[serde(default)]
    pub resources: Option<RawResources>,
    /// Krill extension: when the service counts as started for its dependents (one
    /// of `file`, `tcp`, `notify`). Default: once its process is spawned.
    #[serde(default)]
    #[schemars(with = "Option<RawReady>")]
    pub ready: Option<Spanned<RawReady>>,
    /// Krill extension: commands run around the service's life (argv, never a shell).
    #[serde(default)]
    pub hooks: Option<RawHooks>,
}

/// `hooks:` (a krill extension): lists of commands, each validated like `command`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHooks {
    /// Before every start; one that fails fails the start (`ExecStartPre=`).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub pre_start: Option<Vec<SString>>,
    /// Once the service is started (and ready) (`ExecStartPost=`).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub post_start: Option<Vec<SString>>,
    /// Before the service is stopped, and when it ended on its own (`ExecStop=`, first).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub pre_stop: Option<Vec<SString>>,
    /// After every run, however it ended (`ExecStopPost=`).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub post_stop: Option<Vec<SString>>,
    /// Before an automatic restart only (`ExecStartPre=krill-ctl hook on-restart`).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub on_restart: Option<Vec<SString>>,
}

/// `ready:` (a krill extension): exactly one strategy, and a timeout.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReady {
    /// Ready once this file exists (relative to the recipe's directory).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub file: Option<SString>,
    /// Ready once 127.0.0.1 (or ::1) accepts connections on this TCP port.
    #[serde(default)]
    #[schemars(with = "Option<Port>")]
    pub tcp: Option<Spanned<i64>>,
    /// Ready once the service sends `READY=1` (sd_notify; `Type=notify`).
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub notify: Option<Spanned<bool>>,
    /// How long the service may take to be ready; then its start fails. Default 90s.
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    pub timeout: Option<SString>,
}

/// `resources:` (a krill extension): each field maps to one systemd directive.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawResources {
    /// CPUs the service may run on (`CPUAffinity=`): a list `[0, 2]` or a range
    /// text `"0-3"`, `"0,2-3"`. Default: all.
    #[serde(default)]
    #[schemars(with = "Option<RawAffinity>")]
    pub cpu_affinity: Option<Spanned<RawAffinity>>,
    /// CPU time per second, in % of one CPU (`CPUQuota=`): `150%`. Default: no limit.
    #[serde(default)]
    #[schemars(with = "Option<Percent>")]
    pub cpu_quota: Option<SString>,
    /// Hard memory limit (`MemoryMax=`): bytes, or with K, M, G, T (powers of 1024).
    #[serde(default)]
    #[schemars(with = "Option<Bytes>")]
    pub memory_max: Option<Spanned<Scalar>>,
    /// Memory above which the service is throttled and reclaimed (`MemoryHigh=`).
    #[serde(default)]
    #[schemars(with = "Option<Bytes>")]
    pub memory_high: Option<Spanned<Scalar>>,
    /// Scheduling niceness, -20 (first) to 19 (`Nice=`).
    #[serde(default)]
    #[schemars(with = "Option<Nice>")]
    pub nice: Option<Spanned<i64>>,
    /// Share of block I/O, 1 to 10000, default 100 (`IOWeight=`).
    #[serde(default)]
    #[schemars(with = "Option<IoWeight>")]
    pub io_weight: Option<Spanned<i64>>,
    /// Most tasks (processes and threads) at once (`TasksMax=`).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub tasks_max: Option<Spanned<i64>>,
    /// Real-time scheduling for control loops (`CPUSchedulingPolicy=`,
    /// `CPUSchedulingPriority=`).
    #[serde(default)]
    pub realtime: Option<RawRealtime>,
}

/// `resources.realtime:`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRealtime {
    /// `fifo` or `rr` (round-robin).
    #[schemars(with = "RealtimePolicy")]
    pub policy: SString,
    /// 1 (lowest) to 99.
    #[schemars(with = "RealtimePriority")]
    pub priority: Spanned<i64>,
}

/// `cpu_affinity:` as written: a list of CPU numbers, or a text of numbers and ranges.
#[derive(Debug, Clone, PartialEq)]
pub enum RawAffinity {
    List(Vec<i64>),
    Text(String),
}

impl<'de> Deserialize<'de> for RawAffinity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawAffinity;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of CPU numbers or a text like \"0-3\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawAffinity, E> {
                Ok(RawAffinity::Text(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawAffinity, E> {
                Ok(RawAffinity::List(vec![v]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawAffinity, E> {
                Ok(RawAffinity::List(
                    vec![i64::try_from(v).unwrap_or(i64::MAX)],
                ))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<RawAffinity, A::Error> {
                let mut out = Vec::new();
                while let Some(n) = s.next_element::<i64>()? {
                    out.push(n);
                }
                Ok(RawAffinity::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `execute:`, the union of the fields of all four execute types. The schema says
/// which fields each type takes (see [`execute_by_type`]).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = execute_by_type)]
pub struct RawExecute {
    #[serde(rename = "type")]
    #[schemars(with = "ExecuteType")]
    pub kind: SString,
    // pixi
    #[schemars(with = "Option<String>")]
    pub task: Option<SString>,
    #[schemars(with = "Option<String>")]
    pub environment: Option<SString>,
    // pixi, ros2
    #[schemars(with = "Option<String>")]
    pub stop_task: Option<SString>,
    // pixi, ros2, shell
    #[schemars(with = "Option<String>")]
    pub working_dir: Option<SString>,
    // ros2
    #[schemars(with = "Option<String>")]
    pub package: Option<SString>,
    #[schemars(with = "Option<String>")]
    pub launch_file: Option<SString>,
    #[schemars(with = "Option<std::collections::BTreeMap<String, Scalar>>")]
    pub launch_args: Option<Spanned<IndexMap<String, Scalar>>>,
    /// Krill extension: a script to `source` before `ros2 launch` (e.g.
    /// `/opt/ros/humble/setup.bash`).
    #[schemars(with = "Option<String>")]
    pub setup_script: Option<SString>,
    // docker
    #[schemars(with = "Option<String>")]
    pub image: Option<SString>,
    #[schemars(with = "Option<Vec<String>>")]
    pub volumes: Option<Vec<SString>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub ports: Option<Vec<SString>>,
    #[schemars(with = "Option<bool>")]
    pub privileged: Option<Spanned<bool>>,
    #[schemars(with = "Option<String>")]
    pub network: Option<SString>,
    // shell
    #[schemars(with = "Option<String>")]
    pub command: Option<SString>,
    #[schemars(with = "Option<String>")]
    pub stop_command: Option<SString>,
}

/// `health_check:`, the union of the fields of all four check types.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    #[serde(rename = "type")]
    #[schemars(with = "HealthCheckType")]
    pub kind: SString,
    #[schemars(with = "Option<DurationText>")]
    pub timeout: Option<SString>,
    #[schemars(with = "Option<Port>")]
    pub port: Option<Spanned<i64>>,
    #[schemars(with = "Option<String>")]
    pub path: Option<SString>,
    #[schemars(with = "Option<HttpStatus>")]
    pub expected_status: Option<Spanned<i64>>,
    #[schemars(with = "Option<String>")]
    pub command: Option<SString>,
}

/// `policy:`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// never (default), always or on-failure.
    #[schemars(with = "Option<String>")]
    pub restart: Option<SString>,
    /// Exactly this many restarts, then failed for good. Default 0 = unlimited.
    #[schemars(with = "Option<u32>")]
    pub max_restarts: Option<Spanned<i64>>,
    /// Duration (500ms, 5s, 2m, 1h). Default 1s.
    #[schemars(with = "Option<DurationText>")]
    pub restart_delay: Option<SString>,
    /// Duration until SIGKILL of the whole process tree. Default 10s.
    #[schemars(with = "Option<DurationText>")]
    pub stop_timeout: Option<SString>,
}

/// One element of `dependencies:`: either `name` or `{name: condition}`.
#[derive(Debug)]
pub enum RawDependency {
    Bare(String),
    Conditional(Vec<(String, String)>),
}

/// A YAML scalar used as a string (env values, launch args). Numbers and booleans are
/// accepted and kept as written, so `ROS_DOMAIN_ID: 42` means the string `42`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawDependency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawDependency;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a service name or a map `name: started|healthy`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDependency, E> {
                Ok(RawDependency::Bare(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawDependency, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, String>()? {
                    out.push((k, v));
                }
                Ok(RawDependency::Conditional(out))
            }
        }
        d.deserialize_any(V)
    }
}

// ---- JSON schema helpers (schemas/krill.schema.json is generated from these types) ----

/// The schema of a `type:` field: one of `names`.
fn type_schema(description: &str, names: &[&str]) -> schemars::Schema {
    schemars::json_schema!({
        "description": description,
        "type": "string",
        "enum": names,
    })
}

/// Execute types (the list is [`ExecuteKind::ALL`]).
struct ExecuteType;

impl schemars::JsonSchema for ExecuteType {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ExecuteType".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        type_schema("Execute types.", &ExecuteKind::ALL.map(ExecuteKind::as_str))
    }
}

/// Health check types (the list is [`HealthKind::ALL`]).
struct HealthCheckType;

impl schemars::JsonSchema for HealthCheckType {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HealthCheckType".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        type_schema(
            "Health check types.",
            &HealthKind::ALL.map(HealthKind::as_str),
        )
    }
}

/// For each execute type: its required fields, and no field of another type. The
/// validator says the same, with positions (`field X does not apply to execute type
/// Y`); this lets an editor say it while typing.
fn execute_by_type(schema: &mut schemars::Schema) {
    let rules: Vec<serde_json::Value> = ExecuteKind::ALL
        .iter()
        .map(|k| {
            let names: Vec<&str> = std::iter::once("type")
                .chain(k.fields().iter().copied())
                .collect();
            serde_json::json!({
                "if": { "properties": { "type": { "const": k.as_str() } }, "required": ["type"] },
                "then": { "required": k.required(), "propertyNames": { "enum": names } }
            })
        })
        .collect();
    schema.insert("allOf".into(), rules.into());
}

/// A duration as the configuration guide writes it (the grammar of
/// [`crate::compile::duration::parse`]).
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct DurationText(#[schemars(regex(pattern = r"^\s*[0-9]+(ms|s|m|h)\s*$"))] String);

/// A TCP port.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct Port(#[schemars(range(min = 1, max = 65535))] u16);

/// An HTTP status code.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct HttpStatus(#[schemars(range(min = 100, max = 599))] u16);

/// A user or group name as systemd accepts it in `User=`/`Group=`, or a number.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct AccountName(#[schemars(regex(pattern = r"^([a-zA-Z_][a-zA-Z0-9_-]{0,30}|[0-9]+)$"))] String);

/// A percentage of one CPU.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct Percent(#[schemars(regex(pattern = r"^\s*[0-9]+%\s*$"))] String);

/// Rotated copies kept.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct LogKeep(#[schemars(range(min = 0, max = 100))] u8);

/// Bytes, or a size with K, M, G or T.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
#[schemars(untagged)]
enum Bytes {
    Number(u64),
    Text(#[schemars(regex(pattern = r"^\s*[0-9]+[KMGT]?\s*$"))] String),
}

/// A niceness.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct Nice(#[schemars(range(min = -20, max = 19))] i8);

/// An I/O weight.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct IoWeight(#[schemars(range(min = 1, max = 10000))] u16);

/// A real-time priority.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct RealtimePriority(#[schemars(range(min = 1, max = 99))] u8);

/// Real-time policies.
struct RealtimePolicy;

impl schemars::JsonSchema for RealtimePolicy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RealtimePolicy".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        type_schema("Real-time scheduling policies.", &["fifo", "rr"])
    }
}

impl schemars::JsonSchema for RawAffinity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CpuAffinity".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "CPU numbers: a list, or a text of numbers and ranges (\"0-3\", \"0,2\").",
            "oneOf": [
                { "type": "array", "items": { "type": "integer", "minimum": 0 } },
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^\\s*[0-9]+(-[0-9]+)?(\\s*[, ]\\s*[0-9]+(-[0-9]+)?)*\\s*$" }
            ]
        })
    }
}

/// A service name.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct ServiceName(#[schemars(regex(pattern = r"^[a-zA-Z0-9_-]+$"))] String);

impl schemars::JsonSchema for Scalar {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scalar".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

impl schemars::JsonSchema for RawDependency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Dependency".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A service name (condition `started`), or a map of one name to `started` or `healthy`.",
            "oneOf": [
                { "type": "string", "pattern": "^[a-zA-Z0-9_-]+$" },
                {
                    "type": "object",
                    "minProperties": 1, "maxProperties": 1,
                    "additionalProperties": { "enum": ["started", "healthy"] }
                }
            ]
        })
    }
}

/// The JSON schema of a recipe, as published in `schemas/krill.schema.json`.
pub fn schema() -> String {
    let mut s = serde_json::to_string_pretty(&schemars::schema_for!(RawRecipe)).unwrap_or_default();
    s.push('\n');
    s
}
