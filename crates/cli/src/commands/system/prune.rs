//! `rstack system prune [-a] [--volumes] [-f]`, in docker's order:
//! containers, networks, volumes, images, build cache.
//!
//! - Containers: docker's "all stopped containers" are the container
//!   records, in any project, whose process is not alive (exited, created,
//!   or left by a crash). A project with a running supervisor is asked to
//!   forget its stopped containers (`rm` over the control socket: the
//!   supervisor owns its records); otherwise, under the project lock, they
//!   are torn down and their records removed, like `rstack rm -f`. Their
//!   logs and anonymous volumes go with them (rstack's anonymous volumes
//!   are private to their container).
//! - Networks: every network but `bridge` (kept like docker's predefined
//!   networks) that no remaining container record names, that no project
//!   with a running supervisor owns (it may start containers on it), and
//!   that has no live endpoint (`container run --network`).
//! - Volumes (`--volumes`): as in Docker 25, only anonymous volumes not
//!   used by a container, with or without `-a`; named volumes stay (use
//!   `volume prune -a`). rstack's anonymous volumes live in
//!   `ROOT/projects/<p>/anon/<container>`; those whose container record is
//!   gone (a crash, a reboot that cleared RUN) are removed.
//! - Images: dangling ones, all with `-a`, sparing every image a remaining
//!   container record names.
//! - Build cache: entries whose layer no image has, all with `-a`.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use rstack_stack::control::Request;
use rstack_stack::lifecycle::Env;
use rstack_stack::state::{ProjectLock, ProjectPaths};
use rstack_stack::supervisor::running_supervisor;

use super::{containers, human_size};
use crate::commands::{network, stack_common};
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    volumes: bool,
}

