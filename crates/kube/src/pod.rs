//! Pod-wide settings: `network_mode`, `pid`, `ipc`, `hostname`,
//! `extra_hosts`, `dns*`, `platform`, `stop_grace_period`, and the pod
//! template's labels (one per network joined) and annotations (`labels`,
//! `annotations`, `x-kubernetes.annotations`).
//!
//! Every pod is given `enableServiceLinks: false` (Kubernetes would add a
//! `<SERVICE>_PORT` variable per Service of the namespace, which Compose
//! never does and which can shadow the service's own variables) and, unless
//! it waits for a Job, `automountServiceAccountToken: false` (a Compose
//! container holds no API credentials).

use std::net::IpAddr;

use indexmap::IndexMap;
use rstack_compose::model::ServiceNetwork;
use serde_json::{Map, Value, json};

use crate::names::{self, seconds};
use crate::objects::{PodParts, Svc, obj, string_map};
use crate::policies::network_label;
use crate::report::Keys;
use crate::waits::{WAITER, Waits};

/// What goes into the pod spec besides the pod-wide keys.
pub struct Inputs {
    pub container: Value,
    pub waits: Waits,
    pub security: Map<String, Value>,
    /// The group the container runs as, for `fsGroup` of claims.
    pub fs_group: Option<u32>,
    /// A Job's `restartPolicy`.
    pub restart_policy: Option<&'static str>,
}

/// The pod spec of service `s`.
pub fn pod_spec(
    s: &Svc<'_>,
    input: Inputs,
    parts: &PodParts,
    keys: &mut Keys,
) -> Map<String, Value> {
    let svc = s.svc;
    let mut security = input.security;
    if let Some(g) = input.fs_group.filter(|_| {
        parts
            .volumes
            .iter()
            .any(|v| v.get("persistentVolumeClaim").is_some())
    }) {
        security.insert("fsGroup".into(), json!(g));
    }
    let (host_network, dns_policy) = network_mode(svc.network_mode.as_deref(), keys);
    let hostname = svc.hostname.as_deref().and_then(|h| {
        if names::dns_label(h, names::LABEL_MAX) == h {
            keys.used("hostname");
            Some(h)
        } else {
            keys.drop(
                "hostname",
                "not a DNS label, which a pod's hostname must be",
            );
            None
        }
    });
    let grace = svc.stop_grace_period.map(|d| {
        let (secs, rounded) = seconds(d.0, 0);
        if rounded {
            keys.changed("stop_grace_period", format!("{d} rounded up to {secs}s"));
        } else {
            keys.used("stop_grace_period");
        }
        secs
    });
    let job_waits = input.waits.for_jobs;
    obj([
        ("restartPolicy", json!(input.restart_policy)),
        ("serviceAccountName", json!(job_waits.then_some(WAITER))),
        ("automountServiceAccountToken", json!(job_waits)),
        ("enableServiceLinks", json!(false)),
        ("hostname", json!(hostname)),
        ("hostNetwork", json!(host_network.then_some(true))),
        ("dnsPolicy", json!(dns_policy)),
        ("hostPID", json!(host_ns(svc.pid.as_deref(), "pid", keys))),
        ("hostIPC", json!(host_ns(svc.ipc.as_deref(), "ipc", keys))),
        ("dnsConfig", Value::Object(dns_config(s, keys))),
        ("hostAliases", json!(host_aliases(s, keys))),
        ("nodeSelector", Value::Object(node_selector(s, keys))),
        ("securityContext", Value::Object(security)),
        ("terminationGracePeriodSeconds", json!(grace)),
        ("initContainers", json!(input.waits.init)),
        ("containers", json!([input.container])),
        ("volumes", json!(parts.volumes)),
    ])
}

/// `network_mode` → `hostNetwork` (and the DNS policy that keeps Service
/// names resolving with it).
fn network_mode(mode: Option<&str>, keys: &mut Keys) -> (bool, Option<&'static str>) {
    match mode {
        None => (false, None),
        Some("host") => {
            keys.used("network_mode");
            (true, Some("ClusterFirstWithHostNet"))
        }
        Some("none" | "bridge" | "default") => {
            keys.used("network_mode");
            (false, None)
        }
        Some(_) => {
            keys.drop(
                "network_mode",
                "containers share a network namespace only within a pod",
            );
            (false, None)
        }
    }
}

