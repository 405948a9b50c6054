//! The resolver's lookup logic: which answer a given container gets for a
//! name. Pure (no I/O), so every rule is unit tested here.
//!
//! Rules, as Docker's embedded DNS:
//! - A container sees only the networks it is attached to. On those it can
//!   resolve container names, hostnames and aliases, bare or qualified with
//!   the network name (`db.backend`) (service names are
//!   aliases shared by all replicas: every address is returned, rotated per
//!   query for round-robin).
//! - AAAA (and other types) for a known name: an empty NOERROR answer
//!   (rstack networks are IPv4-only), never forwarded.
//! - PTR for an address of a shared network: the container name.
//! - Unknown single-label names: NXDOMAIN (no upstream can know them, and
//!   they must not leak to the host's resolvers); everything else is
//!   forwarded upstream.

use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::state::NetworkState;

/// Query types the backend distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryType {
    A,
    Aaaa,
    Ptr,
    Other,
}

/// The backend's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A records, in the order to return them.
    Addrs(Vec<Ipv4Addr>),
    /// PTR target names.
    Names(Vec<String>),
    /// The name exists, but has no record of this type.
    NoData,
    NxDomain,
    Forward,
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Parses `4.3.2.1.in-addr.arpa` into 1.2.3.4.
pub fn parse_reverse(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let octets: Vec<u8> = rest
        .split('.')
        .map(|o| o.parse().ok())
        .collect::<Option<_>>()?;
    match octets.as_slice() {
        [d, c, b, a] => Some(Ipv4Addr::new(*a, *b, *c, *d)),
        _ => None,
    }
}

