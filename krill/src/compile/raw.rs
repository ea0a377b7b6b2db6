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
use serde::de::{self, Deserializer, MapAccess, Visitor};
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
    /// Accepted for compatibility; krill logs to the journal.
    #[schemars(with = "Option<String>")]
    pub log_dir: Option<SString>,
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
