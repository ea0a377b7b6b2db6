//! The Python and C++ SDKs send the exact bytes of the upstream SDKs (design.md).
//! (The Rust SDK's test is in sdk/rust.)

use std::process::Command;

use krill_e2e::repo;

/// The Python SDK's own tests (pytest): wire bytes, bounded calls, reconnect,
/// sd_notify fallback, no SIGPIPE, thread safety.
#[test]
fn python_sdk_tests() {
    let out = Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "sdk/python/tests",
        ])
        .current_dir(repo())
        .env_remove("NOTIFY_SOCKET")
        .output()
        .expect("python3 with pytest (scripts/deps.sh)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("10 passed"), "{text}");
}

/// Upstream's own Python SDK tests, unmodified, pass against ours: they import
/// `krill` from beside their `tests/` directory, where ours is put.
#[test]
fn upstream_python_sdk_tests_pass_against_ours() {
    let Some(upstream) = krill_e2e::upstream() else {
        return;
    };
    let dir = tempfile_dir().join("upstream-py");
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::create_dir_all(dir.join("krill")).unwrap();
    std::fs::copy(
        upstream.join("sdk-python/tests/test_krill.py"),
        dir.join("tests/test_krill.py"),
    )
    .unwrap();
    std::fs::copy(
        repo().join("sdk/python/krill/__init__.py"),
        dir.join("krill/__init__.py"),
    )
    .unwrap();
    let out = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .current_dir(&dir)
        .env_remove("NOTIFY_SOCKET")
        .output()
        .expect("python3 with pytest (scripts/deps.sh)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("14 passed"), "{text}");
}

#[test]
fn cpp_sdk_wire_format() {
    let dir = tempfile_dir();
    let exe = dir.join("test_wire");
    let st = Command::new("g++")
        .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(repo().join("sdk/cpp/test_wire.cpp"))
        .status()
        .expect("g++ is installed");
    assert!(st.success());
    let out = Command::new(&exe).output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        concat!(
            "{\"type\":\"heartbeat\",\"service\":\"S\",\"status\":\"healthy\",\"metadata\":{}}\n",
            "{\"type\":\"heartbeat\",\"service\":\"S\",\"status\":\"degraded\",\"metadata\":{\"reason\":\"low \\\"battery\\\"\"}}\n",
            "{\"type\":\"heartbeat\",\"service\":\"S\",\"status\":\"healthy\",\"metadata\":{\"fps\":\"30\"}}\n",
            "cannot connect to /nonexistent/k.sock: No such file or directory\n",
        )
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("krill-sdk-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `pip install ./sdk/python` (into a throwaway virtualenv) leaves nothing that git
/// would show as untracked in the repository.
#[test]
fn pip_install_leaves_the_tree_clean() {
    let repo = krill_e2e::repo();
    let untracked = || {
        let out = std::process::Command::new("git")
            .args([
                "status",
                "--porcelain",
                "--untracked-files=all",
                "--",
                "sdk/python",
            ])
            .current_dir(&repo)
            .output()
            .expect("git runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("??"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let before = untracked();
    let venv = std::env::temp_dir().join(format!("krill-pip-venv-{}", std::process::id()));
    let ok = |c: &mut std::process::Command| {
        let o = c.output().expect("runs");
        assert!(
            o.status.success(),
            "{c:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ok(std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv));
    ok(std::process::Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet"])
        .arg(repo.join("sdk/python")));
    let _ = std::fs::remove_dir_all(&venv);
    assert_eq!(untracked(), before, "pip install left files in sdk/python");
}

/// A labelled stand-in for upstream's `krill-common` crate, which upstream's Rust SDK
/// tests parse the received lines with: the protocol's message types as the wire
/// defines them (written here, not copied).
const KRILL_COMMON_STANDIN: &str = r#"//! Stand-in for upstream's krill-common: the heartbeat message as sent on the wire.
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    Healthy,
    Degraded,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientMessage {
    Heartbeat {
        service: String,
        status: ServiceStatus,
        metadata: HashMap<String, String>,
    },
}
"#;

/// Upstream's own Rust SDK tests, unmodified, compile and pass against ours, used
/// under upstream's crate name (`krill-sdk-rust = { package = "krill-sdk" }`).
#[test]
fn upstream_rust_sdk_tests_pass_against_ours() {
    let Some(upstream) = krill_e2e::upstream() else {
        return;
    };
    let dir = tempfile_dir().join("upstream-rs");
    let common = dir.join("krill-common");
    std::fs::create_dir_all(common.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(
        common.join("Cargo.toml"),
        "[package]\nname = \"krill-common\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         [dependencies]\nserde = { version = \"1\", features = [\"derive\"] }\n",
    )
    .unwrap();
    std::fs::write(common.join("src/lib.rs"), KRILL_COMMON_STANDIN).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"upstream-sdk-tests\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             [workspace]\n\
             [dev-dependencies]\n\
             krill-sdk-rust = {{ package = \"krill-sdk\", path = \"{}\" }}\n\
             krill-common = {{ path = \"krill-common\" }}\n\
             serde_json = \"1\"\ntempfile = \"3\"\n\
             tokio = {{ version = \"1\", features = [\"rt\", \"macros\", \"net\", \"io-util\", \"time\"] }}\n",
            repo().join("sdk/rust").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    std::fs::copy(
        upstream.join("sdk-rust/tests/integration.rs"),
        dir.join("tests/integration.rs"),
    )
    .unwrap();
    // Our lock file pins the same versions, so this builds offline from the cache.
    std::fs::copy(repo().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let out = Command::new(env!("CARGO"))
        .args(["test", "--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", repo().join("target/upstream-compat"))
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("test result: ok. 6 passed"), "{text}");
}
