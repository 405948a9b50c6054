//! `rstack network create`: like `docker network create` (bridge driver).

use rstack_netns::{CreateOptions, Networks};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Driver to manage the network (only "bridge")
    #[arg(short = 'd', long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    subnet: Option<String>,
    /// IPv4 gateway for the subnet
    #[arg(long)]
    gateway: Option<String>,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Enable IPv6 networking (not supported yet)
    #[arg(long)]
    ipv6: bool,
    /// Enable manual container attachment (always possible; accepted for compatibility)
    #[arg(long)]
    attachable: bool,
    /// Set driver specific options (KEY=VALUE)
    #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
    opts: Vec<String>,
    /// Set metadata on a network (KEY=VALUE)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Network name
    name: String,
}

pub fn run(nets: &Networks, args: Args) -> anyhow::Result<u8> {
    if args.driver != "bridge" {
        anyhow::bail!(
            "plugin \"{}\" not found: rstack supports the bridge driver only",
            args.driver
        );
    }
    if args.ipv6 {
        anyhow::bail!("--ipv6 is not supported by rstack yet");
    }
    let opts = CreateOptions {
        name: args.name.clone(),
        subnet: args.subnet,
        gateway: args.gateway,
        internal: args.internal,
        options: super::key_values(&args.opts, "--opt")?,
        labels: super::key_values(&args.labels, "--label")?,
    };
    let network = nets.create(&opts)?;
    println!("{}", network.id);
    Ok(0)
}
