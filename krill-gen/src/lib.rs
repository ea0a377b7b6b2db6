//! Krill's recipe compiler: recipe YAML → raw serde structs ([`raw`]) → validated
//! [`Recipe`] → [`Plan`] (DAG, unit names) → unit files ([`render`]).
//!
//! `krill-gen` (the systemd generator), `krill-ctl` and `krill-supervisor` all use this
//! one library for that path; no other crate parses recipes.

pub mod bus;
pub mod duration;
pub mod error;
pub mod generator;
pub mod gpu;
pub mod manifest;
pub mod plan;
pub mod raw;
pub mod recipe;
pub mod records;
pub mod render;
pub mod shell;
pub mod status;
pub mod syslog;

pub use error::{Diagnostic, Pos, RecipeError};
pub use plan::Plan;
pub use recipe::Recipe;

/// Loads, validates and plans a recipe file in one step.
pub fn compile(path: &std::path::Path) -> Result<Plan, RecipeError> {
    Plan::new(Recipe::load(path)?)
}
