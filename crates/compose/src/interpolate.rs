//! Variable interpolation in Compose values, as compose-go `template` does it.
//!
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`,
//! `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}`, nesting inside the default,
//! and `$$` for a literal `$`. Only values are interpolated, never keys.
//! Defaults, alternatives and error messages are themselves templates and
//! are only expanded when they are used (so an unused `${B}` logs nothing).
//!
//! Hand-written rather than a crate: the exact compose-go rules (operator
//! chosen by first occurrence, greedy braces split at the first balanced
//! `}`, a lone `$` kept as is) are what users' files depend on.

use std::collections::HashMap;

use crate::yaml::{Node, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("Invalid template: {template:?}")]
    InvalidTemplate { template: String },
    #[error("required variable {variable} is missing a value{}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    MissingRequired { variable: String, reason: String },
}

/// Where variables come from. `None` means unset.
pub trait Lookup {
    fn lookup(&self, name: &str) -> Option<String>;
}

impl Lookup for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Lookup for indexmap::IndexMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn lookup(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Substitutes the variables of one template. Names of unset variables that
/// defaulted to the empty string are pushed onto `unset`.
pub fn substitute(
    template: &str,
    env: &dyn Lookup,
    unset: &mut Vec<String>,
) -> Result<String, Error> {
    substitute_at(template, env, unset, 0)
}

/// Deepest nesting of `${A:-${B:-...}}` accepted (a bound on recursion).
const MAX_NESTING: usize = 64;

fn substitute_at(
    template: &str,
    env: &dyn Lookup,
    unset: &mut Vec<String>,
    depth: usize,
) -> Result<String, Error> {
    if depth > MAX_NESTING {
        return Err(invalid(template));
    }
    let mut out = String::with_capacity(template.len());
    let mut first_err: Option<Error> = None;
    let b = template.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let next = template[i..].find('$').map_or(b.len(), |n| i + n);
            out.push_str(&template[i..next]);
            i = next;
            continue;
        }
        // b[i] == '$'
        let rest = &template[i + 1..];
        if rest.starts_with('$') {
            out.push('$');
            i += 2;
            continue;
        }
        let name_len = name_len(rest);
        if name_len > 0 {
            let name = &rest[..name_len];
            out.push_str(&lookup_or_warn(name, env, unset));
            i += 1 + name_len;
            continue;
        }
        if !rest.starts_with('{') {
            out.push('$');
            i += 1;
            continue;
        }
        // `${...}`: the braced body runs to the first balanced `}`.
        let braced = &template[i..];
        let Some(close) = closing_brace(braced) else {
            record(&mut first_err, invalid(template));
            break;
        };
        let body = &braced[2..close];
        match substitute_braced(body, env, unset, depth) {
            Ok(v) => out.push_str(&v),
            Err(Error::InvalidTemplate { .. }) => {
                record(&mut first_err, invalid(template));
            }
            Err(e) => record(&mut first_err, e),
        }
        i += close + 1;
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn record(slot: &mut Option<Error>, e: Error) {
    if slot.is_none() {
        *slot = Some(e);
    }
}

fn invalid(template: &str) -> Error {
    Error::InvalidTemplate {
        template: template.to_string(),
    }
}

/// Length of a variable name (`[_a-zA-Z][_a-zA-Z0-9]*`) at the start of `s`.
fn name_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.is_empty() || !(b[0] == b'_' || b[0].is_ascii_alphabetic()) {
        return 0;
    }
    b.iter()
        .position(|c| !(*c == b'_' || c.is_ascii_alphanumeric()))
        .unwrap_or(b.len())
}

/// Index of the `}` closing the `${` at the start of `s`, counting nested
/// braces (so a default may hold JSON such as `{"a":1}`).
fn closing_brace(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'}' {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return Some(i);
            }
        }
        if b[i] == b'{' {
            depth += 1;
        }
        i += 1;
    }
    None
}

/// The operators of `${NAME<op>arg}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `:?` error when unset or empty
    RequiredNonEmpty,
    /// `?` error when unset
    Required,
    /// `:-` default when unset or empty
    DefaultNonEmpty,
    /// `-` default when unset
    Default,
    /// `:+` alternative when set and non-empty
    AltNonEmpty,
    /// `+` alternative when set
    Alt,
}

impl Operator {
    pub fn token(self) -> &'static str {
        match self {
            Operator::RequiredNonEmpty => ":?",
            Operator::Required => "?",
            Operator::DefaultNonEmpty => ":-",
            Operator::Default => "-",
            Operator::AltNonEmpty => ":+",
            Operator::Alt => "+",
        }
    }
}