/// `pid: host` / `ipc: host` → `hostPID` / `hostIPC`.
fn host_ns(mode: Option<&str>, key: &str, keys: &mut Keys) -> Option<bool> {
    match mode? {
        "host" => {
            keys.used(key);
            Some(true)
        }
        "private" | "shareable" => {
            keys.used(key);
            None
        }
        _ => {
            keys.drop(key, "namespaces are shared only within a pod");
            None
        }
    }
}

/// `dns`, `dns_search`, `dns_opt` → `dnsConfig` (the cluster DNS stays
/// first, so the servers are asked only when it fails: reported).
fn dns_config(s: &Svc<'_>, keys: &mut Keys) -> Map<String, Value> {
    let svc = s.svc;
    if !svc.dns.is_empty() {
        keys.changed(
            "dns",
            "added after the cluster DNS server, which stays the one asked first",
        );
    }
    keys.used("dns_search");
    keys.used("dns_opt");
    let options: Vec<Value> = svc
        .dns_opt
        .iter()
        .map(|o| match o.split_once(':') {
            Some((n, v)) => json!({"name": n, "value": v}),
            None => json!({"name": o}),
        })
        .collect();
    obj([
        ("nameservers", json!(svc.dns)),
        ("searches", json!(svc.dns_search)),
        ("options", json!(options)),
    ])
}

/// `extra_hosts` → `hostAliases`, one entry per address.
fn host_aliases(s: &Svc<'_>, keys: &mut Keys) -> Vec<Value> {
    let mut by_ip: IndexMap<String, Vec<String>> = IndexMap::new();
    for (i, h) in s.svc.extra_hosts.iter().enumerate() {
        let path = format!("extra_hosts[{i}]");
        let parsed = h
            .split_once('=')
            .or_else(|| h.split_once(':'))
            .and_then(|(host, ip)| {
                Some((host, ip.trim_matches(['[', ']']).parse::<IpAddr>().ok()?))
            });
        match parsed {
            Some((host, ip)) => {
                by_ip
                    .entry(ip.to_string())
                    .or_default()
                    .push(host.to_owned());
                keys.used(path);
            }
            None => keys.drop(
                path,
                "not host=address (host-gateway has no meaning in a cluster)",
            ),
        }
    }
    by_ip
        .into_iter()
        .map(|(ip, hostnames)| json!({"ip": ip, "hostnames": hostnames}))
        .collect()
}

/// `platform` → a `nodeSelector` on the nodes' OS and architecture.
fn node_selector(s: &Svc<'_>, keys: &mut Keys) -> Map<String, Value> {
    let mut m = Map::new();
    let Some(p) = s.svc.platform.as_deref() else {
        return m;
    };
    let mut parts = p.split('/');
    let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
    if let Some(os) = os.filter(|o| !o.is_empty()) {
        m.insert("kubernetes.io/os".into(), json!(os));
    }
    if let Some(arch) = arch.filter(|a| !a.is_empty()) {
        m.insert("kubernetes.io/arch".into(), json!(arch));
    }
    if variant.is_some() {
        keys.changed(
            "platform",
            "the variant is left out: nodes are labelled by OS and architecture only",
        );
    } else {
        keys.used("platform");
    }
    m
}

/// The pod template's labels: the service's selector and one per network.
pub fn template_labels(
    s: &Svc<'_>,
    selector: Map<String, Value>,
    keys: &mut Keys,
) -> Map<String, Value> {
    let mut labels = selector;
    for (net, sn) in &s.svc.networks {
        labels.insert(network_label(net), json!("true"));
        if sn.as_ref().is_none_or(|n| *n == ServiceNetwork::default()) {
            keys.used(format!("networks.{net}"));
        }
    }
    labels
}

