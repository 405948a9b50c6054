//! Semantic checks on the canonical tree (long syntax everywhere): what
//! the schema cannot express. References between services, networks,
//! volumes, secrets, configs and models; addresses and CIDRs;
//! `container_name` with several replicas; `ports`, `pull_policy`,
//! `restart` and `network_mode` values.
//!
//! Two services may share a `container_name` (docker compose loads such a
//! model and fails only when both containers would exist at once).

use crate::validate::{Issue, hint, report_pos, valid_cidr, valid_pull_policy, valid_restart};
use crate::yaml::{Map, Node, Value};

/// Every semantic issue of the project.
pub fn semantic(root: &Node, default_network: bool) -> Vec<Issue> {
    let empty = Map::new();
    let top = root.as_map().unwrap_or(&empty);
    let names = |k: &str| -> Vec<String> {
        top.get(k)
            .and_then(Node::as_map)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let mut c = Checker {
        issues: Vec::new(),
        services: top.get("services").and_then(Node::as_map).unwrap_or(&empty),
        networks: names("networks"),
        volumes: names("volumes"),
        secrets: names("secrets"),
        configs: names("configs"),
        models: names("models"),
        default_network,
    };
    for (name, svc) in c.services {
        let Some(sm) = svc.as_map() else { continue };
        let s = Svc {
            name,
            node: svc,
            map: sm,
            path: format!("services.{name}"),
        };
        c.addresses(&s);
        c.image_or_build(&s);
        c.service_references(&s);
        c.resource_references(&s);
        c.container_name(&s);
        c.ports(&s);
        c.policies(&s);
        c.network_mode(&s);
    }
    c.ipam(top);
    c.issues
}

/// What the checks know of the project.
struct Checker<'a> {
    issues: Vec<Issue>,
    services: &'a Map,
    networks: Vec<String>,
    volumes: Vec<String>,
    secrets: Vec<String>,
    configs: Vec<String>,
    models: Vec<String>,
    default_network: bool,
}

/// The service being checked.
struct Svc<'a> {
    name: &'a str,
    node: &'a Node,
    map: &'a Map,
    /// `services.<name>`
    path: String,
}

impl Svc<'_> {
    /// The node of `key`, else the service (for the position).
    fn at(&self, key: &str) -> &Node {
        self.map.get(key).unwrap_or(self.node)
    }
}

fn int(n: Option<&Node>) -> Option<i64> {
    n.and_then(|s| match s.value {
        Value::Int(i) => Some(i),
        _ => None,
    })
}

