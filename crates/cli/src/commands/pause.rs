//! `rstack pause [SERVICE...]`: freeze every process of the services'
//! running containers (the cgroup freezer), like `docker compose pause`.

use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Services to pause
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    set(global, &args.services, true)
}

/// Pauses or unpauses (shared with `unpause`).
pub fn set(global: &GlobalOpts, services: &[String], paused: bool) -> anyhow::Result<u8> {
    let ctx = stack_common::load(global, services)?;
    for s in services {
        if !ctx.project.services.contains_key(s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    let services = stack_common::acted_on(&ctx.project, services);
    for r in ctx.pp.containers()? {
        if !services.contains(&r.service) {
            continue;
        }
        if !rstack_stack::status::is_alive(&r) {
            continue;
        }
        rstack_stack::cgroups::set_paused(&r.name, &r.cgroup_leaves, paused)?;
        eprintln!(
            " Container {}  {}",
            r.name,
            if paused { "Paused" } else { "Unpaused" }
        );
    }
    Ok(0)
}