/// Docker's confirmation message for these options.
fn warning(args: &PruneArgs) -> String {
    let mut items = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if args.volumes {
        items.push("all anonymous volumes not used by at least one container");
    }
    items.push(if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    items.push(if args.all {
        "all build cache"
    } else {
        "unused build cache"
    });
    let mut s = String::from("WARNING! This will remove:\n");
    for i in items {
        s.push_str(&format!("  - {i}\n"));
    }
    s.push_str("\nAre you sure you want to continue? [y/N] ");
    s
}

/// What one step removed.
#[derive(Default)]
pub(crate) struct Step {
    pub(crate) deleted: Vec<String>,
    pub(crate) bytes: u64,
    pub(crate) failures: Vec<String>,
}

impl Step {
    /// Docker's section: a title, the names, a blank line.
    pub(crate) fn print(&self, title: &str) {
        if !self.deleted.is_empty() {
            println!("{title}");
            for d in &self.deleted {
                println!("{d}");
            }
            println!();
        }
    }
}

/// Docker's prompt of a prune without `-f`: the warning, then `y`/`yes`
/// on a terminal; not a terminal is an error naming `-f`.
pub(crate) fn confirm(command: &str, warning: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "{command} asks for confirmation but standard input is not a terminal: \
             pass -f/--force to prune without asking"
        );
    }
    print!("{warning}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

pub fn run(global: &GlobalOpts, args: PruneArgs) -> anyhow::Result<u8> {
    if !args.force && !confirm("system prune", &warning(&args))? {
        return Ok(0);
    }
    let env = Env::new(&global.run_root, &global.root);
    let store = global.store()?;
    let mut failures = Vec::new();
    let mut total = 0;

    let step = prune_containers(global, &env)?;
    step.print("Deleted Containers:");
    total += step.bytes;
    failures.extend(step.failures);

    let step = prune_networks(global, &env)?;
    step.print("Deleted Networks:");
    failures.extend(step.failures);

    if args.volumes {
        let step = prune_anonymous_volumes(&env)?;
        step.print("Deleted Volumes:");
        total += step.bytes;
        failures.extend(step.failures);
    }

    // Images a remaining container names stay, with or without -a.
    let keep: Vec<String> = containers(&env.layout)?
        .into_iter()
        .map(|c| c.rec.image_id)
        .filter(|id| !id.is_empty())
        .collect();
    let removed = store.prune_keeping(args.all, &keep)?;
    crate::commands::image::print_deleted_images(&removed);
    total += removed.reclaimed_bytes;

    let cache = store.prune_build_cache(args.all)?;
    if !cache.deleted.is_empty() {
        println!("Deleted build cache objects:");
        for k in &cache.deleted {
            println!("{k}");
        }
        println!();
    }
    total += cache.reclaimed_bytes;

    println!("Total reclaimed space: {}", human_size(total));
    if failures.is_empty() {
        Ok(0)
    } else {
        for f in &failures {
            eprintln!("Error: {f}");
        }
        Ok(1)
    }
}

/// The bytes a container's removal frees: writable layer (if created),
/// logs, anonymous volumes.
fn container_bytes(pp: &ProjectPaths, rec: &super::ContainerRecord) -> u64 {
    super::writable_layer(pp, rec)
        + rstack_images::fsutil::disk_usage(&pp.log_dir(&rec.name))
        + rstack_images::fsutil::disk_usage(&pp.anon_dir(&rec.name))
}

/// Removes every stopped container (single ones with their project).
pub(crate) fn prune_containers(global: &GlobalOpts, env: &Env) -> anyhow::Result<Step> {
    let mut step = Step::default();
    for project in env.layout.list_projects()? {
        if let Some(sp) = crate::commands::container::SingleProject::of(&env.layout, &project) {
            prune_single(global, &sp, &mut step)?;
            continue;
        }
        let pp = env.layout.project(&project);
        let stopped: Vec<_> = pp
            .containers()?
            .into_iter()
            .filter(|r| !rstack_stack::status::is_alive(r))
            .collect();
        if stopped.is_empty() {
            continue;
        }
        // `up` holds the lock while it starts a supervisor; an attached
        // `up` is a supervisor and is asked instead of waited for.
        let _lock = if running_supervisor(&pp).is_none() {
            Some(ProjectLock::acquire(&pp)?)
        } else {
            None
        };
        if running_supervisor(&pp).is_some() {
            let bytes: Vec<(String, u64)> = stopped
                .iter()
                .map(|r| (r.name.clone(), container_bytes(&pp, r)))
                .collect();
            let req = Request::Rm { services: vec![] };
            let resp = stack_common::ask(&pp, &req, Duration::from_secs(60))
                .with_context(|| format!("project {project}"))?;
            if let Some(e) = resp.and_then(|r| r.error) {
                step.failures.push(format!("project {project}: {e}"));
            }
            // what the supervisor forgot (it keeps those it restarts)
            let left: BTreeSet<String> = pp.containers()?.into_iter().map(|r| r.name).collect();
            for (name, b) in bytes {
                if !left.contains(&name) {
                    step.deleted.push(name);
                    step.bytes += b;
                }
            }
            continue;
        }
        // no supervisor: nothing else changes the records while we hold the lock
        for mut rec in pp.containers()? {
            if rstack_stack::status::is_alive(&rec) {
                continue;
            }
            let bytes = container_bytes(&pp, &rec);
            let errs = rstack_stack::lifecycle::remove_leftover(env, &mut rec);
            if !errs.is_empty() {
                step.failures
                    .push(format!("container {}: {}", rec.name, errs.join("; ")));
                continue;
            }
            pp.remove_container(&rec.name)?;
            let _ = std::fs::remove_dir_all(pp.log_dir(&rec.name));
            pp.remove_container_data(&rec.name);
            step.deleted.push(rec.name);
            step.bytes += bytes;
        }
    }
    Ok(step)
}

/// A stopped single container goes with its project (and supervisor).
fn prune_single(
    global: &GlobalOpts,
    sp: &crate::commands::container::SingleProject,
    step: &mut Step,
) -> anyhow::Result<()> {
    let recs = sp.pp.containers()?;
    if recs.iter().any(rstack_stack::status::is_alive) {
        return Ok(());
    }
    let bytes: u64 = recs.iter().map(|r| container_bytes(&sp.pp, r)).sum();
    match sp.remove(global, Some(0)) {
        Ok(()) => {
            step.deleted
                .extend(recs.into_iter().map(|r| r.id.unwrap_or(r.name)));
            step.bytes += bytes;
        }
        Err(e) => step.failures.push(format!("project {}: {e:#}", sp.name)),
    }
    Ok(())
}

pub(crate) fn prune_networks(global: &GlobalOpts, env: &Env) -> anyhow::Result<Step> {
    let mut step = Step::default();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for c in containers(&env.layout)? {
        used.extend(c.rec.networks);
    }
    for project in env.layout.list_projects()? {
        let pp = env.layout.project(&project);
        if running_supervisor(&pp).is_some() {
            used.extend(pp.resources()?.networks);
        }
    }
    let nets = network::networks(global)?;
    for n in nets.list()? {
        if n.name == "bridge"
            || used.contains(&n.name)
            || n.endpoints.values().any(|e| e.netns.exists())
        {
            continue;
        }
        match nets.remove(&n.name) {
            Ok(()) => step.deleted.push(n.name),
            Err(rstack_netns::network::Error::State(rstack_netns::state::Error::NotFound {
                ..
            })) => {}
            Err(e) => step.failures.push(format!(
                "network {}: {}",
                n.name,
                rstack_sys::chain::chain(&e)
            )),
        }
    }
    Ok(step)
}

/// `ROOT/projects/<p>/anon/<container>` dirs whose container record is
/// gone. A record is written before its container's directories, so a
/// dir without one belongs to no container.
fn prune_anonymous_volumes(env: &Env) -> anyhow::Result<Step> {
    let mut step = Step::default();
    let projects = env.layout.root.join("projects");
    for p in std::fs::read_dir(&projects).into_iter().flatten().flatten() {
        let project = p.file_name().to_string_lossy().into_owned();
        let pp = env.layout.project(&project);
        let anon = pp.data.join("anon"); // every container's pp.anon_dir
        let Ok(entries) = std::fs::read_dir(&anon) else {
            continue;
        };
        let _lock = if running_supervisor(&pp).is_none() && pp.run.exists() {
            Some(ProjectLock::acquire(&pp)?)
        } else {
            None
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if pp.container_file(&name).exists() {
                continue;
            }
            let bytes = rstack_images::fsutil::disk_usage(&e.path());
            match std::fs::remove_dir_all(e.path()) {
                Ok(()) => {
                    step.deleted.push(format!("{project}/{name}"));
                    step.bytes += bytes;
                }
                Err(err) => step
                    .failures
                    .push(format!("anonymous volume {}: {err}", e.path().display())),
            }
        }
        let _ = std::fs::remove_dir(&anon);
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_lists_what_goes_like_docker() {
        let args = PruneArgs {
            all: false,
            force: false,
            volumes: false,
        };
        assert_eq!(
            warning(&args),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n\nAre you sure you want to continue? [y/N] "
        );
        let args = PruneArgs {
            all: true,
            force: false,
            volumes: true,
        };
        let w = warning(&args);
        assert!(w.contains("  - all anonymous volumes not used by at least one container\n"));
        assert!(w.contains("  - all images without at least one container associated to them\n"));
        assert!(w.contains("  - all build cache\n"));
    }
}
