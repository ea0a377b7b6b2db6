//! Layer 3: the plan. From a validated [`Recipe`] it derives the DAG (petgraph), the
//! name of every unit, the gates that implement dependency conditions, and the
//! failure handler of each service.
//!
//! # Units
//! For workspace `W` and service `S`, krill-gen writes only three kinds of file:
//!
//! | unit | purpose |
//! |---|---|
//! | `krill-W.target` | the workspace: wants every service; stopping it stops all (estop) |
//! | `krill-W.slice` (dashes in `W` escaped) | cgroup of all the workspace's processes |
//! | `krill-W-S.service` | the service itself |
//!
//! Gates and failure handlers are instances of static templates shipped in `units/`,
//! named after the service unit they are about:
//!
//! | instance | purpose |
//! |---|---|
//! | `krill-started@krill-W-S.service` | gate: passes once `S` was spawned successfully |
//! | `krill-healthy@krill-W-S.service` | gate: passes once `S` passed its health check |
//! | `krill-cascade@krill-W-S.service` | `OnFailure=` of `S`: stop its dependents (S4) |
//! | `krill-estop@krill-W-S.service` | `OnFailure=` of a critical `S`: emergency stop (S5) |
//!
//! The handlers are not given the list of dependents: they walk systemd's loaded
//! graph (gate → `RequiredBy=`) at failure time, so they always match what systemd
//! has loaded.
//!
//! Names within one recipe cannot collide (service names are unique and have no
//! `@`); across workspaces, [`check_conflicts`] finds collisions. The names
//! themselves are [`crate::runtime::names`].

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::Dfs;

use crate::compile::error::{Pos, RecipeError};
use crate::compile::exec::{self, ExecPlan};
use crate::compile::recipe::{cycle_diagnostic, topological_order, Recipe};
use crate::runtime::logfiles;
use crate::runtime::manifest::{Manifest, ManifestService, WaitsOn};
use crate::runtime::names::{self, Condition};

/// A service as placed in the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedService {
    pub name: String,
    pub unit: String,
    /// Gates this service waits on (`Requires=` + `After=`), in dependency order.
    pub waits_on: Vec<String>,
    /// Units of its dependencies (`After=`): stop order, dependents first, also when
    /// the gates in between are not part of a stop.
    pub after: Vec<String>,
    /// Gates on this service that some dependent waits on, by condition.
    pub gates: BTreeMap<Condition, String>,
    /// Services that depend directly on this one.
    pub dependents: Vec<String>,
    /// The `OnFailure=` handler: `krill-estop@` for a critical service,
    /// `krill-cascade@` for one with dependents, none otherwise.
    pub on_failure: Option<String>,
    /// DAG layer: 0 for services without dependencies.
    pub layer: usize,
    /// How it runs: command lines, environment, timeouts, restart settings.
    pub exec: ExecPlan,
}

/// The compiled form of a recipe.
#[derive(Debug, Clone)]
pub struct Plan {
    pub recipe: Recipe,
    pub graph: DiGraph<String, Condition>,
    pub target: String,
    pub slice: String,
    /// Services in a topological order (dependencies first), then recipe order.
    pub services: Vec<PlannedService>,
}

