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
    /// Act on the system bus of HOST over SSH, as `systemctl -H` does (needs
    /// systemd-stdio-bridge there; $KRILL_SSH names another ssh program). For status,
    /// ps, estop, logs, top and metrics.
    #[arg(short = 'H', long, global = true, value_name = "[USER@]HOST[:PORT]")]
    pub host: Option<String>,
    /// Act on a local container's system bus, as `systemctl -M` does (the container is
    /// registered with systemd-machined). Same commands as --host.
    #[arg(
        short = 'M',
        long,
        global = true,
        value_name = "CONTAINER",
        conflicts_with = "host"
    )]
    pub machine: Option<String>,
    /// Act on your own workspaces, run by your `systemd --user`: recipes in
    /// ~/.config/krill/recipes, the heartbeat socket in $XDG_RUNTIME_DIR/krill. At boot
    /// only with `loginctl enable-linger`.
    #[arg(long, global = true, conflicts_with_all = ["host", "machine"])]
    pub user: bool,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

/// The robots `krill fleet` acts on.
#[derive(Debug, Clone, clap::Args)]
pub struct Fleet {
    /// Robots as [user@]host[:port] (SSH; each needs krill and systemd-stdio-bridge).
    #[arg(value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Read more hosts from FILE: one per line; blank lines and `#` comments are
    /// skipped.
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// How long each host may take, connection included (default 5s); a host that
    /// does not answer in time is reported as unreachable.
    #[arg(long, value_name = "TIMEOUT", default_value = "5s")]
    pub timeout: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum FleetCmd {
    /// One table of every robot's workspaces, all hosts queried at once. Exit status
    /// 3 when a host is unreachable or a workspace is not running.
    Status {
        #[command(flatten)]
        fleet: Fleet,
    },
    /// Emergency stop of every workspace on every robot, all at once; reports what
    /// stopped on each host and how fast. Exit status 1 when a host was not stopped.
    Estop {
        #[command(flatten)]
        fleet: Fleet,
        /// Why, shown by each robot's `krill status`.
        #[arg(long, required = true)]
        reason: String,
    },
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
    /// Live view of workspaces and services (upstream's `krill tui`): ↑/k ↓/j move,
    /// Enter follows the logs, d details, r restart, s stop, S emergency stop (after a
    /// confirmation), q quits.
    #[command(visible_alias = "tui")]
    Top {
        /// The workspace; all loaded workspaces without it.
        name: Option<String>,
        /// How often CPU, memory and heartbeat ages are read again; state changes
        /// show at once.
        #[arg(long, value_name = "INTERVAL", default_value = crate::top::DEFAULT_INTERVAL)]
        interval: String,
    },
    /// Status and emergency stop of many robots at once, over SSH and each robot's
    /// system bus (no new daemon or port).
    Fleet {
        #[command(subcommand)]
        cmd: FleetCmd,
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
        /// Print the `log_dir:` files instead of the journal: the workspace's merged
        /// timeline, or the service's own file, rotated copies first.
        #[arg(long)]
        files: bool,
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
    /// (used by `ready:` services' ExecStartPost=) Return once the service is ready:
    /// `file PATH` exists, or `tcp PORT` accepts connections on localhost.
    #[command(hide = true)]
    Ready {
        /// file or tcp.
        kind: String,
        /// The path or the port.
        what: String,
    },
    /// (used by `hooks.on_restart`'s ExecStartPre=) Run COMMAND only when this start
    /// of UNIT is an automatic restart (systemd's NRestarts > 0).
    #[command(hide = true)]
    Hook {
        /// on-restart.
        kind: String,
        /// The service unit.
        unit: String,
        /// The hook's argv.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// (used by krill-logs@.service) Write workspace WORKSPACE's `log_dir:` files from
    /// the journal.
    #[command(hide = true, name = "log-files")]
    LogFiles {
        /// The workspace.
        workspace: String,
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
