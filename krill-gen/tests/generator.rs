//! The `krill-gen` binary as systemd calls it: search path and precedence, per-recipe
//! failure isolation, boot-start links, and the dry run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const GOOD: &str = "version: \"1\"\nname: NAME\nservices:\n  a:\n    execute: {type: shell, command: sleep infinity}\n";

fn recipe(name: &str) -> String {
    GOOD.replace("NAME", name)
}

struct Dirs {
    _tmp: tempfile::TempDir,
    etc: PathBuf,
    run: PathBuf,
    lib: PathBuf,
    enabled: PathBuf,
    out: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let d = |n: &str| {
        let p = tmp.path().join(n);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    Dirs {
        etc: d("etc"),
        run: d("run"),
        lib: d("lib"),
        enabled: d("enabled"),
        out: d("out"),
        _tmp: tmp,
    }
}

fn generate(d: &Dirs) -> Output {
    let path = std::env::join_paths([&d.etc, &d.run, &d.lib]).unwrap();
    Command::new(env!("CARGO_BIN_EXE_krill-gen"))
        .args([
            &d.out,
            &d.out.with_file_name("early"),
            &d.out.with_file_name("late"),
        ])
        .env("KRILL_RECIPE_PATH", path)
        .env("KRILL_ENABLED_DIR", &d.enabled)
        .output()
        .unwrap()
}

/// The unit files (and .wants directories) in `dir`, without krill's manifests.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != krill::runtime::manifest::SUBDIR)
        .collect();
    v.sort();
    v
}

#[test]
fn no_input_exits_zero_and_writes_nothing() {
    let d = dirs();
    let out = generate(&d);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(listing(&d.out).is_empty());
}

#[test]
fn missing_search_directories_are_fine() {
    let d = dirs();
    let out = Command::new(env!("CARGO_BIN_EXE_krill-gen"))
        .arg(&d.out)
        .env("KRILL_RECIPE_PATH", "/nonexistent/a:/nonexistent/b")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn etc_beats_run_beats_usr_lib() {
    let d = dirs();
    let with_cmd = |c: &str| recipe("ws").replace("sleep infinity", c);
    std::fs::write(d.lib.join("ws.yaml"), with_cmd("from-lib")).unwrap();
    std::fs::write(d.run.join("ws.yaml"), with_cmd("from-run")).unwrap();
    std::fs::write(d.lib.join("other.yaml"), recipe("other")).unwrap();
    assert_eq!(generate(&d).status.code(), Some(0));
    let unit = std::fs::read_to_string(d.out.join("krill-ws-a.service")).unwrap();
    assert!(unit.contains("ExecStart=\"from-run\""), "{unit}");
    assert!(d.out.join("krill-other.target").exists());

    std::fs::write(d.etc.join("ws.yaml"), with_cmd("from-etc")).unwrap();
    std::fs::remove_dir_all(&d.out).unwrap();
    std::fs::create_dir(&d.out).unwrap();
    assert_eq!(generate(&d).status.code(), Some(0));
    let unit = std::fs::read_to_string(d.out.join("krill-ws-a.service")).unwrap();
    assert!(unit.contains("ExecStart=\"from-etc\""), "{unit}");
    assert!(unit.contains(&format!("SourcePath={}", d.etc.join("ws.yaml").display())));
}

#[test]
fn dev_null_link_masks_a_vendor_recipe() {
    let d = dirs();
    std::fs::write(d.lib.join("ws.yaml"), recipe("ws")).unwrap();
    std::os::unix::fs::symlink("/dev/null", d.etc.join("ws.yaml")).unwrap();
    assert_eq!(generate(&d).status.code(), Some(0));
    assert!(listing(&d.out).is_empty(), "{:?}", listing(&d.out));
}

#[test]
fn a_bad_recipe_is_skipped_and_the_others_are_generated() {
    let d = dirs();
    std::fs::write(d.etc.join("good.yaml"), recipe("good")).unwrap();
    std::fs::write(
        d.etc.join("bad.yaml"),
        recipe("bad").replace("sleep infinity", "a | b"),
    )
    .unwrap();
    std::fs::write(d.etc.join("garbage.yaml"), "{{{{ not yaml").unwrap();
    std::fs::write(d.etc.join("misnamed.yaml"), recipe("other-name")).unwrap();
    let out = generate(&d);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a skipped recipe is reported in the exit code"
    );
    assert_eq!(
        listing(&d.out),
        [
            "krill-good-a.service",
            "krill-good.slice",
            "krill-good.target"
        ]
    );
    // The manifests name exactly what was generated, and what was skipped and why.
    let loaded =
        krill::runtime::manifest::Loaded::read_from(&d.out.join(krill::runtime::manifest::SUBDIR));
    assert_eq!(loaded.workspaces.keys().collect::<Vec<_>>(), ["good"]);
    let skipped: Vec<String> = loaded
        .rejected
        .iter()
        .map(|r| r.file.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(skipped, ["bad.yaml", "garbage.yaml", "misnamed.yaml"]);
    assert!(
        loaded.rejected[0].error.contains("pipe"),
        "{:?}",
        loaded.rejected
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("skipping recipe")
            && log.contains("bad.yaml:5:37: services.a.execute.command: pipe (|)"),
        "{log}"
    );
    assert!(log.contains("garbage.yaml"), "{log}");
    assert!(log.contains("does not match the file name"), "{log}");
}

#[test]
fn colliding_unit_names_across_workspaces_skip_the_later_recipe() {
    let d = dirs();
    // krill-a-b-c.service from workspace "a-b" service "c", and from "a" service "b-c".
    std::fs::write(
        d.etc.join("a-b.yaml"),
        recipe("a-b").replace("  a:", "  c:"),
    )
    .unwrap();
    std::fs::write(d.etc.join("a.yaml"), recipe("a").replace("  a:", "  b-c:")).unwrap();
    let out = generate(&d);
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("krill-a-b-c.service is also produced by workspace"),
        "{log}"
    );
    let units = listing(&d.out);
    assert_eq!(
        units
            .iter()
            .filter(|u| u.as_str() == "krill-a-b-c.service")
            .count(),
        1
    );
    assert_eq!(
        units.len(),
        3,
        "only one of the two recipes is generated: {units:?}"
    );
}

