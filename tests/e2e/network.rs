//! `rstack network create / ls / inspect / rm` and bridge-networked
//! `rstack container run` (`--network NAME`, DNS by name, `-p`) as a user
//! runs them.
//!
//! Each test runs every rstack command inside one private network namespace
//! (held by a `sleep` started with `unshare -n`, entered with `nsenter`), so
//! bridges, sysctls and nft rules never touch the host. Images are pulled
//! first from outside it (the registry listens on the host's loopback).

use std::process::{Child, Command};
use std::time::Duration;

use libtest_mimic::Trial;
use rstack_e2e::{Fixtures, Need, Rstack, trial};

use crate::sandbox::NetNs;

const NEEDS: &[Need] = &[Need::Root, Need::Rstack];
const RUN_NEEDS: &[Need] = &[
    Need::Root,
    Need::Rstack,
    Need::Registry,
    Need::Overlay,
    Need::Command("nsenter"),
];

pub fn tests() -> Vec<Trial> {
    vec![
        trial("network::create_ls_inspect_rm", NEEDS, create_ls_inspect_rm),
        trial(
            "network::bad_input_leaves_nothing",
            NEEDS,
            bad_input_leaves_nothing,
        ),
        trial(
            "network::run_two_containers_by_name",
            RUN_NEEDS,
            run_two_containers_by_name,
        ),
        trial(
            "network::run_published_port_on_default_bridge",
            RUN_NEEDS,
            run_published_port,
        ),
        trial(
            "network::run_ctrl_c_tears_the_network_down",
            RUN_NEEDS,
            run_ctrl_c,
        ),
        trial(
            "network::run_bad_network_input_leaves_nothing",
            RUN_NEEDS,
            run_bad_input,
        ),
    ]
}

