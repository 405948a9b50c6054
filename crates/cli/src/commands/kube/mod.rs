//! `rstack kube`: the project for a Kubernetes cluster (podman's verb).

mod facts;
mod generate;
mod push;

use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KubeCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KubeCommand {
    /// Write the project as Kubernetes manifests (Namespace, ConfigMaps,
    /// Secrets, Deployments, Services, PVCs, NetworkPolicies, HPAs)
    Generate(generate::Args),
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    match args.command {
        KubeCommand::Generate(a) => generate::run(global, a),
    }
}
