//! Golden tests of the read commands' output, run through the built `krill-ctl`:
//! `validate --json`, `render --json` and `graph` in every format. Each case's output
//! must equal `tests/golden/<case>` byte for byte. `KRILL_BLESS=1` rewrites them.
//! Rendering is pinned to systemd 252 (`KRILL_SYSTEMD_VERSION`) so that the host's
//! systemd does not change the expected units.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs krill-ctl in the repository root (recipe paths in the output stay relative)
/// and returns (exit code, stdout).
fn krill(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_krill-ctl"))
        .args(args)
        .current_dir(repo())
        .env("KRILL_SYSTEMD_VERSION", "252")
        .env("NO_COLOR", "1")
        .output()
        .expect("run krill-ctl");
    // Resolved paths name the checkout; the golden files say <repo> instead.
    let here = repo().canonicalize().unwrap().display().to_string();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout)
            .expect("UTF-8 output")
            .replace(&here, "<repo>"),
    )
}

fn golden(case: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case);
    if std::env::var_os("KRILL_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with KRILL_BLESS=1)", path.display()));
    assert!(
        want == got,
        "{case} differs from {}:\n{}",
        path.display(),
        similar::TextDiff::from_lines(want.as_str(), got).unified_diff()
    );
}

#[test]
fn validate_json_lists_every_problem_of_every_file() {
    let (code, out) = krill(&[
        "validate",
        "--json",
        "examples/demo/demo.yaml",
        "krill/tests/bad/typo-values.yaml",
        "krill/tests/bad/many-shape-errors.yaml",
    ]);
    assert_eq!(code, 1, "a bad file makes validate fail");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    golden("validate.json", &out);
}

#[test]
fn render_json_maps_unit_names_to_their_text() {
    let (code, out) = krill(&["render", "--json", "examples/demo/demo.yaml"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["krill-demo-sensor.service"]
        .as_str()
        .unwrap()
        .contains("ExecStart="));
    golden("render-demo.json", &out);
}

/// `krill render BIG | head -c1`: the reader goes away long before the output (well
/// over a pipe buffer) is written, and krill-ctl ends by SIGPIPE like any filter,
/// without a panic message.
#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut recipe = String::from("version: \"1\"\nname: big\nservices:\n");
    for i in 0..300 {
        recipe.push_str(&format!(
            "  s{i}:\n    execute: {{type: shell, command: sleep infinity}}\n"
        ));
    }
    let file = dir.path().join("big.yaml");
    std::fs::write(&file, recipe).unwrap();
    let err = dir.path().join("stderr");
    let st = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" render --json "$1" 2>"$2" | head -c1 >/dev/null"#)
        .arg(env!("CARGO_BIN_EXE_krill-ctl"))
        .arg(&file)
        .arg(&err)
        .status()
        .unwrap();
    assert!(st.success());
    let err = std::fs::read_to_string(&err).unwrap();
    assert!(err.is_empty(), "{err}");
}

#[test]
fn graph_in_every_format() {
    for (args, case) in [
        (&["--format", "dot"][..], "graph-mobile-robot.dot"),
        (&["--format", "mermaid"][..], "graph-mobile-robot.mmd"),
        (&["--json"][..], "graph-mobile-robot.json"),
    ] {
        let mut all = vec!["graph", "examples/mobile-robot.yaml"];
        all.extend_from_slice(args);
        let (code, out) = krill(&all);
        assert_eq!(code, 0, "{args:?}");
        golden(case, &out);
    }
}
