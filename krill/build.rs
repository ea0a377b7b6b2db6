//! Records the git revision the library is built from, for every binary's
//! `--version`. Outside a git checkout (a source tarball) it is `unknown`, or
//! `KRILL_GIT_REV` when the packager sets it.

fn main() {
    println!("cargo:rerun-if-env-changed=KRILL_GIT_REV");
    let rev = std::env::var("KRILL_GIT_REV").ok().or_else(|| {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        let rev = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !rev.is_empty()).then_some(rev)
    });
    // A new commit moves HEAD or the branch it points to.
    if let Ok(git) = std::process::Command::new("git")
        .args(["rev-parse", "--absolute-git-dir"])
        .output()
    {
        let dir = String::from_utf8_lossy(&git.stdout).trim().to_owned();
        if !dir.is_empty() {
            println!("cargo:rerun-if-changed={dir}/HEAD");
            println!("cargo:rerun-if-changed={dir}/refs/heads");
        }
    }
    println!(
        "cargo:rustc-env=KRILL_GIT_REV={}",
        rev.as_deref().unwrap_or("unknown")
    );
}
