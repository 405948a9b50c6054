//! Subnet pool: which IPv4 subnet a new network gets.
//!
//! Like Docker's `default-address-pools`, the pool is an ordered list of
//! (base, size) entries; a new network takes the first subnet of that size
//! that overlaps neither a route in the current network namespace's routing
//! tables (so a VPN, a LAN or docker0 never collides) nor another rstack
//! network. The routes are read by the caller (see `netlink::routes`); this
//! module is pure.

use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::Ipv4Net;

/// Errors of subnet choice and parsing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid subnet {value:?}: expected an IPv4 CIDR such as 172.30.0.0/16")]
    BadSubnet { value: String },
    #[error("invalid subnet {value:?}: the address has host bits set (did you mean {network}?)")]
    HostBits { value: String, network: Ipv4Net },
    #[error(
        "invalid subnet {subnet}: prefix /{prefix} leaves no room for a gateway and a container"
    )]
    TooSmall { subnet: Ipv4Net, prefix: u8 },
    #[error("invalid gateway {gateway}: not a host address inside subnet {subnet}")]
    BadGateway { gateway: Ipv4Addr, subnet: Ipv4Net },
    #[error(
        "invalid address pool entry {value:?}: expected BASE/PREFIX=SIZE, e.g. 172.17.0.0/16=16"
    )]
    BadPool { value: String },
    #[error(
        "all predefined address pools have been fully subnetted (pool: {pool}); remove unused networks or configure a larger pool"
    )]
    Exhausted { pool: String },
}

/// One pool entry: carve subnets of prefix length `size` out of `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolEntry {
    pub base: Ipv4Net,
    pub size: u8,
}

impl FromStr for PoolEntry {
    type Err = Error;
    /// `172.17.0.0/16=16` (base and size) or `10.10.0.0/16` (size = base prefix).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::BadPool {
            value: s.to_string(),
        };
        let (base, size) = match s.split_once('=') {
            Some((b, sz)) => (b, Some(sz)),
            None => (s, None),
        };
        let base: Ipv4Net = base.trim().parse().map_err(|_| bad())?;
        let size = match size {
            Some(sz) => sz.trim().parse::<u8>().map_err(|_| bad())?,
            None => base.prefix_len(),
        };
        if size < base.prefix_len() || size > 30 {
            return Err(bad());
        }
        Ok(PoolEntry {
            base: base.trunc(),
            size,
        })
    }
}

/// Docker's default pools: 172.17.0.0/16 … 172.31.0.0/16 as /16s, then
/// 192.168.0.0/16 as /20s.
pub fn default_pool() -> Vec<PoolEntry> {
    [
        "172.17.0.0/16",
        "172.18.0.0/15",
        "172.20.0.0/14",
        "172.24.0.0/13",
    ]
    .iter()
    .map(|b| PoolEntry {
        base: b.parse().expect("valid literal"),
        size: 16,
    })
    .chain(std::iter::once(PoolEntry {
        base: Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16).expect("valid prefix"),
        size: 20,
    }))
    .collect()
}

