//! Draws a plan's dependency graph for people: Graphviz dot, Mermaid, or JSON.
//! Edges point from a service to what it waits for, labelled with the condition;
//! critical services are marked. Names are quoted in one place per format.

use serde::Serialize;

use crate::compile::plan::Plan;

/// One service of the graph.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Node {
    pub service: String,
    pub unit: String,
    /// `shell`, `pixi`, `ros2` or `docker`.
    pub execute: String,
    pub critical: bool,
}

/// `from` waits until `to` is `condition`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub condition: String,
}

/// A workspace's DAG, services in start order.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Graph {
    pub workspace: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Graph {
    pub fn of(plan: &Plan) -> Graph {
        let nodes = plan
            .services
            .iter()
            .filter_map(|p| {
                let s = plan.recipe.services.get(&p.name)?;
                Some(Node {
                    service: s.name.clone(),
                    unit: p.unit.clone(),
                    execute: s.execute.kind().as_str().to_owned(),
                    critical: s.critical,
                })
            })
            .collect::<Vec<_>>();
        let edges = nodes
            .iter()
            .filter_map(|n| plan.recipe.services.get(&n.service))
            .flat_map(|s| {
                s.dependencies.iter().map(|d| Edge {
                    from: s.name.clone(),
                    to: d.name.clone(),
                    condition: d.condition.as_str().to_owned(),
                })
            })
            .collect();
        Graph {
            workspace: plan.workspace().to_owned(),
            nodes,
            edges,
        }
    }

    /// Graphviz: `dot -Tsvg`. Critical services are bold red double octagons.
    pub fn dot(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let mut out = format!("digraph {} {{\n  rankdir=BT;\n", q(&self.workspace));
        for n in &self.nodes {
            let label = format!("{}\n{}", n.service, n.execute);
            let style = if n.critical {
                ", shape=doubleoctagon, color=red, penwidth=2"
            } else {
                ", shape=box"
            };
            out.push_str(&format!(
                "  {} [label={}{style}];\n",
                q(&n.service),
                q(&label)
            ));
        }
        for e in &self.edges {
            let style = if e.condition == "healthy" {
                ", style=bold"
            } else {
                ""
            };
            out.push_str(&format!(
                "  {} -> {} [label={}{style}];\n",
                q(&e.from),
                q(&e.to),
                q(&e.condition)
            ));
        }
        out.push_str("}\n");
        out
    }

    /// Mermaid flowchart. Service names are valid recipe names (letters, digits,
    /// `-`, `_`), so they serve as node ids; labels are quoted.
    pub fn mermaid(&self) -> String {
        let id = |s: &str| format!("s_{}", s.replace('-', "_"));
        let mut out = String::from("flowchart BT\n");
        for n in &self.nodes {
            let mark = if n.critical { " (critical)" } else { "" };
            out.push_str(&format!(
                "  {}[\"{}{mark}<br/>{}\"]\n",
                id(&n.service),
                n.service,
                n.execute
            ));
        }
        for e in &self.edges {
            out.push_str(&format!(
                "  {} -- {} --> {}\n",
                id(&e.from),
                e.condition,
                id(&e.to)
            ));
        }
        let critical: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.critical)
            .map(|n| id(&n.service))
            .collect();
        if !critical.is_empty() {
            out.push_str("  classDef critical stroke:#d00,stroke-width:3px\n");
            out.push_str(&format!("  class {} critical\n", critical.join(",")));
        }
        out
    }
}
