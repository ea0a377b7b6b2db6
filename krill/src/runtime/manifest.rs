//! What the generator actually produced, for the programs that act at runtime.
//!
//! The generator writes one manifest per workspace it generated, and the list of
//! recipes it skipped, next to the units in its output directory
//! (`/run/systemd/generator/krill/`). systemd wipes that directory before each
//! generator run, so the manifests always describe exactly the units systemd loaded at
//! its latest reload, never a recipe that was edited (or broken) since.
//!
//! `krill status`, `krill estop` and krill-supervisor read these instead of
//! re-parsing recipe files, so a broken or colliding recipe can never blind them to
//! the workspaces that are running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::runtime::check::HealthCheck;
use crate::runtime::files::write_atomic;
use crate::runtime::names::Condition;

/// Subdirectory of the generator's output directory that holds the manifests.
pub const SUBDIR: &str = "krill";
/// The system manager's generator output directory (systemd's fixed path).
pub const DEFAULT_GENERATOR_DIR: &str = "/run/systemd/generator";
/// File in [`SUBDIR`] listing the recipes the generator skipped.
pub const REJECTED_FILE: &str = "rejected.json";

/// One generated workspace.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub workspace: String,
    /// `krill-W.target`.
    pub target: String,
    /// `krill-W.slice` (escaped).
    pub slice: String,
    /// The recipe file the units were generated from.
    pub source: PathBuf,
    /// In plan order (dependencies first).
    pub services: Vec<ManifestService>,
    /// `log_dir:`: the timeline and rotation; `None`: the journal only.
    #[serde(default)]
    pub logs: Option<crate::runtime::logfiles::ManifestLogs>,
}

/// One generated service: what the supervisor and status need at runtime.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ManifestService {
    pub name: String,
    /// `krill-W-S.service`.
    pub unit: String,
    pub check: Option<HealthCheck>,
    /// The service's environment as its unit sets it (recipe `env`, then
    /// `KRILL_WORKSPACE`, `KRILL_SERVICE`, `KRILL_SOCKET`).
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    /// The program whose absence means "executable not found" (`ros2`, `pixi`,
    /// `docker`, or the shell command's program).
    #[serde(default)]
    pub program: String,
    /// 0 = unlimited.
    pub max_restarts: u32,
    pub critical: bool,
    /// Checked for a usable GPU before every start.
    #[serde(default)]
    pub gpu: bool,
    /// The slice a docker service's container runs in (`krill-W-S.slice`, a child of
    /// the workspace's): its processes speak for the service too. `None` for every
    /// other execute type.
    #[serde(default)]
    pub container_slice: Option<String>,
    /// Its dependencies and the gates it waits on, in recipe order.
    #[serde(default)]
    pub waits_on: Vec<WaitsOn>,
    /// `ready:` (when it counts as started); `None`: once spawned.
    #[serde(default)]
    pub ready: Option<crate::runtime::ready::Ready>,
    /// `user:`; `None`: the manager's own user (root for the system).
    #[serde(default)]
    pub user: Option<String>,
    /// Its file under `log_dir:`; `None` without `log_dir`, or when its user's home is
    /// not known here.
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// `resources.memory_max`, bytes (the reason of an OOM kill names it).
    #[serde(default)]
    pub memory_max: Option<u64>,
}

/// One dependency of a service, as its gate implements it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WaitsOn {
    /// The dependency's service name.
    pub service: String,
    pub condition: Condition,
    /// The gate unit (`krill-started@…` or `krill-healthy@…`).
    pub gate: String,
}

/// A recipe the generator skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rejected {
    pub file: PathBuf,
    pub error: String,
}

impl Manifest {
    /// The service whose unit is `unit`.
    pub fn service_by_unit(&self, unit: &str) -> Option<&ManifestService> {
        self.services.iter().find(|s| s.unit == unit)
    }
}

/// The generator's output directory, where systemd loaded krill's units from:
/// `KRILL_GENERATOR_DIR`, or [`DEFAULT_GENERATOR_DIR`].
pub fn generator_dir() -> PathBuf {
    std::env::var_os("KRILL_GENERATOR_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            if crate::runtime::scope::is_user() {
                crate::runtime::scope::runtime_dir().join("systemd/generator")
            } else {
                PathBuf::from(DEFAULT_GENERATOR_DIR)
            }
        })
}

/// The manifest directory: [`SUBDIR`] of [`generator_dir`].
pub fn dir() -> PathBuf {
    generator_dir().join(SUBDIR)
}

