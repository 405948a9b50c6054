//! Namespace sandbox and small network clients for the privileged tests.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};
use rstack_netns::{Config, Networks};
use simple_dns::rdata::RData;
use simple_dns::{CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, RCODE, TYPE};

pub const CHILD_ENV: &str = "RSTACK_NETNS_TEST_CHILD";
pub const WORKER_ENV: &str = "RSTACK_NETNS_TEST_WORKER";

pub type Case = fn() -> Result<(), String>;

/// Why the privileged tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not running as root".into());
    }
    for tool in ["nft", "ip"] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

/// A tool one case needs beyond the common ones, when it is missing.
pub fn missing_tool(case: &str) -> Option<String> {
    let busybox = std::path::Path::new("/bin/busybox");
    (case.starts_with("busybox") && !busybox.exists())
        .then(|| "/bin/busybox is not installed (busybox-static)".to_string())
}

/// Runs case `name` in a re-executed child inside fresh net+mount namespaces.
pub fn run_in_namespace(name: &str) -> Result<(), String> {
    run_in_namespace_output(name).map(drop)
}

/// Like `run_in_namespace`, returning the child's stdout.
pub fn run_in_namespace_output(name: &str) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.env(CHILD_ENV, name);
    // SAFETY: unshare is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
                .map_err(std::io::Error::from)
        });
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start test child: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{name} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Entry of the child: sandbox set-up, then the case.
pub fn child_main(name: &str, cases: Vec<(&'static str, Case)>) -> i32 {
    let setup = || -> Result<(), String> {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| format!("make / private: {e}"))?;
        sh("ip link set lo up")?;
        Ok(())
    };
    let result = setup().and_then(|()| match cases.iter().find(|(n, _)| *n == name) {
        Some((_, f)) => f(),
        None => Err(format!("unknown case {name}")),
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("FAILED: {e}");
            1
        }
    }
}

/// Runs a shell command in the test namespace, returning stdout.
pub fn sh(cmd: &str) -> Result<String, String> {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A scratch run dir and the networking layer over it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub nets: Networks,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let nets = Networks::new(Config::new(dir.path()));
        Env { dir, nets }
    }
    pub fn run_dir(&self) -> &Path {
        self.dir.path()
    }
    /// A new pinned "container" namespace.
    pub fn container(&self, id: &str) -> PathBuf {
        let p = self.nets.paths().netns_dir().join(id);
        rstack_netns::create_pinned_netns(&p).expect("pin netns");
        p
    }
}

/// Runs `f` on a thread inside the namespace at `netns`.
pub fn in_netns<T: Send>(netns: &Path, f: impl FnOnce() -> T + Send) -> T {
    let file = std::fs::File::open(netns).expect("open netns");
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("netns thread")
    })
}

/// Starts a TCP server in `netns` on `port` that answers every connection
/// with "<tag> <peer ip>\n". Runs until the process exits.
pub fn tcp_server(netns: &Path, port: u16, tag: &str) {
    let l = in_netns(netns, || {
        TcpListener::bind(("0.0.0.0", port)).expect("bind tcp server")
    });
    let tag = tag.to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let peer = s
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            let _ = s.write_all(format!("{tag} {peer}\n").as_bytes());
        }
    });
}

/// Starts a UDP echo-ish server in `netns`: replies "<tag> <peer ip>".
pub fn udp_server(netns: &Path, port: u16, tag: &str) {
    let u = in_netns(netns, || {
        UdpSocket::bind(("0.0.0.0", port)).expect("bind udp server")
    });
    let tag = tag.to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((_, peer)) = u.recv_from(&mut buf) {
            let _ = u.send_to(format!("{tag} {}", peer.ip()).as_bytes(), peer);
        }
    });
}

/// Connects (from the current thread's namespace) and reads the greeting.
pub fn tcp_get(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok();
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("read {addr}: {e}"))?;
    Ok(out.trim().to_string())
}

pub fn udp_get(addr: SocketAddr) -> Result<String, String> {
    let u = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    u.set_read_timeout(Some(Duration::from_secs(3))).ok();
    u.send_to(b"ping", addr)
        .map_err(|e| format!("send {addr}: {e}"))?;
    let mut buf = [0u8; 512];
    let (n, _) = u
        .recv_from(&mut buf)
        .map_err(|e| format!("recv {addr}: {e}"))?;
    Ok(String::from_utf8_lossy(&buf[..n]).to_string())
}

/// What a DNS query returned.
#[derive(Debug, PartialEq, Eq)]
pub struct DnsReply {
    pub rcode: RCODE,
    pub addrs: Vec<Ipv4Addr>,
    pub names: Vec<String>,
}

