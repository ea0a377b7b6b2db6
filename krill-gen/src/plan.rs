//! Layer 3: the plan. From a validated [`Recipe`] it derives the DAG (petgraph), the
//! name of every unit, the gates that implement dependency conditions, and what a
//! failure handler must stop.
//!
//! # Unit names
//! For workspace `W` and service `S`:
//!
//! | unit | purpose |
//! |---|---|
//! | `krill-W.target` | the workspace: wants every service; stopping it stops all (estop) |
//! | `krill-W.slice` (dashes in `W` escaped) | cgroup of all the workspace's processes |
//! | `krill-W-S.service` | the service itself |
//! | `krill-W-S-started.service` | gate: passes once `S` was spawned successfully |
//! | `krill-W-S-healthy.service` | gate: passes once `S` passed its health check |
//! | `krill-W-S-onfailure.service` | `OnFailure=` handler: cascade and emergency stop |
//!
//! Dashes make names readable (`systemctl status krill-robot-lidar`) but ambiguous in
//! theory, so [`Plan::new`] rejects recipes whose names collide and
//! [`check_conflicts`] does the same across recipes.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::Dfs;

use crate::error::{Diagnostic, Pos, RecipeError};
use crate::recipe::{Condition, Recipe};

/// Unit names of a workspace.
pub mod names {
    use crate::recipe::Condition;

    pub fn target(ws: &str) -> String {
        format!("krill-{ws}.target")
    }
    /// The slice, with `-` in the workspace name escaped so that `krill-a-b` is not a
    /// child of `krill-a`.
    pub fn slice(ws: &str) -> String {
        format!("krill-{}.slice", ws.replace('-', "\\x2d"))
    }
    pub fn service(ws: &str, s: &str) -> String {
        format!("krill-{ws}-{s}.service")
    }
    pub fn gate(ws: &str, s: &str, c: Condition) -> String {
        format!("krill-{ws}-{s}-{}.service", c.as_str())
    }
    pub fn on_failure(ws: &str, s: &str) -> String {
        format!("krill-{ws}-{s}-onfailure.service")
    }
}

/// A service as placed in the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedService {
    pub name: String,
    pub unit: String,
    /// Gates this service waits on (`Requires=` + `After=`), in dependency order.
    pub waits_on: Vec<String>,
    /// Gates of this service that some dependent needs, by condition.
    pub gates: BTreeMap<Condition, String>,
    /// Every service that depends on this one, directly or not, in stop order
    /// (dependents first).
    pub transitive_dependents: Vec<String>,
    /// The `OnFailure=` handler, present when the service is critical or has dependents.
    pub on_failure: Option<String>,
    /// DAG layer: 0 for services without dependencies.
    pub layer: usize,
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
    /// Builds the plan. Fails if two units would get the same name.
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
        let order = petgraph::algo::toposort(&graph, None).map_err(|c| RecipeError::Invalid {
            file: recipe.source.display().to_string(),
            diagnostics: vec![Diagnostic::new(
                Pos::default(),
                "services",
                format!("dependency cycle through {:?}", graph[c.node_id()]),
            )],
        })?;
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
            // Everything reachable from n along start edges, stopped deepest first.
            let mut deps = Vec::new();
            let mut dfs = Dfs::new(&graph, *n);
            while let Some(m) = dfs.next(&graph) {
                if m != *n {
                    deps.push(m);
                }
            }
            deps.sort_by_key(|m| (std::cmp::Reverse(layer[m]), pos_of(&graph[*m])));
            let transitive_dependents: Vec<String> =
                deps.iter().map(|m| graph[*m].clone()).collect();
            let on_failure = (s.critical || !transitive_dependents.is_empty())
                .then(|| names::on_failure(&ws, &name));
            services.push(PlannedService {
                unit: names::service(&ws, &name),
                name,
                waits_on,
                gates,
                transitive_dependents,
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
        plan.check_unique_names()?;
        Ok(plan)
    }

    pub fn workspace(&self) -> &str {
        &self.recipe.name
    }

    pub fn service(&self, name: &str) -> Option<&PlannedService> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Every unit this plan produces, with the service it belongs to (`None` for the
    /// workspace's target and slice).
    pub fn unit_names(&self) -> Vec<(String, Option<&str>)> {
        let mut out = vec![(self.target.clone(), None), (self.slice.clone(), None)];
        for s in &self.services {
            out.push((s.unit.clone(), Some(s.name.as_str())));
            for g in s.gates.values() {
                out.push((g.clone(), Some(s.name.as_str())));
            }
            if let Some(h) = &s.on_failure {
                out.push((h.clone(), Some(s.name.as_str())));
            }
        }
        out
    }

    /// Stop list for the failure handler of `s`: its gates, then every transitive
    /// dependent and that dependent's gates.
    pub fn cascade_units(&self, s: &PlannedService) -> Vec<String> {
        let mut out: Vec<String> = s.gates.values().cloned().collect();
        for d in &s.transitive_dependents {
            if let Some(p) = self.service(d) {
                out.push(p.unit.clone());
                out.extend(p.gates.values().cloned());
            }
        }
        out
    }

    fn check_unique_names(&self) -> Result<(), RecipeError> {
        let mut seen: BTreeMap<String, Option<&str>> = BTreeMap::new();
        let mut diags = Vec::new();
        for (unit, owner) in self.unit_names() {
            if let Some(prev) = seen.get(&unit) {
                let pos = owner
                    .and_then(|o| self.recipe.services.get(o))
                    .map(|s| s.pos)
                    .unwrap_or_default();
                diags.push(Diagnostic::new(
                    pos,
                    format!("services.{}", owner.unwrap_or("")),
                    format!(
                        "unit name {unit} is also produced by {}; rename one of the services",
                        prev.map(|p| format!("service {p:?}"))
                            .unwrap_or_else(|| "the workspace".into())
                    ),
                ));
            } else {
                seen.insert(unit, owner);
            }
        }
        if diags.is_empty() {
            Ok(())
        } else {
            Err(RecipeError::Invalid {
                file: self.recipe.source.display().to_string(),
                diagnostics: diags,
            })
        }
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
