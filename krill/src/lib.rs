//! Krill's one library, in two halves:
//!
//! * [`compile`]: recipe YAML → raw serde structs → validated recipe → plan (DAG,
//!   unit names, how each service runs) → unit files. Only `krill-gen` and
//!   `krill-ctl install/validate/render/plan` use it.
//! * [`runtime`]: the contracts every program shares at runtime: unit names,
//!   installed recipes, the generator's manifests, runtime records, the status model,
//!   the D-Bus names and proxies, paths, timings and clocks.
//!
//! `compile` uses `runtime` (a unit file names the socket, the gates and the relay
//! slack); `runtime` never uses `compile`, so the supervisor and the status code do
//! not depend on how recipes are parsed.

pub mod compile;
pub mod runtime;

/// What every krill binary prints for `--version`: the package version and the git
/// revision it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("KRILL_GIT_REV"), ")");

pub use compile::compile;
pub use compile::error::{Diagnostic, Pos, RecipeError};
pub use compile::plan::Plan;
pub use compile::recipe::Recipe;
