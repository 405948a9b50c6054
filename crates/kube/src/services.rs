//! `ports`, `expose` and network `aliases` → Services.
//!
//! Inside a Compose network a container is reached by its service name on
//! its own ports, and a published port opens `host:published` outside. The
//! first is a ClusterIP Service named like the service, on every container
//! port; the second a Service of type LoadBalancer (or NodePort,
//! `--service-type`, `x-kubernetes.service_type`) named `<service>-published`
//! on the published ports. When every port is published under its own
//! number, the one Service does both. A port published on loopback only
//! (`127.0.0.1:8080:80`) is not published outside the cluster. A service
//! only on `internal` networks publishes nothing, as with Docker.

use rstack_compose::model::Service;
use serde_json::{Value, json};

use crate::ServiceType;
use crate::container::ContainerPort;
use crate::names;
use crate::objects::{Object, Scope, Svc, obj, string_map};
use crate::report::Keys;

/// A published port: outside `port` → container `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub port: u32,
    pub target: u32,
    pub protocol: String,
}

/// The published ports of `svc` that reach outside, marking `ports` keys.
pub fn published(svc: &Service, internal_only: bool, keys: &mut Keys) -> Vec<Published> {
    let mut out: Vec<Published> = Vec::new();
    for (i, p) in svc.ports.iter().enumerate() {
        let path = format!("ports[{i}]");
        for k in ["target", "protocol", "name", "app_protocol"] {
            keys.used(format!("{path}.{k}"));
        }
        match p.mode.as_deref() {
            None | Some("ingress") => keys.used(format!("{path}.mode")),
            Some(_) => keys.drop(format!("{path}.mode"), "a Service balances over every pod"),
        }
        let ip = p.host_ip.as_deref().unwrap_or("");
        let loopback = ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
        if loopback {
            keys.used(format!("{path}.published"));
            keys.changed(
                format!("{path}.host_ip"),
                "published on loopback only: not exposed outside the cluster (use kubectl port-forward)",
            );
            continue;
        }
        if matches!(ip, "" | "0.0.0.0" | "::") {
            keys.used(format!("{path}.host_ip"));
        } else {
            keys.drop(
                format!("{path}.host_ip"),
                "a Service listens on every address of the nodes or load balancer",
            );
        }
        if internal_only {
            keys.changed(
                format!("{path}.published"),
                "not published: the service is only on internal networks, where Docker publishes nothing either",
            );
            continue;
        }
        let published = p.published.as_deref().filter(|s| !s.is_empty());
        let port = match published.map(|s| s.split_once('-').map_or(s, |(a, _)| a).parse::<u32>()) {
            None => p.target,
            Some(Ok(n)) => {
                if published.is_some_and(|s| s.contains('-')) {
                    keys.changed(
                        format!("{path}.published"),
                        format!(
                            "the range {} becomes its first port {n}",
                            published.unwrap_or("")
                        ),
                    );
                } else {
                    keys.used(format!("{path}.published"));
                }
                n
            }
            Some(Err(_)) => {
                keys.drop(format!("{path}.published"), "not a port number");
                continue;
            }
        };
        let protocol = p.protocol.as_deref().unwrap_or("tcp").to_ascii_uppercase();
        if !out.iter().any(|o| o.port == port && o.protocol == protocol) {
            out.push(Published {
                port,
                target: p.target,
                protocol,
            });
        }
    }
    out
}

