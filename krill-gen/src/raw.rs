//! Layer 1: the recipe exactly as written.
//!
//! These structs mirror the YAML of the configuration guide field by field and reject
//! unknown fields. Values that need checking (names, durations, commands, enums) are
//! kept as spanned strings so that [`crate::recipe`] can report *every* problem with
//! its line and column, instead of stopping at the first one.
//!
//! `execute` and `health_check` are flat structs with a `type` field rather than
//! serde-tagged enums: tagged enums lose source locations, and a flat struct lets the
//! validator say "field `image` does not apply to execute type `shell`".

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A string with the location it was read from.
pub type SString = Spanned<String>;

/// Top level of a recipe file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecipe {
    pub version: SString,
    pub name: SString,
    #[serde(default)]
    pub log_dir: Option<SString>,
    /// Krill extension: directory that relative paths resolve against. `krill install`
    /// fills it in, so that an installed copy still finds the original directory.
    #[serde(default)]
    pub base_dir: Option<SString>,
    #[serde(default)]
    pub env: IndexMap<SString, Spanned<Scalar>>,
    pub services: IndexMap<SString, RawService>,
}

/// One entry under `services`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub execute: RawExecute,
    #[serde(default)]
    pub dependencies: Option<Vec<Spanned<RawDependency>>>,
    #[serde(default)]
    pub health_check: Option<RawHealthCheck>,
    #[serde(default)]
    pub policy: Option<RawPolicy>,
    #[serde(default)]
    pub critical: Option<Spanned<bool>>,
    #[serde(default)]
    pub gpu: Option<Spanned<bool>>,
}

/// `execute:`, the union of the fields of all four execute types.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExecute {
    #[serde(rename = "type")]
    pub kind: SString,
    // pixi
    pub task: Option<SString>,
    pub environment: Option<SString>,
    // pixi, ros2
    pub stop_task: Option<SString>,
    // pixi, ros2, shell
    pub working_dir: Option<SString>,
    // ros2
    pub package: Option<SString>,
    pub launch_file: Option<SString>,
    pub launch_args: Option<Spanned<IndexMap<String, Scalar>>>,
    /// Krill extension: a script to `source` before `ros2 launch` (e.g.
    /// `/opt/ros/humble/setup.bash`).
    pub setup_script: Option<SString>,
    // docker
    pub image: Option<SString>,
    pub volumes: Option<Vec<SString>>,
    pub ports: Option<Vec<SString>>,
    pub privileged: Option<Spanned<bool>>,
    pub network: Option<SString>,
    // shell
    pub command: Option<SString>,
    pub stop_command: Option<SString>,
}

/// `health_check:`, the union of the fields of all four check types.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    #[serde(rename = "type")]
    pub kind: SString,
    pub timeout: Option<SString>,
    pub port: Option<Spanned<i64>>,
    pub path: Option<SString>,
    pub expected_status: Option<Spanned<i64>>,
    pub command: Option<SString>,
}

/// `policy:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub restart: Option<SString>,
    pub max_restarts: Option<Spanned<i64>>,
    pub restart_delay: Option<SString>,
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
