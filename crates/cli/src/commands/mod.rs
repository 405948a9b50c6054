//! One module per subcommand. Each exposes an `Args` struct and a `run`
//! function returning the process exit code.

mod build;
mod compose;
mod compose_images;
mod compose_pull;
pub mod config;
mod container;
mod cp;
mod down;
mod exec;
mod history;
mod image;
mod images;
mod info;
mod inspect;
mod kill;
mod kube;
mod login;
mod logout;
mod logs;
mod ls;
mod network;
mod pause;
mod port;
mod ps;
mod pull;
mod push;
mod restart;
mod rm;
mod rmi;
mod run;
mod search;
mod service_pull;
mod stack_common;
mod start;
mod stats;
mod stop;
mod system;
mod top;
mod unpause;
mod up;
mod version;
mod volume;
mod wait;

use clap::Subcommand;

use crate::global::GlobalOpts;

// The enum is built once per process by clap; boxing the large variants
// would only add indirection to every match arm.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build or rebuild services
    Build(build::Args),
    /// Docker Compose's commands (`compose images` and `compose pull` act on the project)
    Compose(compose::Args),
    /// Parse, resolve and render the Compose file in canonical format
    Config(config::Args),
    /// Manage containers
    Container(container::Args),
    /// Copy files/folders between a service container and the local filesystem
    Cp(cp::Args),
    /// Manage images
    Image(image::Args),
    /// List images
    Images(images::Args),
    /// Display system-wide information
    Info(info::Args),
    /// Return low-level information on rstack objects
    Inspect(inspect::Args),
    /// The project as Kubernetes manifests (`kube generate`)
    Kube(kube::Args),
    /// Log in to a registry
    Login(login::Args),
    /// Log out from a registry
    Logout(logout::Args),
    /// Manage networks
    Network(network::Args),
    /// Download an image from a registry
    Pull(pull::Args),
    /// Remove one or more images
    Rmi(rmi::Args),
    /// Search a registry for images
    Search(search::Args),
    /// Show the rstack version information
    Version(version::Args),
    /// Create and start containers
    Up(up::Args),
    /// Stop and remove containers, networks
    Down(down::Args),
    /// List containers
    Ps(ps::Args),
    /// View output from containers
    Logs(logs::Args),
    /// Execute a command in a running container
    Exec(exec::Args),
    /// Stop services
    Stop(stop::Args),
    /// Start services
    Start(start::Args),
    /// Restart service containers
    Restart(restart::Args),
    /// Force stop service containers
    Kill(kill::Args),
    /// List running compose projects
    Ls(ls::Args),
    /// Print the public port for a port binding
    Port(port::Args),
    /// Removes stopped service containers
    Rm(rm::Args),
    /// Display the running processes
    Top(top::Args),
    /// Manage volumes
    Volume(volume::Args),
    /// Block until containers of all (or specified) services stop
    Wait(wait::Args),
    /// Pause services
    Pause(pause::Args),
    /// Unpause services
    Unpause(unpause::Args),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::Args),
    /// Run a one-off command on a service
    Run(run::Args),
    /// Manage rstack
    System(system::Args),
}

impl Command {
    /// Commands that only read state and print it: when their output pipe
    /// closes (`rstack ps | head -1`) they may die of SIGPIPE quietly, like
    /// docker's, instead of panicking on the failed write. The others keep
    /// Rust's ignored SIGPIPE: `up` is (or starts) a supervisor that must
    /// outlive its stdout, and commands such as `cp`, `exec` or `build`
    /// stream through pipes of their own whose errors they report.
    pub fn only_prints(&self) -> bool {
        use compose::ComposeCommand as C;
        match self {
            Command::Ps(_)
            | Command::Images(_)
            | Command::Ls(_)
            | Command::Config(_)
            | Command::Inspect(_)
            | Command::Info(_)
            | Command::Logs(_)
            | Command::Top(_)
            | Command::Port(_)
            | Command::Version(_) => true,
            Command::Compose(a) => matches!(
                a.command,
                C::Ps(_)
                    | C::Images(_)
                    | C::Ls(_)
                    | C::Config(_)
                    | C::Logs(_)
                    | C::Top(_)
                    | C::Port(_)
                    | C::Version(_)
            ),
            _ => false,
        }
    }
}

pub fn run(global: &GlobalOpts, command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Build(args) => build::run(global, args),
        Command::Compose(args) => compose::run(global, args),
        Command::Container(args) => container::run(global, args),
        Command::Cp(args) => cp::run(global, args),
        Command::Image(args) => image::run(global, args),
        Command::Images(args) => images::run(global, args),
        Command::Info(args) => info::run(global, args),
        Command::Inspect(args) => inspect::run(global, args),
        Command::Kube(args) => kube::run(global, args),
        Command::Login(args) => login::run(global, args),
        Command::Logout(args) => logout::run(global, args),
        Command::Network(args) => network::run(global, args),
        Command::Pull(args) => pull::run(global, args),
        Command::Rmi(args) => rmi::run(global, args),
        Command::Search(args) => search::run(global, args),
        Command::Config(args) => config::run(global, args),
        Command::Version(args) => version::run(global, args),
        Command::Up(args) => up::run(global, args),
        Command::Down(args) => down::run(global, args),
        Command::Ps(args) => ps::run(global, args),
        Command::Logs(args) => logs::run(global, args),
        Command::Exec(args) => exec::run(global, args),
        Command::Stop(args) => stop::run(global, args),
        Command::Start(args) => start::run(global, args),
        Command::Restart(args) => restart::run(global, args),
        Command::Kill(args) => kill::run(global, args),
        Command::Ls(args) => ls::run(global, args),
        Command::Port(args) => port::run(global, args),
        Command::Rm(args) => rm::run(global, args),
        Command::Top(args) => top::run(global, args),
        Command::Volume(args) => volume::run(global, args),
        Command::Wait(args) => wait::run(global, args),
        Command::Pause(args) => pause::run(global, args),
        Command::Unpause(args) => unpause::run(global, args),
        Command::Stats(args) => stats::run(global, args),
        Command::Run(args) => run::run(global, args),
        Command::System(args) => system::run(global, args),
    }
}
