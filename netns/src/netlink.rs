//! rtnetlink plumbing: links, addresses and routes, in the current network
//! namespace or inside another one.
//!
//! A network namespace is a per-*thread* property: `setns(CLONE_NEWNET)`
//! moves only the calling thread, and a netlink socket talks to the
//! namespace of the thread that created it. So every operation here runs on
//! a dedicated short-lived thread (entered into the target namespace when
//! one is given) with its own current-thread tokio runtime; callers stay
//! where they are and the API is blocking.

use std::fs::File;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

/// Errors of netlink operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Netns(#[from] rstack_sys::netns::Error),
    #[error("cannot start the netlink worker")]
    Worker(#[source] io::Error),
    #[error("{op}")]
    Netlink {
        op: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("link {name} not found")]
    NoLink { name: String },
    #[error("cannot write sysctl {path}")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn nl(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
    let op = op.into();
    move |source| Error::Netlink {
        op,
        source: Box::new(source),
    }
}

/// The errno of a netlink error, if it is one.
pub fn errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}

/// Runs `f` with a netlink handle on a dedicated thread, inside the network
/// namespace at `netns` (or the caller's current one when `None`).
pub fn run<T, F, Fut>(netns: Option<&Path>, f: F) -> Result<T, Error>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T, Error>>,
{
    rstack_sys::netns::run_in(netns, "rstack-netlink", move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Worker)?;
        rt.block_on(async move {
            let (conn, handle, _) = rtnetlink::new_connection().map_err(Error::Worker)?;
            let conn_task = tokio::spawn(conn);
            let out = f(handle).await;
            conn_task.abort();
            out
        })
    })?
}

/// Destinations of every IPv4 route in every table of the namespace.
pub async fn routes_v4(handle: &Handle) -> Result<Vec<Ipv4Net>, Error> {
    let msg = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let mut stream = handle.route().get(msg).execute();
    let mut out = Vec::new();
    while let Some(route) = stream.try_next().await.map_err(nl("list routes"))? {
        let prefix = route.header.destination_prefix_length;
        let dest = route.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
            _ => None,
        });
        let dest = dest.unwrap_or(Ipv4Addr::UNSPECIFIED);
        if let Ok(net) = Ipv4Net::new(dest, prefix) {
            out.push(net.trunc());
        }
    }
    Ok(out)
}

/// The index of link `name`, `None` when it does not exist.
pub async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, Error> {
    let mut stream = handle.link().get().match_name(name.to_string()).execute();
    match stream.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("look up link {name}"))(e)),
    }
}

/// Names of all links.
pub async fn link_names(handle: &Handle) -> Result<Vec<String>, Error> {
    let mut stream = handle.link().get().execute();
    let mut out = Vec::new();
    while let Some(msg) = stream.try_next().await.map_err(nl("list links"))? {
        if let Some(name) = link_name(&msg) {
            out.push(name);
        }
    }
    Ok(out)
}

fn link_name(msg: &LinkMessage) -> Option<String> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

/// Sets link `name` up.
pub async fn set_up(handle: &Handle, name: &str) -> Result<(), Error> {
    handle
        .link()
        .set(LinkUnspec::new_with_name(name).up().build())
        .execute()
        .await
        .map_err(nl(format!("set link {name} up")))
}

/// Creates bridge `name` with `gateway/prefix` on it and sets it up.
pub async fn create_bridge(
    handle: &Handle,
    name: &str,
    mtu: u32,
    gateway: Ipv4Addr,
    prefix: u8,
) -> Result<(), Error> {
    handle
        .link()
        .add(LinkBridge::new(name).mtu(mtu).build())
        .execute()
        .await
        .map_err(nl(format!("create bridge {name}")))?;
    let index = link_index(handle, name)
        .await?
        .ok_or_else(|| Error::NoLink { name: name.into() })?;
    handle
        .address()
        .add(index, IpAddr::V4(gateway), prefix)
        .execute()
        .await
        .map_err(nl(format!("add address {gateway}/{prefix} to {name}")))?;
    set_up(handle, name).await
}

/// Deletes link `name`; a missing link is not an error (returns false).
pub async fn delete_link(handle: &Handle, name: &str) -> Result<bool, Error> {
    let Some(index) = link_index(handle, name).await? else {
        return Ok(false);
    };
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(nl(format!("delete link {name}"))(e)),
    }
}

/// What the container end of a veth pair looks like.
#[derive(Debug, Clone)]
pub struct VethPeer<'a> {
    pub netns: &'a File,
    pub ifname: &'a str,
    pub mac: Option<[u8; 6]>,
}

/// Creates a veth pair: `host` on `bridge` and up, the peer created directly
/// inside the container's namespace under its final name (no temporary name
/// in the host namespace, so nothing can clash with the host's eth0).
pub async fn create_veth(
    handle: &Handle,
    host: &str,
    bridge: &str,
    mtu: u32,
    peer: &VethPeer<'_>,
) -> Result<(), Error> {
    let bridge_index = link_index(handle, bridge)
        .await?
        .ok_or_else(|| Error::NoLink {
            name: bridge.into(),
        })?;
    let mut peer_msg = LinkUnspec::new_with_name(peer.ifname)
        .mtu(mtu)
        .setns_by_fd(peer.netns.as_raw_fd());
    if let Some(mac) = peer.mac {
        peer_msg = peer_msg.address(mac.to_vec());
    }
    let msg = LinkVeth::new(host, peer.ifname)
        .mtu(mtu)
        .controller(bridge_index)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())))
        .build();
    handle
        .link()
        .add(msg)
        .execute()
        .await
        .map_err(nl(format!("create veth {host} <-> {}", peer.ifname)))
}

/// Inside a container's namespace: address on `ifname`, link up, and a
/// default route via `gateway` when asked.
pub async fn configure_container_link(
    handle: &Handle,
    ifname: &str,
    addr: Ipv4Addr,
    prefix: u8,
    default_via: Option<Ipv4Addr>,
) -> Result<(), Error> {
    let index = link_index(handle, ifname)
        .await?
        .ok_or_else(|| Error::NoLink {
            name: ifname.into(),
        })?;
    handle
        .address()
        .add(index, IpAddr::V4(addr), prefix)
        .execute()
        .await
        .map_err(nl(format!("add address {addr}/{prefix} to {ifname}")))?;
    set_up(handle, ifname).await?;
    if let Some(gw) = default_via {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gw)
            .output_interface(index)
            .build();
        handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(nl(format!("add default route via {gw}")))?;
    }
    Ok(())
}

/// Does the namespace have an IPv4 default route in the main table?
pub async fn has_default_route(handle: &Handle) -> Result<bool, Error> {
    let msg = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let mut stream = handle.route().get(msg).execute();
    while let Some(route) = stream.try_next().await.map_err(nl("list routes"))? {
        if route.header.destination_prefix_length == 0 && route.header.table == 254 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes a sysctl under /proc/sys (`rel` like `net/ipv4/ip_forward`) of
/// the calling thread's network namespace.
pub fn write_sysctl(rel: &str, value: &str) -> Result<(), Error> {
    let path = PathBuf::from("/proc/sys").join(rel);
    std::fs::write(&path, value).map_err(|source| Error::Sysctl { path, source })
}
