//! Published ports: Docker's `-p` syntax and the mappings it expands to.
//!
//! `[HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTO]`. A missing
//! host port means "any free port" (chosen by the kernel when the port is
//! reserved). A host range with a single container port means "one free
//! port of the range", like Docker.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Errors of port parsing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid port specification {spec:?}: {reason}")]
    Invalid { spec: String, reason: String },
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// An inclusive port range; a single port is `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    pub fn len(&self) -> usize {
        usize::from(self.end - self.start) + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One `-p` argument, parsed but not yet bound to host ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: Option<Ipv4Addr>,
    /// `None`: any free host port.
    pub host: Option<PortRange>,
    pub container: PortRange,
    pub protocol: Protocol,
}

/// One published port after allocation: what the DNAT rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// `None`: every host address.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = self
            .host_ip
            .map_or("0.0.0.0".to_string(), |ip| ip.to_string());
        write!(
            f,
            "{ip}:{}->{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

fn parse_range(spec: &str, s: &str) -> Result<PortRange, Error> {
    let bad = |reason: String| Error::Invalid {
        spec: spec.to_string(),
        reason,
    };
    let port = |p: &str| -> Result<u16, Error> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad(format!("{p:?} is not a port number (1-65535)"))),
            Ok(n) => Ok(n),
        }
    };
    let (start, end) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(s)?;
            (p, p)
        }
    };
    if end < start {
        return Err(bad(format!("range {s} ends before it starts")));
    }
    Ok(PortRange { start, end })
}

impl FromStr for PortSpec {
    type Err = Error;
    fn from_str(spec: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Invalid {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (rest, protocol) = match spec.rsplit_once('/') {
            Some((r, "tcp")) => (r, Protocol::Tcp),
            Some((r, "udp")) => (r, Protocol::Udp),
            Some((_, p)) => return Err(bad(&format!("unsupported protocol {p:?} (tcp or udp)"))),
            None => (spec, Protocol::Tcp),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, container) = match parts.as_slice() {
            [c] => (None, None, *c),
            [h, c] => (None, Some(*h), *c),
            [ip, h, c] => (Some(*ip), Some(*h), *c),
            _ => return Err(bad("too many ':' (IPv6 host addresses are not supported)")),
        };
        let host_ip = match ip {
            None | Some("") => None,
            Some(ip) => Some(
                ip.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<Ipv4Addr>()
                    .map_err(|_| bad(&format!("{ip:?} is not an IPv4 address")))?,
            ),
        };
        let host_ip = host_ip.filter(|ip| !ip.is_unspecified());
        let container = parse_range(spec, container)?;
        let host = match host {
            None | Some("") => None,
            Some(h) => Some(parse_range(spec, h)?),
        };
        if let Some(h) = host
            && container.len() > 1
            && h.len() != container.len()
        {
            return Err(bad("host and container port ranges differ in length"));
        }
        Ok(PortSpec {
            host_ip,
            host,
            container,
            protocol,
        })
    }
}

impl PortSpec {
    /// Expands the spec into (host port choice, container port) pairs:
    /// `Fixed(p)` for a given port, `AnyOf(range)` when any port of a range
    /// (or any port at all, `None`) will do.
    pub fn expand(&self) -> Vec<(HostPortChoice, u16)> {
        let container: Vec<u16> = (self.container.start..=self.container.end).collect();
        match self.host {
            None => container
                .into_iter()
                .map(|c| (HostPortChoice::Any(None), c))
                .collect(),
            Some(h) if container.len() == 1 && h.len() > 1 => {
                vec![(HostPortChoice::Any(Some(h)), container[0])]
            }
            Some(h) => (h.start..=h.end)
                .zip(container)
                .map(|(hp, c)| (HostPortChoice::Fixed(hp), c))
                .collect(),
        }
    }
}

/// How a host port is to be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPortChoice {
    Fixed(u16),
    /// Any free port of the range, or an ephemeral port when `None`.
    Any(Option<PortRange>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PortSpec {
        s.parse().unwrap()
    }

    #[test]
    fn forms() {
        assert_eq!(
            p("8080:80"),
            PortSpec {
                host_ip: None,
                host: Some(PortRange {
                    start: 8080,
                    end: 8080
                }),
                container: PortRange { start: 80, end: 80 },
                protocol: Protocol::Tcp
            }
        );
        let s = p("127.0.0.1:8080:80");
        assert_eq!(s.host_ip, Some(Ipv4Addr::LOCALHOST));
        let s = p("53:53/udp");
        assert_eq!(s.protocol, Protocol::Udp);
        let s = p(":80");
        assert_eq!(s.host, None);
        assert_eq!(s.expand(), vec![(HostPortChoice::Any(None), 80)]);
        let s = p("80");
        assert_eq!(s.expand(), vec![(HostPortChoice::Any(None), 80)]);
        let s = p("8080-8081:80-81");
        assert_eq!(
            s.expand(),
            vec![
                (HostPortChoice::Fixed(8080), 80),
                (HostPortChoice::Fixed(8081), 81)
            ]
        );
        let s = p("8080-8085:80");
        assert_eq!(
            s.expand(),
            vec![(
                HostPortChoice::Any(Some(PortRange {
                    start: 8080,
                    end: 8085
                })),
                80
            )]
        );
        assert_eq!(p("0.0.0.0:1:2").host_ip, None);
        assert_eq!(p("127.0.0.1::80").host, None);
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "abc",
            "0:80",
            "8080:80/sctp",
            "1-2:3-5",
            "9-8:80",
            "1:2:3:4",
            "x.y:1:2",
            "70000:80",
        ] {
            let err = bad.parse::<PortSpec>();
            assert!(err.is_err(), "{bad:?} should fail");
            assert!(
                err.unwrap_err()
                    .to_string()
                    .contains("invalid port specification")
            );
        }
    }
}
