//! Merging Compose files (`-f a.yaml -f b.yaml`, override files, `extends`)
//! on the raw YAML tree, with compose-go's rules (`override/merge.go`):
//! mappings merge key by key, sequences append, scalars are replaced, and
//! some paths have their own rule (environment and labels become `KEY=VALUE`
//! lists, `command` is replaced, logging options merge only for the same
//! driver, service networks become a mapping...). `!reset` removes the
//! inherited value and `!override` replaces it without merging.
//!
//! After merging, [`enforce_unicity`] removes repeated entries of lists
//! that are keyed (environment by name, volumes by target, ports...), the
//! later entry taking the place of the earlier one (`override/uncity.go`).

use crate::short;
use crate::yaml::{Map, Node, Tag, Value};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{pos}: service volume {path} is missing a mount target")]
    VolumeTarget { pos: crate::yaml::Pos, path: String },
    #[error("{pos}: service ports {path} is missing a target port")]
    PortTarget { pos: crate::yaml::Pos, path: String },
    #[error("{pos}: environment path attribute {path} is missing")]
    EnvFilePath { pos: crate::yaml::Pos, path: String },
    #[error("{pos}: {path}: invalid volume")]
    Volume {
        pos: crate::yaml::Pos,
        path: String,
        #[source]
        source: short::Error,
    },
}

#[derive(Clone, Copy)]
enum Rule {
    ToSequence,
    Override,
    Build,
    DependsOn,
    Networks,
    ExtraHosts,
    Logging,
    Ulimit,
    IpamConfig,
}

const RULES: &[(&str, Rule)] = &[
    ("networks.*.ipam.config", Rule::IpamConfig),
    ("networks.*.labels", Rule::ToSequence),
    ("volumes.*.labels", Rule::ToSequence),
    ("services.*.annotations", Rule::ToSequence),
    ("services.*.build", Rule::Build),
    ("services.*.build.args", Rule::ToSequence),
    ("services.*.build.additional_contexts", Rule::ToSequence),
    ("services.*.build.extra_hosts", Rule::ExtraHosts),
    ("services.*.build.labels", Rule::ToSequence),
    ("services.*.command", Rule::Override),
    ("services.*.depends_on", Rule::DependsOn),
    ("services.*.deploy.labels", Rule::ToSequence),
    ("services.*.dns", Rule::ToSequence),
    ("services.*.dns_opt", Rule::ToSequence),
    ("services.*.dns_search", Rule::ToSequence),
    ("services.*.entrypoint", Rule::Override),
    ("services.*.env_file", Rule::ToSequence),
    ("services.*.label_file", Rule::ToSequence),
    ("services.*.environment", Rule::ToSequence),
    ("services.*.extra_hosts", Rule::ExtraHosts),
    ("services.*.healthcheck.test", Rule::Override),
    ("services.*.labels", Rule::ToSequence),
    ("services.*.volumes.*.volume.labels", Rule::ToSequence),
    ("services.*.logging", Rule::Logging),
    ("services.*.models", Rule::Networks),
    ("services.*.networks", Rule::Networks),
    ("services.*.sysctls", Rule::ToSequence),
    ("services.*.tmpfs", Rule::ToSequence),
    ("services.*.ulimits.*", Rule::Ulimit),
];

fn matches(path: &[String], pattern: &str) -> bool {
    let parts: Vec<&str> = pattern.split('.').collect();
    parts.len() == path.len() && parts.iter().zip(path).all(|(p, s)| *p == "*" || p == s)
}

fn rule_for(path: &[String]) -> Option<Rule> {
    RULES
        .iter()
        .find(|(pattern, _)| matches(path, pattern))
        .map(|(_, r)| *r)
}

/// Merges `over` on top of `base` (both whole Compose documents).
pub fn merge(base: Node, over: Node) -> Node {
    merge_at(base, over, &mut Vec::new())
}

/// Merges a service on top of the service it `extends`, with the rules of
/// `services.*` (compose-go `override.ExtendService`).
pub fn merge_service(base: Node, over: Node) -> Node {
    let mut path = vec!["services".to_string(), "x".to_string()];
    merge_at(base, over, &mut path)
}

/// Removes `!reset` nodes and clears `!override` tags of a tree that is not
/// merged on anything (the first file, or a value with nothing under it).
pub fn clean(node: &mut Node) {
    node.tag = None;
    match &mut node.value {
        Value::Map(m) => {
            m.retain(|_, v| v.tag != Some(Tag::Reset));
            for v in m.values_mut() {
                clean(v);
            }
        }
        Value::Seq(s) => {
            s.retain(|v| v.tag != Some(Tag::Reset));
            for v in s.iter_mut() {
                clean(v);
            }
        }
        _ => {}
    }
}

