//! Smoke tests of the completions the .deb installs, in the real shells: bash and
//! fish complete `krill st` to the subcommands that start with `st`, and zsh parses
//! its file. The files are rendered by the `krill-dist` binary into a temporary
//! directory, exactly as packaging does.

use std::path::{Path, PathBuf};
use std::process::Command;

fn render() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new(env!("CARGO_BIN_EXE_krill-dist"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");
    let comp = dir.path().join("completions");
    (dir, comp)
}

fn run(shell: &str, args: &[&str]) -> String {
    let out = Command::new(shell)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{shell} must be installed (apt-get install {shell}): {e}"));
    assert!(out.status.success(), "{shell}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

const ST: &[&str] = &["start", "status", "stop"];

#[test]
fn bash_completes_subcommands() {
    let (_d, comp) = render();
    for bin in ["krill", "krill-ctl"] {
        let f = comp.join(bin);
        let fname = format!("_{}", bin.replace('-', "__"));
        let script = format!(
            "source {}; COMP_WORDS=({bin} st); COMP_CWORD=1; COMP_LINE='{bin} st'; COMP_POINT=${{#COMP_LINE}}; {fname} {bin} st {bin}; echo \"${{COMPREPLY[@]}}\"",
            f.display()
        );
        let out = run("bash", &["-c", &script]);
        let got = words(&out);
        for w in ST {
            assert!(got.contains(w), "bash {bin} st → {got:?}");
        }
        assert!(!got.contains(&"install"), "bash {bin} st → {got:?}");
    }
}

#[test]
fn fish_completes_subcommands() {
    let (_d, comp) = render();
    let f: &Path = &comp.join("krill.fish");
    let out = run(
        "fish",
        &[
            "-c",
            &format!("source {}; complete -C'krill st'", f.display()),
        ],
    );
    let got: Vec<&str> = out.lines().filter_map(|l| l.split('\t').next()).collect();
    for w in ST {
        assert!(got.contains(w), "fish krill st → {got:?}");
    }
}

#[test]
fn zsh_reads_its_completion_file() {
    let (_d, comp) = render();
    run("zsh", &["-n", &comp.join("_krill").display().to_string()]);
    let text = std::fs::read_to_string(comp.join("_krill")).unwrap();
    assert!(text.starts_with("#compdef krill"), "{}", &text[..40]);
    assert!(text.contains("'estop:"), "estop is offered");
}
