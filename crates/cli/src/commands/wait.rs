//! `rstack wait SERVICE...`: block until the services' first containers
//! stop, then print their exit codes, like `docker compose wait`.

use std::time::Duration;

use rstack_stack::state::Status;

use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Drops project when the first container stops (not supported)
    #[arg(long = "down-project")]
    pub down_project: bool,
    /// Services to wait for
    #[arg(required = true)]
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let ctx = stack_common::load(global, &args.services)?;
    if args.down_project {
        anyhow::bail!("wait --down-project is not supported by rstack");
    }
    for s in &args.services {
        if !ctx.project.services.contains_key(s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    let mut last = 0;
    for s in &args.services {
        let Some(rec) = stack_common::containers_of(&ctx.pp, s)?.into_iter().next() else {
            anyhow::bail!("service {s} has no container");
        };
        if let Some(p) = rstack_stack::status::process(&rec) {
            while !p.wait_exit(Duration::from_secs(3600)) {}
        }
        // the supervisor records the exit status right after
        let mut code = None;
        for _ in 0..100 {
            if let Some(r) = ctx.pp.container(&rec.name)? {
                if r.status == Status::Exited || r.status == Status::Restarting {
                    code = r.exit_code;
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let c = code.unwrap_or(-1);
        println!("{c}");
        last = c;
    }
    Ok(last.clamp(0, 255) as u8)
}
