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
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let nets = networks(global)?;
    match args.command {
        NetworkCommand::Create(a) => create::run(&nets, a),
        NetworkCommand::Ls(a) => ls::run(&nets, a),
        NetworkCommand::Inspect(a) => inspect::run(&nets, a),
        NetworkCommand::Rm(a) => rm::run(&nets, a),
        NetworkCommand::Connect(a) => connect::connect(&nets, global, a),
        NetworkCommand::Disconnect(a) => connect::disconnect(&nets, global, a),
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
