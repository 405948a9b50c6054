//! `rstack container`: one container without a Compose file, like
//! `docker container`. Only `run` (attached) and `inspect` (of the stacks'
//! containers) for now; the stack supervisor brings `ls`, `logs`, `exec`,
//! `stop` and `rm` for long-lived containers.

mod net;
mod run;
pub(crate) mod tty;

use clap::Subcommand;

use super::inspect;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: ContainerCommand,
}

#[derive(Debug, Subcommand)]
enum ContainerCommand {
    /// Create and run a new container from an image (attached)
    Run(Box<run::Args>),
    /// Display detailed information on one or more containers
    Inspect(inspect::ContainerArgs),
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    match args.command {
        ContainerCommand::Run(a) => run::run(global, *a),
        ContainerCommand::Inspect(a) => inspect::run_container(global, a),
    }
}