/// The operator that applies to a braced body: the one that occurs first
/// (`VAR-a:-b` uses `-`), as compose-go's `getSubstitutionFunctionForTemplate`.
pub fn operator_of(body: &str) -> Option<Operator> {
    use Operator::*;
    let b = body.as_bytes();
    (0..b.len()).find_map(|i| {
        // `:` makes the operator after it the "non-empty" one.
        let (symbol, non_empty) = match b[i] {
            b':' => (*b.get(i + 1)?, true),
            c => (c, false),
        };
        match (symbol, non_empty) {
            (b'?', true) => Some(RequiredNonEmpty),
            (b'?', false) => Some(Required),
            (b'-', true) => Some(DefaultNonEmpty),
            (b'-', false) => Some(Default),
            (b'+', true) => Some(AltNonEmpty),
            (b'+', false) => Some(Alt),
            _ => None,
        }
    })
}

fn substitute_braced(
    body: &str,
    env: &dyn Lookup,
    unset: &mut Vec<String>,
    depth: usize,
) -> Result<String, Error> {
    let n = name_len(body);
    if n == 0 {
        return Err(invalid(body));
    }
    let name = &body[..n];
    let tail = &body[n..];
    if tail.is_empty() {
        return Ok(lookup_or_warn(name, env, unset));
    }
    // After the name must come an operator (`:` then one of `-+?`, or one of them).
    let t = tail.strip_prefix(':').unwrap_or(tail);
    if !t.starts_with(['-', '+', '?']) {
        return Err(invalid(body));
    }
    let op = operator_of(body).ok_or_else(|| invalid(body))?;
    let (name, arg) = body.split_once(op.token()).ok_or_else(|| invalid(body))?;
    let value = env.lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let expand = |arg: &str, unset: &mut Vec<String>| substitute_at(arg, env, unset, depth + 1);
    match op {
        Operator::DefaultNonEmpty if !non_empty => expand(arg, unset),
        Operator::Default if !set => expand(arg, unset),
        Operator::DefaultNonEmpty | Operator::Default => Ok(value.unwrap_or_default()),
        Operator::AltNonEmpty if non_empty => expand(arg, unset),
        Operator::Alt if set => expand(arg, unset),
        Operator::AltNonEmpty | Operator::Alt => Ok(value.unwrap_or_default()),
        Operator::RequiredNonEmpty | Operator::Required => {
            let ok = if op == Operator::Required {
                set
            } else {
                non_empty
            };
            if ok {
                Ok(value.unwrap_or_default())
            } else {
                Err(Error::MissingRequired {
                    variable: name.to_string(),
                    reason: expand(arg, unset)?,
                })
            }
        }
    }
}

fn lookup_or_warn(name: &str, env: &dyn Lookup, unset: &mut Vec<String>) -> String {
    match env.lookup(name) {
        Some(v) => v,
        None => {
            unset.push(name.to_string());
            String::new()
        }
    }
}

/// An interpolation error with the key path of the value (`services.web.image`).
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(
        "{pos}: invalid interpolation format for {path}.\nYou may need to escape any $ with another $.\n{template}"
    )]
    InvalidFormat {
        pos: crate::yaml::Pos,
        path: String,
        template: String,
    },
    #[error("{pos}: error while interpolating {path}: failed to cast to expected type: {reason}")]
    Cast {
        pos: crate::yaml::Pos,
        path: String,
        reason: String,
    },
    #[error("{pos}: error while interpolating {path}")]
    Interpolate {
        pos: crate::yaml::Pos,
        path: String,
        #[source]
        source: Error,
    },
}

/// Interpolates every string value of a tree in place (keys untouched).
/// Unset variables are logged once each.
pub fn interpolate_tree(node: &mut Node, env: &dyn Lookup) -> Result<(), TreeError> {
    interpolate_tree_warn(node, env, &mut Vec::new())
}

/// Like [`interpolate_tree`], and pushes the warning for each unset variable
/// (once per variable) onto `warnings`.
pub fn interpolate_tree_warn(
    node: &mut Node,
    env: &dyn Lookup,
    warnings: &mut Vec<String>,
) -> Result<(), TreeError> {
    let mut unset = Vec::new();
    walk(node, env, &mut String::new(), &mut Vec::new(), &mut unset)?;
    unset.sort();
    unset.dedup();
    for name in unset {
        let w = format!("The {name:?} variable is not set. Defaulting to a blank string.");
        if !warnings.contains(&w) {
            tracing::warn!(variable = %name, "{w}");
            warnings.push(w);
        }
    }
    Ok(())
}

