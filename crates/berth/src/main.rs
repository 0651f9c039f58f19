//! berth: build, ship and run containers.
//!
//! One binary. Invoked as `berth-runtime` (a link or copy under that name)
//! it is a drop-in for runc; otherwise its first argument picks the tool.

mod registry;
mod runtime;
mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "berth: build, ship and run containers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The OCI runtime, with runc's command line.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Runtime {
        /// runc's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// An OCI distribution registry: serve it, collect its garbage.
    Registry {
        #[command(subcommand)]
        command: registry::RegistryCommand,
    },
}

fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let argv0 = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if argv0 == "berth-runtime" || argv0.starts_with("berth-runtime") {
        return runtime::main(args);
    }
    if args.get(1).is_some_and(|a| a == "runtime") {
        args.remove(1);
        args[0] = "berth runtime".into();
        return runtime::main(args);
    }
    match Cli::parse().command {
        Command::Runtime { .. } => unreachable!("handled above"),
        Command::Registry { command } => registry::main(command),
    }
}