impl Plan {
    /// Builds the plan.
    pub fn new(recipe: Recipe) -> Result<Plan, RecipeError> {
        let ws = recipe.name.clone();
        // Edges point from a dependency to its dependent (start order).
        let mut graph = DiGraph::new();
        let idx: BTreeMap<&str, NodeIndex> = recipe
            .services
            .keys()
            .map(|k| (k.as_str(), graph.add_node(k.clone())))
            .collect();
        for (name, s) in &recipe.services {
            for d in &s.dependencies {
                graph.add_edge(idx[d.name.as_str()], idx[name.as_str()], d.condition);
            }
        }
        let order: Vec<NodeIndex> = topological_order(&recipe.services)
            .map_err(|cycle| RecipeError::Invalid {
                file: recipe.source.display().to_string(),
                diagnostics: vec![cycle_diagnostic(Pos::default(), &cycle)],
            })?
            .iter()
            .map(|n| idx[n.as_str()])
            .collect();
        let mut layer: BTreeMap<NodeIndex, usize> = BTreeMap::new();
        for n in &order {
            let l = graph
                .neighbors_directed(*n, petgraph::Direction::Incoming)
                .map(|p| layer[&p] + 1)
                .max()
                .unwrap_or(0);
            layer.insert(*n, l);
        }
        let mut needed: BTreeMap<&str, BTreeSet<Condition>> = BTreeMap::new();
        for s in recipe.services.values() {
            for d in &s.dependencies {
                needed
                    .entry(d.name.as_str())
                    .or_default()
                    .insert(d.condition);
            }
        }
        // Topological order, ties broken by recipe order, so output is stable.
        let pos_of = |n: &str| recipe.services.get_index_of(n).unwrap_or(usize::MAX);
        let mut ordered: Vec<NodeIndex> = order.clone();
        ordered.sort_by_key(|n| (layer[n], pos_of(&graph[*n])));
        let mut services = Vec::new();
        for n in &ordered {
            let name = graph[*n].clone();
            let s = &recipe.services[&name];
            let gates: BTreeMap<Condition, String> = needed
                .get(name.as_str())
                .into_iter()
                .flatten()
                .map(|c| (*c, names::gate(&ws, &name, *c)))
                .collect();
            let waits_on = s
                .dependencies
                .iter()
                .map(|d| names::gate(&ws, &d.name, d.condition))
                .collect();
            let after = s
                .dependencies
                .iter()
                .map(|d| names::service(&ws, &d.name))
                .collect();
            let mut dependents: Vec<String> = graph
                .neighbors_directed(*n, petgraph::Direction::Outgoing)
                .map(|m| graph[m].clone())
                .collect();
            dependents.sort_by_key(|d| pos_of(d));
            dependents.dedup();
            let on_failure = (s.critical || !dependents.is_empty())
                .then(|| names::on_failure(&ws, &name, s.critical));
            let unit = names::service(&ws, &name);
            services.push(PlannedService {
                exec: exec::plan(&recipe, s, &unit),
                unit,
                name,
                waits_on,
                after,
                gates,
                dependents,
                on_failure,
                layer: layer[n],
            });
        }

        let plan = Plan {
            target: names::target(&ws),
            slice: names::slice(&ws),
            recipe,
            graph,
            services,
        };
        Ok(plan)
    }

    /// What the generator hands to the programs that act at runtime.
    pub fn manifest(&self) -> Manifest {
        // Each user's home is looked up once (a read of /etc/passwd), not per service.
        let homes: BTreeMap<Option<&str>, Option<std::path::PathBuf>> = match &self.recipe.logs {
            None => BTreeMap::new(),
            Some(_) => self
                .services
                .iter()
                .map(|s| s.exec.user.as_deref())
                .chain(std::iter::once(None))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|u| (u, logfiles::home_of(u)))
                .collect(),
        };
        let services = self
            .services
            .iter()
            .map(|s| ManifestService {
                name: s.name.clone(),
                unit: s.unit.clone(),
                check: s.exec.check.clone(),
                env: s.exec.env.clone(),
                working_dir: s.exec.working_dir.clone(),
                program: s.exec.program.clone(),
                max_restarts: s.exec.max_restarts,
                critical: s.exec.critical,
                gpu: s.exec.gpu,
                container_slice: s.exec.container_slice.clone(),
                ready: s.exec.ready.clone(),
                user: s.exec.user.clone(),
                memory_max: s.exec.resources.memory_max,
                log_file: self.recipe.logs.as_ref().and_then(|l| {
                    let home = homes.get(&s.exec.user.as_deref())?.as_ref()?;
                    Some(logfiles::service_file(
                        &l.dir.resolve(home),
                        self.workspace(),
                        &s.name,
                    ))
                }),
                waits_on: self.recipe.services[&s.name]
                    .dependencies
                    .iter()
                    .map(|d| WaitsOn {
                        service: d.name.clone(),
                        condition: d.condition,
                        gate: names::gate(self.workspace(), &d.name, d.condition),
                    })
                    .collect(),
            })
            .collect();
        Manifest {
            workspace: self.workspace().to_owned(),
            target: self.target.clone(),
            slice: self.slice.clone(),
            source: self.recipe.source.clone(),
            services,
            logs: self.recipe.logs.as_ref().map(|l| logfiles::ManifestLogs {
                timeline: logfiles::timeline_file(
                    &l.dir
                        .resolve(&homes.get(&None).cloned().flatten().unwrap_or_default()),
                    self.workspace(),
                ),
                max_bytes: l.max_bytes,
                keep: l.keep,
            }),
        }
    }

    /// The workspace name.
    pub fn workspace(&self) -> &str {
        &self.recipe.name
    }

    pub fn service(&self, name: &str) -> Option<&PlannedService> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Every service that depends on `name`, directly or not, deepest first (the
    /// order to stop them in).
    pub fn transitive_dependents(&self, name: &str) -> Vec<String> {
        let Some(start) = self.graph.node_indices().find(|n| self.graph[*n] == name) else {
            return vec![];
        };
        let layer: BTreeMap<&str, usize> = self
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.layer))
            .collect();
        let mut out = Vec::new();
        let mut dfs = Dfs::new(&self.graph, start);
        while let Some(m) = dfs.next(&self.graph) {
            if m != start {
                out.push(self.graph[m].clone());
            }
        }
        out.sort_by_key(|d| {
            (
                std::cmp::Reverse(layer[d.as_str()]),
                self.recipe.services.get_index_of(d),
            )
        });
        out
    }

    /// Every unit file this plan produces, with the service it belongs to (`None` for
    /// the workspace's target and slice).
    pub fn unit_names(&self) -> Vec<(String, Option<&str>)> {
        let mut out = vec![(self.target.clone(), None), (self.slice.clone(), None)];
        for s in &self.services {
            out.push((s.unit.clone(), Some(s.name.as_str())));
        }
        out
    }

    /// Every unit of the workspace that systemd may hold state for: files, gate and
    /// handler instances.
    pub fn all_units(&self) -> Vec<String> {
        let mut out = vec![self.target.clone()];
        for s in &self.services {
            out.push(s.unit.clone());
            out.extend(s.gates.values().cloned());
            out.extend(s.on_failure.iter().cloned());
        }
        if self.recipe.logs.is_some() {
            out.push(names::log_writer(self.workspace()));
        }
        out
    }

    /// What stopping `s` by hand must also stop: its gates, then every transitive
    /// dependent and that dependent's gates.
    pub fn cascade_units(&self, s: &PlannedService) -> Vec<String> {
        let by_name: BTreeMap<&str, &PlannedService> =
            self.services.iter().map(|p| (p.name.as_str(), p)).collect();
        let mut out: Vec<String> = s.gates.values().cloned().collect();
        for d in self.transitive_dependents(&s.name) {
            if let Some(p) = by_name.get(d.as_str()) {
                out.push(p.unit.clone());
                out.extend(p.gates.values().cloned());
            }
        }
        out
    }
}