#[test]
fn enabled_workspaces_get_a_boot_link() {
    let d = dirs();
    std::fs::write(d.etc.join("ws.yaml"), recipe("ws")).unwrap();
    std::fs::write(d.etc.join("off.yaml"), recipe("off")).unwrap();
    std::fs::write(d.enabled.join("ws"), "").unwrap();
    assert_eq!(generate(&d).status.code(), Some(0));
    let link = d.out.join("multi-user.target.wants/krill-ws.target");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("../krill-ws.target")
    );
    assert_eq!(
        listing(&d.out.join("multi-user.target.wants")),
        ["krill-ws.target"]
    );
    assert!(
        !listing(&d.out).iter().any(|n| n.contains(".krill-tmp")),
        "no temporary files left"
    );
}

#[test]
fn dry_run_prints_every_unit_and_writes_nothing() {
    let d = dirs();
    let r = d.etc.join("ws.yaml");
    std::fs::write(&r, recipe("ws")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_krill-gen"))
        .arg("--dry-run")
        .arg(&r)
        .current_dir(&d.out)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("# --- ")).collect();
    assert_eq!(
        headers,
        [
            "# --- krill-ws-a.service ---",
            "# --- krill-ws.slice ---",
            "# --- krill-ws.target ---"
        ]
    );
    assert!(text.contains("ExecStart=\"sleep\" \"infinity\""));
    assert!(listing(&d.out).is_empty());

    let bad = d.etc.join("bad.yaml");
    std::fs::write(
        &bad,
        "version: \"1\"\nname: x\nservices: {a: {execute: {type: shell}}}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_krill-gen"))
        .arg("--dry-run")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{}:3:32: services.a.execute.command: execute type shell requires `command`\n",
            bad.display()
        )
    );
}

#[test]
fn bad_arguments_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_krill-gen"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
}

#[test]
fn hostile_files_are_refused_without_blocking_and_the_others_generated() {
    let d = dirs();
    std::fs::write(d.etc.join("good.yaml"), recipe("good")).unwrap();
    // A FIFO nobody writes to, a link to an endless device, and an oversized file.
    let fifo = d.etc.join("fifo.yaml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink("/dev/zero", d.etc.join("zero.yaml")).unwrap();
    let big = format!(
        "{}# {}\n",
        recipe("big"),
        "x".repeat(krill::compile::recipe::MAX_RECIPE_BYTES as usize)
    );
    std::fs::write(d.etc.join("big.yaml"), big).unwrap();
    let out = generate(&d);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        listing(&d.out),
        [
            "krill-good-a.service",
            "krill-good.slice",
            "krill-good.target"
        ]
    );
    let loaded =
        krill::runtime::manifest::Loaded::read_from(&d.out.join(krill::runtime::manifest::SUBDIR));
    let errors: Vec<String> = loaded.rejected.iter().map(|r| r.error.clone()).collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("limit for a recipe")),
        "{errors:?}"
    );
    assert_eq!(
        errors
            .iter()
            .filter(|e| e.contains("not a regular file"))
            .count(),
        2,
        "{errors:?}"
    );
}
