//! Every rendered unit set passes `systemd-analyze verify` with zero warnings.
//!
//! `verify` exits 0 on unknown keys and bad values, so this test fails on *any* line
//! it prints, not only on its exit code. Units are verified inside a scratch root
//! (`--root`) that holds the stock units, the rendered units in
//! `etc/systemd/system`, and an empty executable for every program the units run
//! (verify checks that programs exist; what they do is the e2e tests' business).
//!
//! By default the host's systemd verifies (and units are rendered for it). With
//! `KRILL_VERIFY_ROOT=DIR`, a Debian root such as the e2e cache's bullseye (247) or
//! trixie (257): units are rendered for its systemd, and its own `systemd-analyze`
//! verifies them, chrooted into the root with the scratch files laid over it
//! (overlayfs, in a private mount namespace, so the root is left as it was).
//! `./test.sh` runs it for every systemd of the matrix.

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

/// The root whose systemd verifies: `KRILL_VERIFY_ROOT`, or `/`.
fn system_root() -> PathBuf {
    std::env::var_os("KRILL_VERIFY_ROOT").map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// Runs that root's `systemd-analyze verify` on `names` in `scratch/case`; returns
/// everything it printed.
fn analyze(scratch: &Path, case: &str, names: &[String]) -> String {
    let sys = system_root();
    let out = if sys == Path::new("/") {
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", scratch.join(case).display()))
            .args(names)
            .env("SYSTEMD_LOG_COLOR", "0")
            .output()
            .expect("systemd-analyze must be installed (apt-get install systemd)")
    } else {
        // systemd 247's verify has no --root: the case's files are laid over the
        // root (overlayfs) and verified there, as if installed.
        let work = scratch.join(format!(".work-{case}"));
        let merged = scratch.join(format!(".merged-{case}"));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&merged).unwrap();
        Command::new("unshare")
            .args(["--mount", "--propagation=private", "sh", "-c"])
            .arg(
                r#"set -e; m=$4; mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$m"; mount -t proc proc "$m/proc"; mount --rbind /sys "$m/sys"; mount --rbind /dev "$m/dev"; shift 4; exec chroot "$m" systemd-analyze verify "$@""#,
            )
            .arg("sh")
            .arg(&sys)
            .arg(scratch.join(case))
            .arg(&work)
            .arg(&merged)
            .args(names)
            .env("SYSTEMD_LOG_COLOR", "0")
            .output()
            .expect("unshare, mount and chroot")
    };
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if target().systemd < 250 {
        // systemd 247's verify does not search the path for a bare program name
        // (`ExecStart=sleep 1`, which its PID 1 runs fine since 239): it reports
        // every one "not executable", even `sleep` in its own root. Only those lines
        // are dropped; the exit status then says nothing, so it is not used.
        let kept: Vec<&str> = text.lines().filter(|l| !bare_program_missing(l)).collect();
        return kept.join("\n");
    }
    if !out.status.success() && text.is_empty() {
        text = format!("exit status {}", out.status);
    }
    text
}

/// `UNIT: Command PROG is not executable: …` for a PROG without a `/`.
fn bare_program_missing(line: &str) -> bool {
    line.split_once(": Command ")
        .and_then(|(_, rest)| rest.split_once(" is not executable: "))
        .is_some_and(|(prog, _)| !prog.contains('/'))
}

/// The systemd units renders target: that of [`system_root`].
fn target() -> krill::compile::target::Target {
    krill::compile::target::Target::of_root(&system_root())
        .unwrap_or_else(krill::compile::target::Target::detect)
}

/// Renders `recipe` into a fresh root and returns everything verify printed.
fn verify(recipe: &Path, scratch: &Path) -> String {
    let plan = common::compile_fixture(recipe);
    // One root per case directory: two cases may share a workspace name.
    let case = recipe
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let root = scratch.join(&case);
    let etc = root.join("etc/systemd/system");
    std::fs::create_dir_all(&etc).unwrap();
    copy_dir(
        &system_root().join("usr/lib/systemd/system"),
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
    let units = render_plan(&plan, target());
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
    analyze(scratch, &case, &names)
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
    let root = scratch.path().join("bad");
    let etc = root.join("etc/systemd/system");
    std::fs::create_dir_all(&etc).unwrap();
    copy_dir(
        &system_root().join("usr/lib/systemd/system"),
        &root.join("usr/lib/systemd/system"),
    );
    touch_exe(&root.join("usr/bin/sleep"));
    std::fs::write(
        etc.join("bad.service"),
        "[Service]\nExecStart=sleep 1\nRestartSecc=5\n",
    )
    .unwrap();
    let text = analyze(scratch.path(), "bad", &["bad.service".to_owned()]);
    assert!(
        text.contains("RestartSecc"),
        "verify did not flag an unknown key: {text:?}"
    );
}
