//! Helpers shared by the golden and verify tests.

use std::path::Path;

use krill::Plan;
use krill::Recipe;

/// Recipes are compiled as if installed here, so that paths in the output are stable.
pub const FIXTURE_SOURCE_DIR: &str = "/srv/robot";

/// Compiles a fixture as `/srv/robot/<workspace>.yaml`.
pub fn compile_fixture(recipe: &Path) -> Plan {
    let text = std::fs::read_to_string(recipe).unwrap();
    let probe = Recipe::parse(&text, recipe).unwrap_or_else(|e| panic!("{e}"));
    let source = Path::new(FIXTURE_SOURCE_DIR).join(format!("{}.yaml", probe.name));
    Plan::new(Recipe::parse(&text, &source).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}
