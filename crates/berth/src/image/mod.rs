//! The image commands: pull, push, login, logout, images, tag, rmi, image
//! inspect. For now they work in-process on the data root; the engine
//! moves them behind the daemon.

mod archive;
mod list;
pub mod progress;
mod transfer;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

/// The exit code of berth's own errors.
pub const EXIT_ERROR: u8 = 125;

pub use archive::{HistoryArgs, ImportArgs, LoadArgs, PruneArgs, SaveArgs};
pub use list::{ImagesArgs, InspectArgs, RmiArgs, TagArgs};
pub use transfer::{LoginArgs, LogoutArgs, PullArgs, PushArgs, login, logout};

/// `berth image <command>`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Remove one or more images.
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Display detailed information on one or more images.
    Inspect(InspectArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Remove unused images.
    Prune(PruneArgs),
}

pub use berth_engine::images::ImageService as Context;

pub fn stdout_is_tty() -> bool {
    std::io::stdout().is_terminal()
}

/// Runs `f` on a fresh async runtime.
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("start the async runtime: {e}"))?;
    Ok(runtime.block_on(f))
}

/// Prints `error` the way Docker's CLI does and gives berth's exit code.
pub fn fail(error: &str) -> ExitCode {
    eprintln!("Error response from daemon: {error}");
    ExitCode::from(EXIT_ERROR)
}

/// Runs `f` with a context on `root`, turning its error into Docker's
/// message and exit code.
pub fn run(root: PathBuf, f: impl FnOnce(&Context) -> Result<ExitCode, String>) -> ExitCode {
    match Context::open(root).and_then(|ctx| f(&ctx)) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

pub fn main(root: PathBuf, command: ImageCommand) -> ExitCode {
    run(root, |ctx| match command {
        ImageCommand::Ls(args) => list::images(ctx, args),
        ImageCommand::Pull(args) => transfer::pull(ctx, args),
        ImageCommand::Push(args) => transfer::push(ctx, args),
        ImageCommand::Tag(args) => list::tag(ctx, args),
        ImageCommand::Rm(args) => list::rmi(ctx, args),
        ImageCommand::Inspect(args) => list::inspect(ctx, args),
        ImageCommand::Save(args) => archive::save(ctx, args),
        ImageCommand::Load(args) => archive::load(ctx, args),
        ImageCommand::Import(args) => archive::import(ctx, args),
        ImageCommand::History(args) => archive::history(ctx, args),
        ImageCommand::Prune(args) => archive::prune(ctx, args),
    })
}
