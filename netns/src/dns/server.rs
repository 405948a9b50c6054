//! The resolver's sockets and wire format (simple-dns, chosen for its small
//! size and plain API; the logic lives in `backend`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use simple_dns::rdata::{A, PTR, RData};
use simple_dns::{CLASS, Name, Packet, PacketFlag, QTYPE, RCODE, ResourceRecord, TYPE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use super::backend::{self, Answer, QueryType};
use super::records::Records;
use super::upstream::Upstreams;
use crate::state::Paths;

/// The address every container's resolv.conf names.
pub const RESOLVER_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const TTL: u32 = 600;

/// Errors of serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Netns(#[from] rstack_sys::netns::Error),
    #[error("cannot bind the resolver on {addr} in {path}")]
    Bind {
        addr: SocketAddr,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the resolver must be started from within a tokio runtime")]
    NoRuntime(#[source] io::Error),
}

struct Inner {
    records: Records,
    upstreams: Upstreams,
    counter: AtomicUsize,
}

/// The resolver: shared by all the containers it serves.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

/// Sockets and tasks serving one container; dropping it stops serving.
#[derive(Debug)]
pub struct ServeHandle {
    tasks: Vec<JoinHandle<()>>,
}

impl ServeHandle {
    /// Stops serving and waits until the sockets are closed (so the address
    /// can be bound again at once, e.g. by a new supervisor).
    pub async fn stop(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The result of answering from local records.
enum Local {
    Reply(Vec<u8>),
    Forward,
    Drop,
}

fn qtype(q: &QTYPE) -> QueryType {
    match q {
        QTYPE::TYPE(TYPE::A) => QueryType::A,
        QTYPE::TYPE(TYPE::AAAA) => QueryType::Aaaa,
        QTYPE::TYPE(TYPE::PTR) => QueryType::Ptr,
        _ => QueryType::Other,
    }
}

/// A reply with just a header and the question: `rcode` set.
fn error_reply(query: &[u8], rcode: RCODE) -> Option<Vec<u8>> {
    let q = Packet::parse(query).ok();
    let id = match &q {
        Some(p) => p.id(),
        None => u16::from_be_bytes([*query.first()?, *query.get(1)?]),
    };
    let mut reply = Packet::new_reply(id);
    reply.set_flags(PacketFlag::RECURSION_AVAILABLE);
    if let Some(q) = q {
        if q.has_flags(PacketFlag::RECURSION_DESIRED) {
            reply.set_flags(PacketFlag::RECURSION_DESIRED);
        }
        reply.questions = q.questions.clone();
    }
    *reply.rcode_mut() = rcode;
    reply.build_bytes_vec().ok()
}

impl Resolver {
    /// A resolver over the network state files under `run_dir`.
    pub fn new(run_dir: &Path, upstreams: Upstreams) -> Self {
        Resolver {
            inner: Arc::new(Inner {
                records: Records::new(Paths::new(run_dir).networks_dir()),
                upstreams,
                counter: AtomicUsize::new(0),
            }),
        }
    }

    fn answer_local(&self, asker: &str, query: &[u8], udp: bool) -> Local {
        let Ok(q) = Packet::parse(query) else {
            return error_reply(query, RCODE::FormatError).map_or(Local::Drop, Local::Reply);
        };
        if q.has_flags(PacketFlag::RESPONSE) {
            return Local::Drop;
        }
        let [question] = q.questions.as_slice() else {
            return error_reply(query, RCODE::FormatError).map_or(Local::Drop, Local::Reply);
        };
        let networks = self.inner.records.snapshot();
        let rotate = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        let qname = question.qname.to_string();
        let answer = backend::lookup(&networks, asker, &qname, qtype(&question.qtype), rotate);
        tracing::trace!(asker, %qname, ?answer, "dns query");
        let mut reply = Packet::new_reply(q.id());
        reply.set_flags(PacketFlag::RECURSION_AVAILABLE);
        if q.has_flags(PacketFlag::RECURSION_DESIRED) {
            reply.set_flags(PacketFlag::RECURSION_DESIRED);
        }
        reply.questions.push(question.clone());
        let names: Vec<String>;
        match answer {
            Answer::Forward => return Local::Forward,
            Answer::NxDomain => *reply.rcode_mut() = RCODE::NameError,
            Answer::NoData => {}
            Answer::Addrs(ips) => {
                for ip in ips {
                    reply.answers.push(ResourceRecord::new(
                        question.qname.clone(),
                        CLASS::IN,
                        TTL,
                        RData::A(A { address: ip.into() }),
                    ));
                }
            }
            Answer::Names(n) => {
                names = n;
                for target in &names {
                    let Ok(name) = Name::new(target) else {
                        continue;
                    };
                    reply.answers.push(ResourceRecord::new(
                        question.qname.clone(),
                        CLASS::IN,
                        TTL,
                        RData::PTR(PTR(name)),
                    ));
                }
            }
        }
        let Ok(mut bytes) = reply.build_bytes_vec() else {
            return error_reply(query, RCODE::ServerFailure).map_or(Local::Drop, Local::Reply);
        };
        // classic UDP limit: truncate and let the client retry over TCP
        while udp && bytes.len() > 512 && !reply.answers.is_empty() {
            reply.answers.pop();
            reply.set_flags(PacketFlag::TRUNCATION);
            match reply.build_bytes_vec() {
                Ok(b) => bytes = b,
                Err(_) => return Local::Drop,
            }
        }
        Local::Reply(bytes)
    }

    /// Answers one query as container `asker` would get it (local records
    /// or upstream; SERVFAIL when upstream is gone). `None`: no reply.
    pub async fn answer(&self, asker: &str, query: &[u8], udp: bool) -> Option<Vec<u8>> {
        match self.answer_local(asker, query, udp) {
            Local::Reply(r) => Some(r),
            Local::Drop => None,
            Local::Forward => self.forward(query, udp).await,
        }
    }

    async fn forward(&self, query: &[u8], udp: bool) -> Option<Vec<u8>> {
        let up = &self.inner.upstreams;
        let got = if udp {
            up.forward_udp(query).await
        } else {
            up.forward_tcp(query).await
        };
        got.or_else(|| error_reply(query, RCODE::ServerFailure))
    }

    /// Serves container `container_id` on 127.0.0.11:53 (UDP and TCP)
    /// inside its network namespace `netns`. Call from within a tokio
    /// runtime; serving stops when the handle is dropped.
    pub fn serve(&self, container_id: &str, netns: &Path) -> Result<ServeHandle, Error> {
        let addr = SocketAddr::from((RESOLVER_ADDR, 53));
        let bind_err = |source| Error::Bind {
            addr,
            path: netns.into(),
            source,
        };
        // Only that thread enters the namespace; the sockets keep it.
        let (udp, tcp) = rstack_sys::netns::run_in(Some(netns), "rstack-dns-bind", || {
            let udp = std::net::UdpSocket::bind(addr).map_err(bind_err)?;
            let tcp = std::net::TcpListener::bind(addr).map_err(bind_err)?;
            Ok::<_, Error>((udp, tcp))
        })??;
        self.serve_on(container_id, udp, tcp)
    }

    /// Serves `container_id` on already bound sockets.
    pub fn serve_on(
        &self,
        container_id: &str,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
    ) -> Result<ServeHandle, Error> {
        udp.set_nonblocking(true).map_err(Error::NoRuntime)?;
        tcp.set_nonblocking(true).map_err(Error::NoRuntime)?;
        let udp = Arc::new(UdpSocket::from_std(udp).map_err(Error::NoRuntime)?);
        let tcp = TcpListener::from_std(tcp).map_err(Error::NoRuntime)?;
        let asker: Arc<str> = Arc::from(container_id);
        let this = self.clone();
        let a = asker.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                let query = &buf[..n];
                match this.answer_local(&a, query, true) {
                    Local::Reply(r) => {
                        let _ = udp.send_to(&r, peer).await;
                    }
                    Local::Drop => {}
                    Local::Forward => {
                        let (this, udp, query) = (this.clone(), udp.clone(), query.to_vec());
                        tokio::spawn(async move {
                            if let Some(r) = this.forward(&query, true).await {
                                let _ = udp.send_to(&r, peer).await;
                            }
                        });
                    }
                }
            }
        });
        let this = self.clone();
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = tcp.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (this, a) = (this.clone(), asker.clone());
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(30), serve_tcp(this, a, stream))
                            .await;
                });
            }
        });
        Ok(ServeHandle {
            tasks: vec![udp_task, tcp_task],
        })
    }
}

