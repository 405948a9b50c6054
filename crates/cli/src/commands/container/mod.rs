//! `rstack container`: one container without a Compose file, like
//! `docker container`: `run` (attached, or `-d`: supervised, see
//! [`detached`]), and `ls`, `inspect`, `logs`, `exec`, `stop`, `start`,
//! `restart`, `kill`, `rm`, `pause`, `unpause` of every container rstack
//! knows (single ones and the stacks').

mod detached;
mod info;
mod ls;
mod manage;
mod net;
mod ops;
mod rename;
mod run;
mod single;
pub(crate) mod tty;
mod update;

pub(crate) use detached::SingleProject;

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
    /// Create a new container (started by `container start`)
    Create(Box<run::Args>),
    /// Stop one or more running containers
    Stop(manage::StopArgs),
    /// Start one or more stopped containers
    Start(manage::StartArgs),
    /// Restart one or more containers
    Restart(manage::StopArgs),
    /// Kill one or more running containers
    Kill(manage::KillArgs),
    /// Remove one or more containers
    Rm(manage::RmArgs),
    /// Pause all processes within one or more containers
    Pause(manage::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(manage::NamesArgs),
    /// Display the running processes of a container
    Top(info::TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(info::PortArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(manage::NamesArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(info::StatsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(info::CpArgs),
    /// Remove all stopped containers
    Prune(info::PruneArgs),
    /// Rename a container
    Rename(rename::Args),
    /// Update configuration of one or more containers (restart policy, memory, cpus)
    Update(update::Args),
}

/// Whether project `name` is a `run -d` container's, not a Compose one.
pub fn is_single_project(layout: &rstack_stack::state::Layout, name: &str) -> bool {
    detached::SingleProject::of(layout, name).is_some()
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    match args.command {
        ContainerCommand::Run(a) => run::run(global, *a),
        ContainerCommand::Inspect(a) => inspect::run_container(global, a),
        ContainerCommand::Ls(a) => ls::run(global, a),
        ContainerCommand::Logs(a) => ops::logs(global, a),
        ContainerCommand::Exec(a) => ops::exec(global, a),
        ContainerCommand::Create(a) => run::create(global, *a),
        ContainerCommand::Stop(a) => manage::stop(global, a),
        ContainerCommand::Start(a) => manage::start(global, a),
        ContainerCommand::Restart(a) => manage::restart(global, a),
        ContainerCommand::Kill(a) => manage::kill(global, a),
        ContainerCommand::Rm(a) => manage::rm(global, a),
        ContainerCommand::Pause(a) => manage::pause(global, a, true),
        ContainerCommand::Unpause(a) => manage::pause(global, a, false),
        ContainerCommand::Top(a) => info::top(global, a),
        ContainerCommand::Port(a) => info::port(global, a),
        ContainerCommand::Wait(a) => info::wait(global, a),
        ContainerCommand::Stats(a) => info::stats(global, a),
        ContainerCommand::Cp(a) => info::cp(global, a),
        ContainerCommand::Prune(a) => info::prune(global, a),
        ContainerCommand::Rename(a) => rename::run(global, a),
        ContainerCommand::Update(a) => update::run(global, a),
    }
}
