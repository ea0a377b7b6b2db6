//! The systemd generator: finds installed recipes, compiles each one on its own and
//! writes the units of every good one.
//!
//! * Search path: `/etc/krill/recipes`, `/run/krill/recipes`, `/usr/lib/krill/recipes`,
//!   or the colon-separated `KRILL_RECIPE_PATH`. A recipe is `<workspace>.yaml` (or
//!   `.yml`); for one workspace name the first directory wins, and an empty file or a
//!   symlink to `/dev/null` masks the workspace.
//! * Boot start: `/etc/krill/enabled/<workspace>` (or `KRILL_ENABLED_DIR`) makes the
//!   generator add `multi-user.target.wants/krill-<workspace>.target`.
//! * A bad recipe, or one whose unit names collide with an earlier recipe's, is
//!   skipped and logged; the others are still generated.

use std::path::{Path, PathBuf};
use std::time::Duration;

use krill::compile::plan::{self, Plan};
use krill::compile::render::{render_checked, Unit};
use krill::compile::target::Target;
use krill::runtime::files::write_atomic;
use krill::runtime::installed::{discover, enabled_dir, recipe_path};
use krill::runtime::manifest::{self, Manifest, Rejected};
use krill::runtime::names;

use crate::syslog::{Logger, Priority};

/// Result of compiling every installed recipe.
#[derive(Default)]
pub struct Outcome {
    pub plans: Vec<Plan>,
    /// (recipe file, why it was skipped)
    pub rejected: Vec<(PathBuf, String)>,
}

/// The longest one recipe may take to compile (10 s). systemd kills the whole
/// generator after 90 s, and every workspace's units would vanish with it, so one
/// recipe that takes too long is skipped instead.
pub const RECIPE_DEADLINE: Duration = Duration::from_secs(10);

/// Compiles one recipe on a worker thread, giving up after `deadline`.
pub fn compile_bounded(path: &Path, deadline: Duration) -> Result<Plan, String> {
    let p = path.to_owned();
    run_bounded(deadline, move || {
        krill::compile(&p).map_err(|e| e.to_string())
    })
    .map_err(|e| format!("{}: {e}", path.display()))
    .and_then(|r| r)
}

/// Runs `work` on a worker thread and waits at most `deadline` for it. Work that
/// overruns is left to its thread, which dies with the generator process.
pub fn run_bounded<T: Send + 'static>(
    deadline: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("krill-compile".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = tx.send(r);
        })
        .map_err(|e| format!("cannot start a compile thread: {e}"))?;
    match rx.recv_timeout(deadline) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) => Err("internal error (panic)".into()),
        Err(_) => Err(format!(
            "compiling took longer than {deadline:?}; skipped so that the other recipes are generated"
        )),
    }
}

/// Compiles every recipe in `dirs`, isolating failures per recipe.
pub fn compile_all(dirs: &[PathBuf], log: &mut Logger) -> Outcome {
    compile_all_within(dirs, log, RECIPE_DEADLINE)
}

/// [`compile_all`] with a given per-recipe deadline.
pub fn compile_all_within(dirs: &[PathBuf], log: &mut Logger, deadline: Duration) -> Outcome {
    let mut out = Outcome::default();
    for (stem, path) in discover(dirs) {
        match compile_bounded(&path, deadline) {
            Ok(plan) => {
                for w in &plan.recipe.warnings {
                    log.log(
                        Priority::Warning,
                        &w.display_in(&path.display().to_string()).to_string(),
                    );
                }
                if plan.workspace() != stem {
                    let why = format!(
                        "{}: workspace name {:?} does not match the file name; expected {stem}.yaml to hold `name: {stem}`",
                        path.display(),
                        plan.workspace()
                    );
                    out.rejected.push((path, why));
                    continue;
                }
                let others: Vec<&Plan> = out.plans.iter().collect();
                let conflicts = plan::check_conflicts(&plan, &others);
                if let Some((unit, ws)) = conflicts.first() {
                    let why = format!(
                        "{}: unit {unit} is also produced by workspace {ws:?}; rename a service or workspace",
                        path.display()
                    );
                    out.rejected.push((path, why));
                    continue;
                }
                out.plans.push(plan);
            }
            Err(e) => out.rejected.push((path, e)),
        }
    }
    out
}

/// Writes rendered units into `dir`, plus the boot-start link of `plan` if `enabled`.
/// Returns the number of unit files.
pub fn write_plan(
    dir: &Path,
    plan: &Plan,
    units: &[Unit],
    enabled: bool,
) -> std::io::Result<usize> {
    let write = |u: &Unit| {
        write_atomic(dir, &u.name, u.contents.as_bytes()).map_err(|e| {
            std::io::Error::new(e.kind(), format!("{}: {e}", dir.join(&u.name).display()))
        })
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = units.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = units
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().try_for_each(write)))
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("writer thread panicked")))
        })
    })?;
    if enabled {
        want(dir, boot_target(), &format!("../{}", plan.target))?;
    }
    Ok(units.len())
}