async fn serve_tcp(this: Resolver, asker: Arc<str>, mut stream: TcpStream) -> io::Result<()> {
    loop {
        let len = match stream.read_u16().await {
            Ok(l) => usize::from(l),
            Err(_) => return Ok(()),
        };
        let mut query = vec![0u8; len];
        stream.read_exact(&mut query).await?;
        let Some(reply) = this.answer(&asker, &query, false).await else {
            continue;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            continue;
        };
        stream.write_all(&n.to_be_bytes()).await?;
        stream.write_all(&reply).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{sample, sample_endpoint};

    fn query(name: &str, t: TYPE) -> Vec<u8> {
        let mut p = Packet::new_query(0x1234);
        p.set_flags(PacketFlag::RECURSION_DESIRED);
        p.questions.push(simple_dns::Question::new(
            Name::new(name).unwrap(),
            QTYPE::TYPE(t),
            simple_dns::QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.build_bytes_vec().unwrap()
    }

    #[tokio::test]
    async fn wire_answers() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let mut n = sample("web", "10.0.0.0/24");
        n.endpoints.insert(
            "a".into(),
            sample_endpoint("a", "a", Ipv4Addr::new(10, 0, 0, 2), &["svc"]),
        );
        n.save(&paths).unwrap();
        let r = Resolver::new(
            dir.path(),
            Upstreams {
                servers: vec![],
                timeout: Duration::from_millis(100),
            },
        );
        let reply = r.answer("a", &query("svc", TYPE::A), true).await.unwrap();
        let p = Packet::parse(&reply).unwrap();
        assert_eq!(p.id(), 0x1234);
        assert_eq!(p.rcode(), RCODE::NoError);
        assert!(
            matches!(&p.answers[0].rdata, RData::A(a) if a.address == u32::from(Ipv4Addr::new(10, 0, 0, 2)))
        );
        let p = Packet::parse(&r.answer("a", &query("nope", TYPE::A), true).await.unwrap())
            .unwrap()
            .rcode();
        assert_eq!(p, RCODE::NameError);
        let bytes = r
            .answer("a", &query("2.0.0.10.in-addr.arpa", TYPE::PTR), true)
            .await
            .unwrap();
        let p = Packet::parse(&bytes).unwrap();
        assert!(matches!(&p.answers[0].rdata, RData::PTR(PTR(n)) if n.to_string() == "a"));
        // no upstream: SERVFAIL
        let bytes = r
            .answer("a", &query("example.com", TYPE::A), true)
            .await
            .unwrap();
        assert_eq!(Packet::parse(&bytes).unwrap().rcode(), RCODE::ServerFailure);
    }
}
