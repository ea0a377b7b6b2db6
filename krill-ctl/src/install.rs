//! `krill-ctl plan|install|uninstall`: putting a recipe in place for the generator.
//!
//! Install validates the whole recipe first, then writes it atomically to
//! `/etc/krill/recipes/<workspace>.yaml`, reloads systemd, and checks that the
//! generator accepted it. If the generator did not (e.g. a collision with another
//! workspace), the previous recipe is put back, so a bad recipe never replaces a good
//! one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use krill::compile::plan::{self, Plan};
use krill::compile::render::render_plan;
use krill::compile::target::Target;
use krill::runtime::files::write_durable;
use krill::runtime::installed::{discover, enabled_dir, install_dir, recipe_path};
use krill::runtime::records::{Kind, Records};
use krill::{Recipe, RecipeError};

use krill::runtime::bus::Job;

use crate::bus::Systemd;

/// Why an install-family command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Recipe(#[from] RecipeError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Bus(#[from] crate::bus::Error),
    #[error("{0}")]
    Refused(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// The difference between what is installed and what a recipe would install.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Changed service units that are running now and will be restarted.
    pub restart: Vec<String>,
}

/// Units by name, as rendered from a plan.
fn units(plan: &Plan) -> BTreeMap<String, String> {
    render_plan(plan, Target::detect())
        .into_iter()
        .map(|u| (u.name, u.contents))
        .collect()
}

/// The units of workspace `ws` as systemd loaded them at its latest reload: the
/// generator's output files, whatever the recipe files say now.
pub fn loaded_units(ws: &str) -> BTreeMap<String, String> {
    let Some(m) = krill::runtime::manifest::Loaded::read()
        .workspaces
        .remove(ws)
    else {
        return BTreeMap::new();
    };
    let dir = krill::runtime::manifest::generator_dir();
    std::iter::once(m.target.clone())
        .chain(std::iter::once(m.slice.clone()))
        .chain(m.services.iter().map(|s| s.unit.clone()))
        .filter_map(|u| std::fs::read_to_string(dir.join(&u)).ok().map(|t| (u, t)))
        .collect()
}

/// Compares two unit sets. `running` says whether a unit is active now.
pub fn diff(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    running: impl Fn(&str) -> bool,
) -> Diff {
    let mut d = Diff::default();
    for (name, text) in new {
        match old.get(name) {
            None => {
                d.added.push(name.clone());
                // Running, but not from the units systemd generated: an old run
                // (its recipe was skipped since, or never loaded). Converge.
                if name.ends_with(".service") && running(name) {
                    d.restart.push(name.clone());
                }
            }
            Some(o) if o != text => {
                d.changed.push(name.clone());
                if name.ends_with(".service") && running(name) {
                    d.restart.push(name.clone());
                }
            }
            Some(_) => {}
        }
    }
    d.removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    d
}

/// Recipe text as it will be installed: with `base_dir` pinned to the original
/// directory when the recipe does not set one, so relative paths keep working.
/// Appending keeps every line number of the original.
pub fn installed_text(text: &str, original: &Path, recipe: &Recipe) -> String {
    if text.lines().any(|l| l.starts_with("base_dir:")) {
        return text.to_owned();
    }
    let dir = serde_json::to_string(&recipe.base_dir.display().to_string()).unwrap_or_default();
    let mut t = text.to_owned();
    if !t.ends_with('\n') {
        t.push('\n');
    }
    t.push_str(&format!(
        "# Added by `krill install` from {}: relative paths resolve here.\nbase_dir: {dir}\n",
        original.display()
    ));
    t
}

