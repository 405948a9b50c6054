//! One module per subcommand. Each exposes an `Args` struct and a `run`
//! function returning the process exit code.

mod version;

use clap::Subcommand;

use crate::global::GlobalOpts;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the rstack version information
    Version(version::Args),
}

pub fn run(global: &GlobalOpts, command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Version(args) => version::run(global, args),
    }
}
