//! Forgetting connection-tracking entries of a detached container.
//!
//! Published UDP ports are the reason: conntrack keeps a UDP "flow" alive
//! as long as the client keeps sending (each packet refreshes its timeout),
//! and the flow remembers the old DNAT target. A client of a restarted UDP
//! service (a DNS server, say) would keep talking to the dead address
//! forever. So on detach (of a container with published UDP ports) every
//! entry whose original destination or reply source is the container's
//! address is deleted, and when a UDP port is
//! published, every UDP flow to that port (one that began while nothing
//! was published is never DNATed later), through ctnetlink
//! (NETLINK_NETFILTER), in the caller's network namespace.
//!
//! Hand-written because no maintained crate speaks ctnetlink (netlink-
//! packet-netfilter covers nflog only); the messages used are two: a dump
//! of the IPv4 table and a delete by original tuple.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    socket,
};

/// Errors of conntrack flushing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ctnetlink {op} failed")]
    Io {
        op: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("malformed ctnetlink message")]
    Malformed,
}

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const NLA_TYPE_MASK: u16 = 0x3fff;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A netlink message: header, nfgenmsg (AF_INET), payload.
fn message(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + payload.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | kind).to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0]);
    m.extend_from_slice(payload);
    m
}

/// Iterates (type, whole attribute bytes, value bytes) over attributes.
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8], &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > buf.len() {
            return None;
        }
        let whole = &buf[..len];
        let value = &buf[4..len];
        buf = &buf[align4(len).min(buf.len())..];
        Some((kind, whole, value))
    })
}

fn tuple_ip(tuple: &[u8], which: u16) -> Option<Ipv4Addr> {
    let ip = attrs(tuple).find(|(k, _, _)| *k == CTA_TUPLE_IP)?.2;
    let v = attrs(ip).find(|(k, _, _)| *k == which)?.2;
    let octets: [u8; 4] = v.get(..4)?.try_into().ok()?;
    Some(Ipv4Addr::from(octets))
}

/// Which entries to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Original destination or reply source is this address (a container's).
    Address(Ipv4Addr),
    /// UDP flows to this destination port (a newly published host port: a
    /// flow that started while nothing was published would never be
    /// DNATed, since NAT is decided on a flow's first packet).
    UdpPort(u16),
}

fn tuple_dst_udp_port(tuple: &[u8]) -> Option<u16> {
    let proto = attrs(tuple).find(|(k, _, _)| *k == CTA_TUPLE_PROTO)?.2;
    let num = attrs(proto).find(|(k, _, _)| *k == CTA_PROTO_NUM)?.2;
    if num.first() != Some(&(libc::IPPROTO_UDP as u8)) {
        return None;
    }
    let port = attrs(proto).find(|(k, _, _)| *k == CTA_PROTO_DST_PORT)?.2;
    Some(u16::from_be_bytes([*port.first()?, *port.get(1)?]))
}

/// From one conntrack entry (the payload after nfgenmsg): its original
/// tuple attribute (to delete it by) if `filter` selects it.
pub fn matching_tuple(entry: &[u8], filter: Filter) -> Option<Vec<u8>> {
    let orig = attrs(entry).find(|(k, _, _)| *k == CTA_TUPLE_ORIG)?;
    let hit = match filter {
        Filter::Address(addr) => {
            let reply = attrs(entry)
                .find(|(k, _, _)| *k == CTA_TUPLE_REPLY)
                .map(|r| r.2);
            tuple_ip(orig.2, CTA_IP_V4_DST) == Some(addr)
                || reply.and_then(|r| tuple_ip(r, CTA_IP_V4_SRC)) == Some(addr)
        }
        Filter::UdpPort(port) => tuple_dst_udp_port(orig.2) == Some(port),
    };
    hit.then(|| orig.1.to_vec())
}

/// Netlink messages in a datagram: (type, payload after the header).
fn messages(buf: &[u8]) -> Result<Vec<(u16, &[u8])>, Error> {
    let mut out = Vec::new();
    let mut rest = buf;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes(rest[..4].try_into().map_err(|_| Error::Malformed)?) as usize;
        if len < 16 || len > rest.len() {
            return Err(Error::Malformed);
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        out.push((kind, &rest[16..len]));
        rest = &rest[align4(len).min(rest.len())..];
    }
    Ok(out)
}

fn open() -> Result<OwnedFd, Error> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )
    .map_err(|source| Error::Io {
        op: "socket",
        source,
    })?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
        .map_err(|source| Error::Io { op: "bind", source })?;
    Ok(fd)
}

