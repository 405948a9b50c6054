//! On-disk state of rstack networks, one JSON file per network.
//!
//! Layout under the run dir given by the caller (default `/run/rstack`):
//!
//! ```text
//! networks/.lock            global lock: network create/rm, nft table rebuilds
//! networks/<name>.json      NetworkState: config, IPAM and endpoints (= DNS records)
//! networks/<name>.lock      per-network lock: attach/detach (IPAM)
//! netns/<id>                pinned network namespaces (see `pinned`)
//! ```
//!
//! Files are replaced atomically, so readers without a lock (the DNS
//! resolver, `network ls`) see a whole file. Writers hold the lock while
//! they read-modify-write. Every kernel object is recorded here *before* it
//! is created, so `rm`/detach (or the next run) can remove what a crash left.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::ports::PortMapping;

/// Errors of the state files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read network state {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt network state {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("network {name} not found")]
    NotFound { name: String },
    #[error(transparent)]
    Fs(#[from] fsutil::Error),
    #[error("no free address left in subnet {subnet} of network {network}")]
    SubnetFull { network: String, subnet: Ipv4Net },
    #[error("address {address} is not in subnet {subnet} of network {network}")]
    AddressOutside {
        network: String,
        address: Ipv4Addr,
        subnet: Ipv4Net,
    },
    #[error("address {address} is already in use on network {network}")]
    AddressInUse { network: String, address: Ipv4Addr },
}

/// Where the state lives.
#[derive(Debug, Clone)]
pub struct Paths {
    pub run_dir: PathBuf,
}

impl Paths {
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        Paths {
            run_dir: run_dir.into(),
        }
    }
    pub fn networks_dir(&self) -> PathBuf {
        self.run_dir.join("networks")
    }
    pub fn global_lock(&self) -> PathBuf {
        self.networks_dir().join(".lock")
    }
    pub fn network_file(&self, name: &str) -> PathBuf {
        self.networks_dir().join(format!("{name}.json"))
    }
    pub fn network_lock(&self, name: &str) -> PathBuf {
        self.networks_dir().join(format!("{name}.lock"))
    }
    pub fn netns_dir(&self) -> PathBuf {
        self.run_dir.join("netns")
    }
    /// What rstack added to the host's firewall (see [`crate::firewall`]).
    pub fn firewall_record(&self) -> PathBuf {
        self.networks_dir().join(".firewall")
    }
}

/// A network and everything attached to it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetworkState {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub created: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub internal: bool,
    pub bridge: String,
    pub mtu: u32,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Last address handed out; the next search starts after it so a just
    /// released address is not reused at once (stale ARP caches).
    #[serde(default)]
    pub last_allocated: Option<Ipv4Addr>,
    /// Keyed by container id.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
}

/// One container on one network: its IPAM lease, its DNS names, its veth
/// and its published ports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    pub container_id: String,
    /// Container name (DNS).
    pub name: String,
    #[serde(default)]
    pub hostname: Option<String>,
    /// Network aliases, service name included (DNS).
    #[serde(default)]
    pub aliases: Vec<String>,
    pub ipv4: Ipv4Addr,
    #[serde(default)]
    pub mac: Option<String>,
    /// Host end of the veth pair, on the bridge.
    pub host_veth: String,
    /// Interface name inside the container (eth0, eth1, ...).
    pub ifname: String,
    pub netns: PathBuf,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// Legacy links (`links: [db:database]`): names only this container
    /// resolves, each to another container of its networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

/// One link: `alias` resolves, for the linking container only, to the
/// container named `container` (Docker's `--link container:alias`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Link {
    pub container: String,
    pub alias: String,
}

impl Endpoint {
    /// Every DNS name of the endpoint, lowercased.
    pub fn dns_names(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(&self.name)
            .chain(self.hostname.iter())
            .chain(self.aliases.iter())
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
    }
}

impl NetworkState {
    /// Loads `networks/<name>.json`.
    pub fn load(paths: &Paths, name: &str) -> Result<Self, Error> {
        let path = paths.network_file(name);
        match fs::read(&path) {
            Ok(data) => Self::parse(&path, &data),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound {
                name: name.to_string(),
            }),
            Err(source) => Err(Error::Read { path, source }),
        }
    }

    pub fn parse(path: &Path, data: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(data).map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes the state atomically.
    pub fn save(&self, paths: &Paths) -> Result<(), Error> {
        let data = serde_json::to_vec_pretty(self).expect("network state serializes");
        fsutil::write_atomic(&paths.network_file(&self.name), &data)?;
        Ok(())
    }

    /// Is `addr` handed out (gateway or an endpoint)?
    pub fn in_use(&self, addr: Ipv4Addr) -> bool {
        addr == self.gateway || self.endpoints.values().any(|e| e.ipv4 == addr)
    }

    /// IPAM: checks a static address, or picks the next free host address
    /// after the last one handed out (wrapping). Records it as the last
    /// allocated; the caller stores the endpoint in the same locked update.
    pub fn allocate(&mut self, requested: Option<Ipv4Addr>) -> Result<Ipv4Addr, Error> {
        if let Some(addr) = requested {
            let host = addr != self.subnet.network() && addr != self.subnet.broadcast();
            if !self.subnet.contains(&addr) || !host {
                return Err(Error::AddressOutside {
                    network: self.name.clone(),
                    address: addr,
                    subnet: self.subnet,
                });
            }
            if self.in_use(addr) {
                return Err(Error::AddressInUse {
                    network: self.name.clone(),
                    address: addr,
                });
            }
            return Ok(addr);
        }
        let first = u32::from(self.subnet.network()) + 1;
        let last = u32::from(self.subnet.broadcast()) - 1;
        let count = last - first + 1;
        let start = self
            .last_allocated
            .map(u32::from)
            .filter(|a| (first..=last).contains(a))
            .map_or(first, |a| if a == last { first } else { a + 1 });
        for i in 0..count {
            let a = first + (start - first + i) % count;
            let addr = Ipv4Addr::from(a);
            if !self.in_use(addr) {
                self.last_allocated = Some(addr);
                return Ok(addr);
            }
        }
        Err(Error::SubnetFull {
            network: self.name.clone(),
            subnet: self.subnet,
        })
    }
}