/// Unit names that `plan` shares with any of `others` (different workspaces).
pub fn check_conflicts(plan: &Plan, others: &[&Plan]) -> Vec<(String, String)> {
    let mine: BTreeSet<String> = plan.unit_names().into_iter().map(|(u, _)| u).collect();
    let mut out = Vec::new();
    for o in others {
        if o.workspace() == plan.workspace() {
            continue;
        }
        for (u, _) in o.unit_names() {
            if mine.contains(&u) {
                out.push((u, o.workspace().to_owned()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_manifest_describes_the_plan() {
        let d = tempfile::tempdir().unwrap();
        let recipe = d.path().join("ws.yaml");
        std::fs::write(
            &recipe,
            "version: \"1\"\nname: ws\nenv: {A: b}\nservices:\n  a:\n    execute: {type: shell, command: /bin/true}\n    critical: true\n    health_check: {type: heartbeat, timeout: 2s}\n",
        )
        .unwrap();
        let plan = crate::compile::compile(&recipe).unwrap();
        let m = plan.manifest();
        assert_eq!(m.target, "krill-ws.target");
        let a = m.service_by_unit("krill-ws-a.service").unwrap();
        assert!(a.critical);
        assert_eq!(
            a.check,
            Some(crate::runtime::check::HealthCheck::Heartbeat {
                timeout: std::time::Duration::from_secs(2)
            })
        );
        assert_eq!(a.env[0], ("A".into(), "b".into()));
        assert!(a.env.contains(&(
            "KRILL_SOCKET".into(),
            crate::runtime::paths::KRILL_SOCKET.into()
        )));
        assert_eq!(m.logs, None);
        assert_eq!(a.log_file, None);
    }

    #[test]
    fn log_files_go_to_each_users_home() {
        use std::path::Path;
        let d = tempfile::tempdir().unwrap();
        let recipe = d.path().join("ws.yaml");
        std::fs::write(
            &recipe,
            "version: \"1\"\nname: ws\nlog_dir: ~/logs\nservices:\n  a:\n    execute: {type: shell, command: /bin/true}\n  b:\n    execute: {type: shell, command: /bin/true}\n    user: daemon\n",
        )
        .unwrap();
        let plan = crate::compile::compile(&recipe).unwrap();
        let m = plan.manifest();
        let root = crate::runtime::logfiles::home_of(None).unwrap();
        let daemon = crate::runtime::host::user("daemon").unwrap().home;
        let logs = m.logs.as_ref().unwrap();
        assert_eq!(logs.timeline, root.join("logs/ws.timeline.log"));
        assert_eq!(logs.max_bytes, crate::runtime::logfiles::DEFAULT_MAX_BYTES);
        let file = |u: &str| m.service_by_unit(u).unwrap().log_file.clone().unwrap();
        assert_eq!(file("krill-ws-a.service"), root.join("logs/ws/a.log"));
        assert_eq!(file("krill-ws-b.service"), daemon.join("logs/ws/b.log"));
        assert!(!file("krill-ws-b.service").starts_with(Path::new("/root")));
        assert!(plan
            .all_units()
            .contains(&"krill-logs@ws.service".to_owned()));
    }
}
