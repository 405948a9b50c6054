//! `rstack kill [-s SIGNAL] [SERVICE...]`: send a signal to the services'
//! containers, like `docker compose kill`. A container that dies of it is
//! handled by its restart policy like any other exit.

use std::time::Duration;

use anyhow::Context;
use rstack_stack::control::Request;

use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// SIGNAL to send to the container
    #[arg(short, long, default_value = "SIGKILL")]
    pub signal: String,
    /// Services to kill
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let ctx = stack_common::load(global, &args.services)?;
    let signal = rstack_runtime::container::parse_signal(&args.signal)
        .with_context(|| format!("invalid signal {:?}", args.signal))?;
    let req = Request::Kill {
        services: stack_common::acted_on(&ctx.project, &args.services),
        signal: signal as i32,
    };
    stack_common::relay(&ctx.pp, &req, Duration::from_secs(30))
}
