//! `rstack port SERVICE PRIVATE_PORT`: the public address of a published
//! port, like `docker compose port` (`0.0.0.0:8080`).

use anyhow::bail;

use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// tcp or udp
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// The service
    pub service: String,
    /// The container port
    pub private_port: u16,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let ctx = stack_common::load(global, std::slice::from_ref(&args.service))?;
    if !ctx.project.services.contains_key(&args.service) {
        bail!("no such service: {}", args.service);
    }
    let recs = stack_common::containers_of(&ctx.pp, &args.service)?;
    let Some(rec) = recs.iter().find(|r| r.number == args.index) else {
        bail!(
            "service \"{}\" has no container #{}",
            args.service,
            args.index
        );
    };
    let suffix = format!("->{}/{}", args.private_port, args.protocol);
    for p in &rec.ports {
        if let Some(host) = p.strip_suffix(&suffix) {
            println!("{host}");
            return Ok(0);
        }
    }
    bail!(
        "no port {}/{} published for {}",
        args.private_port,
        args.protocol,
        rec.name
    )
}