/// What a manager reaches at boot: `multi-user.target`, or a user manager's
/// `default.target` (at boot only with lingering).
fn boot_target() -> &'static str {
    if krill::runtime::scope::is_user() {
        "default.target"
    } else {
        "multi-user.target"
    }
}

/// Links `dir/<wanted_by>.wants/<name of unit>` to `unit` (a path).
fn want(dir: &Path, wanted_by: &str, unit: &str) -> std::io::Result<()> {
    let wants = dir.join(format!("{wanted_by}.wants"));
    std::fs::create_dir_all(&wants)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", wants.display())))?;
    let name = Path::new(unit).file_name().unwrap_or_default();
    let link = wants.join(name);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(unit, &link)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", link.display())))
}

/// A user's supervisor and heartbeat socket come with the user's workspaces: the
/// package cannot enable them for every user, and a user without recipes needs none.
/// (The system ones are enabled by the package.)
const USER_UNIT_DIR: &str = "/usr/lib/systemd/user";

/// The generator proper. Returns the process exit code: 0 when every recipe was
/// generated (or there were none), 1 when some recipe was skipped. Besides the units
/// it writes the manifests ([`krill::runtime::manifest`]) of exactly what it generated.
pub fn run(normal_dir: &Path, log: &mut Logger) -> i32 {
    let dirs = recipe_path();
    let mut outcome = compile_all(&dirs, log);
    let enabled = enabled_dir();
    let mut generated: Vec<Manifest> = vec![];
    let target = Target::detect();
    for plan in &outcome.plans {
        let units = match render_checked(plan, target) {
            Ok(u) => u,
            Err(e) => {
                outcome.rejected.push((plan.recipe.source.clone(), e));
                continue;
            }
        };
        let on = enabled.join(plan.workspace()).exists();
        match write_plan(normal_dir, plan, &units, on) {
            Ok(n) => {
                generated.push(plan.manifest());
                log.log(
                    Priority::Info,
                    &format!(
                        "generated {} units for workspace {} from {}{}",
                        n,
                        plan.workspace(),
                        plan.recipe.source.display(),
                        if on { " (enabled at boot)" } else { "" }
                    ),
                )
            }
            Err(e) => outcome.rejected.push((
                plan.recipe.source.clone(),
                format!("cannot write units of {}: {e}", plan.workspace()),
            )),
        }
    }
    let mut code = 0;
    if krill::runtime::scope::is_user() && !generated.is_empty() {
        for (by, unit) in [
            ("sockets.target", names::SUPERVISOR_SOCKET),
            ("default.target", names::SUPERVISOR_SERVICE),
        ] {
            if let Err(e) = want(normal_dir, by, &format!("{USER_UNIT_DIR}/{unit}")) {
                log.log(Priority::Err, &format!("cannot enable {unit}: {e}"));
                code = 1;
            }
        }
    }
    if let Some(text) = krill::compile::render::supervisor_dropin(target) {
        let dir = normal_dir.join("krill-supervisor.service.d");
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            write_atomic(
                &dir,
                krill::compile::render::SUPERVISOR_DROPIN,
                text.as_bytes(),
            )
        });
        if let Err(e) = written {
            log.log(
                Priority::Warning,
                &format!("cannot write the supervisor's fd-store drop-in: {e}"),
            );
        }
    }
    for (path, why) in &outcome.rejected {
        log.log(
            Priority::Err,
            &format!("skipping recipe {}: {why}", path.display()),
        );
        code = 1;
    }
    let rejected: Vec<Rejected> = outcome
        .rejected
        .iter()
        .map(|(file, error)| Rejected {
            file: file.clone(),
            error: error.clone(),
        })
        .collect();
    if let Err(e) = manifest::write(normal_dir, &generated, &rejected) {
        log.log(Priority::Err, &format!("cannot write krill manifests: {e}"));
        code = 1;
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_that_overruns_its_deadline_is_abandoned() {
        // Work that never finishes (it waits on a channel nobody sends to) stands in for
        // a recipe that takes too long: the caller gets an error at the deadline.
        let (_keep, rx) = std::sync::mpsc::channel::<()>();
        let r = run_bounded(std::time::Duration::from_millis(50), move || {
            let _ = rx.recv();
        });
        assert!(r.unwrap_err().contains("took longer than"));
        assert_eq!(run_bounded(std::time::Duration::from_secs(10), || 7), Ok(7));
        assert!(
            run_bounded(std::time::Duration::from_secs(10), || panic!("x"))
                .unwrap_err()
                .contains("panic")
        );
    }
}
