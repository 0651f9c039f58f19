//! `berth runtime`: runc's command line over berth's runtime library.

pub mod cli;
mod cmd;
mod log;
mod update;

pub use cmd::main;
