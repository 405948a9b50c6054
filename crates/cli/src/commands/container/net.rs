//! Networks of `rstack container run`: `--network NAME`, `-p`,
//! `--network-alias`, `--ip`, `--mac-address`, and the default bridge.
//!
//! A bridge-networked container gets a pinned network namespace of its
//! own (`RUN/netns/<id>`), is attached to the network by rstack-netns
//! (veth, address, default route, DNAT for its published ports) and has
//! the embedded DNS resolver served on 127.0.0.11 inside that namespace
//! while this process waits for it, as the lib docs of rstack-netns lay
//! out. Everything is validated before anything is created, and
//! [`Connected`] undoes it all when the container ends, when setting it
//! up fails, or when this process unwinds.
//!
//! `-p` without `--network` means Docker's default bridge: a network named
//! `bridge` on the Linux bridge `rstack0` (rstack's docker0), created on
//! first use and kept, like docker0. Without `-p` the default stays
//! `none` (rstack creates no bridge nor nft rules unless asked). Unlike
//! Docker's default bridge, containers on it get the embedded resolver
//! too (names resolve like on any user-defined network).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, bail};
use rstack_netns::{
    ContainerNetworkSpec, CreateOptions, NetworkEndpoint, Networks, PortSpec, Resolver, Sandbox,
    Upstreams,
};
use rstack_runtime::{DnsConfig, NetworkMode, RunOptions};

use crate::global::GlobalOpts;

/// Name of rstack's default bridge network (Docker's `bridge`).
pub const DEFAULT_NETWORK: &str = "bridge";
/// Its Linux bridge (Docker's `docker0`).
pub const DEFAULT_BRIDGE: &str = "rstack0";
/// The embedded resolver's address inside each container.
const RESOLVER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11));

/// The network flags as given.
#[derive(Debug, Default)]
pub struct NetFlags<'a> {
    pub network: Option<&'a str>,
    pub publish: &'a [String],
    pub aliases: &'a [String],
    pub ip: Option<&'a str>,
    pub mac: Option<&'a str>,
    pub dns: &'a [String],
    pub dns_search: &'a [String],
    pub dns_option: &'a [String],
}

/// What the flags ask for, validated.
#[derive(Debug)]
pub enum Plan {
    /// none, host or container:NAME: the runtime handles it alone.
    Other(NetworkMode),
    /// A bridge network.
    Bridge(BridgePlan),
}

#[derive(Debug)]
pub struct BridgePlan {
    network: String,
    /// The default `bridge` network, created when missing.
    default: bool,
    ports: Vec<PortSpec>,
    aliases: Vec<String>,
    ip: Option<Ipv4Addr>,
    mac: Option<String>,
    upstreams: Option<Vec<SocketAddr>>,
    dns_search: Vec<String>,
    dns_option: Vec<String>,
}

/// The networking layer of this invocation (shares `rstack network`'s
/// settings, e.g. `RSTACK_DEFAULT_ADDRESS_POOLS`).
fn networks(global: &GlobalOpts) -> anyhow::Result<Networks> {
    crate::commands::network::networks(global)
}