/// Validates `file` and prepares its installed form. Returns (plan, text).
pub fn prepare(file: &Path) -> Result<(Plan, String), Error> {
    let text = std::fs::read_to_string(file).map_err(io(file))?;
    let recipe = Recipe::parse(&text, file)?;
    // A recipe installed here must run here: a missing user or CPU is an error now,
    // not a failed start later.
    let lacking = recipe.machine_problems();
    if !lacking.is_empty() {
        return Err(krill::RecipeError::Invalid {
            file: file.display().to_string(),
            diagnostics: lacking,
        }
        .into());
    }
    let target = install_dir().join(format!("{}.yaml", recipe.name));
    let text = installed_text(&text, file, &recipe);
    // Re-validate exactly what will be written, as the generator will read it, and
    // render it: the generator would refuse a unit that systemd would misread.
    let plan = Plan::new(Recipe::parse(&text, &target)?)?;
    krill::compile::render::render_checked(&plan, Target::detect())
        .map_err(|e| Error::Refused(format!("{}: {e}", file.display())))?;
    let others: Vec<Plan> = discover(&recipe_path())
        .into_iter()
        .filter(|(ws, _)| ws != plan.workspace())
        .filter_map(|(_, p)| krill::compile(&p).ok())
        .collect();
    let refs: Vec<&Plan> = others.iter().collect();
    if let Some((unit, ws)) = plan::check_conflicts(&plan, &refs).first() {
        return Err(Error::Refused(format!(
            "{}: unit {unit} is also produced by installed workspace {ws:?}; rename a service or the workspace",
            file.display()
        )));
    }
    Ok((plan, text))
}

/// What `plan` shows: the diff, and the unit texts before and after.
#[derive(Debug)]
pub struct Planned {
    pub diff: Diff,
    pub old: BTreeMap<String, String>,
    pub new: BTreeMap<String, String>,
}

/// `krill-ctl plan FILE`.
pub fn plan(file: &Path) -> Result<Planned, Error> {
    let (new, _) = prepare(file)?;
    let old = loaded_units(new.workspace());
    let new = units(&new);
    let sd = Systemd::connect()?;
    let diff = diff(&old, &new, |u| sd.is_running(u));
    Ok(Planned { diff, old, new })
}

/// Options of `krill-ctl install`.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstallOptions {
    /// Start at boot.
    pub enable: bool,
    /// Start the workspace now.
    pub now: bool,
}

/// Test hook: `KRILL_FAULT=install:STEP` aborts `install` at STEP, as a `kill -9`
/// or a power cut would (no cleanup runs). `install:reload` makes the reload fail.
fn fault(step: &str) -> bool {
    std::env::var("KRILL_FAULT").is_ok_and(|f| f == format!("install:{step}"))
}

fn crash_point(step: &str) {
    if fault(step) {
        eprintln!("krill: KRILL_FAULT: aborting install {step}");
        std::process::abort();
    }
}

