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

use crate::error::Error;

/// The units whose lines belong to `svc` of `ws`.
fn service_units(ws: &str, svc: &ManifestService) -> Vec<String> {
    vec![
        svc.unit.clone(),
        names::gate(ws, &svc.name, Condition::Started),
        names::gate(ws, &svc.name, Condition::Healthy),
        names::on_failure(ws, &svc.name, false),
        names::on_failure(ws, &svc.name, true),
    ]
}

fn workspace_units(m: &Manifest) -> Vec<String> {
    std::iter::once(m.target.clone())
        .chain(
            m.services
                .iter()
                .flat_map(|s| service_units(&m.workspace, s)),
        )
        .collect()
}

/// Resolves `name` against the loaded workspaces.
pub fn units(name: &str) -> Result<Vec<String>, Error> {
    resolve(&Loaded::read(), name)
}

fn resolve(loaded: &Loaded, name: &str) -> Result<Vec<String>, Error> {
    let loaded_names = || {
        loaded
            .workspaces
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some((ws, svc)) = name.split_once('/') {
        let m = loaded.workspaces.get(ws).ok_or_else(|| {
            Error::NotInstalled(format!(
                "no workspace {ws:?} is loaded (loaded: {})",
                loaded_names()
            ))
        })?;
        let s = m.services.iter().find(|s| s.name == svc).ok_or_else(|| {
            Error::NotInstalled(format!(
                "workspace {ws} has no service {svc:?} (services: {})",
                m.services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        return Ok(service_units(ws, s));
    }
    if let Some(m) = loaded.workspaces.get(name) {
        return Ok(workspace_units(m));
    }
    let found: Vec<(&str, &ManifestService)> = loaded
        .workspaces
        .values()
        .flat_map(|m| {
            m.services
                .iter()
                .filter(|s| s.name == name)
                .map(|s| (m.workspace.as_str(), s))
        })
        .collect();
    match found.as_slice() {
        [(ws, s)] => Ok(service_units(ws, s)),
        [] => Err(Error::NotInstalled(format!(
            "no loaded workspace or service is named {name:?} (workspaces: {})",
            loaded_names()
        ))),
        several => Err(Error::Usage(format!(
            "service {name:?} is in several workspaces; name one of: {}",
            several
                .iter()
                .map(|(ws, s)| format!("{ws}/{}", s.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        let mut l = Loaded::default();
        l.workspaces.insert("a".into(), ws("a", &["lidar", "nav"]));
        l.workspaces.insert("b".into(), ws("b", &["nav"]));
        l
    }

    #[test]
    fn a_unique_bare_service_name_resolves_with_its_helpers() {
        let u = resolve(&loaded(), "lidar").unwrap();
        assert_eq!(u[0], "krill-a-lidar.service");
        assert!(u.contains(&"krill-cascade@krill-a-lidar.service".to_owned()));
        assert!(u.contains(&"krill-estop@krill-a-lidar.service".to_owned()));
        assert!(u.contains(&"krill-healthy@krill-a-lidar.service".to_owned()));
    }

    #[test]
    fn an_ambiguous_service_name_lists_the_candidates() {
        let e = resolve(&loaded(), "nav").unwrap_err().to_string();
        assert!(e.contains("a/nav") && e.contains("b/nav"), "{e}");
        assert_eq!(
            resolve(&loaded(), "b/nav").unwrap()[0],
            "krill-b-nav.service"
        );
    }

    #[test]
    fn a_workspace_name_gives_every_unit_of_it() {
        let u = resolve(&loaded(), "a").unwrap();
        assert!(u.contains(&"krill-a.target".to_owned()));
        assert!(u.contains(&"krill-a-nav.service".to_owned()));
        assert!(!u.iter().any(|x| x.contains("krill-b-")));
        assert!(resolve(&loaded(), "nope").is_err());
    }
}
