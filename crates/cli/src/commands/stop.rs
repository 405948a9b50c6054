//! `rstack stop [SERVICE...]`: stop the services' containers without
//! removing them, like `docker compose stop`. The supervisor does it (it
//! is their parent) and remembers the stop, so no restart policy —
//! not even `unless-stopped` — brings them back until `start`/`up`.

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
    /// Services to stop
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let ctx = stack_common::load(global, &args.services)?;
    // Waits for an `up` or `down` in progress, but is not held while the
    // supervisor works: a `down` or `kill` meanwhile is served at once.
    drop(ProjectLock::acquire(&ctx.pp)?);
    let req = Request::Stop {
        services: stack_common::acted_on(&ctx.project, &args.services),
        timeout: args.timeout,
    };
    let wait = Duration::from_secs(args.timeout.unwrap_or(10) * 4 + 120);
    stack_common::relay(&ctx.pp, &req, wait)
}
