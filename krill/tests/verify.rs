//! Every rendered unit set passes `systemd-analyze verify` with zero warnings.
//!
//! `verify` exits 0 on unknown keys and bad values, so this test fails on *any* line
//! it prints, not only on its exit code. Units are verified inside a scratch root
//! (`--root`) that holds the host's stock units, the rendered units in
//! `etc/systemd/system`, and an empty executable for every program the units run
//! (verify checks that programs exist; what they do is the e2e tests' business).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use krill::compile::render::render_plan;

mod common;

/// The program of an `Exec*=` value: the first word, unquoted, without prefixes.
fn program(value: &str) -> String {
    let v = value.trim_start_matches(['-', '@', '+', '!', ':']);
    let word = if let Some(rest) = v.strip_prefix('"') {
        rest.split('"').next().unwrap_or("")
    } else {
        v.split(' ').next().unwrap_or("")
    };
    word.replace("\\\\", "\\").replace("%%", "%")
}

fn touch_exe(p: &Path) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ty = e.file_type().unwrap();
        let dst = to.join(e.file_name());
        if ty.is_dir() {
            copy_dir(&e.path(), &dst);
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), dst).unwrap();
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Renders `recipe` into a fresh root and returns everything verify printed.
fn verify(recipe: &Path, scratch: &Path) -> String {
    let plan = common::compile_fixture(recipe);
    // One root per case directory: two cases may share a workspace name.
    let root = scratch.join(recipe.parent().unwrap().file_name().unwrap());
    let etc = root.join("etc/systemd/system");
    std::fs::create_dir_all(&etc).unwrap();
    copy_dir(
        Path::new("/usr/lib/systemd/system"),
        &root.join("usr/lib/systemd/system"),
    );
    // krill's static templates (gates, failure handlers), as packaging installs them.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../units");
    for e in std::fs::read_dir(&shipped).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "service") {
            std::fs::copy(
                &p,
                root.join("usr/lib/systemd/system")
                    .join(p.file_name().unwrap()),
            )
            .unwrap();
        }
    }
    touch_exe(&root.join("usr/bin/krill-ctl"));
    let units = render_plan(&plan, krill::compile::target::Target::detect());
    for u in &units {
        std::fs::write(etc.join(&u.name), &u.contents).unwrap();
        for line in u.contents.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if key.starts_with("Exec") {
                let prog = program(value);
                let path = if prog.starts_with('/') {
                    root.join(prog.trim_start_matches('/'))
                } else {
                    root.join("usr/bin").join(prog)
                };
                touch_exe(&path);
            } else if key == "WorkingDirectory" {
                std::fs::create_dir_all(
                    root.join(value.replace("%%", "%").trim_start_matches('/')),
                )
                .unwrap();
            }
        }
    }
    // Instances of the templates this plan uses, verified with the plan's units.
    let mut names: Vec<String> = units.iter().map(|u| u.name.clone()).collect();
    names.extend(plan.all_units().into_iter().filter(|u| u.contains('@')));
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .args(&names)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .expect("systemd-analyze must be installed (apt-get install systemd)");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() && text.is_empty() {
        text = format!("exit status {}", out.status);
    }
    text
}

#[test]
fn every_rendered_unit_set_passes_systemd_analyze_verify() {
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let scratch = tempfile::tempdir().unwrap();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&tests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10);
    let mut failures = vec![];
    for case in cases {
        let out = verify(&case.join("recipe.yaml"), scratch.path());
        if !out.trim().is_empty() {
            failures.push(format!("{}:\n{out}", case.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "systemd-analyze verify printed warnings:\n{}",
        failures.join("\n")
    );
}

#[test]
fn verify_check_catches_a_bad_unit() {
    // The check above is only worth something if verify complains about a broken
    // unit in this very setup.
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    let etc = root.join("etc/systemd/system");
    std::fs::create_dir_all(&etc).unwrap();
    copy_dir(
        Path::new("/usr/lib/systemd/system"),
        &root.join("usr/lib/systemd/system"),
    );
    touch_exe(&root.join("usr/bin/sleep"));
    std::fs::write(
        etc.join("bad.service"),
        "[Service]\nExecStart=sleep 1\nRestartSecc=5\n",
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg("bad.service")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("RestartSecc"),
        "verify did not flag an unknown key: {text:?}"
    );
}
