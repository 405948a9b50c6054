//! Validation: the compose-spec JSON schema (draft 2020-12, compose-go's
//! copy, embedded) on the merged tree, then semantic checks the schema
//! cannot express (references between services, networks, volumes,
//! secrets and configs; dependency cycles; `container_name` with several
//! replicas; `restart` values). Every issue names the file, line, column and
//! key path, and an unknown key gets the closest valid key as a suggestion.

use std::fmt;
use std::sync::{Arc, Mutex};

use serde_json::Value as J;

use crate::schema::{Kind, SchemaError, Seg, Validator};
use crate::yaml::{Node, Pos, Value};

/// The compose-spec schema rstack validates against.
pub const SCHEMA: &str = include_str!("../schema/compose-spec.json");

/// One validation problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub pos: Pos,
    /// Key path such as `services.web.ports[1]`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

/// All the issues of a project, one per line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", issues.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct Issues {
    pub issues: Vec<Issue>,
}

/// The parsed schema and its compiled validator: built on first use, kept
/// for the next file, dropped by [`release_cache`] (a long-lived process
/// such as the supervisor validates once).
struct Compiled {
    schema: J,
    validator: Result<Validator, String>,
}

static CACHE: Mutex<Option<Arc<Compiled>>> = Mutex::new(None);

fn compiled() -> Arc<Compiled> {
    let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    c.get_or_insert_with(|| {
        let schema: J = serde_json::from_str(SCHEMA).unwrap_or(J::Null);
        let validator = Validator::new(&schema);
        Arc::new(Compiled { schema, validator })
    })
    .clone()
}

