//! Networks: a Linux bridge with a subnet, recorded in a state file.
//!
//! `Networks` is the crate's entry point. Creation validates everything
//! first, takes the global lock, records the network, then creates the
//! bridge and refreshes the nft table, undoing in reverse on failure.
//! Removal is best effort and reports every failure.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

use crate::fsutil::{self, LockGuard};
use crate::state::{self, NetworkState, Paths};
use crate::subnet::{self, PoolEntry};
use crate::{netlink, nft};

/// Errors of network management.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed (at most 64 characters)"
    )]
    BadName { name: String },
    #[error("network with name {name} already exists")]
    Exists { name: String },
    #[error("invalid bridge name {name:?}: 1-15 characters, no '/', ':' or whitespace")]
    BadBridgeName { name: String },
    #[error("bridge {bridge} already exists")]
    BridgeExists { bridge: String },
    #[error("invalid option {key}={value}: {reason}")]
    BadOption {
        key: String,
        value: String,
        reason: String,
    },
    #[error("invalid gateway {value:?}: not an IPv4 address")]
    BadGatewayAddress { value: String },
    #[error("--gateway needs --subnet")]
    GatewayWithoutSubnet,
    #[error(
        "invalid pool overlaps with other one on this address space: subnet {subnet} overlaps {other}"
    )]
    Overlap { subnet: Ipv4Net, other: String },
    #[error("error while removing network {name}: network has active endpoints ({endpoints})")]
    ActiveEndpoints { name: String, endpoints: String },
    #[error(transparent)]
    Subnet(#[from] subnet::Error),
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Fs(#[from] fsutil::Error),
    #[error("cannot set up network {name}")]
    Netlink {
        name: String,
        #[source]
        source: netlink::Error,
    },
    #[error(transparent)]
    Nft(#[from] nft::Error),
    #[error("cannot open the host's firewall for rstack's bridges")]
    Firewall(#[from] crate::firewall::Error),
    #[error("{first}{}", if rest.is_empty() { String::new() } else { format!(" (and: {})", rest.iter().map(|e| format!("{e}: {}", crate::error_chain(e))).collect::<Vec<_>>().join("; ")) })]
    Multiple { first: Box<Error>, rest: Vec<Error> },
}

impl Error {
    /// Folds a list of errors (first one leading) into one, or `Ok`.
    pub fn from_list(mut errors: Vec<Error>) -> Result<(), Error> {
        if errors.is_empty() {
            return Ok(());
        }
        let first = errors.remove(0);
        if errors.is_empty() {
            return Err(first);
        }
        Err(Error::Multiple {
            first: Box::new(first),
            rest: errors,
        })
    }
}

/// Settings of the networking layer.
#[derive(Debug, Clone)]
pub struct Config {
    /// Volatile state dir (`/run/rstack`).
    pub run_dir: PathBuf,
    /// Subnet pool for networks created without `--subnet`.
    pub pool: Vec<PoolEntry>,
    /// The nft binary.
    pub nft: PathBuf,
    /// Set `net.ipv4.ip_forward=1` in the current namespace when a
    /// non-internal network is created (needed for NAT, as Docker does).
    pub enable_ip_forward: bool,
}

impl Config {
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        Config {
            run_dir: run_dir.into(),
            pool: subnet::default_pool(),
            nft: PathBuf::from("nft"),
            enable_ip_forward: true,
        }
    }
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    /// Driver options (`--opt`): `com.docker.network.bridge.name`,
    /// `com.docker.network.driver.mtu`; others are kept as given.
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
const KNOWN_IGNORED: &[&str] = &[
    "com.docker.network.bridge.enable_icc",
    "com.docker.network.bridge.enable_ip_masquerade",
    "com.docker.network.bridge.host_binding_ipv4",
];

/// The networking layer, rooted at a run dir.
#[derive(Debug, Clone)]
pub struct Networks {
    pub(crate) config: Config,
    pub(crate) paths: Paths,
}

pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 64
}

pub(crate) fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':' && c != '"')
}

/// What `network create` asks for, validated before anything is touched.
struct Request {
    mtu: u32,
    /// `com.docker.network.bridge.name`, else `br-<id>`.
    bridge: Option<String>,
    subnet: Option<Ipv4Net>,
    gateway: Option<Ipv4Addr>,
}

