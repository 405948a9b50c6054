//! `rstack top [SERVICE...]`: the processes of each running container,
//! like `docker compose top`. A container's processes are those in its
//! PID namespace (the one of its init, found through /proc).

use std::process::Command;

use anyhow::Context;

use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Services to show
    pub services: Vec<String>,
}

/// Every pid whose PID namespace is the one of `init`.
fn pids_of(init: i32) -> Vec<i32> {
    let Ok(ns) = std::fs::read_link(format!("/proc/{init}/ns/pid")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|n| n == ns) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let ctx = stack_common::load(global, &args.services)?;
    for s in &args.services {
        if !ctx.project.services.contains_key(s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    let mut first = true;
    for rec in ctx.pp.containers()? {
        if !args.services.is_empty() && !args.services.contains(&rec.service) {
            continue;
        }
        if !rstack_stack::status::is_alive(&rec) {
            continue;
        }
        let Some(table) = processes(&rec)? else {
            continue;
        };
        if !first {
            println!();
        }
        first = false;
        println!("{}", rec.name);
        print!("{table}");
    }
    Ok(0)
}

/// `ps` of every process in container `rec`'s pid namespace (header
/// included); `None` when it has none.
pub(crate) fn processes(
    rec: &rstack_stack::state::ContainerRecord,
) -> anyhow::Result<Option<String>> {
    let Some(init) = rec.pid else {
        return Ok(None);
    };
    let pids = pids_of(init);
    if pids.is_empty() {
        return Ok(None);
    }
    let list = pids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let out = Command::new("ps")
        .args([
            "-o",
            "user:8=UID,pid=PID,ppid=PPID,c=C,stime=STIME,tty=TTY,time=TIME,cmd=CMD",
            "-p",
            &list,
        ])
        .output()
        .context("run ps (procps)")?;
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}
