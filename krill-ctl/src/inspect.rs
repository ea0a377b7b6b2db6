//! The read-only recipe commands' outputs: `validate`, `render`, `plan` and `graph`,
//! as text for people and as JSON for scripts.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use krill::compile::graph::Graph;
use krill::compile::target::Target;
use krill::{Diagnostic, Plan, Recipe, RecipeError};

/// One problem, as JSON.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// 1-based; null when unknown.
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// Dotted field path, e.g. `services.lidar.policy.restart_delay`.
    pub field: String,
    pub message: String,
}

impl Problem {
    /// `FILE:LINE:COLUMN: FIELD: MESSAGE`, as the text output prints diagnostics.
    pub fn display_in(&self, file: &str) -> String {
        let d = Diagnostic::new(
            krill::Pos {
                line: self.line.unwrap_or(0),
                column: self.column.unwrap_or(0),
            },
            self.field.clone(),
            self.message.clone(),
        );
        let text = d.display_in(file).to_string();
        text
    }
}

impl From<&Diagnostic> for Problem {
    fn from(d: &Diagnostic) -> Self {
        Problem {
            line: (d.pos.line != 0).then_some(d.pos.line),
            column: (d.pos.line != 0).then_some(d.pos.column),
            field: d.field.clone(),
            message: d.message.clone(),
        }
    }
}

/// The verdict on one recipe file.
#[derive(Debug, Serialize)]
pub struct Validated {
    pub file: String,
    pub ok: bool,
    pub workspace: Option<String>,
    pub services: Option<usize>,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Set for errors that are not about a field (the file cannot be read).
    #[serde(skip)]
    pub text: Option<String>,
}

/// Compiles `file` (`-`: stdin, named `<stdin>`, relative paths from here).
pub fn compile(file: &Path) -> Result<Plan, RecipeError> {
    if file == Path::new("-") {
        let mut text = String::new();
        let stdin = Path::new("<stdin>");
        std::io::stdin()
            .take(krill::compile::recipe::MAX_RECIPE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|source| RecipeError::Io {
                path: stdin.to_owned(),
                source,
            })?;
        if text.len() as u64 > krill::compile::recipe::MAX_RECIPE_BYTES {
            return Err(RecipeError::Io {
                path: stdin.to_owned(),
                source: std::io::Error::other("more than the recipe limit of 1 MiB"),
            });
        }
        Plan::new(Recipe::parse(&text, stdin)?.with_machine_warnings())
    } else {
        krill::compile(file)
    }
}

/// `validate FILE...`.
pub fn validate(files: &[PathBuf]) -> Vec<Validated> {
    files
        .iter()
        .map(|f| {
            let name = if f == Path::new("-") {
                "<stdin>".to_owned()
            } else {
                f.display().to_string()
            };
            match compile(f) {
                Ok(plan) => Validated {
                    file: name,
                    ok: true,
                    workspace: Some(plan.workspace().to_owned()),
                    services: Some(plan.services.len()),
                    errors: vec![],
                    warnings: plan.recipe.warnings.iter().map(Problem::from).collect(),
                    text: None,
                },
                Err(e) => Validated {
                    file: name,
                    ok: false,
                    workspace: None,
                    services: None,
                    errors: e.diagnostics().into_iter().map(Problem::from).collect(),
                    warnings: vec![],
                    text: Some(e.to_string()),
                },
            }
        })
        .collect()
}

/// `render --json`: unit name → contents.
pub fn units(plan: &Plan) -> Result<BTreeMap<String, String>, String> {
    Ok(
        krill::compile::render::render_checked(plan, Target::detect())
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|u| (u.name, u.contents))
            .collect(),
    )
}

/// A unified diff of one unit's text (old → new), with 3 lines of context.
pub fn unit_diff(name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

/// `graph RECIPE|NAME`: a file path, or else an installed workspace's name.
pub fn graph(what: &str) -> Result<Graph, crate::error::Error> {
    let path = Path::new(what);
    let plan = if path.exists() || what == "-" {
        compile(path)?
    } else {
        installed(what)?
    };
    Ok(Graph::of(&plan))
}

/// The plan of installed workspace `ws`, compiled from its recipe file.
pub fn installed(ws: &str) -> Result<Plan, crate::error::Error> {
    let found = krill::runtime::installed::discover(&krill::runtime::installed::recipe_path());
    let path = found.get(ws).ok_or_else(|| {
        crate::error::Error::NotInstalled(format!(
            "no workspace {ws:?} is installed (installed: {})",
            found.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    Ok(krill::compile(path)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unit_diff_shows_the_changed_line_with_context() {
        let d = super::unit_diff(
            "krill-w-a.service",
            "[Service]\nA=1\nB=2\n",
            "[Service]\nA=1\nB=3\n",
        );
        assert!(d.contains("--- a/krill-w-a.service"), "{d}");
        assert!(d.contains("-B=2\n+B=3"), "{d}");
    }
}
