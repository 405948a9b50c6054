//! `rstack wait SERVICE...`: block until the services' first containers
//! stop, then print their exit codes, like `docker compose wait`.

use std::time::Duration;

use rstack_stack::state::{ContainerRecord, ProjectPaths, Status};

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
        last = exit_code(&ctx.pp, &rec)?;
        println!("{last}");
    }
    Ok(last.clamp(0, 255) as u8)
}

/// Blocks until container `rec` stops; its exit code as recorded (-1
/// when unknown).
pub(crate) fn exit_code(pp: &ProjectPaths, rec: &ContainerRecord) -> anyhow::Result<i32> {
    if let Some(p) = rstack_stack::status::process(rec) {
        while !p.wait_exit(Duration::from_secs(3600)) {}
    }
    for _ in 0..100 {
        if let Some(r) = pp.container(&rec.name)?
            && (r.status == Status::Exited || r.status == Status::Restarting)
        {
            return Ok(r.exit_code.unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(-1)
}
