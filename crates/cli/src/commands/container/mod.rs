//! `rstack container`: one container without a Compose file, like
//! `docker container`: `run` (attached), and `ls`, `inspect`, `logs` and
//! `exec` of every container rstack knows (the stacks'); the stack
//! supervisor brings `stop` and `rm` for long-lived containers.

mod ls;
mod net;
mod ops;
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
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(ls::Args),
    /// Fetch the logs of a container
    Logs(ops::LogsArgs),
    /// Execute a command in a running container
    Exec(ops::ExecArgs),
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    match args.command {
        ContainerCommand::Run(a) => run::run(global, *a),
        ContainerCommand::Inspect(a) => inspect::run_container(global, a),
        ContainerCommand::Ls(a) => ls::run(global, a),
        ContainerCommand::Logs(a) => ops::logs(global, a),
        ContainerCommand::Exec(a) => ops::exec(global, a),
    }
}
