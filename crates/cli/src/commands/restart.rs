//! `rstack restart [SERVICE...]`: stop then start the services'
//! containers, like `docker compose restart`.

use std::time::Duration;

use rstack_stack::control::Request;
use rstack_stack::state::ProjectLock;

use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long = "timeout", value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Services to restart
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let ctx = stack_common::load(global, &args.services)?;
    // Waits for an `up` or `down` in progress, but is not held while the
    // supervisor works: a `down` or `kill` meanwhile is served at once.
    drop(ProjectLock::acquire(&ctx.pp)?);
    // dependants declared with `depends_on: {S: {restart: true}}` go too
    let services = if args.services.is_empty() {
        stack_common::acted_on(&ctx.project, &[])
    } else {
        ctx.project.with_restart_dependents(&args.services)
    };
    let req = Request::Restart {
        services,
        timeout: args.timeout,
    };
    let wait = Duration::from_secs(args.timeout.unwrap_or(10) * 4 + 300);
    stack_common::relay(&ctx.pp, &req, wait)
}