/// The Services of service `s`.
pub fn services(
    s: &Svc<'_>,
    ports: &[ContainerPort],
    public: &[Published],
    default_type: ServiceType,
    headless: bool,
    scope: &Scope,
    keys: &mut Keys,
) -> Vec<Object> {
    let mut out = Vec::new();
    if ports.is_empty() {
        if headless {
            // No ports known: a headless Service still gives the name, and
            // its DNS answers the ready pods' addresses, on any port.
            let body = obj([
                ("clusterIP", json!("None")),
                ("selector", Value::Object(scope.selector(s.kname))),
            ]);
            out.push(service_object(
                s,
                scope,
                s.kname,
                &format!("services.{}", s.name),
                body,
                false,
            ));
        }
        return out;
    }
    let kind = s.ext.service_type.unwrap_or(default_type);
    let origin = format!("services.{}", s.name);
    let port_list = |list: Vec<Value>| obj([("ports", json!(list))]);
    let cluster_ports: Vec<Value> = ports
        .iter()
        .map(|p| {
            port_json(
                &p.name,
                p.port,
                p.port,
                &p.protocol,
                p.app_protocol.as_deref(),
            )
        })
        .collect();
    let one = kind != ServiceType::ClusterIP
        && !public.is_empty()
        && ports.iter().all(|c| {
            public
                .iter()
                .any(|p| p.port == c.port && p.target == c.port && p.protocol == c.protocol)
        });
    let mut main = spec(
        s,
        scope,
        if one { kind } else { ServiceType::ClusterIP },
        port_list(cluster_ports.clone()),
    );
    if one {
        main = with_node_ports(main, public, kind, keys);
    }
    out.push(service_object(s, scope, s.kname, &origin, main, one));
    if !one && !public.is_empty() {
        if kind == ServiceType::ClusterIP {
            keys.note(
                "ports",
                "published ports stay inside the cluster: the Service type is ClusterIP",
            );
        } else {
            let list: Vec<Value> = public
                .iter()
                .map(|p| {
                    port_json(
                        &names::port_name(None, &p.protocol, p.port),
                        p.port,
                        p.target,
                        &p.protocol,
                        None,
                    )
                })
                .collect();
            let body = with_node_ports(spec(s, scope, kind, port_list(list)), public, kind, keys);
            let name = names::derived(s.kname, "published");
            out.push(service_object(s, scope, &name, &origin, body, true));
        }
    }
    out.extend(aliases(s, scope, &cluster_ports, &origin, keys));
    out
}

/// A ClusterIP Service per network alias, on the same pods and ports.
fn aliases(
    s: &Svc<'_>,
    scope: &Scope,
    ports: &[Value],
    origin: &str,
    keys: &mut Keys,
) -> Vec<Object> {
    let mut out = Vec::new();
    for (net, sn) in &s.svc.networks {
        for (i, alias) in sn.iter().flat_map(|n| n.aliases.iter()).enumerate() {
            let alias_name = names::dns_label(alias, names::LABEL_MAX);
            let body = spec(
                s,
                scope,
                ServiceType::ClusterIP,
                obj([("ports", json!(ports))]),
            );
            out.push(service_object(s, scope, &alias_name, origin, body, false));
            let path = format!("networks.{net}.aliases[{i}]");
            if alias_name == *alias {
                keys.used(path);
            } else {
                keys.changed(path, format!("the Service is named {alias_name}"));
            }
        }
    }
    out
}

fn port_json(name: &str, port: u32, target: u32, protocol: &str, app: Option<&str>) -> Value {
    Value::Object(obj([
        ("name", json!(name)),
        ("port", json!(port)),
        ("targetPort", json!(target)),
        ("protocol", json!(protocol)),
        ("appProtocol", json!(app)),
    ]))
}

fn spec(
    s: &Svc<'_>,
    scope: &Scope,
    kind: ServiceType,
    mut ports: serde_json::Map<String, Value>,
) -> serde_json::Map<String, Value> {
    let mut m = obj([
        ("type", json!(kind.as_str())),
        ("selector", Value::Object(scope.selector(s.kname))),
    ]);
    m.append(&mut ports);
    m
}

/// NodePort Services take the published port as node port when it lies in
/// Kubernetes' default range; else the cluster picks one (reported).
fn with_node_ports(
    mut spec: serde_json::Map<String, Value>,
    public: &[Published],
    kind: ServiceType,
    keys: &mut Keys,
) -> serde_json::Map<String, Value> {
    if kind != ServiceType::NodePort {
        return spec;
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut() {
            let n = p["port"].as_u64().unwrap_or(0) as u32;
            if public.iter().any(|x| x.port == n) && (30000..=32767).contains(&n) {
                p["nodePort"] = json!(n);
            } else {
                keys.note("ports", format!("port {n} is outside the NodePort range 30000-32767: the cluster picks the node port"));
            }
        }
    }
    spec
}

