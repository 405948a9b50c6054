//! `rstack inspect` and `rstack container inspect` on a running stack:
//! docker's container JSON with the healthcheck's state and probe log,
//! lookup by name and by id prefix, `--format` templates, and networks,
//! volumes and images through the top-level command.

use libtest_mimic::Trial;
use rstack_e2e::{Rstack, trial};
use serde_json::Value;

use crate::sandbox::{DownOnPanic, NEEDS, NetNs, args, setup};

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "inspect::container_health_and_objects",
        NEEDS,
        container_health_and_objects,
    )]
}

const STACK: &str = r#"
services:
  web:
    image: IMAGE
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["8080:80"]
    volumes: [data:/data]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 2s
      start_period: 10s
volumes:
  data: {}
"#;

fn container_health_and_objects() {
    let ns = NetNs::new();
    let (r, image, base) = setup(STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d", "--wait"]));

    let id = container_json(&ns, &r, &image);
    prefix_templates_objects(&ns, &r, &image, &id);
    missing_objects(&ns, &r);

    ns.ok(&r, &args(&base, &["down", "-v", "-t", "0"]));
    ns.assert_clean(&r);
}

/// `inspect` of the container: docker's layout, state, health, labels, ports; returns its id.
fn container_json(ns: &NetNs, r: &Rstack, image: &str) -> String {
    // docker's layout: an array indented by 4 spaces
    let out = ns.ok(r, &["inspect", "demo-web-1"]);
    assert!(out.stdout.starts_with("[\n    {\n"), "{out}");
    let all = out.json();
    let all = all.as_array().expect("an array");
    assert_eq!(all.len(), 1, "{out}");
    let c = &all[0];
    assert_eq!(c["Name"], "/demo-web-1", "{out}");
    let id = c["Id"].as_str().expect("Id");
    assert_eq!(id.len(), 64, "{out}");
    assert!(
        c["Image"]
            .as_str()
            .is_some_and(|i| i.starts_with("sha256:")),
        "{out}"
    );
    assert_eq!(c["Config"]["Image"], image, "{out}");
    assert_eq!(c["Path"], "sh", "{out}");
    let state = &c["State"];
    assert_eq!(state["Status"], "running", "{out}");
    assert_eq!(state["Running"], true, "{out}");
    assert_eq!(state["Paused"], false, "{out}");
    assert!(state["Pid"].as_i64().is_some_and(|p| p > 0), "{out}");
    let health = &state["Health"];
    assert_eq!(health["Status"], "healthy", "{out}");
    assert_eq!(health["FailingStreak"], 0, "{out}");
    let log = health["Log"].as_array().expect("Health.Log");
    assert!(!log.is_empty(), "{out}");
    let last = log.last().unwrap();
    assert_eq!(last["ExitCode"], 0, "{out}");
    assert!(
        last["Start"].is_string() && last["End"].is_string(),
        "{out}"
    );
    let labels = &c["Config"]["Labels"];
    assert_eq!(labels["com.docker.compose.project"], "demo", "{out}");
    assert_eq!(labels["com.docker.compose.service"], "web", "{out}");
    assert_eq!(labels["com.docker.compose.container-number"], "1", "{out}");
    assert_eq!(labels["com.docker.compose.oneoff"], "False", "{out}");
    let net = &c["NetworkSettings"];
    assert_eq!(
        net["Ports"]["80/tcp"],
        serde_json::json!([{"HostIp": "0.0.0.0", "HostPort": "8080"}]),
        "{out}"
    );
    let ip = net["Networks"]["demo_default"]["IPAddress"]
        .as_str()
        .unwrap_or_default();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{out}");
    id.to_owned()
}

/// By id prefix, `--format` templates, and a network, volume and image.
fn prefix_templates_objects(ns: &NetNs, r: &Rstack, image: &str, id: &str) {
    // `container inspect` by a unique id prefix, compact `json`
    let out = ns.ok(r, &["container", "inspect", "--format", "json", &id[..12]]);
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    assert_eq!(out.json()[0]["Name"], "/demo-web-1", "{out}");

    // templates
    let out = ns.ok(
        r,
        &["inspect", "-f", "{{.State.Health.Status}}", "demo-web-1"],
    );
    assert_eq!(out.stdout, "healthy\n", "{out}");
    let out = ns.ok(r, &["inspect", "-f", "{{json .State}}", "demo-web-1"]);
    let state: Value = serde_json::from_str(out.stdout.trim()).expect("{{json .State}}");
    assert_eq!(state["Health"]["Status"], "healthy", "{out}");

    // a network, a volume and an image through the top-level command
    let out = ns.ok(r, &["inspect", "demo_default", "demo_data", image]);
    let objs = out.json();
    assert_eq!(objs[0]["Name"], "demo_default", "{out}");
    assert!(objs[0]["IPAM"]["Config"].is_array(), "{out}");
    assert_eq!(objs[1]["Name"], "demo_data", "{out}");
    assert!(objs[1]["Mountpoint"].is_string(), "{out}");
    assert!(
        objs[2]["RepoTags"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{out}"
    );
}

/// What is found is printed, the rest is an error.
fn missing_objects(ns: &NetNs, r: &Rstack) {
    // what is found is printed, the rest is an error
    let out = ns.rstack(r, &["inspect", "nosuch", "demo-web-1"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("Error: No such object: nosuch"),
        "{out}"
    );
    assert_eq!(out.json()[0]["Name"], "/demo-web-1", "{out}");
    let out = ns.rstack(r, &["inspect", "--type", "volume", "demo-web-1"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("No such volume: demo-web-1"), "{out}");
    assert_eq!(out.stdout, "[]\n", "{out}");
    let out = ns.rstack(r, &["container", "inspect", "demo_data"]);
    assert!(out.stderr.contains("No such container: demo_data"), "{out}");
}
