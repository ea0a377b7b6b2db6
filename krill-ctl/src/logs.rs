//! `krill logs NAME`: which units' journal lines to show. Resolved from what systemd
//! has loaded (the generator's manifests), so a broken recipe file does not hide the
//! logs of what runs.
//!
//! * `WS`: every service of the workspace, with its gates and failure handlers, and
//!   the workspace target;
//! * `WS/SERVICE`: that service with its gates and failure handlers (GPU checks run
//!   in the service's own unit);
//! * `SERVICE`: the same, when exactly one loaded workspace has a service of that
//!   name (upstream's `krill logs SERVICE`); otherwise the candidates are listed.

use krill::runtime::manifest::{Loaded, Manifest, ManifestService};
use krill::runtime::names::{self, Condition};
use krill::runtime::status::Report;

use crate::error::Error;

/// The units whose lines belong to service `name` (unit `unit`) of `ws`: its own, its
/// gates' and its failure handlers'. Names only: this works for another host's.
pub fn service_units(ws: &str, name: &str, unit: &str) -> Vec<String> {
    vec![
        unit.to_owned(),
        names::gate(ws, name, Condition::Started),
        names::gate(ws, name, Condition::Healthy),
        names::on_failure(ws, name, false),
        names::on_failure(ws, name, true),
    ]
}

/// What resolving a name needs of one workspace: from the manifests here, or from
/// another host's status report.
struct Known {
    workspace: String,
    target: String,
    /// (name, unit) of each service.
    services: Vec<(String, String)>,
}

impl Known {
    fn units(&self) -> Vec<String> {
        std::iter::once(self.target.clone())
            .chain(
                self.services
                    .iter()
                    .flat_map(|(n, u)| service_units(&self.workspace, n, u)),
            )
            .collect()
    }
}

fn from_manifest(m: &Manifest) -> Known {
    Known {
        workspace: m.workspace.clone(),
        target: m.target.clone(),
        services: m
            .services
            .iter()
            .map(|s: &ManifestService| (s.name.clone(), s.unit.clone()))
            .collect(),
    }
}

/// Resolves `name` against the loaded workspaces.
pub fn units(name: &str) -> Result<Vec<String>, Error> {
    let known: Vec<Known> = Loaded::read()
        .workspaces
        .values()
        .map(from_manifest)
        .collect();
    resolve(&known, name)
}

/// Resolves `name` against another host's status `report`.
pub fn remote_units(report: &Report, name: &str) -> Result<Vec<String>, Error> {
    let known: Vec<Known> = report
        .workspaces
        .iter()
        .map(|w| Known {
            workspace: w.workspace.clone(),
            target: w.target.clone(),
            services: w
                .services
                .iter()
                .map(|s| (s.service.clone(), s.unit.clone()))
                .collect(),
        })
        .collect();
    resolve(&known, name)
}

fn resolve(known: &[Known], name: &str) -> Result<Vec<String>, Error> {
    let loaded_names = || {
        known
            .iter()
            .map(|k| k.workspace.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let workspace = |ws: &str| known.iter().find(|k| k.workspace == ws);
    if let Some((ws, svc)) = name.split_once('/') {
        let m = workspace(ws).ok_or_else(|| {
            Error::NotInstalled(format!(
                "no workspace {ws:?} is loaded (loaded: {})",
                loaded_names()
            ))
        })?;
        let (n, u) = m.services.iter().find(|s| s.0 == svc).ok_or_else(|| {
            Error::NotInstalled(format!(
                "workspace {ws} has no service {svc:?} (services: {})",
                m.services
                    .iter()
                    .map(|s| s.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        return Ok(service_units(ws, n, u));
    }
    if let Some(m) = workspace(name) {
        return Ok(m.units());
    }
    let found: Vec<(&str, &(String, String))> = known
        .iter()
        .flat_map(|m| {
            m.services
                .iter()
                .filter(|s| s.0 == name)
                .map(|s| (m.workspace.as_str(), s))
        })
        .collect();
    match found.as_slice() {
        [(ws, (n, u))] => Ok(service_units(ws, n, u)),
        [] => Err(Error::NotInstalled(format!(
            "no loaded workspace or service is named {name:?} (workspaces: {})",
            loaded_names()
        ))),
        several => Err(Error::Usage(format!(
            "service {name:?} is in several workspaces; name one of: {}",
            several
                .iter()
                .map(|(ws, s)| format!("{ws}/{}", s.0))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<Known> {
        loaded().workspaces.values().map(from_manifest).collect()
    }

    fn loaded() -> Loaded {
        let ws = |w: &str, svcs: &[&str]| Manifest {
            workspace: w.into(),
            target: names::target(w),
            slice: names::slice(w),
            source: Default::default(),
            services: svcs
                .iter()
                .map(|s| ManifestService {
                    name: (*s).into(),
                    unit: names::service(w, s),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let mut l = Loaded::default();
        l.workspaces.insert("a".into(), ws("a", &["lidar", "nav"]));
        l.workspaces.insert("b".into(), ws("b", &["nav"]));
        l
    }

    #[test]
    fn a_unique_bare_service_name_resolves_with_its_helpers() {
        let u = resolve(&known(), "lidar").unwrap();
        assert_eq!(u[0], "krill-a-lidar.service");
        assert!(u.contains(&"krill-cascade@krill-a-lidar.service".to_owned()));
        assert!(u.contains(&"krill-estop@krill-a-lidar.service".to_owned()));
        assert!(u.contains(&"krill-healthy@krill-a-lidar.service".to_owned()));
    }

    #[test]
    fn an_ambiguous_service_name_lists_the_candidates() {
        let e = resolve(&known(), "nav").unwrap_err().to_string();
        assert!(e.contains("a/nav") && e.contains("b/nav"), "{e}");
        assert_eq!(
            resolve(&known(), "b/nav").unwrap()[0],
            "krill-b-nav.service"
        );
    }

    #[test]
    fn a_workspace_name_gives_every_unit_of_it() {
        let u = resolve(&known(), "a").unwrap();
        assert!(u.contains(&"krill-a.target".to_owned()));
        assert!(u.contains(&"krill-a-nav.service".to_owned()));
        assert!(!u.iter().any(|x| x.contains("krill-b-")));
        assert!(resolve(&known(), "nope").is_err());
    }
}