/// Loads every network state file (sorted by name). Files that vanish while
/// listing are skipped.
pub fn list(paths: &Paths) -> Result<Vec<NetworkState>, Error> {
    let dir = paths.networks_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Read { path: dir, source }),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read {
            path: dir.clone(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        match fs::read(&path) {
            Ok(data) => out.push(NetworkState::parse(&path, &data)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::Read { path, source }),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
pub(crate) fn sample(name: &str, subnet: &str) -> NetworkState {
    let subnet: Ipv4Net = subnet.parse().unwrap();
    NetworkState {
        id: format!("{name:0>64}"),
        name: name.to_string(),
        driver: "bridge".into(),
        created: "2026-11-22T00:00:00Z".into(),
        gateway: Ipv4Addr::from(u32::from(subnet.network()) + 1),
        subnet,
        internal: false,
        bridge: format!("br-{name}"),
        mtu: 1500,
        options: BTreeMap::new(),
        labels: BTreeMap::new(),
        last_allocated: None,
        endpoints: BTreeMap::new(),
    }
}

#[cfg(test)]
pub(crate) fn sample_endpoint(id: &str, name: &str, ip: Ipv4Addr, aliases: &[&str]) -> Endpoint {
    Endpoint {
        container_id: id.to_string(),
        name: name.to_string(),
        hostname: None,
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        ipv4: ip,
        mac: None,
        host_veth: format!("veth{id}"),
        ifname: "eth0".into(),
        netns: PathBuf::from("/run/rstack/netns/x"),
        ports: Vec::new(),
        links: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_sequentially_skipping_gateway_and_wrapping() {
        let mut n = sample("a", "10.0.0.0/29"); // hosts .1-.6, gateway .1
        let mut got = Vec::new();
        for i in 0..5 {
            let ip = n.allocate(None).unwrap();
            n.endpoints
                .insert(i.to_string(), sample_endpoint(&i.to_string(), "c", ip, &[]));
            got.push(ip.octets()[3]);
        }
        assert_eq!(got, vec![2, 3, 4, 5, 6]);
        assert!(matches!(n.allocate(None), Err(Error::SubnetFull { .. })));
        n.endpoints.remove("1"); // releases .3
        assert_eq!(n.allocate(None).unwrap(), Ipv4Addr::new(10, 0, 0, 3));
    }

    #[test]
    fn released_address_not_reused_immediately() {
        let mut n = sample("a", "10.0.0.0/24");
        let a = n.allocate(None).unwrap();
        // not stored as endpoint = released at once
        let b = n.allocate(None).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn static_addresses() {
        let mut n = sample("a", "10.0.0.0/24");
        let ip = Ipv4Addr::new(10, 0, 0, 50);
        assert_eq!(n.allocate(Some(ip)).unwrap(), ip);
        n.endpoints
            .insert("x".into(), sample_endpoint("x", "x", ip, &[]));
        assert!(matches!(
            n.allocate(Some(ip)),
            Err(Error::AddressInUse { .. })
        ));
        assert!(matches!(
            n.allocate(Some(Ipv4Addr::new(10, 0, 0, 1))),
            Err(Error::AddressInUse { .. })
        ));
        assert!(matches!(
            n.allocate(Some(Ipv4Addr::new(10, 0, 1, 1))),
            Err(Error::AddressOutside { .. })
        ));
        assert!(matches!(
            n.allocate(Some(Ipv4Addr::new(10, 0, 0, 255))),
            Err(Error::AddressOutside { .. })
        ));
    }

    #[test]
    fn save_load_list() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let n = sample("web", "10.0.0.0/24");
        n.save(&paths).unwrap();
        sample("db", "10.0.1.0/24").save(&paths).unwrap();
        assert_eq!(NetworkState::load(&paths, "web").unwrap(), n);
        let names: Vec<_> = list(&paths).unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, vec!["db", "web"]);
        assert!(matches!(
            NetworkState::load(&paths, "nope"),
            Err(Error::NotFound { .. })
        ));
    }
}
