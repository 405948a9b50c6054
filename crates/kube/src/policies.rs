//! Compose networks → NetworkPolicies that allow what the networks allow.
//!
//! With Compose, a container reaches the containers that share one of its
//! networks, on any port, and nothing else of the project; published
//! ports are open to everyone; a container only on `internal` networks
//! cannot reach outside them; `network_mode: none` has no network at all.
//! In the cluster every pod carries a label per network it joins
//! (`rstack.network/<name>: "true"`), and:
//!
//! - `default-deny-ingress` shuts every pod of the project to incoming
//!   connections;
//! - `network-<name>` lets the pods of a network in from each other;
//! - `<service>-published` opens a service's published container ports to
//!   anyone;
//! - `<service>-internal` lets a service that is only on internal networks
//!   out to those networks and the cluster DNS only;
//! - `<service>-no-network` shuts a `network_mode: none` pod both ways.
//!
//! A NetworkPolicy takes effect only with a network plugin that enforces
//! them (Calico, Cilium, k3s' default flannel with its policy controller).

use indexmap::IndexMap;
use serde_json::{Value, json};

use crate::names;
use crate::objects::{Object, Scope, obj};
use crate::services::Published;

/// The label key of network `net`.
pub fn network_label(net: &str) -> String {
    format!("rstack.network/{}", names::label_value(net))
}

/// What the policies need of one service.
#[derive(Debug, Clone, Default)]
pub struct NetInfo {
    pub kname: String,
    /// The Compose networks it joins (empty with `network_mode`).
    pub networks: Vec<String>,
    /// It joins networks and every one is `internal`.
    pub internal_only: bool,
    /// `network_mode: none`.
    pub no_network: bool,
    /// Its published ports.
    pub public: Vec<Published>,
}

fn matching(label: &str) -> Value {
    json!({"matchLabels": {label: "true"}})
}

/// The NetworkPolicies of the project's generated services.
pub fn policies(scope: &Scope, services: &[NetInfo]) -> Vec<Object> {
    let origin = "networks";
    let mut out = Vec::new();
    let policy = |name: &str, spec: serde_json::Map<String, Value>| {
        scope.object(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            name,
            origin,
            scope.project_labels(),
            obj([("spec", Value::Object(spec))]),
        )
    };
    if services.is_empty() {
        return out;
    }
    out.push(policy(
        "default-deny-ingress",
        obj([
            (
                "podSelector",
                json!({"matchLabels": scope.project_labels()}),
            ),
            ("policyTypes", json!(["Ingress"])),
        ]),
    ));
    let mut nets: IndexMap<&str, ()> = IndexMap::new();
    for s in services {
        for n in &s.networks {
            nets.insert(n, ());
        }
    }
    for net in nets.keys() {
        let label = network_label(net);
        out.push(policy(
            &names::derived("network", net),
            obj([
                ("podSelector", matching(&label)),
                ("policyTypes", json!(["Ingress"])),
                (
                    "ingress",
                    json!([{"from": [{"podSelector": matching(&label)}]}]),
                ),
            ]),
        ));
    }
    for s in services {
        let selector = json!({"matchLabels": scope.selector(&s.kname)});
        if !s.public.is_empty() {
            let ports: Vec<Value> = s
                .public
                .iter()
                .map(|p| json!({"port": p.target, "protocol": p.protocol}))
                .collect();
            out.push(policy(
                &names::derived(&s.kname, "published"),
                obj([
                    ("podSelector", selector.clone()),
                    ("policyTypes", json!(["Ingress"])),
                    ("ingress", json!([{"ports": ports}])),
                ]),
            ));
        }
        if s.internal_only {
            let mut to: Vec<Value> = s
                .networks
                .iter()
                .map(|n| json!({"podSelector": matching(&network_label(n))}))
                .collect();
            to.dedup();
            out.push(policy(
                &names::derived(&s.kname, "internal"),
                obj([
                    ("podSelector", selector.clone()),
                    ("policyTypes", json!(["Egress"])),
                    ("egress", json!([{"to": to}, dns_rule()])),
                ]),
            ));
        }
        if s.no_network {
            out.push(policy(
                &names::derived(&s.kname, "no-network"),
                obj([
                    ("podSelector", selector),
                    ("policyTypes", json!(["Ingress", "Egress"])),
                ]),
            ));
        }
    }
    out
}

/// Egress to the cluster DNS (CoreDNS pods are labelled `k8s-app: kube-dns`
/// in kube-system on kubeadm, k3s and the managed clusters).
fn dns_rule() -> Value {
    json!({
        "to": [{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, nets: &[&str]) -> NetInfo {
        NetInfo {
            kname: name.into(),
            networks: nets.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn networks_let_their_members_in_and_published_ports_everyone() {
        let scope = Scope::new("demo", None);
        let mut gw = info("gateway", &["front", "back"]);
        gw.public = vec![Published {
            port: 8080,
            target: 80,
            protocol: "TCP".into(),
        }];
        let api = info("api", &["back"]);
        let ps = policies(&scope, &[gw, api]);
        let names: Vec<&str> = ps.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "default-deny-ingress",
                "network-front",
                "network-back",
                "gateway-published"
            ]
        );
        assert_eq!(
            ps[0].value["spec"],
            json!({"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "demo"}}, "policyTypes": ["Ingress"]})
        );
        assert_eq!(
            ps[2].value["spec"]["ingress"],
            json!([{"from": [{"podSelector": {"matchLabels": {"rstack.network/back": "true"}}}]}])
        );
        assert_eq!(
            ps[3].value["spec"]["ingress"],
            json!([{"ports": [{"port": 80, "protocol": "TCP"}]}])
        );
    }

    #[test]
    fn internal_only_services_reach_their_networks_and_dns() {
        let scope = Scope::new("demo", None);
        let mut db = info("db", &["private"]);
        db.internal_only = true;
        let mut sealed = info("sealed", &[]);
        sealed.no_network = true;
        let ps = policies(&scope, &[db, sealed]);
        let internal = ps.iter().find(|p| p.name == "db-internal").unwrap();
        assert_eq!(internal.value["spec"]["policyTypes"], json!(["Egress"]));
        let egress = internal.value["spec"]["egress"].as_array().unwrap();
        assert_eq!(
            egress[0],
            json!({"to": [{"podSelector": {"matchLabels": {"rstack.network/private": "true"}}}]})
        );
        assert_eq!(
            egress[1]["ports"][0],
            json!({"port": 53, "protocol": "UDP"})
        );
        let none = ps.iter().find(|p| p.name == "sealed-no-network").unwrap();
        assert_eq!(
            none.value["spec"]["policyTypes"],
            json!(["Ingress", "Egress"])
        );
        assert_eq!(none.value["spec"].get("ingress"), None);
    }

    #[test]
    fn no_services_no_policies() {
        assert!(policies(&Scope::new("demo", None), &[]).is_empty());
    }
}
