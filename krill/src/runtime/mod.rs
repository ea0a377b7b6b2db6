//! Runtime contracts shared by krill-gen, krill-supervisor and krill-ctl. Nothing
//! here parses recipes.

pub mod bus;
pub mod check;
pub mod clock;
pub mod estop;
pub mod files;
pub mod host;
pub mod installed;
pub mod logfiles;
pub mod manifest;
pub mod metrics;
pub mod names;
pub mod paths;
pub mod ready;
pub mod records;
pub mod scope;
pub mod stats;
pub mod status;
pub mod timing;
