//! The runtime's verbs, one file each (as runc's command line names them).

pub mod create;
pub mod delete;
pub mod exec;
pub mod info;
pub mod run;
pub mod signal;
pub mod start;
