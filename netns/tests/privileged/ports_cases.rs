//! Published ports: DNAT from the host's addresses (incl. 127.0.0.1),
//! UDP, ranges, random ports, hairpin, other networks, conflicts.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use rstack_netns::{Attachment, CreateOptions, PortSpec};

use super::cases::attach_req;
use super::harness::{
    Env, assert_clean, check, in_netns, sh, tcp_get, tcp_server, udp_get, udp_server,
};

fn specs(list: &[&str]) -> Result<Vec<PortSpec>, String> {
    list.iter()
        .map(|s| s.parse().map_err(|e| format!("{e}")))
        .collect()
}

fn net(env: &Env, name: &str) -> Result<(), String> {
    env.nets
        .create(&CreateOptions {
            name: name.into(),
            ..Default::default()
        })
        .map(drop)
        .map_err(|e| format!("{e:?}"))
}

const HOST: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

pub fn published_ports() -> Result<(), String> {
    let env = Env::new();
    // the test namespace's "other" host address
    sh(
        "ip link add tdummy0 type bridge && ip addr add 10.99.0.1/24 dev tdummy0 && ip link set tdummy0 up",
    )?;
    net(&env, "web")?;
    net(&env, "back")?;
    let (a, b, c) = (env.container("a"), env.container("b"), env.container("c"));
    let mut req = attach_req("web", "a", &a, &[]);
    req.ports = specs(&[
        "8080:80",
        "127.0.0.1:8090:80",
        "5353:53/udp",
        "9000-9001:80-81",
        ":80",
    ])?;
    let att = env.nets.attach(&req).map_err(|e| format!("{e:?}"))?;
    let att_b = env
        .nets
        .attach(&attach_req("web", "b", &b, &[]))
        .map_err(|e| format!("{e:?}"))?;
    let att_c = env
        .nets
        .attach(&attach_req("back", "c", &c, &[]))
        .map_err(|e| format!("{e:?}"))?;
    tcp_server(&a, 80, "a80");
    tcp_server(&a, 81, "a81");
    udp_server(&a, 53, "a53");

    from_the_host(&att)?;
    from_containers(&b, &c, &att_b, &att_c)?;
    detach_removes_dnat(&env)?;
    env.nets.detach("web", "b").map_err(|e| e.to_string())?;
    env.nets.detach("back", "c").map_err(|e| e.to_string())?;
    for ns in [&a, &b, &c] {
        rstack_netns::remove_pinned_netns(ns).map_err(|e| e.to_string())?;
    }
    env.nets.remove("web").map_err(|e| e.to_string())?;
    env.nets.remove("back").map_err(|e| e.to_string())?;
    assert_clean(&env)
}

/// From the host: localhost and its other address, a range, a random port, UDP.
fn from_the_host(att: &Attachment) -> Result<(), String> {
    let get = |ip: Ipv4Addr, port: u16| tcp_get(SocketAddr::from((ip, port)));
    // from the host: localhost and its other address; the container sees the
    // real client address where there is one
    let r = get(Ipv4Addr::LOCALHOST, 8080)?;
    check(r.starts_with("a80 "), format!("127.0.0.1:8080 -> {r}"))?;
    let r = get(HOST, 8080)?;
    check(
        r == "a80 10.99.0.1",
        format!("10.99.0.1:8080 keeps the client address: {r}"),
    )?;
    let r = get(Ipv4Addr::LOCALHOST, 8090)?;
    check(r.starts_with("a80 "), format!("127.0.0.1:8090 -> {r}"))?;
    check(
        get(HOST, 8090).is_err(),
        "a 127.0.0.1-only port is not published on other addresses",
    )?;
    check(
        get(HOST, 9000)?.starts_with("a80 ") && get(HOST, 9001)?.starts_with("a81 "),
        "range 9000-9001",
    )?;
    let random = att
        .ports
        .iter()
        .find(|p| {
            p.container_port == 80
                && p.host_port != 8080
                && p.host_port != 8090
                && p.host_port != 9000
        })
        .ok_or("random port mapping")?;
    check(
        get(Ipv4Addr::LOCALHOST, random.host_port)?.starts_with("a80 "),
        "random host port",
    )?;
    let r = udp_get(SocketAddr::from((HOST, 5353)))?;
    check(r == "a53 10.99.0.1", format!("udp 5353 -> {r}"))?;
    let r = udp_get(SocketAddr::from((Ipv4Addr::LOCALHOST, 5353)))?;
    check(r.starts_with("a53 "), format!("udp on localhost -> {r}"))?;
    Ok(())
}

/// Hairpin, another network, and no way to the host's loopback.
fn from_containers(
    b: &Path,
    c: &Path,
    att_b: &Attachment,
    att_c: &Attachment,
) -> Result<(), String> {
    // hairpin: a container on the same network, through the host address
    let r = in_netns(b, || tcp_get(SocketAddr::from((HOST, 8080))))?;
    check(r.starts_with("a80 "), format!("hairpin from b: {r}"))?;
    let r = in_netns(b, || tcp_get(SocketAddr::from((att_b.gateway, 8080))))?;
    check(r.starts_with("a80 "), format!("hairpin via gateway: {r}"))?;
    // a container of another network, through the host
    let r = in_netns(c, || tcp_get(SocketAddr::from((HOST, 8080))))?;
    check(
        r == format!("a80 {}", att_c.ipv4),
        format!("from another network: {r}"),
    )?;
    // containers cannot reach the host's loopback through route_localnet
    let lo = std::net::TcpListener::bind("127.0.0.1:7777").map_err(|e| e.to_string())?;
    let r = in_netns(b, || tcp_get(SocketAddr::from((Ipv4Addr::LOCALHOST, 7777))));
    check(r.is_err(), "container's 127.0.0.1 is its own")?;
    drop(lo);
    Ok(())
}

