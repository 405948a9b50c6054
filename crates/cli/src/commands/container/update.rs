//! `container update [--restart] [-m] [--memory-swap] [--cpus]
//! [--cpu-shares] [--pids-limit] CONTAINER...` of single (`run -d`)
//! containers: the new limits are written to a running container's cgroup
//! at once (`rstack_stack::cgroups::set_limits`), and everything goes into
//! its Compose document, which a new supervisor adopts the container with
//! (the restart policy is the supervisor's) and which later starts use.

use std::time::Duration;

use anyhow::{Context, bail};
use rstack_runtime::parse;
use rstack_stack::cgroups::Limits;
use rstack_stack::control::Request;
use rstack_stack::state::{Layout, ProjectLock};
use serde_json::{Value, json};

use super::detached::SingleProject;
use crate::commands::inspect::find_container;
use crate::commands::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

fn flag<T>(name: &str, v: &str, r: Result<T, parse::ParseError>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow::anyhow!("invalid argument \"{v}\" for \"{name}\" flag: {e}"))
}

/// The flags, checked, as cgroup limits.
fn limits(a: &Args) -> anyhow::Result<Limits> {
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(Limits {
        memory: a
            .memory
            .as_deref()
            .map(|m| flag("--memory", m, parse::parse_memory(m)))
            .transpose()?,
        memory_swap: a
            .memory_swap
            .as_deref()
            .map(|m| flag("--memory-swap", m, parse::parse_memory_swap(m)))
            .transpose()?,
        cpus: a
            .cpus
            .as_deref()
            .map(|c| flag("--cpus", c, parse::parse_cpus(c, host_cpus)))
            .transpose()?,
        cpu_shares: a.cpu_shares,
        pids: a.pids_limit,
    })
}

/// The service's fields for the flags given (pure).
fn document_fields(a: &Args, l: &Limits) -> Vec<(&'static str, Value)> {
    let mut f = Vec::new();
    if let Some(r) = &a.restart {
        f.push(("restart", json!(r)));
    }
    if let Some(m) = l.memory {
        f.push(("mem_limit", json!(m)));
    }
    if let Some(s) = l.memory_swap {
        f.push(("memswap_limit", json!(s)));
    }
    if let Some(c) = l.cpus {
        f.push(("cpus", json!(c)));
    }
    if let Some(s) = l.cpu_shares {
        f.push(("cpu_shares", json!(s)));
    }
    if let Some(p) = l.pids {
        f.push(("pids_limit", json!(p)));
    }
    f
}

pub fn run(global: &GlobalOpts, a: Args) -> anyhow::Result<u8> {
    if let Some(r) = &a.restart {
        rstack_stack::restart::Policy::parse("", r)
            .map_err(|_| anyhow::anyhow!("invalid restart policy: {r}"))?;
    }
    let l = limits(&a)?;
    let fields = document_fields(&a, &l);
    if fields.is_empty() {
        bail!("you must provide one or more flags when using this command");
    }
    let mut code = 0;
    for q in &a.containers {
        match update_one(global, q, &l, &fields) {
            Ok(()) => println!("{q}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

fn update_one(
    global: &GlobalOpts,
    query: &str,
    l: &Limits,
    fields: &[(&'static str, Value)],
) -> anyhow::Result<()> {
    let layout = Layout::new(&global.run_root, &global.root);
    let Some((project, rec)) = find_container(&layout, query)? else {
        bail!("No such container: {query}");
    };
    let Some(sp) = SingleProject::of(&layout, &project) else {
        bail!(
            "cannot update {}: the container of a Compose service takes its settings from the Compose file (project {project}): change it there and run `up`",
            rec.name
        );
    };
    let alive = rstack_stack::status::is_alive(&rec);
    if alive {
        rstack_stack::cgroups::set_limits(&rec.name, &rec.cgroup_leaves, l)?;
    }
    if let Some(sup) = rstack_stack::supervisor::running_supervisor(&sp.pp) {
        stack_common::ask(&sp.pp, &Request::Detach, Duration::from_secs(30))?;
        rstack_stack::status::wait_supervisor_exit(&sup, Duration::from_secs(30));
    }
    {
        let _lock = ProjectLock::acquire(&sp.pp)?;
        let path = sp.document();
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let mut doc: Value =
            serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        let svc = doc["services"]
            .get_mut(&rec.service)
            .and_then(Value::as_object_mut)
            .with_context(|| format!("{}: no service {}", path.display(), rec.service))?;
        for (k, v) in fields {
            svc.insert((*k).to_owned(), v.clone());
        }
        rstack_stack::state::write_json(&path, &doc)?;
    }
    if alive {
        sp.ensure_supervisor(global)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_flags_given_change() {
        let a = Args {
            restart: Some("always".into()),
            memory: None,
            memory_swap: None,
            cpus: None,
            cpu_shares: None,
            pids_limit: Some(50),
            containers: vec!["x".into()],
        };
        let l = limits(&a).unwrap();
        assert_eq!(
            document_fields(&a, &l),
            [("restart", json!("always")), ("pids_limit", json!(50))]
        );
        let bad = Args {
            memory: Some("lots".into()),
            ..a
        };
        assert!(limits(&bad).is_err());
    }
}
