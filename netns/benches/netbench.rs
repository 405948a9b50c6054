//! Network benchmarks, printed (never asserted): embedded DNS lookup latency
//! (p50/p99) and queries/s from inside a container, and TCP throughput
//! through a published port (DNAT) versus straight to the container.
//!
//! Runs as root inside a fresh network+mount namespace (this binary
//! re-executes itself under unshare), like the privileged tests.
//! `cargo bench -p rstack-netns --bench netbench` (add `--profile dev` to
//! skip the optimised build).

#[path = "../tests/privileged/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use rstack_netns::dns::{Resolver, Upstreams};
use rstack_netns::{AttachRequest, CreateOptions};

const DNS_QUERIES: usize = 20_000;
const TCP_SECONDS: f64 = 2.0;

fn main() {
    if std::env::var(harness::CHILD_ENV).is_ok() {
        let code = harness::child_main("bench", vec![("bench", bench as harness::Case)]);
        std::process::exit(code);
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list`
    }
    if let Some(reason) = harness::skip_reason() {
        println!("netbench SKIPPED: {reason}");
        return;
    }
    match harness::run_in_namespace_output("bench") {
        Ok(out) => print!("{out}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

fn req(network: &str, id: &str, netns: &std::path::Path, ports: &[&str]) -> AttachRequest {
    AttachRequest {
        network: network.into(),
        container_id: id.into(),
        name: id.into(),
        netns: netns.into(),
        ports: ports
            .iter()
            .map(|p| p.parse().expect("port spec"))
            .collect(),
        ..Default::default()
    }
}

fn bench() -> Result<(), String> {
    let env = harness::Env::new();
    harness::sh(
        "ip link add tdummy0 type bridge && ip addr add 10.99.0.1/24 dev tdummy0 && ip link set tdummy0 up",
    )?;
    env.nets
        .create(&CreateOptions {
            name: "web".into(),
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
    let (a, b) = (env.container("a"), env.container("b"));
    let att_a = env
        .nets
        .attach(&req("web", "a", &a, &["8080:80"]))
        .map_err(|e| e.to_string())?;
    env.nets
        .attach(&req("web", "b", &b, &[]))
        .map_err(|e| e.to_string())?;

    // DNS
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let _g = rt.enter();
    let resolver = Resolver::new(
        env.run_dir(),
        Upstreams {
            servers: vec![],
            timeout: Duration::from_millis(200),
        },
    );
    let _h = resolver.serve("b", &b).map_err(|e| e.to_string())?;
    let (mut lat, total) = harness::in_netns(&b, || {
        let u = UdpSocket::bind("0.0.0.0:0").expect("bind");
        u.connect("127.0.0.11:53").expect("connect");
        u.set_read_timeout(Some(Duration::from_secs(2))).ok();
        let mut buf = [0u8; 512];
        let mut lat = Vec::with_capacity(DNS_QUERIES);
        for i in 0..(DNS_QUERIES + 1000) {
            let q = harness::dns_query_bytes("a", simple_dns::TYPE::A, i as u16);
            let t = Instant::now();
            u.send(&q).expect("send");
            let n = u.recv(&mut buf).expect("dns reply");
            if i >= 1000 {
                lat.push(t.elapsed());
            }
            assert!(n > 12);
        }
        let total: Duration = lat.iter().sum();
        (lat, total)
    });
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "dns: {} sequential A lookups from inside a container: p50 {:.3} ms, p99 {:.3} ms, {:.0} queries/s",
        lat.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat.len() as f64 / total.as_secs_f64()
    );

    // TCP throughput: a sink in container a
    let l = harness::in_netns(&a, || TcpListener::bind("0.0.0.0:80").expect("bind sink"));
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    let run = |addr: SocketAddr| -> Result<f64, String> {
        let mut s = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
        let buf = vec![7u8; 1 << 18];
        let start = Instant::now();
        let mut sent = 0usize;
        while start.elapsed().as_secs_f64() < TCP_SECONDS {
            s.write_all(&buf).map_err(|e| e.to_string())?;
            sent += buf.len();
        }
        Ok(sent as f64 / start.elapsed().as_secs_f64() / 1e9)
    };
    let direct = run(SocketAddr::from((att_a.ipv4, 80)))?;
    let via_host = run(SocketAddr::from((Ipv4Addr::new(10, 99, 0, 1), 8080)))?;
    let via_lo = run(SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)))?;
    println!("tcp: direct to container {direct:.2} GB/s");
    println!(
        "tcp: published port via host address {via_host:.2} GB/s ({:.2} x direct)",
        via_host / direct
    );
    println!(
        "tcp: published port via 127.0.0.1 {via_lo:.2} GB/s ({:.2} x direct)",
        via_lo / direct
    );
    Ok(())
}