/// Units an interrupted install still has to restart or stop (`/run/krill/pending/W`).
fn pending(ws: &str) -> Vec<String> {
    Records::default()
        .read(Kind::Pending, ws)
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// `krill-ctl install FILE`: a transaction that converges.
///
/// 1. validate and render; diff against the units systemd loaded;
/// 2. record the units to restart or stop (`/run/krill/pending/W`), so that a re-run
///    after a crash at any later step finishes the job;
/// 3. write the recipe durably (fsync file and directory, then rename);
/// 4. `daemon-reload`; check that systemd loaded every unit (`LoadState=loaded`). If
///    the reload fails or a unit did not load, the previous recipe is put back and
///    systemd reloaded again: nothing changes;
/// 5. stop removed units that still run, restart changed (and pending) ones;
/// 6. clear the record.
pub fn install(file: &Path, opts: InstallOptions) -> Result<(Plan, Diff), Error> {
    let (new, text) = prepare(file)?;
    let ws = new.workspace().to_owned();
    let new_units = units(&new);
    let sd = Systemd::connect()?;
    let mut d = diff(&loaded_units(&ws), &new_units, |u| sd.is_running(u));
    // What an interrupted install left undone, if its units are still there.
    for u in pending(&ws) {
        let wanted = if new_units.contains_key(&u) {
            &mut d.restart
        } else {
            &mut d.removed
        };
        if !wanted.contains(&u) {
            wanted.push(u);
        }
    }
    let records = Records::default();
    let intent: Vec<&String> = d.restart.iter().chain(&d.removed).collect();
    if !intent.is_empty() {
        let list: String = intent.iter().map(|u| format!("{u}\n")).collect();
        records
            .write(Kind::Pending, &ws, &list)
            .map_err(io(&records.dir().join("pending").join(&ws)))?;
    }
    crash_point("after-intent");

    let dir = &install_dir();
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let dest = dir.join(format!("{ws}.yaml"));
    let backup = std::fs::read(&dest).ok();
    write_durable(dir, &format!("{ws}.yaml"), text.as_bytes()).map_err(io(&dest))?;
    if opts.enable {
        let en = &enabled_dir();
        std::fs::create_dir_all(en).map_err(io(en))?;
        write_durable(en, &ws, b"").map_err(io(&en.join(&ws)))?;
    }
    crash_point("after-write");
    let rollback = |why: String| -> Error {
        let restored = match &backup {
            Some(b) => write_durable(dir, &format!("{ws}.yaml"), b),
            None => std::fs::remove_file(&dest),
        };
        let reloaded = sd.reload();
        records.remove(Kind::Pending, &ws);
        match (restored, reloaded) {
            (Ok(()), Ok(_)) => Error::Refused(format!(
                "{why}. The previous state was restored; nothing changed."
            )),
            (r, l) => Error::Refused(format!(
                "{why}. Restoring the previous state ALSO FAILED: {}{}",
                r.err().map(|e| e.to_string()).unwrap_or_default(),
                l.err().map(|e| format!(" {e}")).unwrap_or_default()
            )),
        }
    };
    let reload = if fault("reload") {
        Err(crate::bus::Error::Bus(zbus::Error::Failure(
            "KRILL_FAULT: simulated failure".into(),
        )))
    } else {
        sd.reload()
    };
    if let Err(e) = reload {
        return Err(rollback(format!("daemon-reload failed: {e}")));
    }
    crash_point("after-reload");
    let names: Vec<String> = new_units.keys().cloned().collect();
    let bad: Vec<String> = names
        .iter()
        .zip(sd.facts(&names))
        .filter(|(_, f)| f.load != "loaded")
        .map(|(u, f)| format!("{u}: {} {}", f.load, f.load_error))
        .collect();
    if !bad.is_empty() {
        return Err(rollback(format!(
            "systemd did not load every unit of {} ({}); see `journalctl -b -t krill-gen` and `systemctl status`",
            file.display(),
            bad.join("; ")
        )));
    }
    // Units that disappeared keep running as not-found: stop those that still run.
    let gone: Vec<String> = d
        .removed
        .iter()
        .filter(|u| !u.ends_with(".slice") && sd.is_running(u))
        .cloned()
        .collect();
    sd.jobs(Job::Stop, &gone, true)?;
    crash_point("after-stop");
    sd.jobs(Job::TryRestart, &d.restart, true)?;
    records.remove(Kind::Pending, &ws);
    if opts.now {
        start_with(&sd, &new, None)?;
    }
    Ok((new, d))
}

/// `krill-ctl uninstall NAME`: stop everything, then remove the recipe.
pub fn uninstall(ws: &str) -> Result<(), Error> {
    let found = discover(&recipe_path());
    let Some(path) = found.get(ws) else {
        return Err(Error::Refused(format!("no workspace {ws:?} is installed")));
    };
    let install = install_dir();
    if !path.starts_with(&install) {
        return Err(Error::Refused(format!(
            "{} is not in {}; mask it with `ln -s /dev/null {}/{ws}.yaml` instead",
            path.display(),
            install.display(),
            install.display()
        )));
    }
    let plan = krill::compile(path).ok();
    let sd = Systemd::connect()?;
    sd.jobs(Job::Stop, &[krill::runtime::names::target(ws)], true)?;
    if let Some(p) = &plan {
        sd.jobs(Job::Stop, &p.all_units(), true)?;
    }
    std::fs::remove_file(path).map_err(io(path))?;
    let _ = std::fs::remove_file(enabled_dir().join(ws));
    sd.reload()?;
    if let Some(p) = &plan {
        let _ = sd.reset_failed(&p.all_units());
    }
    Ok(())
}

/// `down [NAME]`: stops workspace NAME (its target, then its slice), or every
/// workspace systemd has loaded (and `krill.slice`), and waits for the stops. Acts on the loaded targets, so a broken recipe file cannot
/// keep its workspace up. Returns the workspaces stopped.
pub fn down(name: Option<&str>) -> Result<Vec<String>, Error> {
    let sd = Systemd::connect()?;
    let loaded = sd
        .call(|c| async move { krill::runtime::bus::loaded_workspaces(&c).await })
        .map_err(crate::bus::Error::from)?;
    let names = match name {
        Some(n) if loaded.iter().any(|l| l == n) => vec![n.to_owned()],
        Some(n) => {
            return Err(Error::Refused(format!(
                "no workspace {n:?} is loaded (loaded: {})",
                loaded.join(", ")
            )))
        }
        None => loaded,
    };
    let targets: Vec<String> = names
        .iter()
        .map(|n| krill::runtime::names::target(n))
        .collect();
    // The target first (members stop in dependency order), then the slice: any
    // process left in the workspace's cgroup, and the slice itself.
    sd.jobs(Job::Stop, &targets, true)?;
    let mut slices: Vec<String> = names
        .iter()
        .map(|n| krill::runtime::names::slice(n))
        .collect();
    if name.is_none() {
        slices.push("krill.slice".to_owned());
    }
    sd.jobs(Job::Stop, &slices, true)?;
    Ok(names)
}

/// `start NAME[/SERVICE]`: clears start counters (a manual start counts against
/// `max_restarts` otherwise), then starts the target or the one service.
pub fn start(plan: &Plan, service: Option<&str>) -> Result<(), Error> {
    start_with(&Systemd::connect()?, plan, service)
}

fn start_with(sd: &Systemd, plan: &Plan, service: Option<&str>) -> Result<(), Error> {
    let _ = sd.reset_failed(&plan.all_units());
    Records::default().remove(Kind::Estop, plan.workspace());
    let unit = match service {
        Some(s) => service_unit(plan, s)?,
        None => plan.target.clone(),
    };
    // Not waiting for the jobs: `healthy` gates may take up to a minute. Progress
    // shows in `krill status` and `systemctl list-jobs`.
    sd.jobs(Job::Start, &[unit], false)?;
    Ok(())
}

/// `stop NAME[/SERVICE]`: a service is stopped with everything that depends on it.
pub fn stop(plan: &Plan, service: Option<&str>) -> Result<(), Error> {
    let units = match service {
        Some(s) => {
            let unit = service_unit(plan, s)?;
            let ps = plan.service(s).expect("checked by service_unit");
            let mut units = plan.cascade_units(ps);
            units.push(unit);
            units
        }
        None => vec![plan.target.clone()],
    };
    Systemd::connect()?.jobs(Job::Stop, &units, true)?;
    Ok(())
}

/// `restart NAME[/SERVICE]`.
pub fn restart(plan: &Plan, service: Option<&str>) -> Result<(), Error> {
    let sd = Systemd::connect()?;
    let _ = sd.reset_failed(&plan.all_units());
    Records::default().remove(Kind::Estop, plan.workspace());
    match service {
        Some(s) => sd.jobs(Job::Restart, &[service_unit(plan, s)?], false)?,
        None => {
            let target = [plan.target.clone()];
            sd.jobs(Job::Stop, &target, true)?;
            sd.jobs(Job::Start, &target, false)?
        }
    };
    Ok(())
}

fn service_unit(plan: &Plan, s: &str) -> Result<String, Error> {
    plan.service(s).map(|p| p.unit.clone()).ok_or_else(|| {
        Error::Refused(format!(
            "workspace {} has no service {s:?} (services: {})",
            plan.workspace(),
            plan.services
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_added_changed_removed_and_restarts() {
        let m = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let old = m(&[
            ("a.service", "1"),
            ("b.service", "1"),
            ("c.service", "1"),
            ("t.target", "1"),
        ]);
        let new = m(&[
            ("a.service", "1"),
            ("b.service", "2"),
            ("d.service", "1"),
            ("t.target", "2"),
        ]);
        let d = diff(&old, &new, |u| u == "b.service");
        assert_eq!(d.added, ["d.service"]);
        assert_eq!(d.changed, ["b.service", "t.target"]);
        assert_eq!(d.removed, ["c.service"]);
        assert_eq!(d.restart, ["b.service"]);
    }

    #[test]
    fn installed_text_pins_base_dir_and_keeps_line_numbers() {
        let text =
            "version: \"1\"\nname: ws\nservices:\n  a:\n    execute: {type: shell, command: ./run}";
        let src = Path::new("/home/robot/my ws/ws.yaml");
        let r = Recipe::parse(text, src).unwrap();
        let t = installed_text(text, src, &r);
        assert!(t.starts_with(text));
        let again = Recipe::parse(&t, Path::new("/etc/krill/recipes/ws.yaml")).unwrap();
        assert_eq!(again.base_dir, Path::new("/home/robot/my ws"));
        assert_eq!(again.services, r.services);
        assert_eq!(installed_text(&t, src, &again), t, "idempotent");
    }
}