impl Request {
    fn validate(opts: &CreateOptions) -> Result<Request, Error> {
        if !valid_name(&opts.name) {
            return Err(Error::BadName {
                name: opts.name.clone(),
            });
        }
        let (mtu, bridge) = driver_options(&opts.options)?;
        let subnet = opts
            .subnet
            .as_deref()
            .map(subnet::parse_subnet)
            .transpose()?;
        let gateway = match &opts.gateway {
            None => None,
            Some(g) => {
                if subnet.is_none() {
                    return Err(Error::GatewayWithoutSubnet);
                }
                Some(
                    g.parse::<Ipv4Addr>()
                        .map_err(|_| Error::BadGatewayAddress { value: g.clone() })?,
                )
            }
        };
        if let Some(s) = &subnet {
            subnet::gateway(s, gateway)?;
        }
        Ok(Request {
            mtu,
            bridge,
            subnet,
            gateway,
        })
    }
}

/// The MTU (1500 by default) and bridge name of the driver options;
/// Docker's options rstack does not implement are refused.
fn driver_options(options: &BTreeMap<String, String>) -> Result<(u32, Option<String>), Error> {
    let mut mtu = 1500;
    let mut bridge = None;
    for (k, v) in options {
        let bad = |reason: &str| Error::BadOption {
            key: k.clone(),
            value: v.clone(),
            reason: reason.into(),
        };
        match k.as_str() {
            OPT_BRIDGE_NAME => {
                if !valid_ifname(v) {
                    return Err(Error::BadBridgeName { name: v.clone() });
                }
                bridge = Some(v.clone());
            }
            OPT_MTU => {
                mtu = v
                    .parse::<u32>()
                    .ok()
                    .filter(|m| (68..=65535).contains(m))
                    .ok_or_else(|| bad("expected an MTU between 68 and 65535"))?;
            }
            k if KNOWN_IGNORED.contains(&k) => {}
            k if k.starts_with("com.docker.network.") => {
                return Err(bad("unsupported by rstack"));
            }
            _ => {}
        }
    }
    Ok((mtu, bridge))
}

/// A subnet asked for must overlap no other network and no route of the
/// host (the default route aside).
fn check_free(s: Ipv4Net, existing: &[NetworkState], routes: &[Ipv4Net]) -> Result<Ipv4Net, Error> {
    if let Some(other) = existing.iter().find(|n| subnet::overlaps(&n.subnet, &s)) {
        return Err(Error::Overlap {
            subnet: s,
            other: format!("network {} ({})", other.name, other.subnet),
        });
    }
    if let Some(r) = routes
        .iter()
        .find(|r| r.prefix_len() > 0 && subnet::overlaps(r, &s))
    {
        return Err(Error::Overlap {
            subnet: s,
            other: format!("route {r} of this host"),
        });
    }
    Ok(s)
}

