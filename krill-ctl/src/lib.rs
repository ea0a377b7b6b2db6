//! Library behind `krill-ctl` (also installed as `krill`): operator commands
//! (install, start, status, estop, ...) and the helpers that generated units call
//! (`gate`, `on-failure`, `exited`, `gpu-check`). Actions are ones an operator could
//! take by hand with `systemctl`; safety paths (estop, failure handling) call systemd
//! over D-Bus directly.

pub mod bus;
pub mod cli;
pub mod colour;
pub mod error;
pub mod estop;
pub mod exited;
pub mod failure;
pub mod fleet;
pub mod gate;
pub mod gpu;
pub mod inspect;
pub mod install;
pub mod logfiles;
pub mod logs;
pub mod metrics;
pub mod ready;
pub mod remote;
pub mod status;
pub mod top;
pub mod wait;