/// Nothing of rstack is left in the namespace or the run dir.
fn assert_network_clean(ns: &NetNs, r: &Rstack) {
    let links = ns.sh("ip -j link");
    let v: serde_json::Value = serde_json::from_str(&links).expect("ip -j link");
    let names: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    assert_eq!(names, vec!["lo"], "links left behind");
    let rules = ns.sh("nft -j list ruleset");
    assert!(
        !rules.contains("\"rstack\""),
        "nft table left behind: {rules}"
    );
    let state: Vec<_> = std::fs::read_dir(r.run_root().join("networks"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    assert!(state.is_empty(), "network state left behind: {state:?}");
}

fn create_ls_inspect_rm() {
    let ns = NetNs::new();
    let r = Rstack::new();
    let id = ns
        .ok(&r, &["network", "create", "web"])
        .stdout
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "create prints the network id: {id}");
    ns.ok(
        &r,
        &[
            "network",
            "create",
            "--subnet",
            "10.5.0.0/24",
            "--gateway",
            "10.5.0.254",
            "--internal",
            "-o",
            "com.docker.network.bridge.name=rsx0",
            "--label",
            "team=a",
            "backend",
        ],
    );
    let ls = ns.ok(&r, &["network", "ls"]).stdout;
    let lines: Vec<&str> = ls.lines().collect();
    assert!(
        lines[0].starts_with("NETWORK ID")
            && lines[0].contains("NAME")
            && lines[0].contains("SCOPE"),
        "{ls}"
    );
    assert!(
        ls.contains(&id[..12])
            && ls.contains("web")
            && ls.contains("bridge")
            && ls.contains("local"),
        "{ls}"
    );
    let quiet = ns
        .ok(&r, &["network", "ls", "-q", "--filter", "name=web"])
        .stdout;
    assert_eq!(quiet.trim(), &id[..12]);

    let inspect = ns.ok(&r, &["network", "inspect", "web", "backend"]).json();
    let web = &inspect[0];
    assert_eq!(web["Name"], "web");
    assert_eq!(web["Id"], id.as_str());
    assert_eq!(web["Driver"], "bridge");
    assert_eq!(web["IPAM"]["Config"][0]["Subnet"], "172.17.0.0/16");
    assert_eq!(web["IPAM"]["Config"][0]["Gateway"], "172.17.0.1");
    let back = &inspect[1];
    assert_eq!(back["Internal"], true);
    assert_eq!(back["IPAM"]["Config"][0]["Gateway"], "10.5.0.254");
    assert_eq!(back["Labels"]["team"], "a");
    assert!(
        ns.sh("ip -j addr show rsx0").contains("10.5.0.254"),
        "bridge named by option"
    );
    // by id prefix too
    ns.ok(&r, &["network", "inspect", &id[..8]]);

    let rm = ns.ok(&r, &["network", "rm", "web", "backend"]).stdout;
    assert_eq!(rm.lines().collect::<Vec<_>>(), vec!["web", "backend"]);
    let ls = ns.ok(&r, &["network", "ls", "-q"]).stdout;
    assert!(ls.trim().is_empty(), "{ls}");
    assert_network_clean(&ns, &r);
}

fn bad_input_leaves_nothing() {
    let ns = NetNs::new();
    let r = Rstack::new();
    ns.fails(
        &r,
        &["network", "create", "--subnet", "10.1.0.0/33", "x"],
        &["invalid subnet"],
    );
    ns.fails(
        &r,
        &["network", "create", "--subnet", "10.1.2.3/16", "x"],
        &["host bits"],
    );
    ns.fails(
        &r,
        &[
            "network",
            "create",
            "--subnet",
            "10.1.0.0/24",
            "--gateway",
            "10.2.0.1",
            "x",
        ],
        &["invalid gateway"],
    );
    ns.fails(
        &r,
        &["network", "create", "--gateway", "10.2.0.1", "x"],
        &["--gateway needs --subnet"],
    );
    ns.fails(
        &r,
        &[
            "network",
            "create",
            "-o",
            "com.docker.network.driver.mtu=abc",
            "x",
        ],
        &["invalid option"],
    );
    ns.fails(
        &r,
        &["network", "create", "bad/name"],
        &["invalid network name"],
    );
    ns.fails(
        &r,
        &["network", "create", "-d", "overlay", "x"],
        &["bridge driver only"],
    );
    assert_network_clean(&ns, &r);

    ns.ok(&r, &["network", "create", "--subnet", "10.1.0.0/16", "a"]);
    ns.fails(
        &r,
        &["network", "create", "--subnet", "10.1.5.0/24", "b"],
        &["overlaps"],
    );
    ns.fails(&r, &["network", "create", "a"], &["already exists"]);
    ns.fails(
        &r,
        &["network", "inspect", "nosuch"],
        &["network nosuch not found"],
    );
    ns.fails(
        &r,
        &["network", "rm", "nosuch"],
        &["network nosuch not found"],
    );
    ns.ok(&r, &["network", "rm", "-f", "nosuch"]);
    let ls = ns.ok(&r, &["network", "ls", "-q"]).stdout;
    assert_eq!(ls.lines().count(), 1, "only network a exists: {ls}");
    ns.ok(&r, &["network", "rm", "a"]);
    assert_network_clean(&ns, &r);
}

fn busybox() -> String {
    Fixtures::shared().busybox_v2s2.reference()
}

/// A web server script: serves `text` on port 80 from /www.
fn httpd(text: &str) -> String {
    format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www")
}

/// Retries `f` (about 20 s) until it returns `Some`.
fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..100 {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// SIGTERM to an attached `container run` (forwarded to the container's
/// init), then its exit status.
fn stop(mut child: Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    child.wait().expect("wait for rstack")
}

/// No container-side network object is left: no veth, no pinned netns,
/// no endpoint in any network's state.
fn assert_no_endpoints(ns: &NetNs, r: &Rstack) {
    let links = ns.links();
    assert!(
        links.iter().all(|l| !l.starts_with("veth")),
        "veth left behind: {links:?}"
    );
    let pinned: Vec<_> = std::fs::read_dir(r.run_root().join("netns"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(pinned.is_empty(), "pinned netns left behind: {pinned:?}");
    for entry in std::fs::read_dir(r.run_root().join("networks"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            assert!(
                v["endpoints"].as_object().is_none_or(|e| e.is_empty()),
                "endpoints left in {}: {v}",
                path.display()
            );
        }
    }
    r.assert_no_leaks();
    for dir in [r.root().join("containers"), r.run_root().join("containers")] {
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
    }
}

/// The "done when": `a` serves http on network web, `b` fetches
/// `http://a` by name (and by alias); a container on another network
/// cannot resolve `a`; a second `--name a` is a conflict.
fn run_two_containers_by_name() {
    let ns = NetNs::new();
    let r = Rstack::new();
    let img = busybox();
    r.ok(&["pull", "-q", &img]);
    ns.ok(&r, &["network", "create", "web"]);
    ns.ok(&r, &["network", "create", "other"]);
    let script = httpd("hello-from-a");
    let a = ns.spawn(
        &r,
        &[
            "container",
            "run",
            "--rm",
            "--init",
            "--network",
            "web",
            "--name",
            "a",
            "--network-alias",
            "www",
            &img,
            "sh",
            "-c",
            &script,
        ],
    );
    b_reaches_a_by_name_and_alias(&ns, &r, &img);
    conflict_and_other_network(&ns, &r, &img);
    let status = stop(a);
    assert_eq!(status.code(), Some(143), "{status:?}");
    // gone from DNS once it exited
    let gone = ns.rstack(
        &r,
        &[
            "container",
            "run",
            "--rm",
            "--network",
            "web",
            &img,
            "wget",
            "-qO-",
            "http://a",
        ],
    );
    assert!(gone.stderr.contains("bad address"), "{gone}");
    assert_no_endpoints(&ns, &r);
    ns.ok(&r, &["network", "rm", "web", "other"]);
    assert_network_clean(&ns, &r);
}

/// `b` fetches `http://a` by name and by its alias, via the embedded DNS.
fn b_reaches_a_by_name_and_alias(ns: &NetNs, r: &Rstack, img: &str) {
    let got = eventually(|| {
        let out = ns.rstack(
            r,
            &[
                "container",
                "run",
                "--rm",
                "--network",
                "web",
                "--name",
                "b",
                img,
                "wget",
                "-qO-",
                "http://a",
            ],
        );
        out.success().then_some(out)
    });
    let got = got.expect("b never reached http://a");
    assert_eq!(got.stdout, "hello-from-a\n", "{got}");
    let alias = ns.ok(
        r,
        &[
            "container",
            "run",
            "--rm",
            "--network",
            "web",
            img,
            "sh",
            "-c",
            "wget -qO- http://www; grep nameserver /etc/resolv.conf",
        ],
    );
    assert_eq!(
        alias.stdout, "hello-from-a\nnameserver 127.0.0.11\n",
        "{alias}"
    );
}

/// A second `--name a` is a conflict; another network cannot resolve `a`.
fn conflict_and_other_network(ns: &NetNs, r: &Rstack, img: &str) {
    let conflict = ns.rstack(
        r,
        &[
            "container",
            "run",
            "--rm",
            "--network",
            "web",
            "--name",
            "a",
            img,
            "true",
        ],
    );
    assert_eq!(conflict.status.code(), Some(125), "{conflict}");
    conflict.assert_stderr_mentions(&["Conflict. The container name \"a\" is already in use"]);
    let elsewhere = ns.rstack(
        r,
        &[
            "container",
            "run",
            "--rm",
            "--network",
            "other",
            img,
            "wget",
            "-qO-",
            "http://a",
        ],
    );
    assert!(
        !elsewhere.success(),
        "a resolved from network other: {elsewhere}"
    );
    assert!(elsewhere.stderr.contains("bad address"), "{elsewhere}");
}

/// `-p 8080:80` without `--network`: the default bridge (`bridge` on
/// `rstack0`) is created and kept; the host reaches the server on
/// 127.0.0.1:8080; a second `-p 8080:80` is "port is already allocated"
/// and leaves nothing behind.
fn run_published_port() {
    let ns = NetNs::new();
    let r = Rstack::new();
    let img = busybox();
    r.ok(&["pull", "-q", &img]);
    let script = httpd("published");
    let web = ns.spawn(
        &r,
        &[
            "container",
            "run",
            "--rm",
            "--init",
            "-p",
            "8080:80",
            &img,
            "sh",
            "-c",
            &script,
        ],
    );
    let body = eventually(|| {
        let body = ns.sh("/bin/busybox wget -qO- http://127.0.0.1:8080 2>/dev/null");
        (!body.is_empty()).then_some(body)
    });
    assert_eq!(
        body.as_deref(),
        Some("published\n"),
        "no answer on 127.0.0.1:8080"
    );
    assert!(
        ns.links().contains(&"rstack0".to_owned()),
        "{:?}",
        ns.links()
    );
    let links_before = ns.links();
    let busy = ns.rstack(
        &r,
        &["container", "run", "--rm", "-p", "8080:80", &img, "true"],
    );
    assert_eq!(busy.status.code(), Some(125), "{busy}");
    busy.assert_stderr_mentions(&["port is already allocated"]);
    assert_eq!(ns.links(), links_before, "the failed run left links");
    let status = stop(web);
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(
        ns.sh("/bin/busybox wget -T 2 -qO- http://127.0.0.1:8080 2>/dev/null")
            .is_empty(),
        "port still served"
    );
    // the default network is kept, like docker0
    let ls = ns.ok(&r, &["network", "ls"]).stdout;
    assert!(
        ls.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("bridge")),
        "{ls}"
    );
    assert_no_endpoints(&ns, &r);
    ns.ok(&r, &["network", "rm", "bridge"]);
    assert_network_clean(&ns, &r);
}

/// Clear errors before anything is created, and nothing left when an
/// attach fails halfway.
fn run_bad_input() {
    let ns = NetNs::new();
    let r = Rstack::new();
    let img = busybox();
    r.ok(&["pull", "-q", &img]);
    ns.ok(
        &r,
        &["network", "create", "--subnet", "10.77.0.0/24", "web"],
    );
    let cases: &[(&[&str], &str)] = &[
        (&["--network", "nosuch"], "network nosuch not found"),
        (&["-p", "99999:80"], "invalid argument \"99999:80\""),
        (
            &["--network", "none", "-p", "80"],
            "conflicting options: port publishing",
        ),
        (&["--ip", "10.77.0.9"], "need a bridge network"),
        (
            &["-p", "80", "--ip", "10.77.0.9"],
            "user defined networks only",
        ),
        (
            &["--network", "none", "--network-alias", "x"],
            "user-defined networks",
        ),
        (&["--network", "web", "--ip", "10.9.9.9"], "not in subnet"),
        (
            &["--network", "web", "--mac-address", "zz"],
            "invalid MAC address",
        ),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["container", "run", "--rm"];
        args.extend_from_slice(flags);
        args.extend([img.as_str(), "true"]);
        let out = ns.rstack(&r, &args);
        assert_eq!(out.status.code(), Some(125), "{out}");
        out.assert_stderr_mentions(&[needle]);
        assert_no_endpoints(&ns, &r);
    }
    let links = ns.links();
    assert_eq!(links.len(), 2, "only lo and web's bridge: {links:?}");
    // --ip in the subnet works and shows in /etc/hosts
    let out = ns.ok(
        &r,
        &[
            "container",
            "run",
            "--rm",
            "--network",
            "web",
            "--ip",
            "10.77.0.9",
            "--hostname",
            "box",
            &img,
            "grep",
            "box",
            "/etc/hosts",
        ],
    );
    assert!(out.stdout.starts_with("10.77.0.9"), "{out}");
    assert_no_endpoints(&ns, &r);
    ns.ok(&r, &["network", "rm", "web"]);
    assert_network_clean(&ns, &r);
}

/// Ctrl-C (SIGINT) to an attached container on a network: a PID 1
/// without handlers ignores the first two, the third kills it (137), and
/// the veth, endpoint, pinned netns and port are gone.
fn run_ctrl_c() {
    let ns = NetNs::new();
    let r = Rstack::new();
    let img = busybox();
    r.ok(&["pull", "-q", &img]);
    ns.ok(&r, &["network", "create", "web"]);
    let mut child = ns.spawn(
        &r,
        &[
            "container",
            "run",
            "--rm",
            "--network",
            "web",
            "-p",
            "9090:80",
            &img,
            "sleep",
            "600",
        ],
    );
    let up = eventually(|| {
        ns.links()
            .iter()
            .any(|l| l.starts_with("veth"))
            .then_some(())
    });
    assert!(up.is_some(), "the container never got its veth");
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = child.wait().expect("wait for rstack");
    assert_eq!(status.code(), Some(137), "{status:?}");
    assert_no_endpoints(&ns, &r);
    ns.ok(&r, &["network", "rm", "web"]);
    assert_network_clean(&ns, &r);
}
