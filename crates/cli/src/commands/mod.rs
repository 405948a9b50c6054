//! One module per subcommand. Each exposes an `Args` struct and a `run`
//! function returning the process exit code.

pub mod config;
mod container;
mod image;
mod images;
mod login;
mod logout;
mod network;
mod pull;
mod rmi;
mod version;

use clap::Subcommand;

use crate::global::GlobalOpts;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, resolve and render the Compose file in canonical format
    Config(config::Args),
    /// Manage containers
    Container(container::Args),
    /// Manage images
    Image(image::Args),
    /// List images
    Images(images::Args),
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
    /// Show the rstack version information
    Version(version::Args),
}

pub fn run(global: &GlobalOpts, command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Container(args) => container::run(global, args),
        Command::Image(args) => image::run(global, args),
        Command::Images(args) => images::run(global, args),
        Command::Login(args) => login::run(global, args),
        Command::Logout(args) => logout::run(global, args),
        Command::Network(args) => network::run(global, args),
        Command::Pull(args) => pull::run(global, args),
        Command::Rmi(args) => rmi::run(global, args),
        Command::Config(args) => config::run(global, args),
        Command::Version(args) => version::run(global, args),
    }
}