/// Checks the network flags without touching anything. `other_mode`
/// turns none/host/container:NAME into the runtime's mode.
pub fn plan(
    global: &GlobalOpts,
    flags: &NetFlags,
    other_mode: impl FnOnce(&str) -> anyhow::Result<Option<NetworkMode>>,
) -> anyhow::Result<Plan> {
    let ports = flags
        .publish
        .iter()
        .map(|p| {
            p.parse::<PortSpec>().map_err(|e| {
                anyhow::anyhow!("invalid argument \"{p}\" for \"-p, --publish\" flag: {e}")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let name = match flags.network {
        Some(n) => n,
        None if ports.is_empty() => "none",
        None => DEFAULT_NETWORK,
    };
    if let Some(mode) = other_mode(name)? {
        if !ports.is_empty() {
            if mode == NetworkMode::Host {
                eprintln!("WARNING: Published ports are discarded when using host network mode");
            } else {
                bail!("conflicting options: port publishing and the container type network mode");
            }
        }
        if !flags.aliases.is_empty() {
            bail!("network-scoped aliases are only supported for user-defined networks");
        }
        if flags.ip.is_some() || flags.mac.is_some() {
            bail!("--ip and --mac-address need a bridge network (--network NAME)");
        }
        return Ok(Plan::Other(mode));
    }
    let default = name == DEFAULT_NETWORK;
    if !default {
        networks(global)?
            .inspect(name)
            .with_context(|| format!("cannot use network {name}"))?;
    } else if flags.ip.is_some() {
        bail!("user specified IP address is supported on user defined networks only");
    }
    let ip = flags
        .ip
        .map(|s| {
            s.parse::<Ipv4Addr>().map_err(|_| {
                anyhow::anyhow!("invalid argument \"{s}\" for \"--ip\" flag: not an IPv4 address")
            })
        })
        .transpose()?;
    let upstreams = (!flags.dns.is_empty())
        .then(|| {
            flags
                .dns
                .iter()
                .map(|d| {
                    d.parse::<IpAddr>()
                        .map(|ip| SocketAddr::new(ip, 53))
                        .map_err(|_| {
                            anyhow::anyhow!(
                                "invalid argument \"{d}\" for \"--dns\" flag: not an IP address"
                            )
                        })
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .transpose()?;
    Ok(Plan::Bridge(BridgePlan {
        network: name.to_owned(),
        default,
        ports,
        aliases: flags.aliases.to_vec(),
        ip,
        mac: flags.mac.map(str::to_owned),
        upstreams,
        dns_search: flags.dns_search.to_vec(),
        dns_option: flags.dns_option.to_vec(),
    }))
}

impl Plan {
    /// The bridge network this plan joins, if any.
    pub fn bridge_network(&self) -> Option<&str> {
        match self {
            Plan::Bridge(b) => Some(&b.network),
            Plan::Other(_) => None,
        }
    }
}

/// Creates the default `bridge` network unless it exists.
pub fn ensure_default_network(global: &GlobalOpts) -> anyhow::Result<()> {
    ensure_default(&networks(global)?)
}

/// Creates the default `bridge` network unless it exists (another
/// `container run` may be creating it at the same moment).
fn ensure_default(nets: &Networks) -> anyhow::Result<()> {
    if nets.inspect(DEFAULT_NETWORK).is_ok() {
        return Ok(());
    }
    let opts = CreateOptions {
        name: DEFAULT_NETWORK.to_owned(),
        options: BTreeMap::from([(
            rstack_netns::network::OPT_BRIDGE_NAME.to_owned(),
            DEFAULT_BRIDGE.to_owned(),
        )]),
        ..Default::default()
    };
    match nets.create(&opts) {
        Ok(_) => Ok(()),
        Err(rstack_netns::network::Error::Exists { .. }) => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot create the default network {DEFAULT_NETWORK} (bridge {DEFAULT_BRIDGE})"
        ))),
    }
}

/// resolv.conf options: Docker's `ndots:0` unless the user's
/// `--dns-option` sets ndots, then the user's others in order.
fn resolv_options(user: &[String]) -> Vec<String> {
    let ndots = user
        .iter()
        .rfind(|o| o.starts_with("ndots:"))
        .cloned()
        .unwrap_or_else(|| "ndots:0".to_owned());
    std::iter::once(ndots)
        .chain(user.iter().filter(|o| !o.starts_with("ndots:")).cloned())
        .collect()
}

/// A container's live network (rstack-netns' [`Sandbox`], with the tokio
/// runtime its DNS server runs on): undone by [`Connected::teardown`], or
/// on drop if the caller unwinds before calling it.
pub struct Connected {
    sandbox: Option<Sandbox>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Connected {
    /// Creates the namespace, attaches it, serves DNS, and points `opts`
    /// at it (netns path, resolv.conf, /etc/hosts addresses, hostname).
    pub fn connect(
        global: &GlobalOpts,
        plan: &BridgePlan,
        opts: &mut RunOptions,
    ) -> anyhow::Result<Connected> {
        let nets = networks(global)?;
        if plan.default {
            ensure_default(&nets)?;
        }
        // A 64-hex-digit id for the container's network records.
        let id = rstack_sys::random::random_id()?;
        let short = id[..12].to_owned();
        let hostname = opts.hostname.clone().unwrap_or_else(|| short.clone());
        let name = opts.name.clone().unwrap_or_else(|| short.clone());
        let spec = ContainerNetworkSpec {
            container_id: id.clone(),
            name,
            hostname: Some(hostname.clone()),
            netns: nets.paths().netns_dir().join(&id),
            networks: vec![NetworkEndpoint {
                network: plan.network.clone(),
                aliases: plan.aliases.clone(),
                ipv4_address: plan.ip,
                mac_address: plan.mac.clone(),
                links: Vec::new(),
            }],
            ports: plan.ports.clone(),
        };
        let upstreams = match &plan.upstreams {
            Some(servers) => Upstreams {
                servers: servers.clone(),
                ..Upstreams::from_host()
            },
            None => Upstreams::from_host(),
        };
        let resolver = Resolver::new(&global.run_root, upstreams);
        let rt = crate::global::tokio_runtime()?;
        let sandbox = {
            let _guard = rt.enter();
            Sandbox::open(&nets, &spec, Some(&resolver))
        }
        .with_context(|| format!("cannot connect the container to network {}", plan.network))?;
        opts.network = NetworkMode::Path(sandbox.netns().to_owned());
        opts.dns = Some(DnsConfig {
            nameservers: vec![RESOLVER],
            search: plan.dns_search.clone(),
            options: resolv_options(&plan.dns_option),
        });
        opts.addresses = sandbox
            .attachments()
            .iter()
            .map(|a| IpAddr::V4(a.ipv4))
            .collect();
        opts.hostname = Some(hostname);
        for a in sandbox.attachments() {
            tracing::debug!(network = %a.network, ip = %a.ipv4, ports = ?a.ports, "attached");
        }
        Ok(Connected {
            sandbox: Some(sandbox),
            rt: Some(rt),
        })
    }

    /// Stops DNS, detaches from the network and removes the namespace
    /// (best effort: every step runs; failures are returned).
    pub fn teardown(mut self) -> anyhow::Result<()> {
        let errors = self.undo();
        if errors.is_empty() {
            Ok(())
        } else {
            bail!(
                "cleaning up the container's network failed: {}",
                errors.join("; ")
            )
        }
    }

    fn undo(&mut self) -> Vec<String> {
        let errors = match self.sandbox.take() {
            Some(s) => {
                // the DNS tasks are aborted inside their runtime
                let _guard = self.rt.as_ref().map(|rt| rt.enter());
                s.teardown()
            }
            None => Vec::new(),
        };
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
        errors
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        for e in self.undo() {
            eprintln!("rstack: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_options_keep_docker_ndots_unless_overridden() {
        assert_eq!(resolv_options(&[]), vec!["ndots:0"]);
        let user = ["timeout:1".to_owned(), "ndots:2".to_owned()];
        assert_eq!(resolv_options(&user), vec!["ndots:2", "timeout:1"]);
    }
}