fn service_object(
    s: &Svc<'_>,
    scope: &Scope,
    name: &str,
    origin: &str,
    spec: serde_json::Map<String, Value>,
    public: bool,
) -> Object {
    let annotations = if public {
        string_map(&s.ext.service_annotations)
    } else {
        Default::default()
    };
    scope.annotated(
        "v1",
        "Service",
        name,
        origin,
        scope.selector(s.kname),
        annotations,
        obj([("spec", Value::Object(spec))]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::container_ports;
    use crate::extension::ServiceExt;
    use crate::testing::project;

    fn make(yaml: &str, ext: ServiceExt, kind: ServiceType) -> (Vec<Object>, Vec<String>) {
        let p = project(yaml);
        let svc = &p.services["web"];
        let s = Svc {
            name: "web",
            kname: "web",
            svc,
            ext: &ext,
        };
        let mut keys = Keys::default();
        let ports = container_ports(svc, &mut keys);
        let public = published(svc, false, &mut keys);
        let objs = services(
            &s,
            &ports,
            &public,
            kind,
            true,
            &Scope::new("demo", None),
            &mut keys,
        );
        keys.used("image");
        keys.used("networks");
        let r = keys
            .report("services.web", &serde_json::to_value(svc).unwrap())
            .iter()
            .map(|e| e.to_string())
            .collect();
        (objs, r)
    }

    #[test]
    fn same_number_ports_make_one_load_balancer() {
        let (objs, report) = make(
            "services:\n  web:\n    image: x\n    ports: [\"80:80\"]\n",
            ServiceExt::default(),
            ServiceType::LoadBalancer,
        );
        assert_eq!(objs.len(), 1);
        assert_eq!(
            objs[0].value["spec"],
            json!({"type": "LoadBalancer",
                   "selector": {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "demo"},
                   "ports": [{"name": "tcp-80", "port": 80, "targetPort": 80, "protocol": "TCP"}]})
        );
        assert!(report.is_empty(), "{report:?}");
    }

    #[test]
    fn other_published_numbers_get_their_own_service() {
        let ext = ServiceExt {
            service_annotations: [("lb".to_owned(), "internal".to_owned())]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let (objs, report) = make(
            "services:\n  web:\n    image: x\n    ports: [\"8080:80\", \"127.0.0.1:9090:9090\"]\n    expose: [\"7000\"]\n",
            ext,
            ServiceType::LoadBalancer,
        );
        let names: Vec<(&str, &Value)> = objs
            .iter()
            .map(|o| (o.name.as_str(), &o.value["spec"]["type"]))
            .collect();
        assert_eq!(
            names,
            [
                ("web", &json!("ClusterIP")),
                ("web-published", &json!("LoadBalancer"))
            ]
        );
        assert_eq!(objs[0].value["spec"]["ports"].as_array().unwrap().len(), 3);
        assert_eq!(
            objs[1].value["spec"]["ports"],
            json!([{"name": "tcp-8080", "port": 8080, "targetPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(
            objs[1].value["metadata"]["annotations"],
            json!({"lb": "internal"})
        );
        assert_eq!(objs[0].value["metadata"].get("annotations"), None);
        assert_eq!(report.len(), 1, "{report:?}");
        assert!(
            report[0]
                .starts_with("services.web.ports[1].host_ip: changed: published on loopback only")
        );
    }

    #[test]
    fn node_ports_and_aliases() {
        let yaml = "services:\n  web:\n    image: x\n    ports: [\"30080:30080\", \"8080:8080\"]\n    networks:\n      default: {aliases: [www, Web_2]}\n";
        let ext = ServiceExt {
            service_type: Some(ServiceType::NodePort),
            ..Default::default()
        };
        let (objs, report) = make(yaml, ext, ServiceType::LoadBalancer);
        assert_eq!(objs[0].value["spec"]["type"], "NodePort");
        assert_eq!(objs[0].value["spec"]["ports"][0]["nodePort"], 30080);
        assert_eq!(objs[0].value["spec"]["ports"][1].get("nodePort"), None);
        let names: Vec<&str> = objs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["web", "www", "web-2"]);
        assert_eq!(objs[1].value["spec"]["type"], "ClusterIP");
        assert!(
            report
                .iter()
                .any(|r| r.contains("port 8080 is outside the NodePort range")),
            "{report:?}"
        );
        assert!(
            report
                .iter()
                .any(|r| r.contains("aliases[1]: changed: the Service is named web-2")),
            "{report:?}"
        );
    }

    #[test]
    fn a_service_without_ports_others_name_is_headless() {
        let (objs, _) = make(
            "services:\n  web:\n    image: x\n",
            ServiceExt::default(),
            ServiceType::LoadBalancer,
        );
        assert_eq!(
            objs[0].value["spec"],
            json!({"clusterIP": "None", "selector": {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "demo"}})
        );
    }

    #[test]
    fn cluster_ip_type_keeps_published_ports_inside() {
        let (objs, report) = make(
            "services:\n  web:\n    image: x\n    ports: [\"8080:80\"]\n",
            ServiceExt::default(),
            ServiceType::ClusterIP,
        );
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0].value["spec"]["type"], "ClusterIP");
        assert!(
            report[0].contains("note: published ports stay inside the cluster"),
            "{report:?}"
        );
    }
}
