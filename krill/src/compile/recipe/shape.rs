//! The shape of a recipe checked against its JSON schema (`schemas/krill.schema.json`,
//! generated from [`crate::compile::raw`]): every unknown field and every value of
//! the wrong kind, all in one run.
//!
//! serde stops at the first such problem, so this runs only on serde's error path:
//! the document is read once more as a tree of spanned nodes and walked beside the
//! schema. Field lists come from the schema, so they are never written twice. Kinds
//! are checked as leniently as the YAML reader reads them (a number is fine where
//! text is expected; "3" is fine where a number is), so nothing is reported here that
//! the reader would accept. Values (names, durations, enums, ranges) are left to the
//! validators, which say more about them.

use std::sync::OnceLock;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::compile::error::{suggest, Diagnostic, Pos};
use crate::compile::raw::RawRecipe;

/// A YAML node, with positions on every key and value.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Int,
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Int)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Int)
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(n) = a.next_element()? {
                    v.push(n);
                }
                Ok(Node::Seq(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = a.next_entry()? {
                    v.push(kv);
                }
                Ok(Node::Map(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Words the YAML reader takes as booleans.
const BOOLEAN_WORDS: &[&str] = &[
    "true", "false", "yes", "no", "on", "off", "y", "n", "True", "False", "TRUE", "FALSE", "Yes",
    "No", "YES", "NO", "On", "Off", "ON", "OFF",
];

/// Fields of `execute:` that upstream users sometimes write there; they belong under
/// `policy:`.
const POLICY_FIELDS: &[&str] = &["restart", "max_restarts", "restart_delay", "stop_timeout"];

fn schema() -> &'static Value {
    static S: OnceLock<Value> = OnceLock::new();
    S.get_or_init(|| {
        serde_json::to_value(schemars::schema_for!(RawRecipe)).expect("the schema is JSON")
    })
}

/// Every shape problem of `text`, sorted by position. Empty when the text is not
/// YAML at all (the reader's own error says where) or when its shape is right.
pub(super) fn check(text: &str) -> Vec<Diagnostic> {
    let opts = serde_saphyr::options! { with_snippet: false };
    let Ok(root) = serde_saphyr::from_str_with_options::<Spanned<Node>>(text, opts) else {
        return vec![];
    };
    let mut out = vec![];
    walk(&root, schema(), "", &mut out);
    out.sort_by_key(|d| (d.pos.line, d.pos.column));
    out
}

fn pos<T>(s: &Spanned<T>) -> Pos {
    Pos {
        line: s.referenced.line(),
        column: s.referenced.column(),
    }
}

/// Follows a `$ref` into the schema's `$defs`.
fn resolve(s: &Value) -> &Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| schema().get("$defs")?.get(name))
            .map_or(s, resolve),
        None => s,
    }
}

/// The JSON types a schema allows; empty means any.
fn types(s: &Value) -> Vec<&str> {
    match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

fn fits(n: &Node, ty: &str) -> bool {
    match (ty, n) {
        ("null", Node::Null) => true,
        ("string", Node::Str(_) | Node::Int | Node::Float(_) | Node::Bool(_)) => true,
        ("integer", Node::Int) => true,
        ("integer", Node::Str(s)) => s.trim().parse::<i64>().is_ok(),
        ("number", Node::Int | Node::Float(_)) => true,
        ("number", Node::Str(s)) => s.trim().parse::<f64>().is_ok(),
        ("boolean", Node::Bool(_)) => true,
        ("boolean", Node::Str(s)) => BOOLEAN_WORDS.contains(&s.as_str()),
        ("object", Node::Map(_)) => true,
        ("array", Node::Seq(_)) => true,
        _ => false,
    }
}

/// How a kind is named to people.
fn expected(ty: &str) -> &'static str {
    match ty {
        "string" => "text",
        "integer" => "a whole number",
        "number" => "a number",
        "boolean" => "true or false",
        "object" => "a map of fields",
        "array" => "a list",
        _ => "nothing",
    }
}

