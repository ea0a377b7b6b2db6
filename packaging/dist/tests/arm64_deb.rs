//! The arm64 .deb (`scripts/build-deb.sh arm64`): its binaries are aarch64, need no
//! glibc newer than 2.31, and, run under qemu-user, render the demo's units exactly as
//! the amd64 build's golden file says. `./test.sh` builds it; outside CI a missing
//! package is reported and the test passes.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn arm64_deb() -> Option<PathBuf> {
    let dir = repo().join("target/arm64/debian");
    let found = std::fs::read_dir(&dir).ok().and_then(|rd| {
        rd.flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with("_arm64.deb"))
            .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no arm64 .deb in {}: scripts/build-deb.sh arm64 did not run",
            dir.display()
        );
        eprintln!("skipped: no arm64 .deb (scripts/build-deb.sh arm64)");
    }
    found
}

/// The highest `GLIBC_2.N` version a binary names (its needed symbol versions).
fn newest_glibc(bin: &[u8]) -> u32 {
    bin.windows(8)
        .enumerate()
        .filter(|(_, w)| w == b"GLIBC_2.")
        .filter_map(|(i, _)| {
            let digits: String = bin[i + 8..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .map(|&b| b as char)
                .collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn arm64_binaries_run_on_glibc_2_31_and_render_like_amd64() {
    let Some(deb) = arm64_deb() else { return };
    let field = |f: &str| {
        let out = Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .arg(f)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(field("Architecture"), "arm64");
    let root = tempfile::tempdir().unwrap();
    let st = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root.path())
        .status()
        .unwrap();
    assert!(st.success());
    for b in ["krill-ctl", "krill-gen", "krill-supervisor"] {
        let bytes = std::fs::read(root.path().join("usr/bin").join(b)).unwrap();
        // ELF e_machine (little-endian, offset 18): 183 is EM_AARCH64.
        assert_eq!(u16::from_le_bytes([bytes[18], bytes[19]]), 183, "{b}");
        let glibc = newest_glibc(&bytes);
        assert!((1..=31).contains(&glibc), "{b} needs GLIBC_2.{glibc}");
    }
    let qemu = |args: &[&str]| {
        let out = Command::new("qemu-aarch64-static")
            .arg(root.path().join("usr/bin/krill-ctl"))
            .args(args)
            .current_dir(repo())
            .env("KRILL_SYSTEMD_VERSION", "252")
            .env("NO_COLOR", "1")
            .output()
            .expect("qemu-aarch64-static (apt-get install qemu-user-static)");
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(qemu(&["--version"]).starts_with("krill "));
    let here = repo().display().to_string();
    let got = qemu(&["render", "--json", "examples/demo/demo.yaml"]).replace(&here, "<repo>");
    let want =
        std::fs::read_to_string(repo().join("krill-ctl/tests/golden/render-demo.json")).unwrap();
    assert_eq!(got, want, "arm64 renders the demo like amd64");
}
