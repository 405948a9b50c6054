//! `container top|port|wait|stats|cp|prune`: Docker's per-container
//! commands that read a container (found by id, name or unique id prefix
//! in any project) through the same code as the project's commands.

use anyhow::{Context, bail};
use rstack_stack::lifecycle::Env;
use rstack_stack::state::{ContainerRecord, Layout};

use super::manage::NamesArgs;
use crate::commands::inspect::find_container;
use crate::commands::stack_common::Ctx;
use crate::commands::{
    cp as project_cp, stats as project_stats, top as project_top, wait as project_wait,
};
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    pub container: String,
}

#[derive(Debug, clap::Args)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Format output (json)
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(
    override_usage = "rstack container cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       \
                      rstack container cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH"
)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    pub source: String,
    pub destination: String,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// The container `query` names, with its project.
fn find(global: &GlobalOpts, query: &str) -> anyhow::Result<(Layout, String, ContainerRecord)> {
    let layout = Layout::new(&global.run_root, &global.root);
    match find_container(&layout, query)? {
        Some((project, rec)) => Ok((layout, project, rec)),
        None => bail!("No such container: {query}"),
    }
}

pub fn top(global: &GlobalOpts, a: TopArgs) -> anyhow::Result<u8> {
    let (_, _, rec) = find(global, &a.container)?;
    if !rstack_stack::status::is_alive(&rec) {
        bail!(
            "container {} is not running",
            rec.id.as_deref().unwrap_or(&rec.name)
        );
    }
    print!("{}", project_top::processes(&rec)?.unwrap_or_default());
    Ok(0)
}

/// Docker's `port` lines: `80/tcp -> 0.0.0.0:8080` for every mapping, or
/// the host addresses of one private port.
fn port_lines(published: &[String], wanted: Option<&str>) -> anyhow::Result<Vec<String>> {
    let wanted = wanted.map(|w| {
        if w.contains('/') {
            w.to_owned()
        } else {
            format!("{w}/tcp")
        }
    });
    let mut out = Vec::new();
    for p in published {
        let Some((host, private)) = p.split_once("->") else {
            continue;
        };
        match &wanted {
            Some(w) if w == private => out.push(host.to_owned()),
            Some(_) => {}
            None => out.push(format!("{private} -> {host}")),
        }
    }
    if let (Some(w), true) = (&wanted, out.is_empty()) {
        bail!("No public port '{w}' published");
    }
    Ok(out)
}

pub fn port(global: &GlobalOpts, a: PortArgs) -> anyhow::Result<u8> {
    let (_, _, rec) = find(global, &a.container)?;
    let lines = port_lines(&rec.ports, a.port.as_deref())
        .with_context(|| format!("container {}", rec.name))?;
    for l in lines {
        println!("{l}");
    }
    Ok(0)
}

pub fn wait(global: &GlobalOpts, a: NamesArgs) -> anyhow::Result<u8> {
    let mut code = 0;
    for q in &a.containers {
        match find(global, q) {
            Ok((layout, project, rec)) => {
                let c = project_wait::exit_code(&layout.project(&project), &rec)?;
                println!("{c}");
            }
            Err(e) => {
                eprintln!("Error response from daemon: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn stats(global: &GlobalOpts, a: StatsArgs) -> anyhow::Result<u8> {
    let layout = Layout::new(&global.run_root, &global.root);
    for q in &a.containers {
        find(global, q)?;
    }
    let pick = || -> anyhow::Result<Vec<ContainerRecord>> {
        let mut v = Vec::new();
        if a.containers.is_empty() {
            for p in layout.list_projects()? {
                v.extend(layout.project(&p).containers()?);
            }
        } else {
            for q in &a.containers {
                v.push(find(global, q)?.2);
            }
        }
        Ok(v)
    };
    project_stats::show(pick, a.no_stream, a.format.as_deref())
}

pub fn cp(global: &GlobalOpts, a: CpArgs) -> anyhow::Result<u8> {
    let (src_c, src_path) = project_cp::split_cp_arg(&a.source);
    let (dst_c, dst_path) = project_cp::split_cp_arg(&a.destination);
    let (query, from_container) = match (src_c, dst_c) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some(c), None) => (c, true),
        (None, Some(c)) => (c, false),
    };
    let (layout, project, rec) = find(global, query)?;
    let pp = layout.project(&project);
    // the model the container's supervisor last ran (its service's
    // mounts), as `up` saved it
    let model = rstack_compose::Project {
        name: project.clone(),
        services: pp.resources()?.services,
        ..Default::default()
    };
    let ctx = Ctx {
        project: model,
        env: Env::new(&global.run_root, &global.root),
        pp,
    };
    let opts = rstack_stack::copy::Options {
        archive: a.archive,
        follow_link: a.follow_link,
    };
    project_cp::transfer(&ctx, &[rec], from_container, (src_path, dst_path), opts)
}

pub fn prune(global: &GlobalOpts, a: PruneArgs) -> anyhow::Result<u8> {
    let warning = "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ";
    if !a.force && !crate::commands::system::prune::confirm("container prune", warning)? {
        return Ok(0);
    }
    let env = Env::new(&global.run_root, &global.root);
    let step = crate::commands::system::prune::prune_containers(global, &env)?;
    step.print("Deleted Containers:");
    println!(
        "Total reclaimed space: {}",
        crate::commands::images::human_size(step.bytes)
    );
    if !step.failures.is_empty() {
        for f in &step.failures {
            eprintln!("Error: {f}");
        }
        return Ok(1);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::port_lines;

    #[test]
    fn port_lines_like_docker() {
        let p = vec![
            "0.0.0.0:8080->80/tcp".to_owned(),
            "127.0.0.1:5353->53/udp".to_owned(),
        ];
        assert_eq!(
            port_lines(&p, None).unwrap(),
            ["80/tcp -> 0.0.0.0:8080", "53/udp -> 127.0.0.1:5353"]
        );
        assert_eq!(port_lines(&p, Some("80")).unwrap(), ["0.0.0.0:8080"]);
        assert_eq!(port_lines(&p, Some("53/udp")).unwrap(), ["127.0.0.1:5353"]);
        assert!(port_lines(&p, Some("81")).is_err());
    }
}
