//! Attaching a container (a pinned network namespace) to a network.
//!
//! Per container per network: an address from IPAM, a veth pair (host end
//! on the bridge, container end `eth0`, `eth1`, ...), a default route via
//! the gateway of the first non-internal network, and published ports
//! (reserved by binding them on the host, then DNATed by nft). The endpoint
//! is recorded in the network's state file (under its lock) before the veth
//! exists, so a crash leaves a record that `detach`/`remove` clean up.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::PathBuf;

use crate::fsutil;
use crate::network::{Error as NetError, Networks, valid_ifname};
use crate::ports::{HostPortChoice, PortMapping, PortSpec, Protocol};
use crate::state::{self, Endpoint, NetworkState};
use crate::{netlink, nft};

/// Errors of attach/detach.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid MAC address {value:?}")]
    BadMac { value: String },
    #[error("invalid interface name {name:?}")]
    BadIfname { name: String },
    #[error("invalid DNS name {name:?} for container {container}")]
    BadDnsName { name: String, container: String },
    #[error("cannot open network namespace {path}")]
    OpenNetns {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container {container} is already attached to network {network}")]
    AlreadyAttached { container: String, network: String },
    #[error("Bind for {ip}:{port} failed: port is already allocated")]
    PortAllocated { ip: Ipv4Addr, port: u16 },
    #[error("no free host port in range {start}-{end} for {ip}")]
    NoFreePort { ip: Ipv4Addr, start: u16, end: u16 },
    #[error("cannot reserve host port {ip}:{port}/{protocol}")]
    Reserve {
        ip: Ipv4Addr,
        port: u16,
        protocol: Protocol,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Fs(#[from] fsutil::Error),
    #[error(transparent)]
    Network(#[from] NetError),
    #[error("cannot attach {container} to network {network}")]
    Netlink {
        container: String,
        network: String,
        #[source]
        source: netlink::Error,
    },
    #[error("cannot delete the network interfaces {links}")]
    DeleteLinks {
        links: String,
        #[source]
        source: netlink::Error,
    },
    #[error(transparent)]
    Nft(#[from] nft::Error),
    #[error("{error} (cleanup also failed: {cleanup})")]
    WithCleanup { error: Box<Error>, cleanup: String },
}

/// What to attach.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    pub network: String,
    pub container_id: String,
    /// Container name (resolvable by DNS).
    pub name: String,
    pub hostname: Option<String>,
    /// Network aliases, service name included (resolvable by DNS).
    pub aliases: Vec<String>,
    /// Pinned network namespace of the container.
    pub netns: PathBuf,
    pub ipv4_address: Option<Ipv4Addr>,
    pub mac_address: Option<String>,
    /// Interface name in the container; default: the first free `ethN`.
    pub ifname: Option<String>,
    pub ports: Vec<PortSpec>,
    /// Names only this container resolves (`links:`).
    pub links: Vec<crate::state::Link>,
}

/// A held host port: the bound socket keeps other programs (and other
/// rstack processes) from taking the port while the container runs.
#[derive(Debug)]
pub enum Reservation {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// A live attachment. Keep it while the container runs: it holds the port
/// reservations. Dropping it does not detach (call `Networks::detach`).
#[derive(Debug)]
pub struct Attachment {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
    pub ipv4: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub host_veth: String,
    pub ports: Vec<PortMapping>,
    pub reservations: Vec<Reservation>,
}

fn parse_mac(s: &str) -> Result<[u8; 6], Error> {
    let bad = || Error::BadMac {
        value: s.to_string(),
    };
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 == 1 {
        return Err(bad()); // multicast
    }
    Ok(mac)
}

fn valid_dns_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn overlaps_ip(a: Option<Ipv4Addr>, b: Option<Ipv4Addr>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

fn bind(ip: Ipv4Addr, port: u16, protocol: Protocol) -> std::io::Result<(Reservation, u16)> {
    let addr = SocketAddrV4::new(ip, port);
    match protocol {
        Protocol::Tcp => {
            let l = TcpListener::bind(addr)?;
            let p = l.local_addr()?.port();
            Ok((Reservation::Tcp(l), p))
        }
        Protocol::Udp => {
            let s = UdpSocket::bind(addr)?;
            let p = s.local_addr()?.port();
            Ok((Reservation::Udp(s), p))
        }
    }
}

/// Chooses and reserves host ports for `specs`, refusing ports that another
/// rstack endpoint (`taken`) or any other program holds.
pub fn reserve_ports(
    specs: &[PortSpec],
    taken: &[PortMapping],
) -> Result<(Vec<PortMapping>, Vec<Reservation>), Error> {
    let mut mappings: Vec<PortMapping> = Vec::new();
    let mut held = Vec::new();
    for spec in specs {
        let ip = spec.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        for (choice, container_port) in spec.expand() {
            let busy = |port: u16| {
                taken.iter().chain(mappings.iter()).any(|m| {
                    m.protocol == spec.protocol
                        && m.host_port == port
                        && overlaps_ip(m.host_ip, spec.host_ip)
                })
            };
            let (res, port) = match choice {
                HostPortChoice::Fixed(port) => {
                    if busy(port) {
                        return Err(Error::PortAllocated { ip, port });
                    }
                    bind(ip, port, spec.protocol).map_err(|e| {
                        if e.kind() == std::io::ErrorKind::AddrInUse {
                            Error::PortAllocated { ip, port }
                        } else {
                            Error::Reserve {
                                ip,
                                port,
                                protocol: spec.protocol,
                                source: e,
                            }
                        }
                    })?
                }
                HostPortChoice::Any(None) => {
                    // ports another rstack endpoint has recorded stay bound
                    // here until the loop ends, so the kernel moves on
                    let mut skipped = Vec::new();
                    loop {
                        let got = bind(ip, 0, spec.protocol).map_err(|source| Error::Reserve {
                            ip,
                            port: 0,
                            protocol: spec.protocol,
                            source,
                        })?;
                        if !busy(got.1) {
                            break got;
                        }
                        skipped.push(got);
                    }
                }
                HostPortChoice::Any(Some(range)) => (range.start..=range.end)
                    .filter(|p| !busy(*p))
                    .find_map(|p| bind(ip, p, spec.protocol).ok())
                    .ok_or(Error::NoFreePort {
                        ip,
                        start: range.start,
                        end: range.end,
                    })?,
            };
            held.push(res);
            mappings.push(PortMapping {
                host_ip: spec.host_ip,
                host_port: port,
                container_port,
                protocol: spec.protocol,
            });
        }
    }
    Ok((mappings, held))
}

/// The endpoint being attached: what the network gave it and what the
/// kernel side is set up with.
struct Plan {
    ipv4: Ipv4Addr,
    mac: Option<[u8; 6]>,
    /// Interface name in the container.
    ifname: String,
    host_veth: String,
    ports: Vec<PortMapping>,
    reservations: Vec<Reservation>,
}

/// Checks the MAC address, interface name and DNS names of `req`.
fn validate(req: &AttachRequest) -> Result<Option<[u8; 6]>, Error> {
    let mac = req.mac_address.as_deref().map(parse_mac).transpose()?;
    if let Some(ifname) = &req.ifname
        && !valid_ifname(ifname)
    {
        return Err(Error::BadIfname {
            name: ifname.clone(),
        });
    }
    for n in std::iter::once(&req.name)
        .chain(req.hostname.iter())
        .chain(req.aliases.iter())
        .chain(req.links.iter().map(|l| &l.alias))
    {
        if !valid_dns_name(n) {
            return Err(Error::BadDnsName {
                name: n.clone(),
                container: req.container_id.clone(),
            });
        }
    }
    Ok(mac)
}

/// The state-file record of the endpoint.
fn endpoint(req: &AttachRequest, plan: &Plan) -> Endpoint {
    Endpoint {
        container_id: req.container_id.clone(),
        name: req.name.clone(),
        hostname: req.hostname.clone(),
        aliases: req.aliases.clone(),
        ipv4: plan.ipv4,
        mac: req.mac_address.clone(),
        host_veth: plan.host_veth.clone(),
        ifname: plan.ifname.clone(),
        netns: req.netns.clone(),
        ports: plan.ports.clone(),
        links: req.links.clone(),
    }
}

impl Networks {
    /// Attaches a container to a network. On failure everything done so far
    /// is undone (veth, IPAM lease, record, port reservations).
    pub fn attach(&self, req: &AttachRequest) -> Result<Attachment, Error> {
        let mac = validate(req)?;
        let netns_file = File::open(&req.netns).map_err(|source| Error::OpenNetns {
            path: req.netns.clone(),
            source,
        })?;

        let net_lock = fsutil::lock_exclusive(&self.paths.network_lock(&req.network))?;
        let mut net = NetworkState::load(&self.paths, &req.network)?;
        if net.endpoints.contains_key(&req.container_id) {
            return Err(Error::AlreadyAttached {
                container: req.container_id.clone(),
                network: req.network.clone(),
            });
        }
        let plan = self.plan(req, &mut net, mac)?;
        // record before creating
        net.endpoints
            .insert(req.container_id.clone(), endpoint(req, &plan));
        net.save(&self.paths)?;
        let kernel = self.attach_kernel_side(req, &net, &netns_file, &plan);
        drop(net_lock);
        self.publish(req, kernel, &plan.ports)?;
        tracing::info!(network = %req.network, container = %req.container_id, ipv4 = %plan.ipv4, ifname = %plan.ifname, "attached");
        Ok(Attachment {
            network: req.network.clone(),
            container_id: req.container_id.clone(),
            ifname: plan.ifname,
            ipv4: plan.ipv4,
            prefix_len: net.subnet.prefix_len(),
            gateway: net.gateway,
            host_veth: plan.host_veth,
            ports: plan.ports,
            reservations: plan.reservations,
        })
    }

    /// The endpoint's address (leased in `net`), host ports (reserved),
    /// interface names (caller holds the network's lock).
    fn plan(
        &self,
        req: &AttachRequest,
        net: &mut NetworkState,
        mac: Option<[u8; 6]>,
    ) -> Result<Plan, Error> {
        let ipv4 = net.allocate(req.ipv4_address)?;
        let (ports, reservations) = if req.ports.is_empty() {
            (Vec::new(), Vec::new())
        } else if net.internal {
            tracing::warn!(network = %net.name, "ports are not published on an internal network");
            (Vec::new(), Vec::new())
        } else {
            let taken: Vec<PortMapping> = state::list(&self.paths)?
                .iter()
                .flat_map(|n| n.endpoints.values().flat_map(|e| e.ports.clone()))
                .collect();
            reserve_ports(&req.ports, &taken)?
        };
        let ifname = match &req.ifname {
            Some(i) => i.clone(),
            None => self.free_ifname(req)?,
        };
        let host_veth = format!("veth{}", &fsutil::random_hex(4)?[..7]);
        Ok(Plan {
            ipv4,
            mac,
            ifname,
            host_veth,
            ports,
            reservations,
        })
    }

    /// The first `ethN` not in the container's namespace.
    fn free_ifname(&self, req: &AttachRequest) -> Result<String, Error> {
        let names = netlink::run(Some(&req.netns), |h| async move {
            netlink::link_names(&h).await
        })
        .map_err(|source| self.nl_err(req, source))?;
        Ok((0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !names.contains(n))
            .expect("an unused ethN exists"))
    }

    /// After the kernel side (`kernel`): the nft rules of published ports
    /// and a fresh conntrack for UDP ones; on failure detaches again.
    fn publish(
        &self,
        req: &AttachRequest,
        kernel: Result<(), Error>,
        ports: &[PortMapping],
    ) -> Result<(), Error> {
        let result = kernel.and_then(|()| {
            if ports.is_empty() {
                Ok(())
            } else {
                let _g = self.global_lock()?;
                self.sync_nft_locked().map_err(Error::from)
            }
        });
        if result.is_ok() {
            for p in ports.iter().filter(|p| p.protocol == Protocol::Udp) {
                if let Err(e) =
                    crate::conntrack::flush(crate::conntrack::Filter::UdpPort(p.host_port))
                {
                    tracing::warn!(port = p.host_port, error = %e, "cannot flush conntrack entries");
                }
            }
        }
        let Err(error) = result else {
            return Ok(());
        };
        Err(match self.detach(&req.network, &req.container_id) {
            Ok(_) => error,
            Err(cleanup) => Error::WithCleanup {
                error: Box::new(error),
                cleanup: format!("{cleanup}: {}", crate::error_chain(&cleanup)),
            },
        })
    }

    fn nl_err(&self, req: &AttachRequest, source: netlink::Error) -> Error {
        Error::Netlink {
            container: req.container_id.clone(),
            network: req.network.clone(),
            source,
        }
    }

    fn attach_kernel_side(
        &self,
        req: &AttachRequest,
        net: &NetworkState,
        netns_file: &File,
        plan: &Plan,
    ) -> Result<(), Error> {
        let (host_veth, ifname, ipv4) = (plan.host_veth.as_str(), plan.ifname.as_str(), plan.ipv4);
        netlink::run(None, |h| async move {
            let peer = netlink::VethPeer {
                netns: netns_file,
                ifname,
                mac: plan.mac,
            };
            netlink::create_veth(&h, host_veth, &net.bridge, net.mtu, &peer).await
        })
        .map_err(|source| self.nl_err(req, source))?;
        let internal = net.internal;
        let gateway = net.gateway;
        let prefix = net.subnet.prefix_len();
        netlink::run(Some(&req.netns), |h| async move {
            let default_via = if internal || netlink::has_default_route(&h).await? {
                None
            } else {
                Some(gateway)
            };
            netlink::configure_container_link(&h, ifname, ipv4, prefix, default_via).await
        })
        .map_err(|source| self.nl_err(req, source))
    }

    /// Detaches a container from a network: deletes the veth (which takes
    /// the container end with it), releases the address, forgets the
    /// endpoint and its ports. Returns false when it was not attached.
    pub fn detach(&self, network: &str, container_id: &str) -> Result<bool, Error> {
        let lock = fsutil::lock_exclusive(&self.paths.network_lock(network))?;
        let mut net = NetworkState::load(&self.paths, network)?;
        let Some(ep) = net.endpoints.get(container_id).cloned() else {
            return Ok(false);
        };
        let veth = ep.host_veth.clone();
        netlink::run(
            None,
            |h| async move { netlink::delete_link(&h, &veth).await },
        )
        .map_err(|source| Error::Netlink {
            container: container_id.to_string(),
            network: network.to_string(),
            source,
        })?;
        net.endpoints.remove(container_id);
        net.save(&self.paths)?;
        drop(lock);
        if !ep.ports.is_empty() {
            let _g = self.global_lock()?;
            self.sync_nft_locked()?;
        }
        // UDP flows DNATed to the old address must not outlive it (their
        // clients would keep hitting the dead address). A dump walks the
        // whole conntrack table (~20 ms on a busy host), so only then.
        if ep.ports.iter().any(|p| p.protocol == Protocol::Udp)
            && let Err(e) = crate::conntrack::flush(crate::conntrack::Filter::Address(ep.ipv4))
        {
            tracing::warn!(address = %ep.ipv4, error = %e, "cannot flush conntrack entries");
        }
        tracing::info!(%network, container = %container_id, "detached");
        Ok(true)
    }

    /// Renames container `old` to `new` on every network it is on: the
    /// endpoint's key and name, and `old` among its aliases (a renamed
    /// Docker container answers to its new name only). The interface and
    /// address stay; the DNS servers read the new names from the state.
    pub fn rename_endpoint(&self, old: &str, new: &str) -> Result<(), Error> {
        for n in self.list()? {
            if !n.endpoints.contains_key(old) {
                continue;
            }
            let _lock = fsutil::lock_exclusive(&self.paths.network_lock(&n.name))?;
            let mut net = NetworkState::load(&self.paths, &n.name)?;
            let Some(mut ep) = net.endpoints.remove(old) else {
                continue;
            };
            ep.container_id = new.to_owned();
            ep.name = new.to_owned();
            for a in &mut ep.aliases {
                if a == old {
                    *a = new.to_owned();
                }
            }
            net.endpoints.insert(new.to_owned(), ep);
            net.save(&self.paths)?;
        }
        Ok(())
    }

    /// Detaches a container from every network it is on.
    pub fn detach_all(&self, container_id: &str) -> Result<(), Error> {
        let mut first = None;
        for n in self.list()? {
            if n.endpoints.contains_key(container_id)
                && let Err(e) = self.detach(&n.name, container_id)
            {
                tracing::warn!(network = %n.name, error = %e, "detach failed");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The host ends of `container_id`'s veth pairs, from the networks' state.
    pub fn host_links(&self, container_id: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .list()?
            .iter()
            .filter_map(|n| n.endpoints.get(container_id))
            .map(|e| e.host_veth.clone())
            .collect())
    }

    /// Waits up to `timeout` for `links` (host ends of veth pairs whose
    /// container namespace was just unpinned) to go, then deletes any still
    /// there (a namespace something else holds). The kernel deletes a
    /// dying namespace's veth pairs in one batch for every namespace that
    /// dies together, where each `RTM_DELLINK` waits for its own RCU grace
    /// period under the global rtnl lock (~15 ms a container: a `down` of
    /// ten spent most of its time there). Polled with `if_nametoindex` in
    /// this network namespace.
    pub fn await_links_gone(
        &self,
        links: &[String],
        timeout: std::time::Duration,
    ) -> Result<(), Error> {
        let deadline = std::time::Instant::now() + timeout;
        let present = |l: &String| nix::net::if_::if_nametoindex(l.as_str()).is_ok();
        let mut left: Vec<String> = links.iter().filter(|l| present(l)).cloned().collect();
        while !left.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
            left.retain(present);
        }
        if left.is_empty() {
            return Ok(());
        }
        netlink::run(None, |h| async move {
            for l in &left {
                netlink::delete_link(&h, l).await?;
            }
            Ok(())
        })
        .map_err(|source| Error::DeleteLinks {
            links: links.join(", "),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        assert!(parse_mac("01:00:00:00:00:00").is_err());
        assert!(parse_mac("zz:42:ac:11:00:02").is_err());
        assert!(parse_mac("02:42").is_err());
    }

    #[test]
    fn reserve_conflicts_with_taken_and_bound() {
        let taken = [PortMapping {
            host_ip: None,
            host_port: 18080,
            container_port: 80,
            protocol: Protocol::Tcp,
        }];
        let spec: PortSpec = "127.0.0.1:18080:80".parse().unwrap();
        let err = reserve_ports(&[spec], &taken).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Bind for 127.0.0.1:18080 failed: port is already allocated"
        );
        // udp on the same number is fine; a random port is real
        let (m, held) = reserve_ports(&["127.0.0.1::53/udp".parse().unwrap()], &taken).unwrap();
        assert_eq!(held.len(), 1);
        assert_ne!(m[0].host_port, 0);
        // a port held by someone else
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        let err = reserve_ports(&[format!("127.0.0.1:{p}:80").parse().unwrap()], &[]).unwrap_err();
        assert!(matches!(err, Error::PortAllocated { .. }), "{err}");
    }

    #[test]
    fn dns_names() {
        assert!(valid_dns_name("web-1"));
        assert!(valid_dns_name("a.b_c"));
        assert!(!valid_dns_name("a..b"));
        assert!(!valid_dns_name("a b"));
    }
}
