//! `rstack compose COMMAND`: docker compose's command set under one name,
//! so `alias docker-compose='rstack compose'` (or a `docker compose` habit)
//! works unchanged. The commands are the top-level ones, except where
//! docker and docker compose disagree on a name: `compose images` lists
//! the images of the project's containers and `compose pull` pulls the
//! services' images, where `rstack images` / `rstack pull IMAGE` act like
//! `docker images` / `docker pull`.
//!
//! The project flags may stand before `compose` or after it
//! (`rstack compose -f a.yaml up`); after it they win.

use clap::Subcommand;

use super::{
    build, compose_images, compose_pull, config, cp, down, exec, kill, logs, ls, pause, port, ps,
    restart, rm, run as run_cmd, start, stats, stop, top, unpause, up, version, wait,
};
use crate::global::{ComposeOpts, GlobalOpts};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub compose: ComposeOpts,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

// Built once per process by clap, like the top-level enum.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// Build or rebuild services
    Build(build::Args),
    /// Parse, resolve and render the Compose file in canonical format
    Config(config::Args),
    /// Copy files/folders between a service container and the local filesystem
    Cp(cp::Args),
    /// Stop and remove containers, networks
    Down(down::Args),
    /// Execute a command in a running container
    Exec(exec::Args),
    /// List images used by the created containers
    Images(compose_images::Args),
    /// Force stop service containers
    Kill(kill::Args),
    /// View output from containers
    Logs(logs::Args),
    /// List running compose projects
    Ls(ls::Args),
    /// Pause services
    Pause(pause::Args),
    /// Print the public port for a port binding
    Port(port::Args),
    /// List containers
    Ps(ps::Args),
    /// Pull service images
    Pull(compose_pull::Args),
    /// Restart service containers
    Restart(restart::Args),
    /// Removes stopped service containers
    Rm(rm::Args),
    /// Run a one-off command on a service
    Run(run_cmd::Args),
    /// Start services
    Start(start::Args),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::Args),
    /// Stop services
    Stop(stop::Args),
    /// Display the running processes
    Top(top::Args),
    /// Unpause services
    Unpause(unpause::Args),
    /// Create and start containers
    Up(up::Args),
    /// Show the rstack version information
    Version(version::Args),
    /// Block until containers of all (or specified) services stop
    Wait(wait::Args),
}

fn pick_vec<T: Clone>(after: Vec<T>, before: &[T]) -> Vec<T> {
    if after.is_empty() {
        before.to_vec()
    } else {
        after
    }
}

/// The global options with the project flags given after `compose` laid
/// over those given before it.
fn merged(global: &GlobalOpts, after: ComposeOpts) -> GlobalOpts {
    let before = &global.compose;
    GlobalOpts {
        root: global.root.clone(),
        run_root: global.run_root.clone(),
        log_level: global.log_level.clone(),
        registries_conf: global.registries_conf.clone(),
        max_concurrent_downloads: global.max_concurrent_downloads,
        compose: ComposeOpts {
            files: pick_vec(after.files, &before.files),
            project_name: after.project_name.or_else(|| before.project_name.clone()),
            profiles: pick_vec(after.profiles, &before.profiles),
            env_files: pick_vec(after.env_files, &before.env_files),
            project_directory: after
                .project_directory
                .or_else(|| before.project_directory.clone()),
        },
    }
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let g = &merged(global, args.compose);
    match args.command {
        ComposeCommand::Build(a) => build::run(g, a),
        ComposeCommand::Config(a) => config::run(g, a),
        ComposeCommand::Cp(a) => cp::run(g, a),
        ComposeCommand::Down(a) => down::run(g, a),
        ComposeCommand::Exec(a) => exec::run(g, a),
        ComposeCommand::Images(a) => compose_images::run(g, a),
        ComposeCommand::Kill(a) => kill::run(g, a),
        ComposeCommand::Logs(a) => logs::run(g, a),
        ComposeCommand::Ls(a) => ls::run(g, a),
        ComposeCommand::Pause(a) => pause::run(g, a),
        ComposeCommand::Port(a) => port::run(g, a),
        ComposeCommand::Ps(a) => ps::run(g, a),
        ComposeCommand::Pull(a) => compose_pull::run(g, a),
        ComposeCommand::Restart(a) => restart::run(g, a),
        ComposeCommand::Rm(a) => rm::run(g, a),
        ComposeCommand::Run(a) => run_cmd::run(g, a),
        ComposeCommand::Start(a) => start::run(g, a),
        ComposeCommand::Stats(a) => stats::run(g, a),
        ComposeCommand::Stop(a) => stop::run(g, a),
        ComposeCommand::Top(a) => top::run(g, a),
        ComposeCommand::Unpause(a) => unpause::run(g, a),
        ComposeCommand::Up(a) => up::run(g, a),
        ComposeCommand::Version(a) => version::run(g, a),
        ComposeCommand::Wait(a) => wait::run(g, a),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::Cli;

    fn compose_of(argv: &[&str]) -> crate::global::GlobalOpts {
        let cli = Cli::try_parse_from(argv).expect("parses");
        let crate::commands::Command::Compose(args) = cli.command else {
            panic!("not compose");
        };
        super::merged(&cli.global, args.compose)
    }

    #[test]
    fn project_flags_before_and_after_compose() {
        let g = compose_of(&["rstack", "-p", "a", "compose", "ps"]);
        assert_eq!(g.compose.project_name.as_deref(), Some("a"));
        let g = compose_of(&[
            "rstack", "-p", "a", "compose", "-p", "b", "-f", "x.yaml", "up",
        ]);
        assert_eq!(g.compose.project_name.as_deref(), Some("b"));
        assert_eq!(g.compose.files, [std::path::PathBuf::from("x.yaml")]);
    }

    #[test]
    fn images_and_pull_are_the_compose_ones() {
        let cli = Cli::try_parse_from(["rstack", "compose", "images", "web", "-q"]).unwrap();
        assert!(matches!(
            cli.command,
            crate::commands::Command::Compose(super::Args {
                command: super::ComposeCommand::Images(_),
                ..
            })
        ));
        assert!(Cli::try_parse_from(["rstack", "compose", "pull"]).is_ok());
    }
}
