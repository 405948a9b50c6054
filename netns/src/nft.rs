//! NAT and filtering with nftables, in rstack's own table `ip rstack`.
//!
//! The table is a pure function of the network state files: every change
//! (network create/rm, attach/detach with ports) re-renders the whole table
//! and replaces it in one `nft -f` transaction (`add table`, `delete table`,
//! then the new table). So nothing of the host's own rules is ever touched, a
//! crash can never leave a half-applied set, and removal is complete by
//! construction: no network, no table.
//!
//! Why the `nft` binary with a text script rather than the `nftables` crate
//! (JSON, which also runs `nft`) or raw netlink (`nftnl`, which needs the C
//! libraries libnftnl/libmnl at build time): the script is what an operator
//! reads in `nft list ruleset`, its rendering is a pure function that unit
//! tests compare as text, and one script is one atomic kernel transaction.
//! All inputs are validated (interface names, addresses, port numbers), so
//! no quoting issues arise. Cost: ~4 ms per apply, paid only on changes.
//!
//! Rules (per network `br`, subnet `S`):
//! - `prerouting`/`output` nat: traffic to a local address jumps to `ports`,
//!   which DNATs each published port to its container (kernel forwarding:
//!   near-direct throughput, the container sees the real client address).
//! - `postrouting`: hairpin: masquerade DNATed traffic from `S` back into
//!   `br`; DNATed traffic between rstack bridges keeps its source (the
//!   container sees the real client); masquerade `S` leaving through
//!   another interface (non-internal only); masquerade 127.0.0.0/8 sources going into `br` — published
//!   ports on 127.0.0.1 work through `route_localnet=1` on the bridge (set at
//!   bridge creation), as Docker does without its userland proxy.
//! - `forward` filter: an internal network's bridge talks only to itself;
//!   a new connection into any other bridge comes from that bridge or is
//!   DNATed to a published port (networks are isolated from each other and
//!   from Docker's, as Docker isolates its own). A drop here is final; the
//!   accepts that get rstack's traffic past the host's own drop policies
//!   (Docker, ufw, nftables `policy drop`) are in [`crate::firewall`].
//! - `guard` (prerouting, raw priority): packets from a bridge to
//!   127.0.0.0/8 are dropped, so `route_localnet` does not expose the host's
//!   loopback services to containers (CVE-2020-8558).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::ports::Protocol;
use crate::state::NetworkState;

/// Errors of applying rules.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot run {nft}")]
    Spawn {
        nft: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("nft rejected the rstack ruleset: {stderr}")]
    Rejected { stderr: String },
}

/// Table family and name.
pub const TABLE: &str = "ip rstack";

