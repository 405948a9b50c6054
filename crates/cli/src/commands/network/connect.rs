//! `rstack network connect [--alias A] [--ip IP] NETWORK CONTAINER` and
//! `network disconnect [-f] NETWORK CONTAINER`: a running container of
//! any project gets (or loses) an interface on another network, live, as
//! with `docker network connect`. Its names resolve on that network from
//! then on (the embedded DNS reads the networks' state), and it resolves
//! the network's containers; `down`/`rm` take it off every network it is
//! on, whichever way it got there.

use anyhow::{Context, bail};
use rstack_netns::{AttachRequest, Networks};
use rstack_stack::state::{ContainerRecord, Layout};

use crate::commands::inspect::find_container;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g. "172.30.100.104")
    #[arg(long)]
    pub ip: Option<std::net::Ipv4Addr>,
    pub network: String,
    pub container: String,
}

#[derive(Debug, clap::Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

/// The running container `query` names, with its project's state paths.
fn running(global: &GlobalOpts, query: &str) -> anyhow::Result<(Layout, String, ContainerRecord)> {
    let layout = Layout::new(&global.run_root, &global.root);
    let Some((project, rec)) = find_container(&layout, query)? else {
        bail!("No such container: {query}");
    };
    if !rstack_stack::status::is_alive(&rec) {
        bail!("container {} is not running", rec.name);
    }
    if rec.netns.is_none() {
        bail!(
            "container {} shares the host's or another container's network, or has none: it cannot be connected to a network",
            rec.name
        );
    }
    Ok((layout, project, rec))
}

pub fn connect(nets: &Networks, global: &GlobalOpts, a: ConnectArgs) -> anyhow::Result<u8> {
    let (layout, project, rec) = running(global, &a.container)?;
    let net = nets
        .inspect(&a.network)
        .with_context(|| format!("network {} not found", a.network))?;
    if net.endpoints.contains_key(&rec.name) {
        bail!(
            "endpoint with name {} already exists in network {}",
            rec.name,
            net.name
        );
    }
    let mut aliases = vec![rec.service.clone()];
    aliases.extend(a.alias.iter().cloned());
    // Docker's short id alias on a user-defined network
    if let Some(short) = rec.id.as_deref().and_then(|i| i.get(..12)) {
        aliases.push(short.to_owned());
    }
    let req = AttachRequest {
        network: net.name.clone(),
        container_id: rec.name.clone(),
        name: rec.name.clone(),
        aliases,
        netns: rec.netns.clone().unwrap_or_default(),
        ipv4_address: a.ip,
        ..Default::default()
    };
    nets.attach(&req)
        .with_context(|| format!("connect {} to network {}", rec.name, net.name))?;
    update_networks(&layout, &project, &rec.name, |n| {
        if !n.contains(&net.name) {
            n.push(net.name.clone());
        }
    })?;
    Ok(0)
}

pub fn disconnect(nets: &Networks, global: &GlobalOpts, a: DisconnectArgs) -> anyhow::Result<u8> {
    let layout = Layout::new(&global.run_root, &global.root);
    let Some((project, rec)) = find_container(&layout, &a.container)? else {
        bail!("No such container: {}", a.container);
    };
    let net = nets
        .inspect(&a.network)
        .with_context(|| format!("network {} not found", a.network))?;
    let detached = nets
        .detach(&net.name, &rec.name)
        .with_context(|| format!("disconnect {} from network {}", rec.name, net.name))?;
    if !detached && !a.force {
        bail!(
            "container {} is not connected to network {}",
            rec.name,
            net.name
        );
    }
    update_networks(&layout, &project, &rec.name, |n| {
        n.retain(|x| *x != net.name)
    })?;
    Ok(0)
}

/// Keeps the container record's network list (what `ps` and `inspect`
/// show) in step.
fn update_networks(
    layout: &Layout,
    project: &str,
    name: &str,
    f: impl FnOnce(&mut Vec<String>),
) -> anyhow::Result<()> {
    let pp = layout.project(project);
    if let Some(mut rec) = pp.containers()?.into_iter().find(|r| r.name == name) {
        f(&mut rec.networks);
        pp.save_container(&rec)?;
    }
    Ok(())
}
