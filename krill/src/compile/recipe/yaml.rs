//! YAML → raw serde structs, and serde's errors translated into krill's
//! diagnostics (position, field path such as `services.lidar.policy`, message).

use indexmap::IndexMap;

use crate::compile::error::{Diagnostic, Pos};
use crate::compile::raw;

pub(super) fn parse_raw(text: &str) -> Result<raw::RawRecipe, Diagnostic> {
    let opts = serde_saphyr::options! { with_snippet: false };
    // The fast path; tracking the field path costs a third more, so it is only done
    // again to explain an error.
    if let Ok(r) = serde_saphyr::from_str_with_options(text, opts.clone()) {
        return Ok(r);
    }
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, opts, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| {
        let pos = e.location().map(Pos::from).unwrap_or_default();
        // The library's message is "line L column C: MSG at line L, column C"; the
        // position is printed in front by us, so keep MSG only.
        let msg = e.to_string();
        let msg = msg.lines().next().unwrap_or("").trim();
        let msg = msg.strip_prefix("error: ").unwrap_or(msg);
        let msg = match msg.split_once(": ") {
            Some((head, rest)) if head.starts_with("line ") => rest,
            _ => msg,
        };
        let msg = match msg.rfind(" at line ") {
            Some(i) => &msg[..i],
            None => msg,
        };
        let msg = match msg {
            m if m.starts_with("duplicate mapping key: ") => {
                format!(
                    "{} is defined twice",
                    &m["duplicate mapping key: ".len()..]
                        .split(',')
                        .next()
                        .unwrap_or("")
                )
            }
            "invalid boolean" => "invalid boolean: expected true or false".to_owned(),
            m => plain_words(m),
        };
        Diagnostic::new(pos, field_path(text, &path, pos), msg)
    })
}

/// serde's words for kinds (`i64`, `sequence start`) in the words of the recipe guide.
/// Only the part from `expected` on is rewritten: what comes before quotes the
/// recipe's own text, which must stay as written.
fn plain_words(m: &str) -> String {
    const WORDS: &[(&str, &str)] = &[
        ("sequence start", "a list"),
        ("mapping start", "a map of fields"),
        ("string scalar", "text"),
        ("a string", "text"),
        ("i64", "a whole number"),
        ("u64", "a whole number"),
        ("u32", "a whole number"),
        ("u16", "a whole number"),
        ("f64", "a number"),
        ("a boolean", "true or false"),
    ];
    let (head, expected) = match m.find("expected ") {
        Some(i) => m.split_at(i),
        None => return m.to_owned(),
    };
    // `expected struct RawPolicy`: the Rust type names a section of the recipe.
    let expected = match expected.find("struct Raw") {
        Some(i) => format!("{}a map of fields", &expected[..i]),
        None => WORDS
            .iter()
            .fold(expected.to_owned(), |acc, (from, to)| acc.replace(from, to)),
    };
    format!("{head}{expected}")
}

/// Turns serde's path (`services.?.policy.value`) into ours (`services.lidar.policy`):
/// map keys are spanned, so serde cannot name them; the service is the last one whose
/// key precedes the error.
fn field_path(text: &str, path: &str, at: Pos) -> String {
    #[derive(serde::Deserialize)]
    struct Services {
        #[serde(default)]
        services: IndexMap<raw::SString, serde::de::IgnoredAny>,
    }
    let service = serde_saphyr::from_str::<Services>(text).ok().and_then(|s| {
        s.services
            .keys()
            .rfind(|k| (k.referenced.line(), k.referenced.column()) <= (at.line, at.column))
            .map(|k| k.value.clone())
    });
    let mut parts: Vec<String> = path
        .split('.')
        .filter(|p| *p != "value" && *p != "referenced" && *p != "defined")
        .map(str::to_owned)
        .collect();
    if parts.len() > 1 && parts[0] == "services" && parts[1] == "?" {
        match service {
            Some(s) => parts[1] = s,
            None => parts.truncate(1),
        }
    }
    while parts.last().is_some_and(|p| p == "?") {
        parts.pop();
    }
    let p = parts.join(".");
    if p == "." {
        String::new()
    } else {
        p
    }
}

#[cfg(test)]
mod tests {
    use super::plain_words;

    #[test]
    fn serde_kinds_in_plain_words_and_recipe_text_untouched() {
        assert_eq!(plain_words("expected sequence start"), "expected a list");
        assert_eq!(
            plain_words("invalid type: string \"Raw i64\", expected i64"),
            "invalid type: string \"Raw i64\", expected a whole number"
        );
        assert_eq!(
            plain_words("invalid type: integer `3`, expected struct RawPolicy"),
            "invalid type: integer `3`, expected a map of fields"
        );
    }
}
