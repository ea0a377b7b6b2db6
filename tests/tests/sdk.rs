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
    let dir = tempfile_dir("upstream-py");
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
    let dir = tempfile_dir("cpp-wire");
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

/// The C++ client's guarantees (sdk/cpp/test_client.cpp): reconnect, bounded calls,
/// no torn lines across threads, the systemd watchdog fallback, and no SIGPIPE.
#[test]
fn cpp_sdk_guarantees() {
    let dir = tempfile_dir("cpp-client");
    let exe = dir.join("test_client");
    let st = Command::new("g++")
        .args([
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
            "-o",
        ])
        .arg(&exe)
        .arg(repo().join("sdk/cpp/test_client.cpp"))
        .status()
        .expect("g++ is installed");
    assert!(st.success());
    let out = Command::new(&exe)
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in ["ok reconnect", "ok bounded", "ok threads", "ok fallback"] {
        assert!(text.contains(check), "{text}");
    }
}

/// Upstream's C++ example compiles unchanged against our header: it is copied away
/// from upstream's own krill.hpp, so `#include "krill.hpp"` finds ours.
#[test]
fn upstream_cpp_example_compiles_against_ours() {
    let Some(upstream) = krill_e2e::upstream() else {
        return;
    };
    let dir = tempfile_dir("upstream-cpp");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        upstream.join("sdk-cpp/example.cpp"),
        dir.join("example.cpp"),
    )
    .unwrap();
    let out = Command::new("g++")
        .args(["-std=c++17", "-Wall", "-Werror", "-pthread", "-I"])
        .arg(repo().join("sdk/cpp"))
        .arg(dir.join("example.cpp"))
        .arg("-o")
        .arg(dir.join("example"))
        .output()
        .expect("g++ is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The C++ example project builds with CMake's `find_package(krill)` and with
/// `pkg-config krill`, against the SDK files of the .deb (extracted, relocated).
#[test]
fn cpp_example_builds_with_cmake_and_pkg_config_from_the_deb() {
    let dir = tempfile_dir("cmake-example");
    let _ = std::fs::remove_dir_all(&dir);
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let st = Command::new("dpkg-deb")
        .arg("-x")
        .arg(krill_e2e::deb())
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success());
    let build = dir.join("build");
    let configure = Command::new("cmake")
        .arg("-S")
        .arg(repo().join("examples/sdk/cpp"))
        .arg("-B")
        .arg(&build)
        .arg(format!(
            "-DCMAKE_PREFIX_PATH={}",
            root.join("usr").display()
        ))
        .output()
        .expect("cmake (scripts/deps.sh)");
    assert!(configure.status.success(), "{configure:?}");
    let b = Command::new("cmake")
        .arg("--build")
        .arg(&build)
        .output()
        .unwrap();
    assert!(b.status.success(), "{b:?}");
    // Outside krill, with no socket and no watchdog: it reports and goes on.
    let run = Command::new(build.join("heartbeat_node"))
        .arg("2")
        .env("KRILL_SERVICE", "example")
        .env("KRILL_SOCKET", dir.join("absent.sock"))
        .env("NOTIFY_SOCKET", dir.join("notify-absent"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("sent 2 heartbeats"),
        "{run:?}"
    );
    // pkg-config, relocated to the extracted prefix.
    let flags = Command::new("pkg-config")
        .args(["--define-prefix", "--cflags", "krill"])
        .env("PKG_CONFIG_PATH", root.join("usr/share/pkgconfig"))
        .output()
        .expect("pkg-config (scripts/deps.sh)");
    let flags = String::from_utf8_lossy(&flags.stdout).trim().to_owned();
    assert!(
        flags.contains(&format!("-I{}", root.join("usr/include").display())),
        "{flags}"
    );
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "g++ {flags} -pthread -o {} {}",
            dir.join("pc-node").display(),
            repo().join("examples/sdk/cpp/main.cpp").display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
}

/// A scratch directory of one test (tests run in parallel: one each).
fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("krill-sdk-test-{}-{name}", std::process::id()));
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
    let dir = tempfile_dir("upstream-rs");
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

/// The Rust SDK packages for crates.io as it is: complete metadata (cargo refuses a
/// crate without description or license), its README, examples and tests.
#[test]
fn rust_sdk_packages_for_publishing() {
    let out = Command::new(env!("CARGO"))
        .args([
            "package",
            "-p",
            "krill-sdk",
            "--list",
            "--allow-dirty",
            "--offline",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    let files = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{files}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "README.md",
        "examples/heartbeat.rs",
        "examples/blocking.rs",
        "src/client.rs",
    ] {
        assert!(files.lines().any(|l| l == f), "{f} missing: {files}");
    }
    let manifest = std::fs::read_to_string(repo().join("sdk/rust/Cargo.toml")).unwrap();
    for key in [
        "description",
        "readme",
        "keywords",
        "categories",
        "repository",
    ] {
        assert!(manifest.contains(&format!("\n{key} = ")), "{key}");
    }
}