/// Looks `qname` up for container `asker`. `rotate` picks the round-robin
/// rotation (a per-query counter).
pub fn lookup(
    networks: &[Arc<NetworkState>],
    asker: &str,
    qname: &str,
    qtype: QueryType,
    rotate: usize,
) -> Answer {
    let name = normalize(qname);
    let shared: Vec<&NetworkState> = networks
        .iter()
        .filter(|n| n.endpoints.contains_key(asker))
        .map(|n| n.as_ref())
        .collect();

    if qtype == QueryType::Ptr
        && let Some(ip) = parse_reverse(&name)
    {
        let mut names: Vec<String> = shared
            .iter()
            .flat_map(|n| n.endpoints.values())
            .filter(|e| e.ipv4 == ip)
            .map(|e| e.name.clone())
            .collect();
        names.dedup();
        if !names.is_empty() {
            return Answer::Names(names);
        }
        if shared.iter().any(|n| n.subnet.contains(&ip)) {
            return Answer::NxDomain;
        }
        return Answer::Forward;
    }

    // the asker's own links first: `alias` is the linked container
    let linked: Vec<String> = shared
        .iter()
        .filter_map(|n| n.endpoints.get(asker))
        .flat_map(|e| e.links.iter())
        .filter(|l| normalize(&l.alias) == name)
        .map(|l| normalize(&l.container))
        .collect();
    let mut addrs: Vec<Ipv4Addr> = Vec::new();
    for net in &shared {
        // `name` or `name.<network>` (scoped to that network), as Docker does
        let local = name
            .strip_suffix(net.name.to_ascii_lowercase().as_str())
            .and_then(|n| n.strip_suffix('.'));
        for e in net.endpoints.values() {
            let hit = if linked.is_empty() {
                e.dns_names()
                    .any(|n| n == name || Some(n.as_str()) == local)
            } else {
                linked.contains(&normalize(&e.name))
            };
            if hit {
                addrs.push(e.ipv4);
            }
        }
    }
    addrs.sort();
    addrs.dedup();
    if addrs.is_empty() {
        return if name.contains('.') {
            Answer::Forward
        } else {
            Answer::NxDomain
        };
    }
    match qtype {
        QueryType::A => {
            let k = rotate % addrs.len();
            addrs.rotate_left(k);
            Answer::Addrs(addrs)
        }
        _ => Answer::NoData,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{sample, sample_endpoint};

    fn ip(d: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, d)
    }

    /// An A query of `asker` for `name`, first answer rotation.
    fn a(w: &[Arc<NetworkState>], asker: &str, name: &str) -> Answer {
        lookup(w, asker, name, QueryType::A, 0)
    }

    fn ptr(w: &[Arc<NetworkState>], asker: &str, name: &str) -> Answer {
        lookup(w, asker, name, QueryType::Ptr, 0)
    }

    fn world() -> Vec<Arc<NetworkState>> {
        let mut web = sample("web", "10.0.0.0/24");
        web.endpoints.insert(
            "a".into(),
            sample_endpoint("a", "proj-a-1", ip(2), &["a", "db-alias"]),
        );
        web.endpoints
            .insert("b".into(), sample_endpoint("b", "proj-b-1", ip(3), &["b"]));
        web.endpoints.insert(
            "b2".into(),
            sample_endpoint("b2", "proj-b-2", ip(4), &["b"]),
        );
        let mut host = sample_endpoint("h", "withhost", ip(5), &[]);
        host.hostname = Some("Myhost".into());
        web.endpoints.insert("h".into(), host);
        let mut other = sample("other", "10.1.0.0/24");
        other.endpoints.insert(
            "c".into(),
            sample_endpoint("c", "proj-c-1", Ipv4Addr::new(10, 1, 0, 2), &["c"]),
        );
        vec![Arc::new(web), Arc::new(other)]
    }

    #[test]
    fn names_aliases_hostnames() {
        let w = world();
        assert_eq!(a(&w, "b", "proj-a-1"), Answer::Addrs(vec![ip(2)]));
        assert_eq!(a(&w, "b", "A."), Answer::Addrs(vec![ip(2)]));
        assert_eq!(a(&w, "b", "db-alias"), Answer::Addrs(vec![ip(2)]));
        assert_eq!(a(&w, "a", "myhost"), Answer::Addrs(vec![ip(5)]));
    }

    #[test]
    fn links_resolve_for_the_linking_container_only() {
        let mut w = world();
        for c in ["proj-b-1", "proj-b-2"] {
            a_link(&mut w, "Database", c);
        }
        assert_eq!(a(&w, "a", "database"), Answer::Addrs(vec![ip(3), ip(4)]));
        // a link alias shadows a same-named alias for the linking container
        a_link(&mut w, "db-alias", "withhost");
        assert_eq!(a(&w, "a", "db-alias"), Answer::Addrs(vec![ip(5)]));
        // nobody else sees it
        assert_eq!(a(&w, "b", "database"), Answer::NxDomain);
    }

    /// Gives container `a` (on `web`) a link `alias` to `container`.
    fn a_link(w: &mut [Arc<NetworkState>], alias: &str, container: &str) {
        let web = Arc::make_mut(&mut w[0]);
        web.endpoints
            .get_mut("a")
            .unwrap()
            .links
            .push(crate::state::Link {
                container: container.into(),
                alias: alias.into(),
            });
    }

    #[test]
    fn replicas_round_robin() {
        let w = world();
        assert_eq!(a(&w, "a", "b"), Answer::Addrs(vec![ip(3), ip(4)]));
        assert_eq!(
            lookup(&w, "a", "b", QueryType::A, 1),
            Answer::Addrs(vec![ip(4), ip(3)])
        );
    }

    #[test]
    fn only_shared_networks() {
        let w = world();
        assert_eq!(a(&w, "c", "a"), Answer::NxDomain);
        assert_eq!(a(&w, "a", "c"), Answer::NxDomain);
        assert_eq!(
            a(&w, "c", "c"),
            Answer::Addrs(vec![Ipv4Addr::new(10, 1, 0, 2)])
        );
        // a stranger (not attached anywhere) knows nobody
        assert_eq!(a(&w, "zz", "a"), Answer::NxDomain);
    }

    #[test]
    fn other_types_and_forwarding() {
        let w = world();
        assert_eq!(lookup(&w, "a", "b", QueryType::Aaaa, 0), Answer::NoData);
        assert_eq!(lookup(&w, "a", "b", QueryType::Other, 0), Answer::NoData);
        assert_eq!(a(&w, "a", "example.com"), Answer::Forward);
        assert_eq!(
            lookup(&w, "a", "example.com", QueryType::Aaaa, 0),
            Answer::Forward
        );
        assert_eq!(
            lookup(&w, "a", "nosuch", QueryType::Aaaa, 0),
            Answer::NxDomain
        );
    }

    #[test]
    fn reverse() {
        let w = world();
        assert_eq!(parse_reverse("2.0.0.10.in-addr.arpa"), Some(ip(2)));
        assert_eq!(parse_reverse("2.0.10.in-addr.arpa"), None);
        assert_eq!(
            ptr(&w, "b", "2.0.0.10.in-addr.arpa"),
            Answer::Names(vec!["proj-a-1".into()])
        );
        assert_eq!(ptr(&w, "b", "99.0.0.10.in-addr.arpa"), Answer::NxDomain);
        assert_eq!(ptr(&w, "c", "2.0.0.10.in-addr.arpa"), Answer::Forward);
        assert_eq!(ptr(&w, "b", "8.8.8.8.in-addr.arpa"), Answer::Forward);
    }
}
