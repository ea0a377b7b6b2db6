//! The compile path: [`raw`] → [`recipe`] → [`plan`] (with [`exec`]) → [`render`].

pub mod duration;
pub mod error;
pub mod exec;
pub mod graph;
pub mod plan;
pub mod raw;
pub mod recipe;
pub mod render;
pub mod shell;
pub mod target;

/// Loads, validates and plans a recipe file in one step. What this machine lacks
/// for it ([`recipe::Recipe::machine_problems`]) is added to its warnings.
pub fn compile(path: &std::path::Path) -> Result<plan::Plan, error::RecipeError> {
    plan::Plan::new(recipe::Recipe::load(path)?.with_machine_warnings())
}

/// `--dry-run`: every unit of every recipe on stdout, each after a
/// `# --- <unit name> ---` line. Returns the exit code (1 if any recipe is invalid).
pub fn dry_run(
    recipes: &[std::path::PathBuf],
    out: &mut impl std::io::Write,
    err: &mut impl std::io::Write,
) -> i32 {
    let mut code = 0;
    let target = target::Target::detect();
    for r in recipes {
        match compile(r).map_err(|e| e.to_string()).and_then(|plan| {
            render::render_checked(&plan, target)
                .map(|u| (plan, u))
                .map_err(|e| format!("{}: {e}", r.display()))
        }) {
            Ok((plan, units)) => {
                for w in &plan.recipe.warnings {
                    let _ = writeln!(err, "warning: {}", w.display_in(&r.display().to_string()));
                }
                for u in units {
                    let _ = write!(out, "# --- {} ---\n{}", u.name, u.contents);
                }
            }
            Err(e) => {
                let _ = writeln!(err, "{e}");
                code = 1;
            }
        }
    }
    code
}
