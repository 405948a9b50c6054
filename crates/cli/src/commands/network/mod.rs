//! `rstack network`: create, list, inspect and remove networks, like
//! `docker network`. The work is done by rstack-netns; this file only
//! dispatches and builds the `Networks` handle from the global options.

mod connect;
mod create;
pub(crate) mod inspect;
mod ls;
mod rm;

use anyhow::Context;
use clap::Subcommand;
use rstack_netns::{Config, Networks};

use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: NetworkCommand,
}

#[derive(Debug, Subcommand)]
enum NetworkCommand {
    /// Create a network
    Create(create::Args),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(ls::Args),
    /// Display detailed information on one or more networks
    Inspect(inspect::Args),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(rm::Args),
    /// Connect a container to a network
    Connect(connect::ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(connect::DisconnectArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

/// `network prune`: every network no container uses (the default
/// `bridge` is kept, like Docker's), as `system prune` does it.
fn prune(global: &GlobalOpts, a: PruneArgs) -> anyhow::Result<u8> {
    let warning = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ";
    if !a.force && !crate::commands::system::prune::confirm("network prune", warning)? {
        return Ok(0);
    }
    let env = rstack_stack::lifecycle::Env::new(&global.run_root, &global.root);
    let step = crate::commands::system::prune::prune_networks(global, &env)?;
    step.print("Deleted Networks:");
    for f in &step.failures {
        eprintln!("Error: {f}");
    }
    Ok(u8::from(!step.failures.is_empty()))
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    if let NetworkCommand::Prune(a) = args.command {
        return prune(global, a);
    }
    let nets = networks(global)?;
    match args.command {
        NetworkCommand::Create(a) => create::run(&nets, a),
        NetworkCommand::Ls(a) => ls::run(&nets, a),
        NetworkCommand::Inspect(a) => inspect::run(&nets, a),
        NetworkCommand::Rm(a) => rm::run(&nets, a),
        NetworkCommand::Connect(a) => connect::connect(&nets, global, a),
        NetworkCommand::Disconnect(a) => connect::disconnect(&nets, global, a),
        NetworkCommand::Prune(a) => prune(global, a),
    }
}

/// The networking layer under the global run root. The subnet pool can be
/// replaced with `RSTACK_DEFAULT_ADDRESS_POOLS=BASE/LEN=SIZE,...` (like
/// Docker's `default-address-pools`).
pub fn networks(global: &GlobalOpts) -> anyhow::Result<Networks> {
    let mut config = Config::new(&global.run_root);
    if let Ok(pools) = std::env::var("RSTACK_DEFAULT_ADDRESS_POOLS") {
        config.pool = pools
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.parse())
            .collect::<Result<_, _>>()
            .context("invalid RSTACK_DEFAULT_ADDRESS_POOLS")?;
    }
    Ok(Networks::new(config))
}

/// Parses `KEY=VALUE` pairs (`--opt`, `--label`); a bare KEY has an empty value.
fn key_values(
    items: &[String],
    flag: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            if k.is_empty() {
                anyhow::bail!("invalid {flag} {kv:?}: expected KEY=VALUE");
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}