/// The manifest of workspace `ws` in [`dir`], if systemd loaded it and it reads.
pub fn read_workspace(ws: &str) -> Option<Manifest> {
    let text = std::fs::read(dir().join(format!("{ws}.json"))).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Writes `manifests` and the list of `rejected` recipes into `generator_dir/krill/`.
pub fn write(
    generator_dir: &Path,
    manifests: &[Manifest],
    rejected: &[Rejected],
) -> std::io::Result<()> {
    let dir = generator_dir.join(SUBDIR);
    std::fs::create_dir_all(&dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    for m in manifests {
        let json = serde_json::to_vec(m).map_err(std::io::Error::other)?;
        write_atomic(&dir, &format!("{}.json", m.workspace), &json)?;
    }
    let json = serde_json::to_vec(rejected).map_err(std::io::Error::other)?;
    write_atomic(&dir, REJECTED_FILE, &json)
}

/// What systemd has loaded, as the generator described it at the latest reload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// By workspace name.
    pub workspaces: BTreeMap<String, Manifest>,
    /// Recipes the generator skipped (and unreadable manifests).
    pub rejected: Vec<Rejected>,
}

impl Loaded {
    /// Reads [`dir`]. A missing directory means nothing is generated (krill not yet
    /// run by systemd); an unreadable manifest is reported in `rejected`, never fatal.
    pub fn read() -> Loaded {
        Loaded::read_from(&dir())
    }

    /// Reads the manifests in `dir`.
    pub fn read_from(dir: &Path) -> Loaded {
        let mut out = Loaded::default();
        let Ok(rd) = std::fs::read_dir(dir) else {
            return out;
        };
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let bytes = match std::fs::read(&f) {
                Ok(b) => b,
                Err(e) => {
                    out.rejected.push(Rejected {
                        file: f.clone(),
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            if name == REJECTED_FILE {
                if let Ok(r) = serde_json::from_slice::<Vec<Rejected>>(&bytes) {
                    out.rejected.extend(r);
                }
                continue;
            }
            match serde_json::from_slice::<Manifest>(&bytes) {
                Ok(m) => {
                    out.workspaces.insert(m.workspace.clone(), m);
                }
                Err(e) => out.rejected.push(Rejected {
                    file: f.clone(),
                    error: format!("unreadable manifest: {e}"),
                }),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let m = Manifest {
            workspace: "ws".into(),
            target: "krill-ws.target".into(),
            slice: "krill-ws.slice".into(),
            source: "/etc/krill/recipes/ws.yaml".into(),
            services: vec![ManifestService {
                name: "a".into(),
                unit: "krill-ws-a.service".into(),
                check: None,
                env: vec![("A".into(), "b".into())],
                working_dir: "/".into(),
                program: "/bin/true".into(),
                max_restarts: 0,
                critical: true,
                gpu: false,
                container_slice: Some("krill-ws-a.slice".into()),
                waits_on: vec![],
                ready: Some(crate::runtime::ready::Ready {
                    kind: crate::runtime::ready::ReadyKind::Tcp(80),
                    timeout: std::time::Duration::from_secs(5),
                }),
                user: Some("robot".into()),
                log_file: Some("/home/robot/logs/ws/a.log".into()),
                memory_max: Some(1 << 30),
            }],
            logs: Some(crate::runtime::logfiles::ManifestLogs {
                timeline: "/root/logs/ws.timeline.log".into(),
                max_bytes: 1024,
                keep: 1,
            }),
        };
        let rejected = vec![Rejected {
            file: "/etc/krill/recipes/bad.yaml".into(),
            error: "bad".into(),
        }];
        write(d.path(), std::slice::from_ref(&m), &rejected).unwrap();
        let l = Loaded::read_from(&d.path().join(SUBDIR));
        assert_eq!(l.rejected, rejected);
        assert_eq!(l.workspaces["ws"], m);
        assert!(l.workspaces["ws"]
            .service_by_unit("krill-ws-a.service")
            .is_some_and(|a| a.critical));
    }

    #[test]
    fn a_corrupt_manifest_is_reported_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("x.json"), "{").unwrap();
        let l = Loaded::read_from(d.path());
        assert!(l.workspaces.is_empty());
        assert!(l.rejected[0].error.contains("unreadable manifest"));
        assert_eq!(
            Loaded::read_from(&d.path().join("missing")),
            Loaded::default()
        );
    }
}