/// Annotations of the workload and its pods: Compose `labels` (label
/// values may be anything; annotation values may), `annotations`, and
/// `x-kubernetes.annotations`.
pub fn annotations(s: &Svc<'_>, keys: &mut Keys) -> Map<String, Value> {
    keys.used("labels");
    keys.used("annotations");
    let mut m = string_map(&s.svc.labels);
    m.extend(string_map(&s.svc.annotations));
    m.extend(string_map(&s.ext.annotations));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extension::ServiceExt;
    use crate::testing::project;
    use crate::waits::Waits;

    fn make(yaml: &str) -> (Map<String, Value>, Vec<String>) {
        let p = project(yaml);
        let svc = &p.services["s"];
        let ext = ServiceExt::default();
        let s = Svc {
            name: "s",
            kname: "s",
            svc,
            ext: &ext,
        };
        let mut keys = Keys::default();
        let input = Inputs {
            container: json!({"name": "s"}),
            waits: Waits::default(),
            security: Map::new(),
            fs_group: None,
            restart_policy: None,
        };
        let spec = pod_spec(&s, input, &PodParts::default(), &mut keys);
        template_labels(&s, Map::new(), &mut keys);
        annotations(&s, &mut keys);
        keys.used("image");
        keys.used("depends_on");
        let r = keys
            .report("services.s", &serde_json::to_value(svc).unwrap())
            .iter()
            .map(|e| e.to_string())
            .collect();
        (spec, r)
    }

    #[test]
    fn pod_wide_keys() {
        let (spec, report) = make(
            "services:\n  s:\n    image: x\n    hostname: box\n    pid: host\n    extra_hosts: [\"db=10.0.0.5\", \"db2:10.0.0.5\", \"gw=host-gateway\"]\n    dns_search: [corp.example]\n    dns_opt: [\"ndots:2\"]\n    platform: linux/arm64\n    stop_grace_period: 1500ms\n",
        );
        assert_eq!(
            Value::Object(spec),
            json!({"automountServiceAccountToken": false, "enableServiceLinks": false,
                   "hostname": "box", "hostPID": true,
                   "dnsConfig": {"searches": ["corp.example"], "options": [{"name": "ndots", "value": "2"}]},
                   "hostAliases": [{"ip": "10.0.0.5", "hostnames": ["db", "db2"]}],
                   "nodeSelector": {"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64"},
                   "terminationGracePeriodSeconds": 2,
                   "containers": [{"name": "s"}]})
        );
        assert_eq!(
            report,
            [
                "services.s.stop_grace_period: changed: 1.5s rounded up to 2s",
                "services.s.extra_hosts[2]: not carried over: not host=address (host-gateway has no meaning in a cluster)",
            ]
        );
    }

    #[test]
    fn host_network_and_shared_namespaces() {
        let (spec, report) = make(
            "services:\n  s:\n    image: x\n    network_mode: host\n    ipc: \"service:other\"\n",
        );
        assert_eq!(spec["hostNetwork"], true);
        assert_eq!(spec["dnsPolicy"], "ClusterFirstWithHostNet");
        assert_eq!(
            report,
            ["services.s.ipc: not carried over: namespaces are shared only within a pod"]
        );
        let (_, report) = make(
            "services:\n  s:\n    image: x\n    network_mode: \"service:other\"\n  other:\n    image: x\n",
        );
        assert_eq!(
            report,
            [
                "services.s.network_mode: not carried over: containers share a network namespace only within a pod"
            ]
        );
    }

    #[test]
    fn labels_become_annotations_and_networks_labels() {
        let p = project(
            "services:\n  s:\n    image: x\n    labels: {com.example.tier: \"front end\"}\n    networks: [front]\n    x-kubernetes: {annotations: {a: b}}\nnetworks:\n  front: {}\n",
        );
        let svc = &p.services["s"];
        let ext = crate::extension::of_service("s", &svc.extensions).unwrap();
        let s = Svc {
            name: "s",
            kname: "s",
            svc,
            ext: &ext,
        };
        let mut keys = Keys::default();
        assert_eq!(
            Value::Object(template_labels(&s, Map::new(), &mut keys)),
            json!({"rstack.network/front": "true"})
        );
        assert_eq!(
            Value::Object(annotations(&s, &mut keys)),
            json!({"com.example.tier": "front end", "a": "b"})
        );
    }
}
