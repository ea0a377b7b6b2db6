//! The command line of `krill-ctl` (also installed as `krill`): one clap definition,
//! used by the binary and by the packaging tool that renders man pages and shell
//! completions from it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Upstream Krill's verbs work too: `krill up RECIPE`, `krill down [NAME]`, `krill ps`, \
`krill logs SERVICE`. A bare `krill` prints the status.

Exit status: 0 success; 1 error; 2 usage error; 3 (status, --wait, --now, up) \
something is not running or not healthy.";

/// Krill: robot services on systemd.
#[derive(Debug, Parser)]
#[command(name = "krill", version = krill::VERSION, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

/// `--wait[=TIMEOUT]`: how long to follow the start (default 90s).
#[derive(Debug, Clone, clap::Args)]
pub struct Wait {
    /// Wait until every service runs and is healthy, at most TIMEOUT (default 90s),
    /// showing progress; exit 3 if one fails or time runs out.
    #[arg(long, value_name = "TIMEOUT", num_args = 0..=1, require_equals = true, default_missing_value = "90s")]
    pub wait: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Check recipes; print every problem as FILE:LINE:COLUMN.
    Validate {
        /// Recipe files; `-` reads one from stdin.
        #[arg(required = true, value_name = "RECIPE")]
        files: Vec<PathBuf>,
        /// Print the result as JSON (one object per file).
        #[arg(long)]
        json: bool,
    },
    /// Print the units a recipe compiles to (same as `krill-gen --dry-run`).
    Render {
        /// The recipe file.
        file: PathBuf,
        /// Print the units as a JSON map of unit name to contents.
        #[arg(long)]
        json: bool,
    },
    /// Show what `install` would change, with a diff of each changed unit.
    Plan {
        /// The recipe file.
        file: PathBuf,
        /// Print the changes as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Draw a recipe's dependency graph (edge conditions; critical services marked).
    Graph {
        /// A recipe file, or the name of an installed workspace.
        recipe: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
        /// Print the graph as JSON (nodes and edges).
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
    /// Validate and install a recipe to /etc/krill/recipes, then reload systemd.
    Install {
        /// The recipe file.
        file: PathBuf,
        /// Start the workspace at boot.
        #[arg(long)]
        enable: bool,
        /// Start the workspace now. Exits 3 if a service could not start.
        #[arg(long)]
        now: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Install a recipe and start it, waiting until it runs (upstream's `krill up`;
    /// same as `install --now --wait`).
    Up {
        /// The recipe file.
        file: PathBuf,
        /// How long to wait for every service to run and be healthy.
        #[arg(long, value_name = "TIMEOUT", default_value = "90s")]
        timeout: String,
    },
    /// Stop a workspace and remove its recipe.
    Uninstall {
        /// The workspace.
        name: String,
    },
    /// Start a workspace, or one service (with what it depends on).
    Start {
        /// NAME or NAME/SERVICE.
        name: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Stop a workspace, or one service and everything that depends on it.
    Stop {
        /// NAME or NAME/SERVICE.
        name: String,
    },
    /// Stop a workspace, or every loaded workspace (upstream's `krill down`).
    Down {
        /// The workspace; all of them without it.
        name: Option<String>,
    },
    /// Restart a workspace or one service.
    Restart {
        /// NAME or NAME/SERVICE.
        name: String,
    },
    /// Show services: state, health, PID, restarts, uptime, and why each one that is
    /// not running is not. Exit status: 0 when every selected workspace is running
    /// (every service up and healthy, or finished cleanly), 3 when something is not
    /// running or not healthy (systemctl's convention), 1 on errors, 2 on usage errors.
    #[command(visible_alias = "ps")]
    Status {
        /// The workspace; all loaded workspaces without it.
        name: Option<String>,
        /// Print the versioned JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Print Prometheus metrics (OpenMetrics text) of every workspace and of the
    /// supervisor: what `status` shows, and the heartbeat counters.
    Metrics {
        /// Answer one HTTP request on stdin/stdout instead (krill-metrics@.service,
        /// behind the opt-in krill-metrics.socket on 127.0.0.1:9464).
        #[arg(long)]
        http: bool,
    },
    /// Emergency stop: stop every process of a workspace (all workspaces without NAME).
    Estop {
        /// The workspace; every loaded workspace without it.
        name: Option<String>,
        /// Why, shown by `krill status`.
        #[arg(long, default_value = "operator request")]
        reason: String,
    },
    /// Show logs (journalctl) of a workspace or one service, with the lines of its
    /// gates and failure handlers; extra arguments go to journalctl (e.g. -f).
    Logs {
        /// NAME, NAME/SERVICE, or a SERVICE name that is unique across workspaces.
        name: String,
        /// Passed to journalctl.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// (used by gate units) Wait until UNIT is started or healthy.
    #[command(hide = true)]
    Gate {
        /// started or healthy.
        condition: String,
        /// The unit waited for.
        unit: String,
    },
    /// (used by OnFailure= units) Cascade and emergency stop after a final failure.
    #[command(hide = true, name = "on-failure")]
    OnFailure {
        /// Emergency stop instead of cascade.
        #[arg(long)]
        critical: bool,
        /// The failed unit.
        unit: String,
    },
    /// (used by `restart: never` services' ExecStopPost=) Fail a run whose main
    /// process was killed by a signal that neither krill nor systemd sent.
    #[command(hide = true)]
    Exited {
        /// The service unit.
        unit: String,
    },
    /// (used by gpu services' ExecStartPre=) Fail unless a GPU is usable.
    #[command(name = "gpu-check")]
    GpuCheck {
        /// The unit to record the reason for.
        unit: Option<String>,
    },
}

/// `krill graph --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz.
    Dot,
    /// Mermaid (renders in GitHub and GitLab markdown).
    Mermaid,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_argument_has_help() {
        super::Cli::command().debug_assert();
        fn walk(c: &clap::Command, path: &str) {
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(a.get_help().is_some(), "{path} {id} has no help text");
            }
            for s in c.get_subcommands() {
                assert!(
                    s.get_about().is_some(),
                    "{path} {} has no about",
                    s.get_name()
                );
                walk(s, &format!("{path} {}", s.get_name()));
            }
        }
        walk(&super::Cli::command(), "krill");
    }
}
