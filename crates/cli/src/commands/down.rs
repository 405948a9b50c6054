//! `rstack down`: stop and remove the project's containers and networks
//! (and named volumes with `-v`), like `docker compose down`. The running
//! supervisor stops its containers (it is their parent); whatever is left
//! — a supervisor that died, a crash half-way through a creation — is
//! removed from the records.

use std::time::Duration;

use rstack_stack::control::Request;
use rstack_stack::state::ProjectLock;

use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove named volumes declared in the "volumes" section of the Compose file
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long = "timeout", value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Remove images used by services: "local" removes only the images
    /// without a custom tag (built ones), "all" every service's image
    #[arg(long, value_enum, value_name = "TYPE")]
    pub rmi: Option<Rmi>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Rmi {
    Local,
    All,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let (project, env, pp) = stack_common::load_or_name(global, &[])?;
    let _lock = ProjectLock::acquire(&pp)?;
    let mut failures = Vec::new();
    if let Some(sup) = rstack_stack::supervisor::running_supervisor(&pp) {
        let grace = args.timeout.unwrap_or(10);
        let resp = stack_common::ask(
            &pp,
            &Request::Down {
                timeout: args.timeout,
            },
            Duration::from_secs(grace * 4 + 120),
        )?;
        for l in resp.map(|r| r.lines).unwrap_or_default() {
            eprintln!(" {l}");
        }
        rstack_stack::status::wait_supervisor_exit(&sup, Duration::from_secs(30));
    }
    // leftovers: no supervisor, or records it did not know
    for mut rec in pp.containers()? {
        if let Some(p) = rstack_stack::status::process(&rec) {
            p.stop(
                libc::SIGTERM,
                Duration::from_secs(args.timeout.unwrap_or(10)),
                || false,
            );
        }
        let errs = rstack_stack::lifecycle::remove_leftover(&env, &mut rec);
        if errs.is_empty() {
            pp.remove_container(&rec.name)?;
            let _ = std::fs::remove_dir_all(pp.log_dir(&rec.name));
            pp.remove_container_data(&rec.name);
            eprintln!(" Container {}  Removed", rec.name);
        } else {
            failures.extend(errs);
        }
    }
    let res = pp.resources()?;
    for net in res.networks.iter().rev() {
        match env.networks.remove(net) {
            Ok(()) => eprintln!(" Network {net}  Removed"),
            Err(rstack_netns::network::Error::State(rstack_netns::state::Error::NotFound {
                ..
            })) => {}
            Err(e) => failures.push(format!("network {net}: {}", rstack_sys::chain::chain(&e))),
        }
    }
    // driver_opts volumes: their mounts go with the last container, as
    // Docker's local driver unmounts a volume no container uses
    for v in &res.volumes {
        if let Err(e) = rstack_stack::volume_driver::unmount(v, &env.layout.volume_dir(v)) {
            failures.push(rstack_sys::chain::chain(&e));
        }
    }
    if args.volumes {
        let mut vols = res.volumes.clone();
        if let Some(p) = &project {
            for (key, v) in &p.volumes {
                let name = p.volume_name(key);
                if v.external != Some(true) && !vols.contains(&name) {
                    vols.push(name);
                }
            }
        }
        for v in vols {
            let dir = env.layout.volume_dir(&v);
            if dir.exists() {
                match rstack_stack::volume_driver::remove(&v, &dir) {
                    Ok(()) => eprintln!(" Volume {v}  Removed"),
                    Err(e) => failures.push(rstack_sys::chain::chain(&e)),
                }
            }
        }
    }
    if let (Some(which), Some(p)) = (args.rmi, &project) {
        remove_images(global, p, which, &mut failures)?;
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("Error: {f}");
        }
        return Ok(1);
    }
    // The project is gone: its state dirs too (logs, supervisor.log).
    let _ = std::fs::remove_dir_all(&pp.data);
    for f in [
        pp.project_file(),
        pp.supervisor_file(),
        pp.control_socket(),
        pp.run.join("creator.sock"),
    ] {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_dir(pp.containers_dir());
    let _ = std::fs::remove_file(pp.lock_file());
    let _ = std::fs::remove_dir(&pp.run);
    Ok(0)
}

/// `down --rmi`: the services' images, once their containers are gone;
/// one still used by another project's container is reported, not removed.
fn remove_images(
    global: &GlobalOpts,
    project: &rstack_compose::Project,
    which: Rmi,
    failures: &mut Vec<String>,
) -> anyhow::Result<()> {
    let store = global.store()?;
    let layout = rstack_stack::state::Layout::new(&global.run_root, &global.root);
    let mut names: Vec<String> = project
        .services
        .iter()
        .filter(|(_, s)| which == Rmi::All || s.image.is_none())
        .map(|(n, _)| project.image_name(n))
        .collect();
    names.dedup();
    for name in names {
        if store.lookup(&name)?.is_none() {
            continue;
        }
        if let Some(conflict) = super::rmi::in_use(&store, &layout, &name, false)? {
            failures.push(format!("image {name}: {conflict}"));
            continue;
        }
        match store.remove(&name, true) {
            Ok(_) => eprintln!(" Image {name}  Removed"),
            Err(e) => failures.push(format!("image {name}: {e}")),
        }
    }
    Ok(())
}
