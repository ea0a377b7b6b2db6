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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plan::{self, Plan};
use crate::render::{check_unit, render_service_unit, render_workspace_units, Unit};
use crate::syslog::{Logger, Priority};

/// Default recipe directories, highest precedence first.
pub const DEFAULT_RECIPE_PATH: &[&str] = &[
    "/etc/krill/recipes",
    "/run/krill/recipes",
    "/usr/lib/krill/recipes",
];
/// Default directory of boot-start markers.
pub const DEFAULT_ENABLED_DIR: &str = "/etc/krill/enabled";

/// Recipe directories from `KRILL_RECIPE_PATH`, or the defaults.
pub fn recipe_path() -> Vec<PathBuf> {
    match std::env::var_os("KRILL_RECIPE_PATH") {
        Some(p) if !p.is_empty() => std::env::split_paths(&p).collect(),
        _ => DEFAULT_RECIPE_PATH.iter().map(PathBuf::from).collect(),
    }
}

/// Directory of boot-start markers, from `KRILL_ENABLED_DIR` or the default.
pub fn enabled_dir() -> PathBuf {
    std::env::var_os("KRILL_ENABLED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ENABLED_DIR))
}

/// Installed recipes by workspace name, after precedence. Masked workspaces are left
/// out. Unreadable directories are skipped (a missing one is normal).
pub fn discover(dirs: &[PathBuf]) -> BTreeMap<String, PathBuf> {
    let mut found: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let (Some(stem), Some(ext)) = (f.file_stem(), f.extension()) else {
                continue;
            };
            if ext != "yaml" && ext != "yml" {
                continue;
            }
            let Some(stem) = stem.to_str() else { continue };
            if stem.starts_with('.') || found.contains_key(stem) {
                continue;
            }
            let masked = std::fs::read_link(&f).is_ok_and(|t| t == Path::new("/dev/null"))
                || std::fs::metadata(&f).is_ok_and(|m| m.is_file() && m.len() == 0);
            found.insert(stem.to_owned(), (!masked).then_some(f));
        }
    }
    found
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

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
        crate::compile(&p).map_err(|e| e.to_string())
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

/// Writes `contents` to `dir/name` through a temporary file and a rename (for the
/// generator's tmpfs output, where durability means nothing).
pub fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    write_replacing(dir, name, contents, false)
}

/// [`write_atomic`] that survives a power cut: the temporary file is fsynced before
/// the rename, and the directory after it, so that after a crash `dir/name` holds
/// either the old or the new contents, never an empty or partial file.
pub fn write_durable(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    write_replacing(dir, name, contents, true)
}

fn write_replacing(dir: &Path, name: &str, contents: &[u8], durable: bool) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(".{name}.krill-tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(contents)?;
    if durable {
        f.sync_all()?;
    }
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    if durable {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Renders every unit of a plan (spread over the cores: a 1000-service recipe is
/// 1000 units) and checks each with [`check_unit`]. Nothing is written here, so a
/// plan that fails the check leaves no file behind.
pub fn render_checked(plan: &Plan) -> Result<Vec<Unit>, String> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = plan.services.len().div_ceil(threads).max(1);
    let mut units = render_workspace_units(plan);
    std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .services
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|p| render_service_unit(plan, p))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            units.extend(
                h.join()
                    .map_err(|_| "renderer thread panicked".to_owned())?,
            );
        }
        Ok::<_, String>(())
    })?;
    units.iter().try_for_each(check_unit)?;
    units.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(units)
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
        let wants = dir.join("multi-user.target.wants");
        std::fs::create_dir_all(&wants)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", wants.display())))?;
        let link = wants.join(&plan.target);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(format!("../{}", plan.target), &link)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", link.display())))?;
    }
    Ok(units.len())
}

/// The generator proper. Returns the process exit code: 0 when every recipe was
/// generated (or there were none), 1 when some recipe was skipped. Besides the units
/// it writes the manifests ([`crate::manifest`]) of exactly what it generated.
pub fn run(normal_dir: &Path, log: &mut Logger) -> i32 {
    let dirs = recipe_path();
    let mut outcome = compile_all(&dirs, log);
    let enabled = enabled_dir();
    let mut generated: Vec<&Plan> = vec![];
    for plan in &outcome.plans {
        let units = match render_checked(plan) {
            Ok(u) => u,
            Err(e) => {
                outcome.rejected.push((plan.recipe.source.clone(), e));
                continue;
            }
        };
        let on = enabled.join(plan.workspace()).exists();
        match write_plan(normal_dir, plan, &units, on) {
            Ok(n) => {
                generated.push(plan);
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
    for (path, why) in &outcome.rejected {
        log.log(
            Priority::Err,
            &format!("skipping recipe {}: {why}", path.display()),
        );
        code = 1;
    }
    let rejected: Vec<crate::manifest::Rejected> = outcome
        .rejected
        .iter()
        .map(|(file, error)| crate::manifest::Rejected {
            file: file.clone(),
            error: error.clone(),
        })
        .collect();
    if let Err(e) = crate::manifest::write(normal_dir, &generated, &rejected) {
        log.log(Priority::Err, &format!("cannot write krill manifests: {e}"));
        code = 1;
    }
    code
}

/// `--dry-run`: every unit of every recipe on stdout, each after a
/// `# --- <unit name> ---` line. Returns the exit code (1 if any recipe is invalid).
pub fn dry_run(
    recipes: &[PathBuf],
    out: &mut impl std::io::Write,
    err: &mut impl std::io::Write,
) -> i32 {
    let mut code = 0;
    for r in recipes {
        match crate::compile(r)
            .map_err(|e| e.to_string())
            .and_then(|plan| {
                render_checked(&plan)
                    .map(|u| (plan, u))
                    .map_err(|e| format!("{}: {e}", r.display()))
            }) {
            Ok((plan, units)) => {
                for w in &plan.recipe.warnings {
                    let _ = writeln!(err, "warning: {}", w.display_in(&r.display().to_string()));
                }
                for u in units {
                    let _ = write!(out, "# --- {} ---\n{}", u.name, u.contents);
                }
            }
            Err(e) => {
                let _ = writeln!(err, "{e}");
                code = 1;
            }
        }
    }
    code
}
