//! Library behind `krill-ctl` (also installed as `krill`): operator commands
//! (install, start, status, estop, ...) and the helpers that generated units call
//! (`gate`, `on-failure`, `gpu-check`). Everything goes through `systemctl`, so each
//! action is one an operator could take by hand.

pub mod failure;
pub mod gate;
pub mod install;
pub mod status;
pub mod systemctl;
