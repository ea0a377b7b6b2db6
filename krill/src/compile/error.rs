//! Errors of the recipe path, shaped for people: every problem names the file, the
//! line and column, and the field, and says what was expected.

use std::fmt;
use std::path::PathBuf;

/// A position in a recipe file. Lines and columns start at 1; 0 means unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl From<serde_saphyr::Location> for Pos {
    fn from(l: serde_saphyr::Location) -> Self {
        Pos {
            line: l.line(),
            column: l.column(),
        }
    }
}

/// One problem found in a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub pos: Pos,
    /// Dotted path of the field, e.g. `services.lidar.policy.restart_delay`.
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    pub fn new(pos: impl Into<Pos>, field: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            pos: pos.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// `FILE:LINE:COLUMN: FIELD: MESSAGE`, the format of compilers and of `systemd-analyze`
    /// (`FILE: FIELD: MESSAGE` when the position is unknown).
    pub fn display_in<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        struct D<'a>(&'a Diagnostic, &'a str);
        impl fmt::Display for D<'_> {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                let d = self.0;
                if d.pos.line == 0 {
                    write!(f, "{}: ", self.1)?;
                } else {
                    write!(f, "{}:{}:{}: ", self.1, d.pos.line, d.pos.column)?;
                }
                if !d.field.is_empty() {
                    write!(f, "{}: ", d.field)?;
                }
                f.write_str(&d.message)
            }
        }
        D(self, file)
    }
}

/// Why a recipe could not be loaded. Callers branch on the variant: an I/O error is
/// about the machine, the others are about the recipe's text.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("{}: cannot read recipe: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The recipe is not well-formed YAML of the expected shape (serde stops at the
    /// first such problem).
    #[error("{}", .diagnostic.display_in(file))]
    Syntax {
        file: String,
        diagnostic: Diagnostic,
    },
    /// The recipe parsed but breaks one or more rules; all of them are listed.
    #[error("{}", render_all(file, diagnostics))]
    Invalid {
        file: String,
        diagnostics: Vec<Diagnostic>,
    },
}

impl RecipeError {
    /// Every diagnostic carried by this error (empty for I/O errors).
    pub fn diagnostics(&self) -> Vec<&Diagnostic> {
        match self {
            RecipeError::Io { .. } => vec![],
            RecipeError::Syntax { diagnostic, .. } => vec![diagnostic],
            RecipeError::Invalid { diagnostics, .. } => diagnostics.iter().collect(),
        }
    }
}

fn render_all(file: &str, ds: &[Diagnostic]) -> String {
    ds.iter()
        .map(|d| d.display_in(file).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The candidate closest to `word`, if it is close enough to be a typo: at most one
/// edit for short words, a third of the length for longer ones.
pub fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// What to tell someone who wrote `word` where one of `known` belongs: "did you mean
/// `x`?" for a near miss, else "expected one of a, b, c".
pub fn suggest(word: &str, known: &[&str]) -> String {
    match did_you_mean(word, known.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("expected one of {}", known.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_only_for_near_misses() {
        let c = ["command", "stop_command", "image"];
        assert_eq!(did_you_mean("comand", c.into_iter()), Some("command"));
        assert_eq!(did_you_mean("imgae", c.into_iter()), Some("image"));
        assert_eq!(did_you_mean("volumes", c.into_iter()), None);
        assert_eq!(suggest("shel", &["shell", "pixi"]), "did you mean `shell`?");
        assert_eq!(
            suggest("bash", &["shell", "pixi"]),
            "expected one of shell, pixi"
        );
    }
}