fn found(n: &Node) -> String {
    match n {
        Node::Null => "nothing".into(),
        Node::Bool(b) => format!("`{b}`"),
        Node::Int => "a whole number".into(),
        Node::Float(f) => format!("the number {f}"),
        Node::Str(s) => format!("the text {s:?}"),
        Node::Seq(_) => "a list".into(),
        Node::Map(_) => "a map".into(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(node: &Spanned<Node>, schema: &Value, path: &str, out: &mut Vec<Diagnostic>) {
    let s = resolve(schema);
    let n = &node.value;
    if let Some(branches) = s
        .get("anyOf")
        .or_else(|| s.get("oneOf"))
        .and_then(Value::as_array)
    {
        let branches: Vec<&Value> = branches.iter().map(resolve).collect();
        match branches
            .iter()
            .find(|b| types(b).iter().any(|t| fits(n, t)))
        {
            Some(b) => walk(node, b, path, out),
            None => mismatch(node, branches.iter().flat_map(|b| types(b)), path, out),
        }
        return;
    }
    let allowed = types(s);
    if !allowed.is_empty() && !allowed.iter().any(|t| fits(n, t)) {
        mismatch(node, allowed.into_iter(), path, out);
        return;
    }
    match n {
        Node::Map(entries) => map(node, entries, s, path, out),
        Node::Seq(items) => {
            if let Some(item) = s.get("items") {
                for i in items {
                    walk(i, item, path, out);
                }
            }
        }
        _ => {}
    }
}

fn mismatch<'a>(
    node: &Spanned<Node>,
    allowed: impl Iterator<Item = &'a str>,
    path: &str,
    out: &mut Vec<Diagnostic>,
) {
    let mut want: Vec<&str> = allowed.filter(|t| *t != "null").map(expected).collect();
    want.dedup();
    out.push(Diagnostic::new(
        pos(node),
        path,
        format!(
            "expected {}, found {}",
            want.join(" or "),
            found(&node.value)
        ),
    ));
}

fn map(
    node: &Spanned<Node>,
    entries: &[(Spanned<String>, Spanned<Node>)],
    s: &Value,
    path: &str,
    out: &mut Vec<Diagnostic>,
) {
    let props = s.get("properties").and_then(Value::as_object);
    // Service names are checked by the validator; every service has one schema.
    let pattern = s
        .get("patternProperties")
        .and_then(Value::as_object)
        .and_then(|p| p.values().next());
    let additional = s.get("additionalProperties");
    for (k, v) in entries {
        let field = join(path, &k.value);
        if let Some(sub) = props.and_then(|p| p.get(&k.value)).or(pattern) {
            walk(v, sub, &field, out);
        } else if let Some(sub) = additional.filter(|a| a.is_object()) {
            walk(v, sub, &field, out);
        } else if additional == Some(&Value::Bool(false)) {
            let known: Vec<&str> = props
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            out.push(Diagnostic::new(
                pos(k),
                field,
                unknown_field(&k.value, path, &known),
            ));
        }
    }
    for req in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !entries.iter().any(|(k, _)| k.value == req) {
            out.push(Diagnostic::new(
                pos(node),
                path,
                format!("missing field `{req}`"),
            ));
        }
    }
}

fn unknown_field(key: &str, parent: &str, known: &[&str]) -> String {
    let mut m = format!("unknown field `{key}`");
    if parent.ends_with(".execute") && POLICY_FIELDS.contains(&key) {
        m.push_str(&format!(
            ": `{key}` belongs under `policy:` (for example `policy: {{{key}: ...}}`), not under `execute:`"
        ));
    } else if !known.is_empty() {
        m.push_str(&format!(": {}", suggest(key, known)));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(text: &str) -> Vec<String> {
        check(text)
            .iter()
            .map(|d| d.display_in("r.yaml").to_string())
            .collect()
    }

    #[test]
    fn every_problem_at_once_with_suggestions() {
        let got = show(
            "version: \"1\"\nname: bad\nservices:\n  a:\n    execute: {type: shell, comand: x, restart: always}\n    dependncies: [b]\n    policy: {max_restarts: lots}\n  b:\n    execute: {type: shell, command: [x]}\n    critical: maybe\n",
        );
        assert_eq!(
            got,
            [
                "r.yaml:5:28: services.a.execute.comand: unknown field `comand`: did you mean `command`?",
                "r.yaml:5:39: services.a.execute.restart: unknown field `restart`: `restart` belongs under `policy:` (for example `policy: {restart: ...}`), not under `execute:`",
                "r.yaml:6:5: services.a.dependncies: unknown field `dependncies`: did you mean `dependencies`?",
                "r.yaml:7:28: services.a.policy.max_restarts: expected a whole number, found the text \"lots\"",
                "r.yaml:9:37: services.b.execute.command: expected text, found a list",
                "r.yaml:10:15: services.b.critical: expected true or false, found the text \"maybe\"",
            ]
        );
    }

    #[test]
    fn lenient_where_the_reader_is() {
        assert!(show("version: 1\nname: x\nservices:\n  a:\n    execute: {type: shell, command: 42}\n    policy: {max_restarts: \"3\"}\n    critical: yes\n").is_empty());
    }

    #[test]
    fn missing_and_misplaced() {
        assert_eq!(
            show("version: \"1\"\nname: x\nservices:\n  a:\n    policy: {}\n    dependencies: {b: started}\nfoo: 1\n"),
            [
                "r.yaml:5:5: services.a: missing field `execute`",
                "r.yaml:6:19: services.a.dependencies: expected a list, found a map",
                "r.yaml:7:1: foo: unknown field `foo`: expected one of base_dir, env, log_dir, log_rotate, name, services, version",
            ]
        );
    }
}
