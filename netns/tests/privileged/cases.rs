//! Networks, attach/detach, DNS and IPAM, each in its own namespace.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rstack_netns::dns::{Resolver, ServeHandle, Upstreams};
use rstack_netns::{AttachRequest, Attachment, Config, CreateOptions, Networks};
use simple_dns::{RCODE, TYPE};

use super::harness::{self, Env, assert_clean, check, dns, in_netns, sh, tcp_get, tcp_server};

fn create(
    env: &Env,
    name: &str,
    subnet: Option<&str>,
) -> Result<rstack_netns::state::NetworkState, String> {
    env.nets
        .create(&CreateOptions {
            name: name.into(),
            subnet: subnet.map(String::from),
            ..Default::default()
        })
        .map_err(|e| format!("create {name}: {e}"))
}

pub fn attach_req(
    network: &str,
    id: &str,
    netns: &std::path::Path,
    aliases: &[&str],
) -> AttachRequest {
    AttachRequest {
        network: network.into(),
        container_id: id.into(),
        name: id.into(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        netns: netns.into(),
        ..Default::default()
    }
}

pub fn pinned_netns_lifecycle() -> Result<(), String> {
    let env = Env::new();
    let p = env.nets.paths().netns_dir().join("c1");
    rstack_netns::create_pinned_netns(&p).map_err(|e| format!("{e:?}"))?;
    check(
        rstack_netns::create_pinned_netns(&p).is_err(),
        "pinning twice must fail",
    )?;
    let lo_up = in_netns(&p, || sh("ip -j link show lo"))?;
    check(
        lo_up.contains("\"UP\""),
        format!("lo not up in pinned netns: {lo_up}"),
    )?;
    // a namespace of a process
    let mut child = Command::new("sleep")
        .arg("30")
        .spawn()
        .map_err(|e| e.to_string())?;
    let p2 = env.nets.paths().netns_dir().join("c2");
    rstack_netns::pin_netns_of_pid(child.id(), &p2).map_err(|e| format!("{e:?}"))?;
    let _ = child.kill();
    let _ = child.wait();
    check(
        in_netns(&p2, || sh("ip -j link")).is_ok(),
        "pinned pid netns usable after exit",
    )?;
    rstack_netns::remove_pinned_netns(&p).map_err(|e| format!("{e:?}"))?;
    rstack_netns::remove_pinned_netns(&p2).map_err(|e| format!("{e:?}"))?;
    rstack_netns::remove_pinned_netns(&p2)
        .map_err(|e| format!("second remove must be a no-op: {e:?}"))?;
    assert_clean(&env)
}

pub fn network_create_inspect_rm() -> Result<(), String> {
    let env = Env::new();
    let n = env
        .nets
        .create(&CreateOptions {
            name: "web".into(),
            options: [
                (
                    "com.docker.network.bridge.name".to_string(),
                    "rsbr0".to_string(),
                ),
                ("com.docker.network.driver.mtu".into(), "1400".into()),
            ]
            .into(),
            ..Default::default()
        })
        .map_err(|e| format!("{e:?}"))?;
    check(
        n.subnet.to_string() == "172.17.0.0/16",
        format!("first subnet {}", n.subnet),
    )?;
    check(n.bridge == "rsbr0", "bridge name option")?;
    let link = sh("ip -j addr show rsbr0")?;
    check(
        link.contains("172.17.0.1") && link.contains("\"mtu\":1400"),
        format!("bridge: {link}"),
    )?;
    check(
        sh("cat /proc/sys/net/ipv4/conf/rsbr0/route_localnet")?.trim() == "1",
        "route_localnet",
    )?;
    check(
        sh("cat /proc/sys/net/ipv4/ip_forward")?.trim() == "1",
        "ip_forward in the test namespace",
    )?;
    let rules = harness::ruleset()?;
    check(
        rules.contains("masquerade") && rules.contains("rsbr0"),
        format!("nft: {rules}"),
    )?;
    // errors leave nothing behind
    let dup = create(&env, "web", None).unwrap_err();
    check(dup.contains("already exists"), dup)?;
    let ov = create(&env, "other", Some("172.17.3.0/24")).unwrap_err();
    check(ov.contains("overlaps"), ov)?;
    let bad = create(&env, "other", Some("300.1.0.0/16")).unwrap_err();
    check(bad.contains("invalid subnet"), bad)?;
    check(
        env.nets.list().map_err(|e| e.to_string())?.len() == 1,
        "only one network",
    )?;
    check(
        env.nets.inspect(&n.id[..12]).is_ok(),
        "inspect by id prefix",
    )?;
    let second = create(&env, "second", None)?;
    check(
        second.subnet.to_string() == "172.18.0.0/16",
        format!("second subnet {}", second.subnet),
    )?;
    // rm refuses while a container is attached
    let c = env.container("c1");
    env.nets
        .attach(&attach_req("web", "c1", &c, &[]))
        .map_err(|e| format!("{e:?}"))?;
    let busy = env.nets.remove("web").unwrap_err().to_string();
    check(busy.contains("active endpoints"), busy)?;
    // a container whose namespace is gone is stale: rm cleans it
    rstack_netns::remove_pinned_netns(&c).map_err(|e| e.to_string())?;
    env.nets.remove("web").map_err(|e| format!("{e:?}"))?;
    env.nets.remove("second").map_err(|e| format!("{e:?}"))?;
    let gone = env.nets.remove("web").unwrap_err().to_string();
    check(gone.contains("not found"), gone)?;
    assert_clean(&env)
}

pub fn subnet_pool_avoids_routes() -> Result<(), String> {
    let env = Env::new();
    sh(
        "ip link add tdummy0 type bridge && ip addr add 172.17.5.1/24 dev tdummy0 && ip link set tdummy0 up && ip route add 172.18.0.0/15 dev tdummy0",
    )?;
    let n = create(&env, "a", None)?;
    check(
        n.subnet.to_string() == "172.20.0.0/16",
        format!("got {}", n.subnet),
    )?;
    let nets = Networks::new(Config {
        pool: vec!["10.50.0.0/23=24".parse().map_err(|e| format!("{e}"))?],
        ..Config::new(env.run_dir())
    });
    nets.create(&CreateOptions {
        name: "p1".into(),
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    nets.create(&CreateOptions {
        name: "p2".into(),
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let err = nets
        .create(&CreateOptions {
            name: "p3".into(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    check(err.contains("fully subnetted"), err)?;
    check(
        !env.nets.paths().network_file("p3").exists(),
        "exhausted pool records nothing",
    )?;
    for n in ["a", "p1", "p2"] {
        env.nets.remove(n).map_err(|e| e.to_string())?;
    }
    assert_clean(&env)
}

pub fn containers_reach_and_resolve() -> Result<(), String> {
    let env = Env::new();
    create(&env, "web", None)?;
    create(&env, "other", None)?;
    let (a, b, b2, c) = (
        env.container("a"),
        env.container("b"),
        env.container("b2"),
        env.container("c"),
    );
    let att_a = env
        .nets
        .attach(&attach_req("web", "a", &a, &["db-alias"]))
        .map_err(|e| format!("{e:?}"))?;
    let att_b = env
        .nets
        .attach(&attach_req("web", "b", &b, &["svc"]))
        .map_err(|e| format!("{e:?}"))?;
    let att_b2 = env
        .nets
        .attach(&attach_req("web", "b2", &b2, &["svc"]))
        .map_err(|e| format!("{e:?}"))?;
    env.nets
        .attach(&attach_req("other", "c", &c, &[]))
        .map_err(|e| format!("{e:?}"))?;
    check(att_a.ifname == "eth0", "first interface is eth0")?;
    let route = in_netns(&b, || sh("ip -j route show default"))?;
    check(
        route.contains(&att_b.gateway.to_string()),
        format!("default route: {route}"),
    )?;

    // traffic between the two containers
    tcp_server(&a, 80, "a");
    let got = in_netns(&b, || tcp_get(SocketAddr::from((att_a.ipv4, 80))))?;
    check(got == format!("a {}", att_b.ipv4), format!("b -> a: {got}"))?;

    // DNS
    let upstream = harness::fake_upstream();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let _guard = rt.enter();
    let resolver = Resolver::new(
        env.run_dir(),
        Upstreams {
            servers: vec![upstream],
            timeout: Duration::from_millis(500),
        },
    );
    let mut handles = Vec::new();
    for (id, ns) in [("a", &a), ("b", &b), ("c", &c)] {
        handles.push(
            resolver
                .serve(id, ns)
                .map_err(|e| format!("serve {id}: {e:?}"))?,
        );
    }
    resolve_names(&a, &b, &c, &att_a, &att_b, &att_b2)?;
    name_follows_container(&env, &a, &b)?;
    servfail_without_upstream(&env, &rt, handles, &b)?;

    for (net, id) in [("web", "a"), ("web", "b"), ("web", "b2"), ("other", "c")] {
        env.nets.detach(net, id).map_err(|e| e.to_string())?;
    }
    for ns in [&a, &b, &b2, &c] {
        rstack_netns::remove_pinned_netns(ns).map_err(|e| e.to_string())?;
    }
    env.nets.remove("web").map_err(|e| e.to_string())?;
    env.nets.remove("other").map_err(|e| e.to_string())?;
    assert_clean(&env)
}

/// Names, aliases, replicas round-robin, other networks, PTR and forwarding.
fn resolve_names(
    a: &Path,
    b: &Path,
    c: &Path,
    att_a: &Attachment,
    att_b: &Attachment,
    att_b2: &Attachment,
) -> Result<(), String> {
    let r = dns(b, "a", TYPE::A, false)?;
    check(r.addrs == vec![att_a.ipv4], format!("b resolves a: {r:?}"))?;
    let r = dns(b, "db-alias", TYPE::A, true)?;
    check(
        r.addrs == vec![att_a.ipv4],
        format!("alias over tcp: {r:?}"),
    )?;
    let r1 = dns(a, "svc", TYPE::A, false)?;
    let r2 = dns(a, "svc", TYPE::A, false)?;
    let mut both = vec![att_b.ipv4, att_b2.ipv4];
    both.sort();
    let mut s1 = r1.addrs.clone();
    s1.sort();
    check(
        s1 == both && r1.addrs != r2.addrs,
        format!("replicas round-robin: {r1:?} {r2:?}"),
    )?;
    let r = dns(c, "a", TYPE::A, false)?;
    check(
        r.rcode == RCODE::NameError,
        format!("other network gets NXDOMAIN: {r:?}"),
    )?;
    let rev: Vec<String> = att_a
        .ipv4
        .octets()
        .iter()
        .rev()
        .map(|o| o.to_string())
        .collect();
    let r = dns(
        b,
        &format!("{}.in-addr.arpa", rev.join(".")),
        TYPE::PTR,
        false,
    )?;
    check(r.names == vec!["a".to_string()], format!("PTR: {r:?}"))?;
    let r = dns(b, "example.test", TYPE::A, false)?;
    check(
        r.addrs == vec![Ipv4Addr::new(192, 0, 2, 99)],
        format!("forwarded: {r:?}"),
    )?;
    let r = dns(b, "nosuch.test", TYPE::A, false)?;
    check(
        r.rcode == RCODE::NameError,
        format!("upstream NXDOMAIN passed on: {r:?}"),
    )?;
    Ok(())
}

/// The name follows the container live: gone on detach, back on attach.
fn name_follows_container(env: &Env, a: &Path, b: &Path) -> Result<(), String> {
    // the name follows the container live
    env.nets.detach("web", "a").map_err(|e| e.to_string())?;
    let r = dns(b, "a", TYPE::A, false)?;
    check(
        r.rcode == RCODE::NameError,
        format!("removed name stops resolving: {r:?}"),
    )?;
    let again = env
        .nets
        .attach(&attach_req("web", "a", a, &[]))
        .map_err(|e| format!("{e:?}"))?;
    let r = dns(b, "a", TYPE::A, false)?;
    check(
        r.addrs == vec![again.ipv4],
        format!("re-attached name resolves: {r:?}"),
    )?;
    Ok(())
}

/// With the upstream gone: SERVFAIL, not silence.
fn servfail_without_upstream(
    env: &Env,
    rt: &tokio::runtime::Runtime,
    handles: Vec<ServeHandle>,
    b: &Path,
) -> Result<(), String> {
    // upstream gone: SERVFAIL, not silence
    let dead = Resolver::new(
        env.run_dir(),
        Upstreams {
            servers: vec!["127.0.0.1:9".parse().map_err(|e| format!("{e}"))?],
            timeout: Duration::from_millis(300),
        },
    );
    for h in handles {
        rt.block_on(h.stop());
    }
    let h = dead.serve("b", b).map_err(|e| format!("{e:?}"))?;
    let r = dns(b, "example.test", TYPE::A, false)?;
    check(
        r.rcode == RCODE::ServerFailure,
        format!("upstream gone: {r:?}"),
    )?;
    rt.block_on(h.stop());
    Ok(())
}

pub fn internal_network_has_no_way_out() -> Result<(), String> {
    let env = Env::new();
    sh(
        "ip link add tdummy0 type bridge && ip addr add 10.99.0.1/24 dev tdummy0 && ip link set tdummy0 up",
    )?;
    env.nets
        .create(&CreateOptions {
            name: "int".into(),
            internal: true,
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
    let a = env.container("a");
    let b = env.container("b");
    let att_a = env
        .nets
        .attach(&attach_req("int", "a", &a, &[]))
        .map_err(|e| e.to_string())?;
    env.nets
        .attach(&attach_req("int", "b", &b, &[]))
        .map_err(|e| e.to_string())?;
    let routes = in_netns(&a, || sh("ip -j route show default"))?;
    check(
        routes.trim() == "[]" || routes.trim().is_empty(),
        format!("internal network has no default route: {routes}"),
    )?;
    let outside = in_netns(&a, || tcp_get("10.99.0.1:1".parse().expect("literal")));
    check(
        outside.as_ref().is_err_and(|e| e.contains("unreachable")),
        format!("no way out: {outside:?}"),
    )?;
    tcp_server(&a, 80, "a");
    let got = in_netns(&b, || tcp_get(SocketAddr::from((att_a.ipv4, 80))))?;
    check(
        got.starts_with("a "),
        "internal containers reach each other",
    )?;
    let rules = harness::ruleset()?;
    check(
        !rules.contains("masquerade"),
        format!("no masquerade for internal: {rules}"),
    )?;
    env.nets.detach("int", "a").map_err(|e| e.to_string())?;
    env.nets.detach("int", "b").map_err(|e| e.to_string())?;
    rstack_netns::remove_pinned_netns(&a).map_err(|e| e.to_string())?;
    rstack_netns::remove_pinned_netns(&b).map_err(|e| e.to_string())?;
    env.nets.remove("int").map_err(|e| e.to_string())?;
    assert_clean(&env)
}

pub fn static_ip_mac_and_second_network() -> Result<(), String> {
    let env = Env::new();
    create(&env, "n1", Some("10.10.0.0/24"))?;
    create(&env, "n2", Some("10.20.0.0/24"))?;
    let a = env.container("a");
    let mut req = attach_req("n1", "a", &a, &[]);
    req.ipv4_address = Some(Ipv4Addr::new(10, 10, 0, 77));
    req.mac_address = Some("02:42:0a:0a:00:4d".into());
    let att = env.nets.attach(&req).map_err(|e| format!("{e:?}"))?;
    check(att.ipv4 == Ipv4Addr::new(10, 10, 0, 77), "static address")?;
    let link = in_netns(&a, || sh("ip -j addr show eth0"))?;
    check(
        link.contains("02:42:0a:0a:00:4d") && link.contains("10.10.0.77"),
        format!("eth0: {link}"),
    )?;
    // the same static address for another container is refused, nothing left
    let b = env.container("b");
    let mut req_b = attach_req("n1", "b", &b, &[]);
    req_b.ipv4_address = Some(Ipv4Addr::new(10, 10, 0, 77));
    let err = env.nets.attach(&req_b).unwrap_err().to_string();
    check(err.contains("already in use"), err)?;
    check(
        in_netns(&b, || sh("ip -j link"))?.matches("ifname").count() == 1,
        "b has only lo",
    )?;
    // second network: eth1, default route stays on the first
    let att2 = env
        .nets
        .attach(&attach_req("n2", "a", &a, &[]))
        .map_err(|e| format!("{e:?}"))?;
    check(
        att2.ifname == "eth1",
        format!("second interface {}", att2.ifname),
    )?;
    let route = in_netns(&a, || sh("ip -j route show default"))?;
    check(
        route.contains("10.10.0.1") && !route.contains("10.20.0.1"),
        format!("default route: {route}"),
    )?;
    let dup = env
        .nets
        .attach(&attach_req("n2", "a", &a, &[]))
        .unwrap_err()
        .to_string();
    check(dup.contains("already attached"), dup)?;
    env.nets.detach_all("a").map_err(|e| e.to_string())?;
    for ns in [&a, &b] {
        rstack_netns::remove_pinned_netns(ns).map_err(|e| e.to_string())?;
    }
    env.nets.remove("n1").map_err(|e| e.to_string())?;
    env.nets.remove("n2").map_err(|e| e.to_string())?;
    assert_clean(&env)
}

const WORKERS: usize = 4;
const PER_WORKER: usize = 50;

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Worker process: `run_dir,network,index,count`; prints `ip start end`.
pub fn ipam_worker(spec: &str) -> i32 {
    let parts: Vec<&str> = spec.split(',').collect();
    let [run_dir, network, idx, count] = parts.as_slice() else {
        return 2;
    };
    let nets = Networks::new(Config::new(run_dir));
    let count: usize = count.parse().unwrap_or(0);
    for i in 0..count {
        let id = format!("w{idx}-{i}");
        let ns = nets.paths().netns_dir().join(&id);
        if let Err(e) = rstack_netns::create_pinned_netns(&ns) {
            eprintln!("pin {id}: {e:?}");
            return 1;
        }
        let att = match nets.attach(&attach_req(network, &id, &ns, &[])) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("attach {id}: {e:?}");
                return 1;
            }
        };
        let start = now_ns();
        // the address really is on the container's interface
        let shown = in_netns(&ns, || sh("ip -4 -o addr show eth0")).unwrap_or_default();
        if !shown.contains(&format!("{}/", att.ipv4)) {
            eprintln!("{id}: eth0 does not carry {}: {shown}", att.ipv4);
            return 1;
        }
        let end = now_ns();
        if let Err(e) = nets.detach(network, &id) {
            eprintln!("detach {id}: {e:?}");
            return 1;
        }
        let _ = rstack_netns::remove_pinned_netns(&ns);
        println!("{} {start} {end}", att.ipv4);
    }
    0
}

pub fn ipam_concurrent_processes() -> Result<(), String> {
    let env = Env::new();
    // a small subnet so addresses are reused while others hold theirs
    create(&env, "ipam", Some("10.77.0.0/27"))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let handles: Vec<_> = (0..WORKERS)
        .map(|w| {
            let exe = exe.clone();
            let run_dir = env.run_dir().to_path_buf();
            std::thread::spawn(move || {
                Command::new(exe)
                    .env_remove(harness::CHILD_ENV)
                    .env(
                        harness::WORKER_ENV,
                        format!("{},ipam,{w},{PER_WORKER}", run_dir.display()),
                    )
                    .output()
            })
        })
        .collect();
    let mut leases: HashMap<String, Vec<(u128, u128)>> = HashMap::new();
    let mut total = 0;
    for h in handles {
        let out = h
            .join()
            .map_err(|_| "worker thread")?
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "worker failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [ip, s, e] = f.as_slice() {
                let (s, e) = (s.parse().unwrap_or(0), e.parse().unwrap_or(0));
                leases.entry(ip.to_string()).or_default().push((s, e));
                total += 1;
            }
        }
    }
    check(
        total == WORKERS * PER_WORKER,
        format!("attach/detach count {total}"),
    )?;
    for (ip, mut spans) in leases {
        spans.sort();
        for w in spans.windows(2) {
            check(
                w[0].1 < w[1].0,
                format!("address {ip} held twice at once: {w:?}"),
            )?;
        }
    }
    let n = env.nets.inspect("ipam").map_err(|e| e.to_string())?;
    check(n.endpoints.is_empty(), "every lease released")?;
    env.nets.remove("ipam").map_err(|e| e.to_string())?;
    assert_clean(&env)
}

pub fn connect_container_many_networks() -> Result<(), String> {
    use rstack_netns::{ContainerNetworkSpec, NetworkEndpoint};
    let env = Env::new();
    env.nets
        .create(&CreateOptions {
            name: "int".into(),
            internal: true,
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
    create(&env, "web", None)?;
    let a = env.container("a");
    let ep = |n: &str, aliases: &[&str]| NetworkEndpoint {
        network: n.into(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let mut spec = ContainerNetworkSpec {
        container_id: "a".into(),
        name: "proj-app-1".into(),
        hostname: Some("app-host".into()),
        netns: a.clone(),
        networks: vec![ep("int", &["app"]), ep("web", &["app"]), ep("nosuch", &[])],
        ports: vec!["18080:80".parse().map_err(|e| format!("{e}"))?],
    };
    // a failing network undoes the ones already attached
    let err = env.nets.connect_container(&spec).unwrap_err().to_string();
    check(err.contains("nosuch"), err)?;
    check(
        in_netns(&a, || sh("ip -j link"))?.matches("ifname").count() == 1,
        "undone: only lo",
    )?;
    check(
        env.nets
            .inspect("int")
            .map_err(|e| e.to_string())?
            .endpoints
            .is_empty(),
        "lease released",
    )?;
    spec.networks.pop();
    let atts = env
        .nets
        .connect_container(&spec)
        .map_err(|e| format!("{e:?}"))?;
    check(
        atts.len() == 2 && atts[0].ifname == "eth0" && atts[1].ifname == "eth1",
        "eth0 + eth1",
    )?;
    check(
        atts[0].ports.is_empty() && atts[1].ports.len() == 1,
        "ports on the first non-internal network",
    )?;
    let route = in_netns(&a, || sh("ip -j route show default"))?;
    check(
        route.contains(&atts[1].gateway.to_string()),
        format!("default route via web: {route}"),
    )?;
    tcp_server(&a, 80, "app");
    let got = tcp_get("127.0.0.1:18080".parse().expect("literal"))?;
    check(got.starts_with("app "), got)?;
    env.nets
        .disconnect_container("a")
        .map_err(|e| e.to_string())?;
    env.nets
        .disconnect_container("a")
        .map_err(|e| format!("idempotent: {e}"))?;
    rstack_netns::remove_pinned_netns(&a).map_err(|e| e.to_string())?;
    env.nets.remove("int").map_err(|e| e.to_string())?;
    env.nets.remove("web").map_err(|e| e.to_string())?;
    assert_clean(&env)
}

pub fn failed_create_is_undone() -> Result<(), String> {
    let env = Env::new();
    let broken = Networks::new(Config {
        nft: "/nonexistent/nft".into(),
        ..Config::new(env.run_dir())
    });
    let err = broken
        .create(&CreateOptions {
            name: "web".into(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    check(err.contains("/nonexistent/nft"), err)?;
    check(
        broken.list().map_err(|e| e.to_string())?.is_empty(),
        "no state recorded",
    )?;
    assert_clean(&env)
}

/// Real clients: busybox nc/nslookup/ping inside one "container" reach a
/// busybox httpd in another by name, through the embedded resolver and the
/// resolv.conf a container gets.
pub fn busybox_clients_resolve_and_fetch() -> Result<(), String> {
    let env = Env::new();
    create(&env, "web", None)?;
    let (a, b) = (env.container("a"), env.container("b"));
    let att_a = env
        .nets
        .attach(&attach_req("web", "a", &a, &["www"]))
        .map_err(|e| format!("{e:?}"))?;
    env.nets
        .attach(&attach_req("web", "b", &b, &[]))
        .map_err(|e| format!("{e:?}"))?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let _guard = rt.enter();
    let resolver = Resolver::new(
        env.run_dir(),
        Upstreams::from_files("/nonexistent".as_ref(), "/nonexistent".as_ref()),
    );
    let _ha = resolver.serve("a", &a).map_err(|e| format!("{e:?}"))?;
    let _hb = resolver.serve("b", &b).map_err(|e| format!("{e:?}"))?;
    // the resolv.conf every container gets, over /etc/resolv.conf of this
    // (private) mount namespace
    let conf = env.run_dir().join("resolv.conf");
    std::fs::write(&conf, rstack_netns::RESOLV_CONF).map_err(|e| e.to_string())?;
    sh(&format!("mount --bind {} /etc/resolv.conf", conf.display()))?;
    let www = env.run_dir().join("www");
    std::fs::create_dir_all(&www).map_err(|e| e.to_string())?;
    std::fs::write(www.join("index.html"), "hello from a\n").map_err(|e| e.to_string())?;
    let mut httpd = Command::new("nsenter")
        .arg(format!("--net={}", a.display()))
        .args(["/bin/busybox", "httpd", "-f", "-p", "80", "-h"])
        .arg(&www)
        .spawn()
        .map_err(|e| e.to_string())?;
    let result = (|| -> Result<(), String> {
        let in_b = |cmd: &str| sh(&format!("nsenter --net={} /bin/busybox {cmd}", b.display()));
        // (busybox's own wget crashes on this host; nc + getaddrinfo is the
        // same name resolution path)
        let fetch = |host: &str| {
            sh(&format!(
                "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nsenter --net={} /bin/busybox nc {host} 80",
                b.display()
            ))
        };
        let mut page = Err(String::new());
        for _ in 0..50 {
            page = fetch("a");
            if page.as_ref().is_ok_and(|p| p.contains("200 OK")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        check(
            page.as_ref().is_ok_and(|p| p.ends_with("hello from a\n")),
            format!("GET http://a/ from b: {page:?}"),
        )?;
        let page = fetch("www")?;
        check(
            page.ends_with("hello from a\n"),
            format!("GET http://www/ (alias): {page}"),
        )?;
        let ns = in_b("nslookup a 127.0.0.11")?;
        check(
            ns.contains(&att_a.ipv4.to_string()),
            format!("nslookup a: {ns}"),
        )?;
        let ping = in_b("ping -c 1 -W 3 a")?;
        check(
            ping.contains("1 packets received"),
            format!("ping a: {ping}"),
        )?;
        Ok(())
    })();
    let _ = httpd.kill();
    let _ = httpd.wait();
    result?;
    env.nets.detach("web", "a").map_err(|e| e.to_string())?;
    env.nets.detach("web", "b").map_err(|e| e.to_string())?;
    rstack_netns::remove_pinned_netns(&a).map_err(|e| e.to_string())?;
    rstack_netns::remove_pinned_netns(&b).map_err(|e| e.to_string())?;
    env.nets.remove("web").map_err(|e| e.to_string())?;
    assert_clean(&env)
}