/// Do two subnets share any address?
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first subnet from `pool` that overlaps none of `routes` (destinations
/// of the routing table; default routes are ignored) and none of `taken`.
pub fn choose(pool: &[PoolEntry], routes: &[Ipv4Net], taken: &[Ipv4Net]) -> Result<Ipv4Net, Error> {
    let routes: Vec<&Ipv4Net> = routes.iter().filter(|r| r.prefix_len() > 0).collect();
    for entry in pool {
        let Ok(candidates) = entry.base.subnets(entry.size) else {
            continue;
        };
        for candidate in candidates {
            let clash = routes.iter().any(|r| overlaps(r, &candidate))
                || taken.iter().any(|t| overlaps(t, &candidate));
            if !clash {
                return Ok(candidate);
            }
        }
    }
    Err(Error::Exhausted {
        pool: pool
            .iter()
            .map(|e| format!("{}={}", e.base, e.size))
            .collect::<Vec<_>>()
            .join(","),
    })
}

/// Parses a user-given subnet (`--subnet`), refusing host bits and subnets
/// too small for a gateway plus one container.
pub fn parse_subnet(value: &str) -> Result<Ipv4Net, Error> {
    let net: Ipv4Net = value.trim().parse().map_err(|_| Error::BadSubnet {
        value: value.to_string(),
    })?;
    if net.addr() != net.network() {
        return Err(Error::HostBits {
            value: value.to_string(),
            network: net.trunc(),
        });
    }
    if net.prefix_len() > 30 {
        return Err(Error::TooSmall {
            subnet: net,
            prefix: net.prefix_len(),
        });
    }
    Ok(net)
}

/// The gateway: the given one (checked to be a usable host of `subnet`) or
/// the subnet's first host address.
pub fn gateway(subnet: &Ipv4Net, given: Option<Ipv4Addr>) -> Result<Ipv4Addr, Error> {
    match given {
        Some(gw) => {
            if subnet.contains(&gw) && gw != subnet.network() && gw != subnet.broadcast() {
                Ok(gw)
            } else {
                Err(Error::BadGateway {
                    gateway: gw,
                    subnet: *subnet,
                })
            }
        }
        None => Ok(Ipv4Addr::from(u32::from(subnet.network()) + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn first_free_default() {
        assert_eq!(
            choose(&default_pool(), &[], &[]).unwrap(),
            n("172.17.0.0/16")
        );
    }

    #[test]
    fn skips_routed_and_taken() {
        let routes = [n("0.0.0.0/0"), n("172.17.0.0/16"), n("172.18.5.0/24")];
        let taken = [n("172.19.0.0/16")];
        assert_eq!(
            choose(&default_pool(), &routes, &taken).unwrap(),
            n("172.20.0.0/16")
        );
    }

    #[test]
    fn a_wide_vpn_route_pushes_to_next_entry() {
        let routes = [n("172.16.0.0/12")];
        assert_eq!(
            choose(&default_pool(), &routes, &[]).unwrap(),
            n("192.168.0.0/20")
        );
        let routes = [n("172.16.0.0/12"), n("192.168.0.0/24")];
        assert_eq!(
            choose(&default_pool(), &routes, &[]).unwrap(),
            n("192.168.16.0/20")
        );
    }

    #[test]
    fn exhausted_is_clear() {
        let pool: Vec<PoolEntry> = vec!["10.9.0.0/23=24".parse().unwrap()];
        let taken = [n("10.9.0.0/24"), n("10.9.1.0/24")];
        let err = choose(&pool, &[], &taken).unwrap_err().to_string();
        assert!(
            err.contains("fully subnetted") && err.contains("10.9.0.0/23=24"),
            "{err}"
        );
    }

    #[test]
    fn parse_subnet_errors() {
        assert!(parse_subnet("10.1.0.0/16").is_ok());
        assert!(matches!(
            parse_subnet("10.1.0.0/33"),
            Err(Error::BadSubnet { .. })
        ));
        assert!(matches!(
            parse_subnet("banana"),
            Err(Error::BadSubnet { .. })
        ));
        assert!(matches!(
            parse_subnet("10.1.2.3/16"),
            Err(Error::HostBits { .. })
        ));
        assert!(matches!(
            parse_subnet("10.1.2.0/31"),
            Err(Error::TooSmall { .. })
        ));
    }

    #[test]
    fn gateway_rules() {
        let s = n("10.1.0.0/24");
        assert_eq!(gateway(&s, None).unwrap(), Ipv4Addr::new(10, 1, 0, 1));
        assert_eq!(
            gateway(&s, Some(Ipv4Addr::new(10, 1, 0, 254))).unwrap(),
            Ipv4Addr::new(10, 1, 0, 254)
        );
        assert!(gateway(&s, Some(Ipv4Addr::new(10, 1, 0, 255))).is_err());
        assert!(gateway(&s, Some(Ipv4Addr::new(10, 2, 0, 1))).is_err());
    }

    #[test]
    fn pool_entry_parse() {
        let e: PoolEntry = "10.10.0.0/16=24".parse().unwrap();
        assert_eq!((e.base, e.size), (n("10.10.0.0/16"), 24));
        assert!("10.10.0.0/16=8".parse::<PoolEntry>().is_err());
    }
}