impl Checker<'_> {
    fn issue(&mut self, n: &Node, path: String, message: String) {
        self.issues.push(Issue {
            pos: report_pos(n),
            path,
            message,
        });
    }

    /// `ipv4_address` / `ipv6_address` of the service's networks.
    fn addresses(&mut self, s: &Svc) {
        let Some(nets) = s.map.get("networks").and_then(Node::as_map) else {
            return;
        };
        for (net, cfg) in nets {
            for (key, v6) in [("ipv4_address", false), ("ipv6_address", true)] {
                let Some(addr) = cfg.get(key).and_then(Node::as_str) else {
                    continue;
                };
                let ok = if v6 {
                    addr.parse::<std::net::Ipv6Addr>().is_ok()
                } else {
                    addr.parse::<std::net::Ipv4Addr>().is_ok()
                };
                if !ok {
                    let sp = &s.path;
                    self.issue(
                        cfg.get(key).unwrap_or(cfg),
                        format!("{sp}.networks.{net}.{key}"),
                        format!(
                            "{sp}.networks.{net}.{key}: {addr:?} is not an IPv{} address",
                            if v6 { 6 } else { 4 }
                        ),
                    );
                }
            }
        }
    }

    fn image_or_build(&mut self, s: &Svc) {
        if !s.map.contains_key("image")
            && !s.map.contains_key("build")
            && !s.map.contains_key("provider")
        {
            self.issue(
                s.node,
                s.path.clone(),
                format!(
                    "service {:?} has neither an image nor a build context specified: invalid compose project",
                    s.name
                ),
            );
        }
    }

    /// `volumes_from` and `depends_on` name defined services.
    fn service_references(&mut self, s: &Svc) {
        let (name, sp) = (s.name, &s.path);
        for v in s
            .map
            .get("volumes_from")
            .and_then(Node::as_seq)
            .unwrap_or_default()
        {
            if let Some(spec) = v.as_str()
                && !spec.starts_with("container:")
            {
                let other = spec.split(':').next().unwrap_or_default();
                if !self.services.contains_key(other) {
                    let h = hint(other, self.services.keys());
                    self.issue(
                        v,
                        format!("{sp}.volumes_from"),
                        format!(
                            "service {name:?} refers to undefined service {other:?} in volumes_from: invalid compose project{h}"
                        ),
                    );
                }
            }
        }
        for (dep, d) in s
            .map
            .get("depends_on")
            .and_then(Node::as_map)
            .into_iter()
            .flatten()
        {
            let required = d
                .get("required")
                .is_none_or(|r| r.value != Value::Bool(false));
            if !self.services.contains_key(dep) && required {
                let h = hint(dep, self.services.keys());
                self.issue(
                    d,
                    format!("{sp}.depends_on.{dep}"),
                    format!(
                        "service {name:?} depends on undefined service {dep:?}: invalid compose project{h}"
                    ),
                );
            }
        }
    }

    /// Models, networks, volumes, secrets and configs the service names
    /// are declared at the top level.
    fn resource_references(&mut self, s: &Svc) {
        let (name, sp) = (s.name, &s.path);
        for (model, n) in s
            .map
            .get("models")
            .and_then(Node::as_map)
            .into_iter()
            .flatten()
        {
            if !self.models.contains(model) {
                let h = hint(model, self.models.iter());
                self.issue(
                    n,
                    format!("{sp}.models.{model}"),
                    format!("service {name:?} refers to undefined model {model}: invalid compose project{h}"),
                );
            }
        }
        for (net, n) in s
            .map
            .get("networks")
            .and_then(Node::as_map)
            .into_iter()
            .flatten()
        {
            let auto = net == "default" && self.default_network;
            if !self.networks.contains(net) && !auto {
                let h = hint(net, self.networks.iter());
                self.issue(
                    n,
                    format!("{sp}.networks.{net}"),
                    format!("service {name:?} refers to undefined network {net}: invalid compose project{h}"),
                );
            }
        }
        let vols = s
            .map
            .get("volumes")
            .and_then(Node::as_seq)
            .unwrap_or_default();
        for (i, v) in vols.iter().enumerate() {
            let is_volume = v.get("type").and_then(Node::as_str) == Some("volume");
            if let (true, Some(src)) = (is_volume, v.get("source").and_then(Node::as_str))
                && !src.is_empty()
                && !self.volumes.iter().any(|x| x == src)
            {
                let h = hint(src, self.volumes.iter());
                self.issue(
                    v,
                    format!("{sp}.volumes[{i}]"),
                    format!("service {name:?} refers to undefined volume {src}: invalid compose project{h}"),
                );
            }
        }
        for kind in ["secrets", "configs"] {
            let items = s.map.get(kind).and_then(Node::as_seq).unwrap_or_default();
            for (i, it) in items.iter().enumerate() {
                let defined = if kind == "secrets" {
                    &self.secrets
                } else {
                    &self.configs
                };
                if let Some(src) = it.get("source").and_then(Node::scalar_string)
                    && !defined.contains(&src)
                {
                    let what = &kind[..kind.len() - 1];
                    let h = hint(&src, defined.iter());
                    self.issue(
                        it,
                        format!("{sp}.{kind}[{i}]"),
                        format!("service {name:?} refers to undefined {what} {src}: invalid compose project{h}"),
                    );
                }
            }
        }
    }

    /// A `container_name` cannot go with several replicas.
    fn container_name(&mut self, s: &Svc) {
        let Some(cn) = s.map.get("container_name") else {
            return;
        };
        let sp = &s.path;
        let scale = int(s.map.get("scale"));
        let replicas = int(s.map.get("deploy").and_then(|d| d.get("replicas")));
        let what = if scale.unwrap_or(1) > 1 {
            "scale"
        } else if replicas.unwrap_or(1) > 1 {
            "deploy.replicas"
        } else {
            return;
        };
        self.issue(
            cn,
            format!("{sp}.container_name"),
            format!("{sp}: can't set container_name and {what} as container name must be unique"),
        );
    }

    fn ports(&mut self, s: &Svc) {
        let sp = &s.path;
        let ports = s
            .map
            .get("ports")
            .and_then(Node::as_seq)
            .unwrap_or_default();
        for (i, port) in ports.iter().enumerate() {
            for (key, allowed) in [
                ("mode", &["host", "ingress"][..]),
                ("protocol", &["tcp", "udp", "sctp"][..]),
            ] {
                if let Some(v) = port.get(key).and_then(Node::as_str)
                    && !allowed.contains(&v)
                {
                    self.issue(
                        port.get(key).unwrap_or(port),
                        format!("{sp}.ports[{i}].{key}"),
                        format!(
                            "{sp}.ports[{i}].{key}: invalid value {v:?}: must be one of {}",
                            allowed.join(", ")
                        ),
                    );
                }
            }
        }
    }

    /// `pull_policy` and `restart` values.
    fn policies(&mut self, s: &Svc) {
        let sp = &s.path;
        if let Some(pp) = s.map.get("pull_policy").and_then(Node::as_str)
            && !valid_pull_policy(pp)
        {
            self.issue(
                s.at("pull_policy"),
                format!("{sp}.pull_policy"),
                format!(
                    "{sp}.pull_policy: invalid pull policy {pp:?}: must be always, never, missing, build, refresh, daily, weekly or every_<duration>"
                ),
            );
        }
        if let Some(r) = s.map.get("restart").and_then(Node::as_str)
            && !valid_restart(r)
        {
            self.issue(
                s.at("restart"),
                format!("{sp}.restart"),
                format!(
                    "{sp}.restart: invalid restart policy {r:?}: must be \"no\", \"always\", \"on-failure[:max-retries]\" or \"unless-stopped\""
                ),
            );
        }
    }

    /// `network_mode: service:X` names a service; it excludes `networks`.
    fn network_mode(&mut self, s: &Svc) {
        let (name, sp) = (s.name, &s.path);
        if let Some(nm) = s.map.get("network_mode").and_then(Node::as_str)
            && let Some(other) = nm.strip_prefix("service:")
            && !self.services.contains_key(other)
        {
            self.issue(
                s.at("network_mode"),
                format!("{sp}.network_mode"),
                format!(
                    "service {name:?} uses network_mode of undefined service {other:?}: invalid compose project"
                ),
            );
        }
        let has_networks = s
            .map
            .get("networks")
            .and_then(Node::as_map)
            .is_some_and(|m| !m.is_empty());
        if s.map.contains_key("network_mode") && has_networks {
            self.issue(
                s.at("network_mode"),
                format!("{sp}.network_mode"),
                format!(
                    "service {name:?} declares mutually exclusive `network_mode` and `networks`: invalid compose project"
                ),
            );
        }
    }

    /// The top-level networks' IPAM pools.
    fn ipam(&mut self, top: &Map) {
        for (net, cfg) in top
            .get("networks")
            .and_then(Node::as_map)
            .into_iter()
            .flatten()
        {
            let pools = cfg
                .get("ipam")
                .and_then(|i| i.get("config"))
                .and_then(Node::as_seq)
                .unwrap_or_default();
            for (i, pool) in pools.iter().enumerate() {
                let at = format!("networks.{net}.ipam.config[{i}]");
                for key in ["subnet", "ip_range"] {
                    if let Some(cidr) = pool.get(key).and_then(Node::as_str)
                        && !valid_cidr(cidr)
                    {
                        self.issue(
                            pool.get(key).unwrap_or(pool),
                            format!("{at}.{key}"),
                            format!("{at}.{key}: {cidr:?} is not a CIDR (address/prefix)"),
                        );
                    }
                }
                if let Some(gw) = pool.get("gateway").and_then(Node::as_str)
                    && gw.parse::<std::net::IpAddr>().is_err()
                {
                    self.issue(
                        pool.get("gateway").unwrap_or(pool),
                        format!("{at}.gateway"),
                        format!("{at}.gateway: {gw:?} is not an IP address"),
                    );
                }
            }
        }
    }
}
