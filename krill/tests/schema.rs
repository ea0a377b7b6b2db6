//! `schemas/krill.schema.json` is generated from the raw recipe types and must stay
//! in sync with them. `KRILL_BLESS=1 cargo test -p krill-gen --test schema` rewrites it.

#[test]
fn published_schema_matches_the_rust_types() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/krill.schema.json");
    let generated = krill::compile::raw::schema();
    if std::env::var_os("KRILL_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        published == generated,
        "schemas/krill.schema.json is stale: rerun with KRILL_BLESS=1"
    );
    let v: serde_json::Value = serde_json::from_str(&published).unwrap();
    assert_eq!(
        v["additionalProperties"], false,
        "unknown fields are rejected"
    );
    assert!(v["properties"]["services"].is_object());
}

/// The schema is what editors check while typing (every example starts with a
/// `# yaml-language-server: $schema=` line): it accepts every example, and rejects
/// what validation rejects where JSON Schema can say it (durations, the fields of
/// each execute type). Checked with a real validator (Python `jsonschema`).
#[test]
fn editors_accept_the_examples_and_reject_what_validation_rejects() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let schema = root.join("schemas/krill.schema.json");
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<(std::path::PathBuf, bool)> = vec![];
    for e in ["examples", "examples/demo"] {
        for f in std::fs::read_dir(root.join(e)).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(
                    text.starts_with("# yaml-language-server: $schema="),
                    "{} lacks the schema line",
                    p.display()
                );
                files.push((p, true));
            }
        }
    }
    let head = "version: \"1\"\nname: w\nservices:\n  a:\n";
    let bad = [
        ("duration", "    execute: {type: shell, command: x}\n    policy: {restart_delay: 5 seconds}\n"),
        ("timeout", "    execute: {type: shell, command: x}\n    health_check: {type: heartbeat, timeout: 3}\n"),
        ("foreign-field", "    execute: {type: shell, command: x, image: nginx}\n"),
        ("missing-task", "    execute: {type: pixi, environment: gpu}\n"),
        ("unknown-field", "    execute: {type: shell, command: x}\n    polcy: {}\n"),
        ("bad-type", "    execute: {type: bash, command: x}\n"),
    ];
    for (name, body) in bad {
        let p = dir.path().join(format!("{name}.yaml"));
        let text = format!("{head}{body}");
        assert!(
            krill::Recipe::parse(&text, &p).is_err(),
            "{name}: validation must reject it too"
        );
        std::fs::write(&p, text).unwrap();
        files.push((p, false));
    }
    let out = std::process::Command::new("python3")
        .arg(root.join("krill/tests/schema_check.py"))
        .arg(&schema)
        .args(files.iter().map(|(p, _)| p))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "schema_check.py failed (pip install jsonschema pyyaml): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), files.len());
    for ((p, good), line) in files.iter().zip(&lines) {
        assert_eq!(line == "ok", *good, "{}: {line}", p.display());
    }
}