/// Drops the compiled schema (built again if needed later).
pub fn release_cache() {
    *CACHE.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

fn dotted(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The node at a path, and the position to report (the key's for a map value).
fn node_at<'a>(root: &'a Node, segs: &[Seg]) -> &'a Node {
    let mut n = root;
    for seg in segs {
        let next = match (seg, &n.value) {
            (Seg::Key(k), Value::Map(m)) => m.get(k),
            (Seg::Index(i), Value::Seq(s)) => s.get(*i),
            _ => None,
        };
        match next {
            Some(x) => n = x,
            None => break,
        }
    }
    n
}

pub(crate) fn report_pos(n: &Node) -> Pos {
    n.key_pos.clone().unwrap_or_else(|| n.pos.clone())
}

/// Validates a merged Compose tree against the schema.
pub fn schema(root: &Node) -> Vec<Issue> {
    let c = compiled();
    let v = match &c.validator {
        Ok(v) => v,
        Err(e) => {
            return vec![Issue {
                pos: root.pos.clone(),
                path: String::new(),
                message: format!("the embedded compose-spec schema does not compile: {e}"),
            }];
        }
    };
    let instance = root.to_json();
    let mut issues = Vec::new();
    for err in v.errors(&c.schema, &instance) {
        issues.extend(describe(&c.schema, root, &err.path, &err));
    }
    // The most specific problems first, and no repeats.
    issues.dedup();
    issues
}

fn type_list(types: &[String]) -> String {
    let mut t: Vec<&str> = types
        .iter()
        .map(|t| match t.as_str() {
            "object" => "mapping",
            "array" => "list",
            other => other,
        })
        .collect();
    t.sort();
    t.dedup();
    match t.len() {
        0 => String::new(),
        1 => t[0].to_string(),
        n => format!("{} or {}", t[..n - 1].join(", "), t[n - 1]),
    }
}

fn describe(schema: &J, root: &Node, segs: &[Seg], err: &SchemaError) -> Vec<Issue> {
    use Kind as K;
    let node = node_at(root, segs);
    let path = dotted(segs);
    let at = if path.is_empty() {
        "(root)".to_string()
    } else {
        path.clone()
    };
    let message = match &err.kind {
        K::AdditionalProperties { unexpected } => {
            let known = keys_at(schema, segs);
            let mut parts = Vec::new();
            for key in unexpected {
                let mut seg2 = segs.to_vec();
                seg2.push(Seg::Key(key.clone()));
                let n = node_at(root, &seg2);
                let mut m = format!("unknown key `{key}` in {at}");
                if let Some(s) = crate::suggest::closest(key, known.iter().map(String::as_str)) {
                    m.push_str(&format!(", did you mean `{s}`?"));
                }
                parts.push((report_pos(n), m));
            }
            if !parts.is_empty() {
                return parts
                    .into_iter()
                    .zip(unexpected)
                    .map(|((pos, message), key)| Issue {
                        pos,
                        path: if path.is_empty() {
                            key.clone()
                        } else {
                            format!("{path}.{key}")
                        },
                        message,
                    })
                    .collect();
            }
            format!("{at}: additional properties are not allowed")
        }
        K::Type { types } => format!("{at} must be a {}", type_list(types)),
        K::OneOfNotValid { context } | K::AnyOf { context } => {
            // The branch meant for this kind of value (no type mismatch on
            // the value itself) says best what is wrong inside it.
            let own = segs.len();
            for branch in context {
                let type_miss = branch
                    .iter()
                    .any(|e| matches!(e.kind, K::Type { .. }) && e.path.len() == own);
                if !type_miss && let Some(e) = branch.first() {
                    return describe(schema, root, &e.path, e);
                }
            }
            one_of_types(&at, node, context)
        }
        K::Required { property } => {
            format!("{at}: missing required key {property:?}")
        }
        K::Enum { options } => format!("{at} must be one of {options}"),
        _ => format!("{at}: {err}"),
    };
    vec![Issue {
        pos: report_pos(node),
        path,
        message,
    }]
}

/// For `oneOf` / `anyOf` with no branch for this kind of value, say what
/// the value may be (`must be a list or mapping`), like compose-go does.
fn one_of_types(at: &str, node: &Node, context: &[Vec<SchemaError>]) -> String {
    let mut types = Vec::new();
    for branch in context {
        for e in branch {
            if let Kind::Type { types: t } = &e.kind {
                types.extend(t.iter().cloned());
            }
        }
    }
    if types.is_empty() {
        format!(
            "{at}: invalid value ({} does not match any allowed form)",
            node.kind()
        )
    } else {
        format!("{at} must be a {}", type_list(&types))
    }
}

/// The keys the schema allows at a path (to suggest one for a typo).
fn keys_at(root: &J, segs: &[Seg]) -> Vec<String> {
    let mut cur = root;
    for seg in segs {
        cur = deref(root, cur);
        let next = match seg {
            Seg::Key(k) => object_branch(root, cur).and_then(|o| {
                o.get("properties")
                    .and_then(|p| p.get(k))
                    .or_else(|| {
                        o.get("patternProperties")
                            .and_then(J::as_object)
                            .and_then(|pp| pp.values().next())
                    })
                    .or_else(|| o.get("additionalProperties").filter(|a| a.is_object()))
            }),
            Seg::Index(_) => array_items(root, cur),
        };
        match next {
            Some(n) => cur = n,
            None => return Vec::new(),
        }
    }
    let cur = deref(root, cur);
    object_branch(root, cur)
        .and_then(|o| o.get("properties"))
        .and_then(J::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn deref<'a>(root: &'a J, mut v: &'a J) -> &'a J {
    for _ in 0..16 {
        match v.get("$ref").and_then(J::as_str) {
            Some(r) => {
                let ptr = r.trim_start_matches('#');
                match root.pointer(ptr) {
                    Some(t) => v = t,
                    None => return v,
                }
            }
            None => return v,
        }
    }
    v
}

fn object_branch<'a>(root: &'a J, v: &'a J) -> Option<&'a J> {
    let v = deref(root, v);
    if v.get("properties").is_some() || v.get("patternProperties").is_some() {
        return Some(v);
    }
    for k in ["oneOf", "anyOf", "allOf"] {
        if let Some(arr) = v.get(k).and_then(J::as_array) {
            for b in arr {
                if let Some(o) = object_branch(root, b) {
                    return Some(o);
                }
            }
        }
    }
    None
}

fn array_items<'a>(root: &'a J, v: &'a J) -> Option<&'a J> {
    let v = deref(root, v);
    if let Some(i) = v.get("items") {
        return Some(i);
    }
    for k in ["oneOf", "anyOf"] {
        if let Some(arr) = v.get(k).and_then(J::as_array) {
            for b in arr {
                if let Some(i) = array_items(root, b) {
                    return Some(i);
                }
            }
        }
    }
    None
}

/// The keys a service may have (for suggestions elsewhere).
pub fn service_keys() -> Vec<String> {
    keys_at(
        &compiled().schema,
        &[Seg::Key("services".into()), Seg::Key("x".into())],
    )
}

/// `10.1.0.0/16` or `fd00::/64`.
pub(crate) fn valid_cidr(s: &str) -> bool {
    let Some((addr, prefix)) = s.split_once('/') else {
        return false;
    };
    match (addr.parse::<std::net::IpAddr>(), prefix.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(p)) => p <= 32,
        (Ok(std::net::IpAddr::V6(_)), Ok(p)) => p <= 128,
        _ => false,
    }
}

/// The schema's pattern for `pull_policy` is not anchored (it accepts
/// `alwaysss`); this is the exact set.
pub(crate) fn valid_pull_policy(p: &str) -> bool {
    match p {
        "always" | "never" | "build" | "if_not_present" | "missing" | "refresh" | "daily"
        | "weekly" => true,
        _ => p
            .strip_prefix("every_")
            .is_some_and(|d| crate::units::Duration::parse(d).is_ok()),
    }
}

pub(crate) fn valid_restart(r: &str) -> bool {
    match r {
        "no" | "always" | "unless-stopped" | "on-failure" => true,
        _ => r
            .strip_prefix("on-failure:")
            .is_some_and(|n| n.parse::<u32>().is_ok()),
    }
}

pub(crate) fn hint<'a>(word: &str, candidates: impl Iterator<Item = &'a String>) -> String {
    match crate::suggest::closest(word, candidates.map(String::as_str)) {
        Some(s) => format!(" (did you mean {s:?}?)"),
        None => String::new(),
    }
}