pub fn dns_query_bytes(name: &str, t: TYPE, id: u16) -> Vec<u8> {
    let mut p = Packet::new_query(id);
    p.set_flags(PacketFlag::RECURSION_DESIRED);
    p.questions.push(Question::new(
        Name::new(name).expect("name"),
        QTYPE::TYPE(t),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    p.build_bytes_vec().expect("build")
}

pub fn parse_reply(bytes: &[u8]) -> Result<DnsReply, String> {
    let p = Packet::parse(bytes).map_err(|e| format!("bad dns reply: {e}"))?;
    let mut addrs = Vec::new();
    let mut names = Vec::new();
    for a in &p.answers {
        match &a.rdata {
            RData::A(a) => addrs.push(Ipv4Addr::from(a.address)),
            RData::PTR(p) => names.push(p.0.to_string()),
            _ => {}
        }
    }
    Ok(DnsReply {
        rcode: p.rcode(),
        addrs,
        names,
    })
}

/// Asks 127.0.0.11 from inside `netns` (UDP or TCP).
pub fn dns(netns: &Path, name: &str, t: TYPE, tcp: bool) -> Result<DnsReply, String> {
    in_netns(netns, || {
        let q = dns_query_bytes(name, t, 0x4242);
        let server: SocketAddr = "127.0.0.11:53".parse().expect("literal");
        let bytes = if tcp {
            let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(3))
                .map_err(|e| format!("dns tcp: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut msg = (q.len() as u16).to_be_bytes().to_vec();
            msg.extend_from_slice(&q);
            s.write_all(&msg).map_err(|e| e.to_string())?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len)
                .map_err(|e| format!("dns tcp read: {e}"))?;
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut buf).map_err(|e| e.to_string())?;
            buf
        } else {
            let u = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
            u.set_read_timeout(Some(Duration::from_secs(5))).ok();
            u.send_to(&q, server)
                .map_err(|e| format!("dns send: {e}"))?;
            let mut buf = [0u8; 4096];
            let (n, _) = u
                .recv_from(&mut buf)
                .map_err(|e| format!("dns recv for {name}: {e}"))?;
            buf[..n].to_vec()
        };
        parse_reply(&bytes)
    })
}

/// A fake upstream resolver on 127.0.0.1: `example.test` is 192.0.2.99,
/// everything else NXDOMAIN. Returns its address.
pub fn fake_upstream() -> SocketAddr {
    let u = UdpSocket::bind("127.0.0.1:0").expect("bind fake upstream");
    let addr = u.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = u.recv_from(&mut buf) {
            let Ok(q) = Packet::parse(&buf[..n]) else {
                continue;
            };
            let mut r = Packet::new_reply(q.id());
            r.questions = q.questions.clone();
            let known = q
                .questions
                .first()
                .is_some_and(|q| q.qname.to_string() == "example.test");
            if known {
                r.answers.push(simple_dns::ResourceRecord::new(
                    q.questions[0].qname.clone(),
                    CLASS::IN,
                    60,
                    RData::A(simple_dns::rdata::A {
                        address: u32::from(Ipv4Addr::new(192, 0, 2, 99)),
                    }),
                ));
            } else {
                *r.rcode_mut() = RCODE::NameError;
            }
            let _ = u.send_to(&r.build_bytes_vec().expect("build"), peer);
        }
    });
    addr
}

/// Names of the links in the test namespace.
pub fn links() -> Result<Vec<String>, String> {
    let out = sh("ip -j link")?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["ifname"].as_str().map(String::from))
        .collect())
}

pub fn ruleset() -> Result<String, String> {
    sh("nft -j list ruleset")
}

/// Asserts that nothing of rstack is left: links other than lo/test
/// dummies, the nft table, state files, pinned namespaces.
pub fn assert_clean(env: &Env) -> Result<(), String> {
    let links: Vec<String> = links()?
        .into_iter()
        .filter(|l| l != "lo" && !l.starts_with("tdummy"))
        .collect();
    if !links.is_empty() {
        return Err(format!("links left behind: {links:?}"));
    }
    let rules = ruleset()?;
    if rules.contains("\"rstack\"") {
        return Err(format!("nft table left behind: {rules}"));
    }
    let nets_dir = env.nets.paths().networks_dir();
    let left: Vec<String> = std::fs::read_dir(&nets_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    if !left.is_empty() {
        return Err(format!("network state left behind: {left:?}"));
    }
    let ns: Vec<_> = std::fs::read_dir(env.nets.paths().netns_dir())
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    if !ns.is_empty() {
        return Err(format!("pinned netns files left behind: {ns:?}"));
    }
    Ok(())
}

/// `cond` or an error with `msg`.
pub fn check(cond: bool, msg: impl Into<String>) -> Result<(), String> {
    if cond { Ok(()) } else { Err(msg.into()) }
}