/// Renders the complete `ip rstack` table for these networks; `None` when
/// there is nothing to install (no network).
pub fn render(networks: &[NetworkState]) -> Option<String> {
    if networks.is_empty() {
        return None;
    }
    let mut ports = String::new();
    let mut post = String::new();
    let mut forward = String::new();
    let mut guard = String::new();
    let mut outbound = String::new();
    let bridges: Vec<String> = networks
        .iter()
        .map(|n| format!("\"{}\"", n.bridge))
        .collect();
    for n in networks {
        let br = &n.bridge;
        let s = n.subnet;
        let _ = writeln!(guard, "    iifname \"{br}\" ip daddr 127.0.0.0/8 drop");
        if n.internal {
            let _ = writeln!(forward, "    iifname \"{br}\" oifname != \"{br}\" drop");
            let _ = writeln!(forward, "    oifname \"{br}\" iifname != \"{br}\" drop");
            continue;
        }
        // isolation, as Docker's: new connections into the bridge come from
        // the bridge itself or are DNATed to a published port; not from
        // another network (rstack's or Docker's) nor routed from outside
        let _ = writeln!(
            forward,
            "    oifname \"{br}\" iifname != \"{br}\" ct state new ct status & dnat == 0 drop"
        );
        let _ = writeln!(
            post,
            "    oifname \"{br}\" ct status dnat ip saddr {s} masquerade"
        );
        let _ = writeln!(post, "    oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade");
        let _ = writeln!(outbound, "    ip saddr {s} oifname != \"{br}\" masquerade");
        for ep in n.endpoints.values() {
            for p in &ep.ports {
                let proto = match p.protocol {
                    Protocol::Tcp => "tcp",
                    Protocol::Udp => "udp",
                };
                let daddr = p
                    .host_ip
                    .map(|ip| format!("ip daddr {ip} "))
                    .unwrap_or_default();
                let _ = writeln!(
                    ports,
                    "    {daddr}{proto} dport {} dnat to {}:{}",
                    p.host_port, ep.ipv4, p.container_port
                );
            }
        }
    }
    // published ports reached from another rstack network keep their real
    // client address: no masquerade between bridges after DNAT
    let _ = writeln!(
        post,
        "    ct status dnat oifname {{ {} }} accept",
        bridges.join(", ")
    );
    post.push_str(&outbound);
    let mut out = String::new();
    let _ = writeln!(out, "table {TABLE} {{");
    let _ = writeln!(
        out,
        "  chain guard {{\n    type filter hook prerouting priority raw; policy accept;\n{guard}  }}"
    );
    let _ = writeln!(out, "  chain ports {{\n{ports}  }}");
    let _ = writeln!(
        out,
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }}"
    );
    let _ = writeln!(
        out,
        "  chain output {{\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }}"
    );
    let _ = writeln!(
        out,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{post}  }}"
    );
    let _ = writeln!(
        out,
        "  chain forward {{\n    type filter hook forward priority filter; policy accept;\n{forward}  }}"
    );
    out.push_str("}\n");
    Some(out)
}

/// The script that atomically replaces the table with `table` (or removes
/// it when `None`).
pub fn replace_script(table: Option<&str>) -> String {
    let mut s = format!("add table {TABLE}\ndelete table {TABLE}\n");
    if let Some(t) = table {
        s.push_str(t);
    }
    s
}

/// Applies a script with `nft -f -` in the caller's network namespace.
pub fn apply(nft: &std::path::Path, script: &str) -> Result<(), Error> {
    let spawn_err = |source| Error::Spawn {
        nft: nft.to_path_buf(),
        source,
    };
    let mut child = Command::new(nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        return Err(Error::Rejected {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    tracing::debug!(bytes = script.len(), "nft table rstack replaced");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortMapping;
    use crate::state::{sample, sample_endpoint};
    use std::net::Ipv4Addr;

    #[test]
    fn empty_means_no_table() {
        assert_eq!(render(&[]), None);
        assert_eq!(
            replace_script(None),
            "add table ip rstack\ndelete table ip rstack\n"
        );
    }

    #[test]
    fn renders_nat_ports_and_internal() {
        let mut web = sample("web", "172.18.0.0/16");
        let mut ep = sample_endpoint("c1", "a", Ipv4Addr::new(172, 18, 0, 2), &[]);
        ep.ports = vec![
            PortMapping {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
            },
            PortMapping {
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 5353,
                container_port: 53,
                protocol: Protocol::Udp,
            },
        ];
        web.endpoints.insert("c1".into(), ep);
        let mut int = sample("int", "172.19.0.0/16");
        int.internal = true;
        let t = render(&[web, int]).unwrap();
        for line in [
            "tcp dport 8080 dnat to 172.18.0.2:80",
            "ip daddr 127.0.0.1 udp dport 5353 dnat to 172.18.0.2:53",
            "ip saddr 172.18.0.0/16 oifname != \"br-web\" masquerade",
            "oifname \"br-web\" ct status dnat ip saddr 172.18.0.0/16 masquerade",
            "oifname \"br-web\" ip saddr 127.0.0.0/8 masquerade",
            "iifname \"br-int\" oifname != \"br-int\" drop",
            "iifname \"br-web\" ip daddr 127.0.0.0/8 drop",
            "oifname \"br-web\" iifname != \"br-web\" ct state new ct status & dnat == 0 drop",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        assert!(
            !t.contains("172.19.0.0/16 oifname"),
            "internal network must not be masqueraded:\n{t}"
        );
    }
}
