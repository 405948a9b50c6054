//! `rstack rm [-f] [-s] [SERVICE...]`: remove stopped service containers,
//! like `docker compose rm`. With a running supervisor it forgets them
//! (it owns the records); otherwise the records are removed here.

use std::io::BufRead;
use std::time::Duration;

use rstack_stack::control::Request;
use rstack_stack::state::ProjectLock;

use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Don't ask to confirm removal
    #[arg(short, long)]
    pub force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short, long)]
    pub stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short, long)]
    pub volumes: bool,
    /// Services to remove
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let ctx = stack_common::load(global, &args.services)?;
    for s in &args.services {
        if !ctx.project.services.contains_key(s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    let _lock = ProjectLock::acquire(&ctx.pp)?;
    if args.stop {
        let req = Request::Stop {
            services: stack_common::acted_on(&ctx.project, &args.services),
            timeout: None,
        };
        if let Some(r) = stack_common::ask(&ctx.pp, &req, Duration::from_secs(300))? {
            for l in r.lines {
                eprintln!(" {l}");
            }
        }
    }
    let stopped: Vec<String> = ctx
        .pp
        .containers()?
        .into_iter()
        .filter(|r| args.services.is_empty() || args.services.contains(&r.service))
        .filter(|r| !rstack_stack::status::is_alive(r))
        .map(|r| r.name)
        .collect();
    if stopped.is_empty() {
        eprintln!("No stopped containers");
        return Ok(0);
    }
    if !args.force {
        eprintln!("Going to remove {}", stopped.join(", "));
        eprint!("? Are you sure? (y/N) ");
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let req = Request::Rm {
        services: stack_common::acted_on(&ctx.project, &args.services),
    };
    if let Some(r) = stack_common::ask(&ctx.pp, &req, Duration::from_secs(60))? {
        for l in r.lines {
            eprintln!(" {l}");
        }
        return Ok(0);
    }
    for name in stopped {
        let Some(mut rec) = ctx.pp.container(&name)? else {
            continue;
        };
        let errs = rstack_stack::lifecycle::remove_leftover(&ctx.env, &mut rec);
        if !errs.is_empty() {
            anyhow::bail!("container {name}: {}", errs.join("; "));
        }
        ctx.pp.remove_container(&name)?;
        let _ = std::fs::remove_dir_all(ctx.pp.log_dir(&name));
        ctx.pp.remove_container_data(&name);
        eprintln!(" Container {name}  Removed");
    }
    Ok(0)
}
