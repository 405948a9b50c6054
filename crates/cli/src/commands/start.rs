//! `rstack start [SERVICE...]`: start the services' stopped containers
//! again, like `docker compose start` (the supervisor creates them anew
//! from their records; see docs/compose-compatibility.md).

use std::time::Duration;

use rstack_stack::control::Request;
use rstack_stack::state::ProjectLock;

use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Services to start
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let ctx = stack_common::load(global, &args.services)?;
    // Waits for an `up` or `down` in progress, but is not held while the
    // supervisor works: a `down` or `kill` meanwhile is served at once.
    drop(ProjectLock::acquire(&ctx.pp)?);
    let req = Request::Start {
        services: stack_common::acted_on(&ctx.project, &args.services),
    };
    stack_common::relay(&ctx.pp, &req, Duration::from_secs(300))
}
