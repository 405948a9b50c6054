//! Normalisation of a canonical project (compose-go `normalize.go`) and
//! profile selection: the default network, resource names, the default
//! Dockerfile, and the dependencies implied by `network_mode: service:x`,
//! `volumes_from` and `links`.

use indexmap::IndexSet;

use crate::yaml::{Map, Node, Value};

/// `network_mode: service:x`, `volumes_from: [x]` and `links: [x:alias]`
/// need `x` started first: they become `depends_on` entries when missing.
fn implicit_dependencies(sm: &mut Map) {
    let mut deps: Vec<String> = Vec::new();
    if let Some(nm) = sm.get("network_mode").and_then(Node::as_str)
        && let Some(s) = nm.strip_prefix("service:")
    {
        deps.push(s.to_string());
    }
    for v in sm
        .get("volumes_from")
        .and_then(Node::as_seq)
        .unwrap_or_default()
    {
        if let Some(spec) = v.as_str()
            && !spec.starts_with("container:")
        {
            deps.push(spec.split(':').next().unwrap_or_default().to_string());
        }
    }
    for l in sm.get("links").and_then(Node::as_seq).unwrap_or_default() {
        if let Some(spec) = l.as_str() {
            deps.push(spec.split(':').next().unwrap_or_default().to_string());
        }
    }
    if deps.is_empty() {
        return;
    }
    let d = sm
        .entry("depends_on".into())
        .or_insert_with(|| Node::synthetic(Value::Map(Map::new())));
    if let Some(dm) = d.as_map_mut() {
        for dep in deps {
            dm.entry(dep).or_insert_with(|| {
                let mut m = Map::new();
                m.insert("condition".into(), Node::str("service_started"));
                m.insert("required".into(), Node::synthetic(Value::Bool(true)));
                Node::synthetic(Value::Map(m))
            });
        }
    }
}

/// Adds the default network to services without networks (and without
/// `network_mode`), and names to networks and volumes. Returns whether the
/// default network is used.
pub(crate) fn normalize(dict: &mut Node, project: &str) -> bool {
    let Some(top) = dict.as_map_mut() else {
        return false;
    };
    let mut uses_default = false;
    if let Some(services) = top.get_mut("services").and_then(Node::as_map_mut) {
        service_defaults(services);
        uses_default = default_service_networks(services);
    }
    let nets = top
        .entry("networks".into())
        .or_insert_with(|| Node::synthetic(Value::Map(Map::new())));
    if nets.is_null() {
        nets.value = Value::Map(Map::new());
    }
    if uses_default && let Some(nm) = nets.as_map_mut() {
        nm.entry("default".into())
            .or_insert_with(|| Node::synthetic(Value::Map(Map::new())));
    }
    name_resources(top, project);
    if let Some(nm) = top.get("networks").and_then(Node::as_map)
        && nm.is_empty()
    {
        top.shift_remove("networks");
    }
    uses_default
}

/// Per service: implicit dependencies, the default Dockerfile, and
/// `pull_policy: if_not_present` spelled `missing`.
fn service_defaults(services: &mut Map) {
    for svc in services.values_mut() {
        let Some(sm) = svc.as_map_mut() else { continue };
        implicit_dependencies(sm);
        if let Some(b) = sm.get_mut("build").and_then(Node::as_map_mut)
            && !b.contains_key("dockerfile")
            && !b.contains_key("dockerfile_inline")
        {
            b.insert("dockerfile".into(), Node::str("Dockerfile"));
        }
        if let Some(p) = sm.get_mut("pull_policy")
            && p.as_str() == Some("if_not_present")
        {
            p.value = Value::Str("missing".into());
        }
    }
}

/// Services without networks (and without `network_mode`) join `default`.
/// Returns whether any service is on the default network.
fn default_service_networks(services: &mut Map) -> bool {
    let mut uses_default = false;
    for svc in services.values_mut() {
        let Some(sm) = svc.as_map_mut() else { continue };
        if sm.contains_key("network_mode") {
            continue;
        }
        let nets = sm
            .entry("networks".into())
            .or_insert_with(|| Node::synthetic(Value::Map(Map::new())));
        if nets.is_null() {
            nets.value = Value::Map(Map::new());
        }
        if let Some(nm) = nets.as_map_mut() {
            if nm.is_empty() {
                nm.insert("default".into(), Node::synthetic(Value::Null));
            }
            if nm.contains_key("default") {
                uses_default = true;
            }
        }
    }
    uses_default
}

/// Networks, volumes, secrets and configs without a `name` get one: the key
/// for external resources, `<project>_<key>` for the others.
fn name_resources(top: &mut Map, project: &str) {
    for kind in ["networks", "volumes"] {
        if let Some(m) = top.get_mut(kind).and_then(Node::as_map_mut) {
            for (k, v) in m.iter_mut() {
                if v.is_null() {
                    v.value = Value::Map(Map::new());
                }
                default_name(v, k, project);
            }
        }
    }
    for kind in ["secrets", "configs"] {
        if let Some(m) = top.get_mut(kind).and_then(Node::as_map_mut) {
            for (k, v) in m.iter_mut() {
                default_name(v, k, project);
            }
        }
    }
}

fn default_name(resource: &mut Node, key: &str, project: &str) {
    if let Some(rm) = resource.as_map_mut()
        && !rm.contains_key("name")
    {
        let external = rm
            .get("external")
            .is_some_and(|e| e.value == Value::Bool(true));
        let n = if external {
            key.to_string()
        } else {
            format!("{project}_{key}")
        };
        rm.insert("name".into(), Node::str(n));
    }
}

/// Profiles: a service is active when it has no profile, one of its
/// profiles is enabled, or it is named on the command line; the
/// dependencies of active services are activated too.
pub(crate) fn active_services(
    root: &Node,
    profiles: &[String],
    named: &[String],
) -> IndexSet<String> {
    let mut active = IndexSet::new();
    let Some(services) = root.get("services").and_then(Node::as_map) else {
        return active;
    };
    for (name, svc) in services {
        let sp: Vec<String> = svc
            .get("profiles")
            .and_then(Node::as_seq)
            .map(|s| s.iter().filter_map(Node::scalar_string).collect())
            .unwrap_or_default();
        if sp.is_empty()
            || sp.iter().any(|p| profiles.contains(p) || p == "*")
            || profiles.iter().any(|p| p == "*")
            || named.contains(name)
        {
            active.insert(name.clone());
        }
    }
    let mut i = 0;
    while i < active.len() {
        let n = active[i].clone();
        if let Some(deps) = services
            .get(&n)
            .and_then(|s| s.get("depends_on"))
            .and_then(Node::as_map)
        {
            for (d, _) in deps {
                if services.contains_key(d) {
                    active.insert(d.clone());
                }
            }
        }
        i += 1;
    }
    active
}
