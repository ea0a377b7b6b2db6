//! `krill-ctl exited UNIT`: the `ExecStopPost=` of every `restart: never` service.
//!
//! systemd counts a main process killed by SIGTERM, SIGINT, SIGHUP or SIGPIPE as a
//! clean exit, so a `restart: never` service killed by a stray `kill` would end
//! `inactive`, and its `OnFailure=` (cascade, emergency stop) would never run. Contract
//! S6: a death by a signal that neither krill nor systemd sent is a failure. systemd
//! sets `EXIT_CODE`/`EXIT_STATUS` for `ExecStopPost=`; a stop that systemd performs
//! has a stop job on the unit. So: killed by one of those signals, and no job on the
//! unit, means nobody asked for it; this helper then exits 1, which makes systemd
//! record the run as failed (`Result=exit-code`) and fire `OnFailure=`.
//!
//! Every other ending (exit codes, other signals, core dumps, any stop that systemd
//! performs) passes through unchanged: those exit 0 here.

/// The signals systemd counts as a clean exit of a service's main process.
pub const CLEAN_SIGNALS: &[&str] = &["TERM", "INT", "HUP", "PIPE"];

/// What the helper decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to change.
    AsSystemdSaid,
    /// Killed by `signal`, which nobody in charge sent: count it as a failure.
    StrayKill { signal: String },
}

/// Decides from `EXIT_CODE` and `EXIT_STATUS` (as systemd sets them) and whether the
/// unit has a job (a stop that systemd performs).
pub fn verdict(exit_code: &str, exit_status: &str, has_job: impl FnOnce() -> bool) -> Verdict {
    if exit_code == "killed" && CLEAN_SIGNALS.contains(&exit_status) && !has_job() {
        Verdict::StrayKill {
            signal: format!("SIG{exit_status}"),
        }
    } else {
        Verdict::AsSystemdSaid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clean_signal_without_a_stop_job_is_a_stray_kill() {
        assert_eq!(
            verdict("killed", "TERM", || false),
            Verdict::StrayKill {
                signal: "SIGTERM".into()
            }
        );
        assert_eq!(verdict("killed", "TERM", || true), Verdict::AsSystemdSaid);
        assert_eq!(verdict("killed", "KILL", || false), Verdict::AsSystemdSaid);
        assert_eq!(verdict("dumped", "ABRT", || false), Verdict::AsSystemdSaid);
        assert_eq!(verdict("exited", "0", || false), Verdict::AsSystemdSaid);
        assert_eq!(verdict("", "", || false), Verdict::AsSystemdSaid);
    }
}