/// Merges the next document of a project onto the ones before it (the
/// first is only cleaned of its merge tags).
pub(crate) fn merge_next(merged: Option<Node>, mut doc: Node) -> Node {
    match merged {
        None => {
            clean(&mut doc);
            doc
        }
        Some(base) => merge(base, doc),
    }
}

fn merge_at(base: Node, over: Node, path: &mut Vec<String>) -> Node {
    if over.tag == Some(Tag::Override) {
        let mut over = over;
        clean(&mut over);
        return over;
    }
    if let Some(rule) = rule_for(path) {
        return apply_rule(rule, base, over, path);
    }
    if over.is_null() {
        return base;
    }
    match (base.value, over.value) {
        (Value::Map(b), Value::Map(o)) => Node {
            value: Value::Map(merge_maps(b, o, path)),
            ..over_shell(&over.pos, over.key_pos)
        },
        (Value::Seq(mut b), Value::Seq(o)) => {
            for mut item in o {
                clean(&mut item);
                b.push(item);
            }
            Node {
                value: Value::Seq(b),
                ..over_shell(&over.pos, over.key_pos)
            }
        }
        (_, value) => {
            let mut n = Node {
                value,
                ..over_shell(&over.pos, over.key_pos)
            };
            clean(&mut n);
            n
        }
    }
}

fn over_shell(pos: &crate::yaml::Pos, key_pos: Option<crate::yaml::Pos>) -> Node {
    Node {
        value: Value::Null,
        pos: pos.clone(),
        key_pos,
        tag: None,
    }
}

fn merge_maps(mut base: Map, over: Map, path: &mut Vec<String>) -> Map {
    for (k, mut v) in over {
        if v.tag == Some(Tag::Reset) {
            base.shift_remove(&k);
            continue;
        }
        match base.get_mut(&k) {
            Some(existing) if !k.starts_with("x-") => {
                let e = std::mem::replace(existing, Node::synthetic(Value::Null));
                path.push(k.clone());
                *existing = merge_at(e, v, path);
                path.pop();
            }
            _ => {
                clean(&mut v);
                base.insert(k, v);
            }
        }
    }
    base
}

