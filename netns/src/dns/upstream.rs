//! Upstream resolvers: where names that are not containers' go.
//!
//! Taken from the host's resolv.conf. When that only names a local stub
//! (systemd-resolved's 127.0.0.53), the real upstreams are read from
//! /run/systemd/resolve/resolv.conf instead. Queries are forwarded from the
//! namespace of the process hosting the resolver (the host), so loopback
//! upstreams work too.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Where to forward and how long to wait for each server.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub servers: Vec<SocketAddr>,
    pub timeout: Duration,
}

/// `nameserver` entries of a resolv.conf text.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some("nameserver"))
                .then(|| it.next())
                .flatten()
        })
        .filter_map(|ip| ip.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

fn is_stub(addr: &SocketAddr) -> bool {
    matches!(addr.ip(), IpAddr::V4(v4) if v4.octets()[0] == 127 && v4.octets()[3] == 53 && v4.octets()[1] == 0)
}

impl Upstreams {
    /// From `resolv_conf`, replacing a systemd-resolved stub by the servers
    /// of `systemd_resolv_conf` when that file exists.
    pub fn from_files(resolv_conf: &Path, systemd_resolv_conf: &Path) -> Self {
        let main = std::fs::read_to_string(resolv_conf).unwrap_or_default();
        let mut servers = parse_resolv_conf(&main);
        if servers.iter().any(is_stub)
            && let Ok(real) = std::fs::read_to_string(systemd_resolv_conf)
        {
            let real = parse_resolv_conf(&real);
            if !real.is_empty() {
                servers = real;
            }
        }
        Upstreams {
            servers,
            timeout: Duration::from_secs(2),
        }
    }

    /// The host's upstreams.
    pub fn from_host() -> Self {
        Self::from_files(
            Path::new("/etc/resolv.conf"),
            Path::new("/run/systemd/resolve/resolv.conf"),
        )
    }

    /// Forwards a UDP query; `None` when no server answered in time.
    pub async fn forward_udp(&self, query: &[u8]) -> Option<Vec<u8>> {
        let id = query.get(..2)?;
        for server in &self.servers {
            let bind: SocketAddr = if server.is_ipv4() {
                "0.0.0.0:0".parse().expect("literal")
            } else {
                "[::]:0".parse().expect("literal")
            };
            let attempt = async {
                let sock = UdpSocket::bind(bind).await.ok()?;
                sock.connect(server).await.ok()?;
                sock.send(query).await.ok()?;
                let mut buf = vec![0u8; 65535];
                loop {
                    let n = sock.recv(&mut buf).await.ok()?;
                    if n >= 12 && &buf[..2] == id {
                        buf.truncate(n);
                        return Some(buf);
                    }
                }
            };
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Some(reply)) => return Some(reply),
                _ => tracing::debug!(%server, "upstream did not answer"),
            }
        }
        None
    }

    /// Forwards a query over TCP (the query without its length prefix).
    pub async fn forward_tcp(&self, query: &[u8]) -> Option<Vec<u8>> {
        for server in &self.servers {
            let attempt = async {
                let mut s = TcpStream::connect(server).await.ok()?;
                let len = u16::try_from(query.len()).ok()?;
                s.write_all(&len.to_be_bytes()).await.ok()?;
                s.write_all(query).await.ok()?;
                let n = s.read_u16().await.ok()?;
                let mut buf = vec![0u8; usize::from(n)];
                s.read_exact(&mut buf).await.ok()?;
                Some(buf)
            };
            if let Ok(Some(reply)) = tokio::time::timeout(self.timeout, attempt).await {
                return Some(reply);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_skips_stub() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("resolv.conf");
        let sd = dir.path().join("sd.conf");
        std::fs::write(
            &main,
            "# x\nnameserver 127.0.0.53\noptions edns0\nsearch lan\n",
        )
        .unwrap();
        std::fs::write(&sd, "nameserver 192.0.2.1\nnameserver fe80::1%eth0\n").unwrap();
        let u = Upstreams::from_files(&main, &sd);
        assert_eq!(
            u.servers,
            vec![
                "192.0.2.1:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
        // no systemd file: keep the stub (reachable from the host namespace)
        let u = Upstreams::from_files(&main, &dir.path().join("none"));
        assert_eq!(u.servers, vec!["127.0.0.53:53".parse().unwrap()]);
        std::fs::write(&main, "nameserver 10.0.0.1\n").unwrap();
        assert_eq!(
            Upstreams::from_files(&main, &sd).servers,
            vec!["10.0.0.1:53".parse().unwrap()]
        );
    }
}