/// Detach removes the DNAT rules and closes the port.
fn detach_removes_dnat(env: &Env) -> Result<(), String> {
    let get = |ip: Ipv4Addr, port: u16| tcp_get(SocketAddr::from((ip, port)));
    // detach removes the DNAT rules
    env.nets.detach("web", "a").map_err(|e| e.to_string())?;
    let rules = sh("nft list table ip rstack")?;
    check(
        !rules.contains("dnat to"),
        format!("dnat rules left: {rules}"),
    )?;
    check(
        get(Ipv4Addr::LOCALHOST, 8080).is_err(),
        "port closed after detach",
    )?;
    Ok(())
}

pub fn port_conflicts_leave_nothing() -> Result<(), String> {
    let env = Env::new();
    net(&env, "web")?;
    let (a, b) = (env.container("a"), env.container("b"));
    let mut req = attach_req("web", "a", &a, &[]);
    req.ports = specs(&["8080:80"])?;
    let _held = env.nets.attach(&req).map_err(|e| format!("{e:?}"))?;
    let before_rules = sh("nft list table ip rstack")?;
    let before_state = env.nets.inspect("web").map_err(|e| e.to_string())?;
    // another rstack container on the same port
    let mut req_b = attach_req("web", "b", &b, &[]);
    req_b.ports = specs(&["8080:80"])?;
    let err = env.nets.attach(&req_b).unwrap_err().to_string();
    check(
        err == "Bind for 0.0.0.0:8080 failed: port is already allocated",
        err,
    )?;
    // a port some other program holds
    let other = std::net::TcpListener::bind("0.0.0.0:8181").map_err(|e| e.to_string())?;
    req_b.ports = specs(&["8181:80"])?;
    let err = env.nets.attach(&req_b).unwrap_err().to_string();
    check(err.contains("port is already allocated"), err)?;
    drop(other);
    // nothing left behind by the failures
    check(
        in_netns(&b, || sh("ip -j link"))?.matches("ifname").count() == 1,
        "b has only lo",
    )?;
    check(
        sh("nft list table ip rstack")? == before_rules,
        "rules unchanged",
    )?;
    check(
        env.nets.inspect("web").map_err(|e| e.to_string())? == before_state,
        "state unchanged",
    )?;
    env.nets.detach("web", "a").map_err(|e| e.to_string())?;
    for ns in [&a, &b] {
        rstack_netns::remove_pinned_netns(ns).map_err(|e| e.to_string())?;
    }
    env.nets.remove("web").map_err(|e| e.to_string())?;
    assert_clean(&env)
}

/// A UDP client that keeps sending to a published port reaches the new
/// container after the old one detached (its conntrack flow is flushed).
pub fn udp_flow_follows_restarted_container() -> Result<(), String> {
    let env = Env::new();
    sh(
        "ip link add tdummy0 type bridge && ip addr add 10.99.0.1/24 dev tdummy0 && ip link set tdummy0 up",
    )?;
    net(&env, "web")?;
    let (a, a2) = (env.container("a"), env.container("a2"));
    let mut req = attach_req("web", "a", &a, &[]);
    req.ports = specs(&["5353:53/udp"])?;
    let held = env.nets.attach(&req).map_err(|e| format!("{e:?}"))?;
    udp_server(&a, 53, "old");
    let client = std::net::UdpSocket::bind("10.99.0.1:0").map_err(|e| e.to_string())?;
    client
        .set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    let target = SocketAddr::from((HOST, 5353));
    let ask = || -> Result<String, String> {
        client.send_to(b"ping", target).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 256];
        let (n, _) = client
            .recv_from(&mut buf)
            .map_err(|e| format!("no reply: {e}"))?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let r = ask()?;
    check(r.starts_with("old "), format!("first answer: {r}"))?;
    env.nets.detach("web", "a").map_err(|e| e.to_string())?;
    drop(held);
    // the client keeps sending while nobody serves the port
    let _ = ask();
    req.container_id = "a2".into();
    req.name = "a2".into();
    req.netns = a2.clone();
    env.nets.attach(&req).map_err(|e| format!("{e:?}"))?;
    udp_server(&a2, 53, "new");
    let r = ask()?;
    check(
        r.starts_with("new "),
        format!("same client flow after restart: {r}"),
    )?;
    env.nets.detach("web", "a2").map_err(|e| e.to_string())?;
    for ns in [&a, &a2] {
        rstack_netns::remove_pinned_netns(ns).map_err(|e| e.to_string())?;
    }
    env.nets.remove("web").map_err(|e| e.to_string())?;
    assert_clean(&env)
}