fn apply_rule(rule: Rule, base: Node, over: Node, path: &mut Vec<String>) -> Node {
    let pos = over.pos.clone();
    let key_pos = over.key_pos.clone();
    let mut out = match rule {
        Rule::Override => {
            if over.is_null() {
                base
            } else {
                over
            }
        }
        Rule::ToSequence => {
            let mut items = to_sequence(base);
            items.extend(to_sequence(over));
            Node::new(Value::Seq(items), pos)
        }
        Rule::ExtraHosts => {
            let mut items = to_sequence(base);
            for item in to_sequence(over) {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            Node::new(Value::Seq(items), pos)
        }
        Rule::Build => {
            let to_map = |n: Node| -> Map {
                match n.value {
                    Value::Str(s) => {
                        let mut m = Map::new();
                        m.insert("context".into(), Node::new(Value::Str(s), n.pos));
                        m
                    }
                    Value::Map(m) => m,
                    _ => Map::new(),
                }
            };
            Node::new(
                Value::Map(merge_maps(to_map(base), to_map(over), path)),
                pos,
            )
        }
        Rule::DependsOn => {
            let b = to_mapping(base, true);
            let o = to_mapping(over, true);
            Node::new(Value::Map(merge_maps(b, o, path)), pos)
        }
        Rule::Networks => {
            let b = to_mapping(base, false);
            let o = to_mapping(over, false);
            Node::new(Value::Map(merge_maps(b, o, path)), pos)
        }
        Rule::Logging => {
            let (Value::Map(b), Value::Map(o)) = (&base.value, &over.value) else {
                return if over.is_null() { base } else { over };
            };
            let same = match (b.get("driver"), o.get("driver")) {
                (Some(x), Some(y)) => x == y,
                _ => true,
            };
            if same {
                let (Value::Map(b), Value::Map(o)) = (base.value, over.value) else {
                    unreachable!("checked above")
                };
                Node::new(Value::Map(merge_maps(b, o, path)), pos)
            } else {
                over
            }
        }
        // compose-go's mergeUlimit merges the override with itself: the
        // override replaces the whole ulimit entry.
        Rule::Ulimit => {
            if over.is_null() {
                base
            } else {
                over
            }
        }
        Rule::IpamConfig => merge_ipam(base, over, path),
    };
    out.key_pos = key_pos;
    clean(&mut out);
    out
}

fn merge_ipam(base: Node, over: Node, path: &mut Vec<String>) -> Node {
    let pos = over.pos.clone();
    let (Value::Seq(b), Value::Seq(o)) = (base.value, over.value) else {
        return Node::new(Value::Null, pos);
    };
    let mut configs: Vec<Map> = Vec::new();
    let subnet = |m: &Map| m.get("subnet").cloned();
    for original in b {
        let right = to_mapping(original, false);
        for item in &o {
            let left = to_mapping(item.clone(), false);
            if subnet(&left) != subnet(&right)
                && !configs.iter().any(|c| subnet(c) == subnet(&left))
            {
                configs.push(left);
                continue;
            }
            let merged = merge_maps(right.clone(), left, path);
            match configs.iter().position(|c| subnet(c) == subnet(&merged)) {
                Some(i) => configs[i] = merged,
                None => configs.push(merged),
            }
        }
    }
    Node::new(
        Value::Seq(
            configs
                .into_iter()
                .map(|m| Node::synthetic(Value::Map(m)))
                .collect(),
        ),
        pos,
    )
}

/// `KEY: v` mappings become sorted `KEY=v` strings; a sequence stays; a
/// string becomes a one-item sequence (compose-go `convertIntoSequence`).
fn to_sequence(node: Node) -> Vec<Node> {
    match node.value {
        Value::Map(m) => {
            let mut seq: Vec<Node> = Vec::new();
            for (k, v) in m {
                let pos = v.pos.clone();
                match v.value {
                    Value::Null => seq.push(Node::new(Value::Str(k), pos)),
                    Value::Seq(items) => {
                        for item in items {
                            let s = item.scalar_string().unwrap_or_default();
                            seq.push(Node::new(Value::Str(format!("{k}={s}")), pos.clone()));
                        }
                    }
                    _ => {
                        let s = v.scalar_string().unwrap_or_default();
                        seq.push(Node::new(Value::Str(format!("{k}={s}")), pos));
                    }
                }
            }
            seq.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            seq
        }
        Value::Seq(s) => s,
        Value::Str(s) => vec![Node::new(Value::Str(s), node.pos)],
        _ => Vec::new(),
    }
}

/// A list of names becomes a mapping; with `depends_on` defaults each
/// entry is `{condition: service_started, required: true}`.
fn to_mapping(node: Node, depends_on_defaults: bool) -> Map {
    match node.value {
        Value::Map(m) => m,
        Value::Seq(items) => {
            let mut m = Map::new();
            for item in items {
                let name = item.scalar_string().unwrap_or_default();
                let value = if depends_on_defaults {
                    let mut d = Map::new();
                    d.insert("condition".into(), Node::str("service_started"));
                    d.insert("required".into(), Node::synthetic(Value::Bool(true)));
                    Value::Map(d)
                } else {
                    Value::Null
                };
                m.insert(name, Node::new(value, item.pos));
            }
            m
        }
        _ => Map::new(),
    }
}

#[derive(Clone, Copy)]
enum Indexer {
    KeyValue,
    Volume,
    Device,
    Expose,
    Mount(&'static str),
    Port,
    EnvFile,
}

const UNIQUE: &[(&str, Indexer)] = &[
    ("networks.*.labels", Indexer::KeyValue),
    ("networks.*.ipam.options", Indexer::KeyValue),
    ("services.*.annotations", Indexer::KeyValue),
    ("services.*.build.args", Indexer::KeyValue),
    ("services.*.build.additional_contexts", Indexer::KeyValue),
    ("services.*.build.platform", Indexer::KeyValue),
    ("services.*.build.tags", Indexer::KeyValue),
    ("services.*.build.labels", Indexer::KeyValue),
    ("services.*.cap_add", Indexer::KeyValue),
    ("services.*.cap_drop", Indexer::KeyValue),
    ("services.*.devices", Indexer::Device),
    ("services.*.configs", Indexer::Mount("")),
    ("services.*.deploy.labels", Indexer::KeyValue),
    ("services.*.dns", Indexer::KeyValue),
    ("services.*.dns_opt", Indexer::KeyValue),
    ("services.*.dns_search", Indexer::KeyValue),
    ("services.*.environment", Indexer::KeyValue),
    ("services.*.env_file", Indexer::EnvFile),
    ("services.*.expose", Indexer::Expose),
    ("services.*.labels", Indexer::KeyValue),
    ("services.*.links", Indexer::KeyValue),
    ("services.*.networks.*.aliases", Indexer::KeyValue),
    ("services.*.networks.*.link_local_ips", Indexer::KeyValue),
    ("services.*.ports", Indexer::Port),
    ("services.*.profiles", Indexer::KeyValue),
    ("services.*.secrets", Indexer::Mount("/run/secrets")),
    ("services.*.sysctls", Indexer::KeyValue),
    ("services.*.tmpfs", Indexer::KeyValue),
    ("services.*.volumes", Indexer::Volume),
];

/// Removes redefinitions of keyed list entries (the later one wins, in the
/// place of the first).
pub fn enforce_unicity(node: &mut Node) -> Result<(), Error> {
    unicity_at(node, &mut Vec::new())
}

fn dotted(path: &[String]) -> String {
    path.join(".")
}

fn unicity_at(node: &mut Node, path: &mut Vec<String>) -> Result<(), Error> {
    match &mut node.value {
        Value::Map(m) => {
            for (k, v) in m.iter_mut() {
                path.push(k.clone());
                unicity_at(v, path)?;
                path.pop();
            }
        }
        Value::Seq(items) => {
            let Some(indexer) = UNIQUE
                .iter()
                .find(|(p, _)| matches(path, p))
                .map(|(_, i)| *i)
            else {
                return Ok(());
            };
            let mut seq: Vec<Node> = Vec::new();
            let mut keys: Vec<String> = Vec::new();
            for (i, entry) in std::mem::take(items).into_iter().enumerate() {
                let key = index_key(indexer, &entry, &format!("{}[{i}]", dotted(path)))?;
                match keys.iter().position(|k| *k == key) {
                    Some(j) => seq[j] = entry,
                    None => {
                        keys.push(key);
                        seq.push(entry);
                    }
                }
            }
            *items = seq;
        }
        _ => {}
    }
    Ok(())
}

fn index_key(indexer: Indexer, entry: &Node, path: &str) -> Result<String, Error> {
    let scalar = || entry.scalar_string().unwrap_or_default();
    Ok(match indexer {
        Indexer::KeyValue => {
            let s = scalar();
            s.split_once('=').map_or(s.clone(), |(k, _)| k.to_string())
        }
        Indexer::Volume => match &entry.value {
            Value::Map(m) => m
                .get("target")
                .and_then(Node::as_str)
                .ok_or_else(|| Error::VolumeTarget {
                    pos: entry.pos.clone(),
                    path: path.to_string(),
                })?
                .to_string(),
            Value::Str(s) => {
                short::parse_volume(s)
                    .map_err(|source| Error::Volume {
                        pos: entry.pos.clone(),
                        path: path.to_string(),
                        source,
                    })?
                    .target
            }
            _ => String::new(),
        },
        Indexer::Device => match &entry.value {
            Value::Map(m) => m
                .get("target")
                .and_then(Node::as_str)
                .unwrap_or_default()
                .to_string(),
            Value::Str(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                parts.get(1).unwrap_or(&parts[0]).to_string()
            }
            _ => String::new(),
        },
        Indexer::Expose => scalar(),
        Indexer::Mount(default) => match &entry.value {
            Value::Map(m) => match m.get("target").and_then(Node::scalar_string) {
                Some(t) => t,
                None => format!(
                    "{default}/{}",
                    m.get("source")
                        .and_then(Node::scalar_string)
                        .unwrap_or_default()
                ),
            },
            _ => format!("{default}/{}", scalar()),
        },
        Indexer::Port => match &entry.value {
            Value::Map(m) => {
                let target = m.get("target").ok_or_else(|| Error::PortTarget {
                    pos: entry.pos.clone(),
                    path: path.to_string(),
                })?;
                let get = |k: &str, d: &str| {
                    m.get(k)
                        .and_then(Node::scalar_string)
                        .unwrap_or_else(|| d.to_string())
                };
                format!(
                    "{}:{}:{}/{}",
                    get("host_ip", "0.0.0.0"),
                    get("published", ""),
                    target.scalar_string().unwrap_or_default(),
                    get("protocol", "tcp")
                )
            }
            _ => scalar(),
        },
        Indexer::EnvFile => {
            match &entry.value {
                Value::Map(m) => m.get("path").and_then(Node::scalar_string).ok_or_else(|| {
                    Error::EnvFilePath {
                        pos: entry.pos.clone(),
                        path: path.to_string(),
                    }
                })?,
                _ => scalar(),
            }
        }
    })
}