fn walk(
    node: &mut Node,
    env: &dyn Lookup,
    path: &mut String,
    segs: &mut Vec<String>,
    unset: &mut Vec<String>,
) -> Result<(), TreeError> {
    match &mut node.value {
        Value::Str(s) if s.contains('$') => match substitute(s, env, unset) {
            Ok(v) => match cast_for(segs) {
                Some(cast) => {
                    node.value = cast.apply(&v).map_err(|reason| TreeError::Cast {
                        pos: node.pos.clone(),
                        path: path.clone(),
                        reason,
                    })?;
                }
                None => *s = v,
            },
            Err(Error::InvalidTemplate { template }) => {
                return Err(TreeError::InvalidFormat {
                    pos: node.pos.clone(),
                    path: path.clone(),
                    template,
                });
            }
            Err(source) => {
                return Err(TreeError::Interpolate {
                    pos: node.pos.clone(),
                    path: path.clone(),
                    source,
                });
            }
        },
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                segs.push("[]".into());
                walk(item, env, path, segs, unset)?;
                segs.pop();
                path.truncate(len);
            }
        }
        Value::Map(m) => {
            for (k, v) in m.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                segs.push(k.clone());
                walk(v, env, path, segs, unset)?;
                segs.pop();
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// How an interpolated value is typed (compose-go `interpolateTypeCastMapping`):
/// only values that held a `${...}` are cast; literal strings are left to
/// the schema.
#[derive(Debug, Clone, Copy)]
enum Cast {
    Int,
    /// File modes are octal (`0444`, `444`).
    Octal,
    Float,
    Bool,
}

impl Cast {
    fn apply(self, v: &str) -> Result<Value, String> {
        match self {
            Cast::Int => v
                .trim()
                .parse::<i64>()
                .map(Value::Int)
                .map_err(|_| format!("strconv.Atoi: parsing {v:?}: invalid syntax")),
            Cast::Octal => i64::from_str_radix(v.trim().trim_start_matches("0o"), 8)
                .map(Value::Int)
                .map_err(|_| format!("invalid file mode {v:?}")),
            Cast::Float => v
                .trim()
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|_| format!("strconv.ParseFloat: parsing {v:?}: invalid syntax")),
            Cast::Bool => match v.to_ascii_lowercase().as_str() {
                "y" | "yes" | "true" | "on" => Ok(Value::Bool(true)),
                "n" | "no" | "false" | "off" => Ok(Value::Bool(false)),
                _ => Err(format!("invalid boolean: {v}")),
            },
        }
    }
}

const CASTS: &[(&str, Cast)] = &[
    ("services.*.configs.[].mode", Cast::Octal),
    ("services.*.cpu_count", Cast::Int),
    ("services.*.cpu_percent", Cast::Float),
    ("services.*.cpu_period", Cast::Int),
    ("services.*.cpu_quota", Cast::Int),
    ("services.*.cpu_rt_period", Cast::Int),
    ("services.*.cpu_rt_runtime", Cast::Int),
    ("services.*.cpus", Cast::Float),
    ("services.*.cpu_shares", Cast::Int),
    ("services.*.init", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Int,
    ),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.oom_kill_disable", Cast::Bool),
    ("services.*.oom_score_adj", Cast::Int),
    ("services.*.pids_limit", Cast::Int),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.read_only", Cast::Bool),
    ("services.*.scale", Cast::Int),
    ("services.*.secrets.[].mode", Cast::Octal),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("networks.*.enable_ipv4", Cast::Bool),
    ("networks.*.enable_ipv6", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

fn cast_for(segs: &[String]) -> Option<Cast> {
    CASTS.iter().find_map(|(pattern, cast)| {
        let parts: Vec<&str> = pattern.split('.').collect();
        let ok = parts.len() == segs.len()
            && parts
                .iter()
                .zip(segs)
                .all(|(p, s)| *p == "*" && s != "[]" || p == s);
        ok.then_some(*cast)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(t: &str, env: &[(&str, &str)]) -> Result<String, Error> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        substitute(t, &env, &mut Vec::new())
    }

    #[test]
    fn basic_forms() {
        let env = [("A", "a"), ("E", "")];
        assert_eq!(sub("$A-${A}", &env).unwrap(), "a-a");
        assert_eq!(sub("${E:-d} ${E-d} ${U-d}", &env).unwrap(), "d  d");
        assert_eq!(sub("${A:+x}${E:+y}${E+z}", &env).unwrap(), "xz");
        assert_eq!(sub("$$A $ x", &env).unwrap(), "$A $ x");
        assert_eq!(sub("${U:-${A}b}c", &env).unwrap(), "abc");
        assert_eq!(
            sub("${U:?need it}", &env).unwrap_err().to_string(),
            "required variable U is missing a value: need it"
        );
        assert!(sub("${A!}", &env).is_err());
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let t = format!("{}x{}", "${A:-".repeat(100_000), "}".repeat(100_000));
        assert!(sub(&t, &[]).is_err());
        let t = format!("{}x{}", "${A:-".repeat(10), "}".repeat(10));
        assert_eq!(sub(&t, &[]).unwrap(), "x");
    }

    #[test]
    fn keys_are_not_interpolated() {
        let mut n = crate::yaml::parse_one("$K: $V\n", "t").unwrap().unwrap();
        let env: HashMap<String, String> = [("V".to_string(), "v".to_string())].into();
        interpolate_tree(&mut n, &env).unwrap();
        assert_eq!(n.get("$K").unwrap().as_str(), Some("v"));
    }
}
