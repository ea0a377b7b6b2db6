//! Golden tests: every fixture under `tests/golden/<case>/recipe.yaml` renders to
//! exactly the unit files in `tests/golden/<case>/expected/`, and every bad recipe
//! under `tests/bad/<case>.yaml` fails with exactly the text in `<case>.err`.
//!
//! Units are rendered for systemd 252 (Debian 12) unless `<case>/systemd` names
//! another version.
//!
//! Run with `KRILL_BLESS=1` to rewrite the expected files after a deliberate change,
//! then review the diff.

use std::path::{Path, PathBuf};

mod common;

use common::compile_fixture;
use krill::compile::render::render_plan;
use krill::compile::target::Target;
use krill::Plan;
use krill::Recipe;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn bless() -> bool {
    std::env::var_os("KRILL_BLESS").is_some()
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn golden_units() {
    let mut failures = vec![];
    for case in cases(&root().join("golden")) {
        let plan = compile_fixture(&case.join("recipe.yaml"));
        // Rendered for systemd 252, or for the version in `<case>/systemd`.
        let target = std::fs::read_to_string(case.join("systemd")).map_or(
            Target {
                systemd: 252,
                user: false,
            },
            |v| Target {
                systemd: v.trim().parse().expect("a systemd version"),
                user: false,
            },
        );
        let units = render_plan(&plan, target);
        let expected_dir = case.join("expected");
        if bless() {
            let _ = std::fs::remove_dir_all(&expected_dir);
            std::fs::create_dir_all(&expected_dir).unwrap();
            for u in &units {
                std::fs::write(expected_dir.join(&u.name), &u.contents).unwrap();
            }
            let w: Vec<String> = plan
                .recipe
                .warnings
                .iter()
                .map(|w| w.display_in("recipe.yaml").to_string())
                .collect();
            if !w.is_empty() {
                std::fs::write(expected_dir.join("WARNINGS"), w.join("\n") + "\n").unwrap();
            }
            continue;
        }
        let mut want: Vec<String> = cases(&expected_dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .filter(|n| n != "WARNINGS")
            .collect();
        want.sort();
        let got: Vec<String> = units.iter().map(|u| u.name.clone()).collect();
        if want != got {
            failures.push(format!(
                "{}: unit set differs\n  want {want:?}\n  got  {got:?}",
                case.display()
            ));
            continue;
        }
        for u in &units {
            let want = std::fs::read_to_string(expected_dir.join(&u.name)).unwrap();
            if want != u.contents {
                failures.push(format!(
                    "{}/{}: differs\n{}",
                    case.display(),
                    u.name,
                    pretty_assertions::StrComparison::new(&want, &u.contents)
                ));
            }
        }
        let want_w = std::fs::read_to_string(expected_dir.join("WARNINGS")).unwrap_or_default();
        let got_w: String = plan
            .recipe
            .warnings
            .iter()
            .map(|w| format!("{}\n", w.display_in("recipe.yaml")))
            .collect();
        if want_w != got_w {
            failures.push(format!(
                "{}: warnings differ\n  want {want_w:?}\n  got  {got_w:?}",
                case.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(rerun with KRILL_BLESS=1 to accept)",
        failures.join("\n\n")
    );
}

#[test]
fn bad_recipes_fail_with_exact_errors() {
    let mut failures = vec![];
    let mut n = 0;
    for path in cases(&root().join("bad")) {
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        n += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let got = match Recipe::parse(&text, Path::new(&name)).and_then(Plan::new) {
            Ok(_) => {
                failures.push(format!("{name}: accepted, but must be rejected"));
                continue;
            }
            Err(e) => format!("{e}\n"),
        };
        let err_file = path.with_extension("err");
        if bless() {
            std::fs::write(&err_file, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&err_file).unwrap_or_default();
        if want != got {
            failures.push(format!(
                "{name}:\n{}",
                pretty_assertions::StrComparison::new(&want, &got)
            ));
        }
    }
    assert!(n >= 10, "expected the bad-recipe fixtures, found {n}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
