//! Property test (the fuzz target of the recipe path, on stable Rust): mutated
//! example recipes and random YAML never make the parser, the validator, the planner
//! or the renderer panic, and whatever is accepted renders units that systemd reads
//! as written ([`krill::compile::render::check_unit`]). Bounded: `PROPTEST_CASES` (default 2000
//! per property), so CI runs it in seconds.

use std::path::Path;

use proptest::prelude::*;

fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut v = vec![];
    for dir in [root.join("examples"), root.join("krill/tests/bad")] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "yaml") {
                v.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    assert!(v.len() >= 4, "seed recipes");
    v
}

/// Parses, plans and renders; panics are the failure being looked for.
fn exercise(text: &str) {
    if let Ok(r) = krill::Recipe::parse(text, Path::new("/etc/krill/recipes/fuzz.yaml")) {
        if let Ok(plan) = krill::Plan::new(r) {
            if let Ok(units) = krill::compile::render::render_checked(
                &plan,
                krill::compile::target::Target::OLDEST,
            ) {
                for u in &units {
                    krill::compile::render::check_unit(u).unwrap();
                }
            }
        }
    }
}

/// Characters that matter to YAML, to systemd's unit syntax and to shells.
fn nasty() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "\\", "\0", "\n", "%", "$", "\"", "'", ":", "-", "{", "}", "[", "]", "#", "&", "|",
            ";", " ", "\t", "\u{1b}", "\\\\", "\\x00", "\\0", "\u{202e}", "a", "1", "ä",
        ]),
        0..12,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_recipes_never_panic(seed in 0usize..64, at in any::<prop::sample::Index>(), cut in 0usize..8, insert in nasty()) {
        let seeds = seeds();
        let s = &seeds[seed % seeds.len()];
        let mut chars: Vec<char> = s.chars().collect();
        let i = at.index(chars.len() + 1);
        let end = (i + cut).min(chars.len());
        chars.splice(i..end, insert.chars());
        exercise(&chars.into_iter().collect::<String>());
    }

    #[test]
    fn recipe_shaped_values_never_panic(value in nasty(), field in 0usize..6) {
        let v = serde_json::to_string(&value).unwrap();
        let svc = match field {
            0 => format!("execute: {{type: shell, command: {v}}}"),
            1 => format!("execute: {{type: shell, command: sleep, working_dir: {v}}}"),
            2 => format!("execute: {{type: ros2, package: p, launch_file: {v}, launch_args: {{a: {v}}}}}"),
            3 => format!("execute: {{type: docker, image: i, volumes: [{v}], network: {v}}}"),
            4 => format!("execute: {{type: pixi, task: {v}, environment: {v}}}"),
            _ => format!("execute: {{type: shell, command: sleep}}\n    health_check: {{type: script, command: {v}}}"),
        };
        let text = format!("version: \"1\"\nname: f\nenv: {{A: {v}}}\nservices:\n  s:\n    {svc}\n");
        exercise(&text);
    }
}