/// Deletes the IPv4 conntrack entries `filter` selects, in the current
/// network namespace; returns how many were deleted.
pub fn flush(filter: Filter) -> Result<usize, Error> {
    let fd = open()?;
    let raw = fd.as_raw_fd();
    send(
        raw,
        &message(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 1, &[]),
        MsgFlags::empty(),
    )
    .map_err(|source| Error::Io { op: "dump", source })?;
    let mut victims = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    'dump: loop {
        let n = recv(raw, &mut buf, MsgFlags::empty())
            .map_err(|source| Error::Io { op: "dump", source })?;
        for (kind, payload) in messages(&buf[..n])? {
            match kind {
                NLMSG_DONE => break 'dump,
                NLMSG_ERROR => {
                    let code = i32::from_ne_bytes(
                        payload
                            .get(..4)
                            .ok_or(Error::Malformed)?
                            .try_into()
                            .map_err(|_| Error::Malformed)?,
                    );
                    if code != 0 {
                        return Err(Error::Io {
                            op: "dump",
                            source: nix::Error::from_raw(-code),
                        });
                    }
                }
                _ => {
                    if let Some(t) = payload.get(4..).and_then(|e| matching_tuple(e, filter)) {
                        victims.push(t);
                    }
                }
            }
        }
    }
    let mut deleted = 0;
    for (i, tuple) in victims.iter().enumerate() {
        let msg = message(
            IPCTNL_MSG_CT_DELETE,
            NLM_F_REQUEST | NLM_F_ACK,
            2 + i as u32,
            tuple,
        );
        send(raw, &msg, MsgFlags::empty()).map_err(|source| Error::Io {
            op: "delete",
            source,
        })?;
        let n = recv(raw, &mut buf, MsgFlags::empty()).map_err(|source| Error::Io {
            op: "delete",
            source,
        })?;
        for (kind, payload) in messages(&buf[..n])? {
            if kind == NLMSG_ERROR {
                let code = payload
                    .get(..4)
                    .map_or(0, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                match -code {
                    0 => deleted += 1,
                    libc::ENOENT => {} // expired meanwhile
                    e => {
                        return Err(Error::Io {
                            op: "delete",
                            source: nix::Error::from_raw(e),
                        });
                    }
                }
            }
        }
    }
    tracing::debug!(?filter, deleted, "conntrack entries flushed");
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn tuple(kind: u16, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let ip = attr(
            0x8000 | CTA_TUPLE_IP,
            &[attr(CTA_IP_V4_SRC, &src), attr(CTA_IP_V4_DST, &dst)].concat(),
        );
        attr(0x8000 | kind, &ip)
    }

    #[test]
    fn matches_dnat_and_direct_flows() {
        let c = Ipv4Addr::new(172, 17, 0, 2);
        // client 10.0.0.9 -> host 10.0.0.1, DNATed: reply comes from the container
        let dnat = [
            tuple(CTA_TUPLE_ORIG, [10, 0, 0, 9], [10, 0, 0, 1]),
            tuple(CTA_TUPLE_REPLY, [172, 17, 0, 2], [10, 0, 0, 9]),
        ]
        .concat();
        assert_eq!(
            matching_tuple(&dnat, Filter::Address(c)),
            Some(tuple(CTA_TUPLE_ORIG, [10, 0, 0, 9], [10, 0, 0, 1]))
        );
        let direct = [
            tuple(CTA_TUPLE_ORIG, [172, 17, 0, 3], [172, 17, 0, 2]),
            tuple(CTA_TUPLE_REPLY, [172, 17, 0, 2], [172, 17, 0, 3]),
        ]
        .concat();
        assert!(matching_tuple(&direct, Filter::Address(c)).is_some());
        let other = [
            tuple(CTA_TUPLE_ORIG, [10, 0, 0, 9], [10, 0, 0, 1]),
            tuple(CTA_TUPLE_REPLY, [10, 0, 0, 1], [10, 0, 0, 9]),
        ]
        .concat();
        assert_eq!(matching_tuple(&other, Filter::Address(c)), None);
        assert_eq!(
            matching_tuple(&[1, 2, 3], Filter::Address(c)),
            None,
            "garbage is ignored"
        );
    }

    #[test]
    fn matches_udp_port() {
        let proto = |num: u8, dport: u16| {
            attr(
                0x8000 | CTA_TUPLE_PROTO,
                &[
                    attr(CTA_PROTO_NUM, &[num]),
                    attr(CTA_PROTO_DST_PORT, &dport.to_be_bytes()),
                ]
                .concat(),
            )
        };
        let orig = |num, dport| {
            let ip = attr(
                0x8000 | CTA_TUPLE_IP,
                &[
                    attr(CTA_IP_V4_SRC, &[10, 0, 0, 9]),
                    attr(CTA_IP_V4_DST, &[10, 0, 0, 1]),
                ]
                .concat(),
            );
            attr(0x8000 | CTA_TUPLE_ORIG, &[ip, proto(num, dport)].concat())
        };
        assert!(matching_tuple(&orig(17, 5353), Filter::UdpPort(5353)).is_some());
        assert!(
            matching_tuple(&orig(6, 5353), Filter::UdpPort(5353)).is_none(),
            "tcp is not flushed"
        );
        assert!(matching_tuple(&orig(17, 53), Filter::UdpPort(5353)).is_none());
    }

    #[test]
    fn message_layout() {
        let m = message(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 7, &[]);
        assert_eq!(m.len(), 20);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), 0x0101);
        assert_eq!(messages(&m).unwrap().len(), 1);
    }
}