impl Networks {
    pub fn new(config: Config) -> Self {
        let paths = Paths::new(config.run_dir.clone());
        Networks { config, paths }
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    pub(crate) fn global_lock(&self) -> Result<LockGuard, Error> {
        Ok(fsutil::lock_exclusive(&self.paths.global_lock())?)
    }

    /// Creates a network (bridge + subnet + NAT).
    pub fn create(&self, opts: &CreateOptions) -> Result<NetworkState, Error> {
        // 1. validate everything before touching anything
        let request = Request::validate(opts)?;
        // 2. under the global lock: name, subnet and bridge must be free
        let _lock = self.global_lock()?;
        let network = self.allocate(opts, request)?;
        // 3. record, then create; undo in reverse on failure
        self.apply(&network)?;
        tracing::info!(name = %network.name, subnet = %network.subnet, bridge = %network.bridge, "network created");
        Ok(network)
    }

    /// The new network's id, bridge and subnet, checked against the other
    /// networks and the host (caller holds the global lock).
    fn allocate(&self, opts: &CreateOptions, request: Request) -> Result<NetworkState, Error> {
        let existing = state::list(&self.paths)?;
        if existing.iter().any(|n| n.name == opts.name) {
            return Err(Error::Exists {
                name: opts.name.clone(),
            });
        }
        let id = fsutil::random_hex(32)?;
        let bridge = request
            .bridge
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        let (routes, bridge_present) = netlink::run(None, |h| {
            let bridge = bridge.clone();
            async move {
                Ok((
                    netlink::routes_v4(&h).await?,
                    netlink::link_index(&h, &bridge).await?.is_some(),
                ))
            }
        })
        .map_err(|source| Error::Netlink {
            name: opts.name.clone(),
            source,
        })?;
        if bridge_present || existing.iter().any(|n| n.bridge == bridge) {
            return Err(Error::BridgeExists { bridge });
        }
        let subnet = match request.subnet {
            Some(s) => check_free(s, &existing, &routes)?,
            None => {
                let taken: Vec<Ipv4Net> = existing.iter().map(|n| n.subnet).collect();
                subnet::choose(&self.config.pool, &routes, &taken)?
            }
        };
        let gateway = subnet::gateway(&subnet, request.gateway)?;
        Ok(NetworkState {
            id,
            name: opts.name.clone(),
            driver: "bridge".into(),
            created: jiff::Timestamp::now().to_string(),
            subnet,
            gateway,
            internal: opts.internal,
            bridge,
            mtu: request.mtu,
            options: opts.options.clone(),
            labels: opts.labels.clone(),
            last_allocated: None,
            endpoints: BTreeMap::new(),
        })
    }

    /// Records the network, then creates its bridge and rules; on failure
    /// undoes both and reports every failure of the undo that matters.
    fn apply(&self, network: &NetworkState) -> Result<(), Error> {
        network.save(&self.paths)?;
        let created = self.create_kernel_side(network);
        let Err(e) = created.and_then(|()| self.sync_firewall_locked()) else {
            return Ok(());
        };
        let mut errors = vec![e];
        let bridge = &network.bridge;
        if let Err(e) = netlink::run(
            None,
            |h| async move { netlink::delete_link(&h, bridge).await },
        ) {
            errors.push(Error::Netlink {
                name: network.name.clone(),
                source: e,
            });
        }
        if let Err(e) = std::fs::remove_file(self.paths.network_file(&network.name)) {
            tracing::warn!(error = %e, "cannot remove network state during undo");
        }
        // the rules of the other networks, as they were
        if let Err(e) = self.sync_firewall_locked() {
            tracing::warn!(error = %e, "cannot restore the firewall during undo");
        }
        Err(Error::from_list(errors).unwrap_err())
    }

    fn create_kernel_side(&self, n: &NetworkState) -> Result<(), Error> {
        let enable_forward = self.config.enable_ip_forward && !n.internal;
        netlink::run(None, |h| async move {
            netlink::create_bridge(&h, &n.bridge, n.mtu, n.gateway, n.subnet.prefix_len()).await?;
            // published ports on 127.0.0.1 are DNATed into the bridge (see nft)
            netlink::write_sysctl(&format!("net/ipv4/conf/{}/route_localnet", n.bridge), "1")?;
            if enable_forward {
                netlink::write_sysctl("net/ipv4/ip_forward", "1")?;
            }
            Ok(())
        })
        .map_err(|source| Error::Netlink {
            name: n.name.clone(),
            source,
        })
    }

    /// Re-renders the nft table from all state files. Caller holds the
    /// global lock.
    pub(crate) fn sync_nft_locked(&self) -> Result<(), Error> {
        self.apply_nft(&state::list(&self.paths)?)
    }

    fn apply_nft(&self, all: &[NetworkState]) -> Result<(), Error> {
        let table = nft::render(all);
        nft::apply(&self.config.nft, &nft::replace_script(table.as_deref()))?;
        Ok(())
    }

    /// [`Networks::sync_nft_locked`], then the host's own firewall (see
    /// [`crate::firewall`]): on network create and remove. Caller holds
    /// the global lock.
    pub(crate) fn sync_firewall_locked(&self) -> Result<(), Error> {
        let all = state::list(&self.paths)?;
        self.apply_nft(&all)?;
        let bridges: Vec<String> = all.into_iter().map(|n| n.bridge).collect();
        self.host_firewall().sync(&bridges)?;
        Ok(())
    }

    /// The host's firewall as rstack programs it.
    pub fn host_firewall(&self) -> crate::firewall::Host {
        crate::firewall::Host::new(&self.config.nft, &self.paths.firewall_record())
    }

    /// Re-applies every rule rstack keeps on the host (its table, the
    /// accepts in the host's firewall): after a firewall reload wiped them,
    /// or a dockerd that started after rstack's networks. Takes the lock.
    pub fn refresh_firewall(&self) -> Result<(), Error> {
        let _global = self.global_lock()?;
        if state::list(&self.paths)?.is_empty() {
            return Ok(());
        }
        self.sync_firewall_locked()
    }

    /// All networks, sorted by name.
    pub fn list(&self) -> Result<Vec<NetworkState>, Error> {
        Ok(state::list(&self.paths)?)
    }

    /// One network by name or by (a unique prefix of) its id.
    pub fn inspect(&self, name_or_id: &str) -> Result<NetworkState, Error> {
        if valid_name(name_or_id) {
            match NetworkState::load(&self.paths, name_or_id) {
                Ok(n) => return Ok(n),
                Err(state::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let matches: Vec<NetworkState> = self
            .list()?
            .into_iter()
            .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id))
            .collect();
        match <[NetworkState; 1]>::try_from(matches) {
            Ok([n]) => Ok(n),
            Err(_) => Err(state::Error::NotFound {
                name: name_or_id.to_string(),
            }
            .into()),
        }
    }

    /// Removes a network: refuses while containers are attached (endpoints
    /// whose namespace file is gone are stale and are cleaned up), then
    /// deletes the bridge, the state and the nft rules. Best effort: every
    /// failure is reported.
    pub fn remove(&self, name_or_id: &str) -> Result<(), Error> {
        let name = self.inspect(name_or_id)?.name;
        let _global = self.global_lock()?;
        let _net = fsutil::lock_exclusive(&self.paths.network_lock(&name))?;
        let mut n = NetworkState::load(&self.paths, &name)?;
        let (stale, live): (Vec<_>, Vec<_>) = n
            .endpoints
            .values()
            .cloned()
            .partition(|e| !e.netns.exists());
        if !live.is_empty() {
            return Err(Error::ActiveEndpoints {
                name,
                endpoints: live
                    .iter()
                    .map(|e| e.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut errors = Vec::new();
        let bridge = n.bridge.clone();
        let veths: Vec<String> = stale.iter().map(|e| e.host_veth.clone()).collect();
        // The bridge's deletion waits for RCU grace periods in the kernel
        // (~35-55 ms here) and the firewall's update for nft's commit: the
        // rules name the bridge without needing it, so both go at once.
        let deleting = std::thread::spawn(move || {
            netlink::run(None, |h| async move {
                for v in &veths {
                    netlink::delete_link(&h, v).await?;
                }
                netlink::delete_link(&h, &bridge).await?;
                Ok(())
            })
        });
        n.endpoints.clear();
        match std::fs::remove_file(self.paths.network_file(&name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => errors.push(Error::State(state::Error::Read {
                path: self.paths.network_file(&name),
                source,
            })),
        }
        let _ = std::fs::remove_file(self.paths.network_lock(&name));
        if let Err(e) = self.sync_firewall_locked() {
            errors.push(e);
        }
        let deleted = deleting
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        if let Err(source) = deleted {
            errors.push(Error::Netlink {
                name: name.clone(),
                source,
            });
        }
        tracing::info!(%name, "network removed");
        Error::from_list(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("web"));
        assert!(valid_name("my_net.1-a"));
        assert!(!valid_name("-web"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(""));
        assert!(valid_ifname("br-abc"));
        assert!(!valid_ifname("a-very-long-bridge-name"));
        assert!(!valid_ifname("a b"));
    }

    #[test]
    fn create_rejects_bad_input_before_touching_anything() {
        let dir = tempfile::tempdir().unwrap();
        let nets = Networks::new(Config::new(dir.path()));
        let mut o = CreateOptions {
            name: "bad name".into(),
            ..Default::default()
        };
        assert!(matches!(nets.create(&o), Err(Error::BadName { .. })));
        o.name = "ok".into();
        o.subnet = Some("10.0.0.0/33".into());
        assert!(matches!(nets.create(&o), Err(Error::Subnet(_))));
        o.subnet = Some("10.0.0.0/24".into());
        o.gateway = Some("10.0.1.1".into());
        assert!(matches!(
            nets.create(&o),
            Err(Error::Subnet(subnet::Error::BadGateway { .. }))
        ));
        o.gateway = None;
        o.options.insert(OPT_MTU.into(), "9".into());
        assert!(matches!(nets.create(&o), Err(Error::BadOption { .. })));
        o.options.clear();
        o.options.insert(OPT_BRIDGE_NAME.into(), "x".repeat(16));
        assert!(matches!(nets.create(&o), Err(Error::BadBridgeName { .. })));
        assert!(!dir.path().join("networks").exists(), "nothing recorded");
    }
}
