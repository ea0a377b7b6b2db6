//! `dependencies:`: names, conditions, and the one dependency-cycle search of krill
//! (the planner takes its start order from [`topological_order`]).

use indexmap::IndexMap;
use petgraph::graph::DiGraph;

use super::{pos, Validator};
use crate::compile::error::{did_you_mean, Diagnostic, Pos};
use crate::compile::raw::{self, RawDependency};
use crate::compile::recipe::{Dependency, Service};
use crate::runtime::names::Condition;

impl Validator {
    /// Resolves dependency lists; checks missing, self and duplicate dependencies and
    /// cycles.
    pub(super) fn dependencies(
        &mut self,
        r: &raw::RawRecipe,
        services: &mut IndexMap<String, Service>,
    ) {
        for (name, svc) in &r.services {
            let field = format!("services.{}.dependencies", name.value);
            let mut deps: Vec<Dependency> = Vec::new();
            for d in svc.dependencies.iter().flatten() {
                let entries: Vec<(String, Option<String>)> = match &d.value {
                    RawDependency::Bare(n) => vec![(n.clone(), None)],
                    RawDependency::Conditional(m) => {
                        if m.len() != 1 {
                            self.err(
                                pos(d),
                                field.clone(),
                                "write one dependency per list item: `- name: started|healthy`",
                            );
                        }
                        m.iter()
                            .map(|(k, v)| (k.clone(), Some(v.clone())))
                            .collect()
                    }
                };
                for (dep, cond) in entries {
                    let condition = match cond.as_deref() {
                        None | Some("started") => Condition::Started,
                        Some("healthy") => Condition::Healthy,
                        Some(other) => {
                            self.err(
                                pos(d),
                                format!("{field}.{dep}"),
                                format!("unknown condition {other:?}: expected started or healthy"),
                            );
                            Condition::Started
                        }
                    };
                    if dep == name.value {
                        self.err(
                            pos(d),
                            format!("{field}.{dep}"),
                            format!("service {dep:?} depends on itself"),
                        );
                        continue;
                    }
                    let Some(target) = services.get(&dep) else {
                        self.err(
                            pos(d),
                            format!("{field}.{dep}"),
                            format!(
                                "unknown service {dep:?}: {}",
                                match did_you_mean(&dep, services.keys().map(String::as_str)) {
                                    Some(s) => format!("did you mean `{s}`?"),
                                    None => "no service of that name is defined in this recipe"
                                        .to_owned(),
                                }
                            ),
                        );
                        continue;
                    };
                    let condition = if condition == Condition::Healthy
                        && target.health_check.is_none()
                    {
                        self.warnings.push(Diagnostic::new(pos(d), format!("{field}.{dep}"), format!("service {dep:?} has no health_check; `healthy` is treated as `started`")));
                        Condition::Started
                    } else {
                        condition
                    };
                    if deps.iter().any(|x| x.name == dep) {
                        self.err(
                            pos(d),
                            format!("{field}.{dep}"),
                            format!("dependency {dep:?} is listed twice"),
                        );
                        continue;
                    }
                    deps.push(Dependency {
                        name: dep,
                        condition,
                    });
                }
            }
            if let Some(s) = services.get_mut(&name.value) {
                s.dependencies = deps;
            }
        }
        if let Err(cycle) = topological_order(services) {
            let first = &cycle[0];
            let p = r
                .services
                .iter()
                .find(|(k, _)| &k.value == first)
                .map(|(k, _)| pos(k))
                .unwrap_or_default();
            self.errors.push(cycle_diagnostic(p, &cycle));
        }
    }
}

/// The error for a dependency cycle given as a closed path.
pub fn cycle_diagnostic(at: Pos, cycle: &[String]) -> Diagnostic {
    Diagnostic::new(
        at,
        "services",
        format!(
            "dependency cycle: {} (each depends on the next)",
            cycle.join(" -> ")
        ),
    )
}

/// The dependency graph: one node per service (in recipe order), an edge from each
/// service to each of its dependencies. Unknown dependencies are left out.
fn graph(services: &IndexMap<String, Service>) -> DiGraph<&str, ()> {
    let mut g = DiGraph::<&str, ()>::new();
    let idx: IndexMap<&str, _> = services
        .keys()
        .map(|k| (k.as_str(), g.add_node(k.as_str())))
        .collect();
    for (name, s) in services {
        for d in &s.dependencies {
            if let Some(to) = idx.get(d.name.as_str()) {
                g.add_edge(idx[name.as_str()], *to, ());
            }
        }
    }
    g
}

/// The services in a start order (each dependency before its dependents), or, if the
/// dependencies have a cycle, one cycle as a closed path (`a -> b -> a`).
pub fn topological_order(services: &IndexMap<String, Service>) -> Result<Vec<String>, Vec<String>> {
    let g = graph(services);
    match petgraph::algo::toposort(&g, None) {
        // Edges point at dependencies, so a dependency comes after its dependents.
        Ok(order) => Ok(order.into_iter().rev().map(|n| g[n].to_owned()).collect()),
        Err(_) => Err(find_cycle(&g).unwrap_or_default()),
    }
}

/// Returns one dependency cycle of `g` as a closed path (`a -> b -> a`), if any.
fn find_cycle(g: &DiGraph<&str, ()>) -> Option<Vec<String>> {
    // Tarjan returns SCCs in reverse topological order; pick the first non-trivial one
    // in recipe order for a stable message.
    let mut sccs: Vec<Vec<_>> = petgraph::algo::tarjan_scc(g)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    sccs.sort_by_key(|c| c.iter().map(|n| n.index()).min());
    let scc = sccs.into_iter().next()?;
    let start = *scc.iter().min_by_key(|n| n.index())?;
    // Walk inside the SCC, always taking the lowest-index successor not yet visited,
    // until we come back to a visited node; every node of an SCC reaches `start`.
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let mut next: Vec<_> = g.neighbors(cur).filter(|n| scc.contains(n)).collect();
        next.sort_by_key(|n| n.index());
        let n = next
            .iter()
            .copied()
            .find(|n| *n == start)
            .or_else(|| next.iter().copied().find(|n| !path.contains(n)));
        let Some(n) = n else {
            // Dead end within the SCC: take any successor; it closes a cycle.
            let n = next[0];
            let i = path.iter().position(|p| *p == n).unwrap_or(0);
            let mut cyc: Vec<String> = path[i..].iter().map(|p| g[*p].to_owned()).collect();
            cyc.push(g[n].to_owned());
            return Some(cyc);
        };
        path.push(n);
        if n == start {
            return Some(path.iter().map(|p| g[*p].to_owned()).collect());
        }
        cur = n;
    }
}
