//! A JSON Schema (draft 2020-12) validator for the keywords the embedded
//! compose-spec schema uses: `$ref` (local), `type`, `properties`,
//! `patternProperties`, `additionalProperties`, `required`, `items`,
//! `uniqueItems`, `enum`, `const`, `oneOf`, `anyOf`, `allOf`, `minimum`,
//! `maximum` and `pattern`; annotations (`description`, `default`, ...) are
//! ignored. A schema using any other keyword is refused when compiled, so
//! a newer compose-spec copy cannot be validated half-way without notice.
//!
//! Why not the `jsonschema` crate (used before): it was ~0.9 MB of the
//! ~12 MB release binary (its own regex engine, format checkers, remote
//! reference resolution) for these 16 keywords, and issue 16 asks for a
//! binary of at most 10 MB on edge devices. Patterns use the `regex` crate,
//! which the binary links anyway (libcontainer, oci-spec, oci-client).

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value as J;

/// A path segment of the instance.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// What is wrong with the value at `path`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// Keys neither in `properties` nor matching `patternProperties`.
    AdditionalProperties {
        unexpected: Vec<String>,
    },
    /// The value is none of these JSON types.
    Type {
        types: Vec<String>,
    },
    /// No branch matches; each branch's own errors.
    OneOfNotValid {
        context: Vec<Vec<SchemaError>>,
    },
    AnyOf {
        context: Vec<Vec<SchemaError>>,
    },
    OneOfMultipleValid,
    Required {
        property: String,
    },
    Enum {
        options: J,
    },
    Const {
        expected: J,
    },
    Minimum {
        limit: J,
    },
    Maximum {
        limit: J,
    },
    Pattern {
        pattern: String,
    },
    UniqueItems,
    /// A `false` subschema: no value is allowed here.
    False,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SchemaError {
    pub path: Vec<Seg>,
    pub kind: Kind,
    /// The offending value (for messages).
    pub value: J,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = &self.value;
        match &self.kind {
            Kind::AdditionalProperties { unexpected } => {
                write!(f, "additional properties are not allowed ({unexpected:?})")
            }
            Kind::Type { types } => write!(f, "{v} is not of type {}", types.join(", ")),
            Kind::OneOfNotValid { .. } | Kind::AnyOf { .. } => {
                write!(f, "{v} does not match any allowed form")
            }
            Kind::OneOfMultipleValid => write!(
                f,
                "{v} is valid under more than one of the schemas listed in the 'oneOf' keyword"
            ),
            Kind::Required { property } => write!(f, "missing required key {property}"),
            Kind::Enum { options } => write!(f, "{v} is not one of {options}"),
            Kind::Const { expected } => write!(f, "{expected} was expected"),
            Kind::Minimum { limit } => write!(f, "{v} is less than the minimum of {limit}"),
            Kind::Maximum { limit } => write!(f, "{v} is greater than the maximum of {limit}"),
            Kind::Pattern { pattern } => write!(f, "{v} does not match {pattern:?}"),
            Kind::UniqueItems => write!(f, "{v} has non-unique elements"),
            Kind::False => write!(f, "no value is allowed here"),
        }
    }
}

/// Keywords that only annotate (or hold subschemas reached through `$ref`).
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "definitions",
    "$comment",
    "title",
    "description",
    "default",
    "deprecated",
    "examples",
    "readOnly",
    "writeOnly",
];

const APPLIED: &[&str] = &[
    "$ref",
    "type",
    "properties",
    "patternProperties",
    "additionalProperties",
    "required",
    "items",
    "uniqueItems",
    "enum",
    "const",
    "oneOf",
    "anyOf",
    "allOf",
    "minimum",
    "maximum",
    "pattern",
];

/// The patterns of a schema checked for supported keywords.
pub(crate) struct Validator {
    patterns: HashMap<String, Regex>,
}

/// One validation: the schema and its compiled patterns.
struct Run<'a> {
    root: &'a J,
    patterns: &'a HashMap<String, Regex>,
}

impl Validator {
    /// Compiles `root`; an error names the schema location and what is wrong.
    pub fn new(root: &J) -> Result<Self, String> {
        let mut patterns = HashMap::new();
        compile(root, root, "#", &mut patterns)?;
        Ok(Self { patterns })
    }

    /// Every error of `instance` against `root`, the schema given to `new`.
    pub fn errors(&self, root: &J, instance: &J) -> Vec<SchemaError> {
        let run = Run {
            root,
            patterns: &self.patterns,
        };
        let mut out = Vec::new();
        run.check(root, instance, &mut Vec::new(), &mut out);
        out
    }
}

impl Run<'_> {
    fn regex(&self, p: &str) -> Option<&Regex> {
        // Every pattern of the schema was compiled in `new`.
        self.patterns.get(p)
    }

    fn check(&self, schema: &J, v: &J, path: &mut Vec<Seg>, out: &mut Vec<SchemaError>) {
        let s = match schema {
            J::Bool(true) => return,
            J::Object(s) => s,
            _ => return out.push(error(path, v, Kind::False)),
        };
        if let Some(r) = s.get("$ref").and_then(J::as_str) {
            // `new` checked that every reference resolves.
            if let Some(target) = self.root.pointer(r.trim_start_matches('#')) {
                self.check(target, v, path, out);
            }
        }
        if let Some(t) = s.get("type") {
            let types: Vec<&str> = match t {
                J::String(t) => vec![t.as_str()],
                J::Array(ts) => ts.iter().filter_map(J::as_str).collect(),
                _ => Vec::new(),
            };
            if !types.iter().any(|t| is_type(v, t)) {
                let types = types.into_iter().map(String::from).collect();
                out.push(error(path, v, Kind::Type { types }));
            }
        }
        if let Some(options) = s.get("enum").and_then(J::as_array)
            && !options.iter().any(|o| json_eq(o, v))
        {
            let options = J::Array(options.clone());
            out.push(error(path, v, Kind::Enum { options }));
        }
        if let Some(c) = s.get("const")
            && !json_eq(c, v)
        {
            let expected = c.clone();
            out.push(error(path, v, Kind::Const { expected }));
        }
        self.check_scalar(s, v, path, out);
        match v {
            J::Object(m) => self.check_object(s, v, m, path, out),
            J::Array(items) => {
                if let Some(item) = s.get("items") {
                    for (i, x) in items.iter().enumerate() {
                        path.push(Seg::Index(i));
                        self.check(item, x, path, out);
                        path.pop();
                    }
                }
                if s.get("uniqueItems") == Some(&J::Bool(true))
                    && items
                        .iter()
                        .enumerate()
                        .any(|(i, a)| items[..i].iter().any(|b| json_eq(a, b)))
                {
                    out.push(error(path, v, Kind::UniqueItems));
                }
            }
            _ => {}
        }
        self.check_combinators(s, v, path, out);
    }

    fn check_scalar(
        &self,
        s: &serde_json::Map<String, J>,
        v: &J,
        path: &[Seg],
        out: &mut Vec<SchemaError>,
    ) {
        if let (Some(limit), Some(x)) = (s.get("minimum"), v.as_f64())
            && limit.as_f64().is_some_and(|l| x < l)
        {
            let limit = limit.clone();
            out.push(error(path, v, Kind::Minimum { limit }));
        }
        if let (Some(limit), Some(x)) = (s.get("maximum"), v.as_f64())
            && limit.as_f64().is_some_and(|l| x > l)
        {
            let limit = limit.clone();
            out.push(error(path, v, Kind::Maximum { limit }));
        }
        if let (Some(p), Some(x)) = (s.get("pattern").and_then(J::as_str), v.as_str())
            && self.regex(p).is_some_and(|r| !r.is_match(x))
        {
            out.push(error(path, v, Kind::Pattern { pattern: p.into() }));
        }
    }

    fn check_object(
        &self,
        s: &serde_json::Map<String, J>,
        v: &J,
        m: &serde_json::Map<String, J>,
        path: &mut Vec<Seg>,
        out: &mut Vec<SchemaError>,
    ) {
        for r in s
            .get("required")
            .and_then(J::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = r.as_str()
                && !m.contains_key(r)
            {
                out.push(error(path, v, Kind::Required { property: r.into() }));
            }
        }
        let props = s.get("properties").and_then(J::as_object);
        let pats = s.get("patternProperties").and_then(J::as_object);
        let extra = s.get("additionalProperties");
        if props.is_none() && pats.is_none() && extra.is_none() {
            return;
        }
        let mut unexpected = Vec::new();
        for (k, x) in m {
            path.push(Seg::Key(k.clone()));
            let mut matched = false;
            if let Some(sub) = props.and_then(|p| p.get(k)) {
                matched = true;
                self.check(sub, x, path, out);
            }
            for (p, sub) in pats.into_iter().flatten() {
                if self.regex(p).is_some_and(|r| r.is_match(k)) {
                    matched = true;
                    self.check(sub, x, path, out);
                }
            }
            match extra {
                _ if matched => {}
                Some(J::Bool(false)) => unexpected.push(k.clone()),
                Some(sub) => self.check(sub, x, path, out),
                None => {}
            }
            path.pop();
        }
        if !unexpected.is_empty() {
            out.push(error(path, v, Kind::AdditionalProperties { unexpected }));
        }
    }

    fn check_combinators(
        &self,
        s: &serde_json::Map<String, J>,
        v: &J,
        path: &mut Vec<Seg>,
        out: &mut Vec<SchemaError>,
    ) {
        for sub in s.get("allOf").and_then(J::as_array).into_iter().flatten() {
            self.check(sub, v, path, out);
        }
        let branches = |key: &str| -> Option<Vec<Vec<SchemaError>>> {
            let arr = s.get(key)?.as_array()?;
            Some(
                arr.iter()
                    .map(|b| {
                        let mut e = Vec::new();
                        self.check(b, v, &mut path.clone(), &mut e);
                        e
                    })
                    .collect(),
            )
        };
        if let Some(context) = branches("oneOf") {
            match context.iter().filter(|e| e.is_empty()).count() {
                0 => out.push(error(path, v, Kind::OneOfNotValid { context })),
                1 => {}
                _ => out.push(error(path, v, Kind::OneOfMultipleValid)),
            }
        }
        if let Some(context) = branches("anyOf")
            && !context.iter().any(Vec::is_empty)
        {
            out.push(error(path, v, Kind::AnyOf { context }));
        }
    }
}

/// An error at `path` about value `v`.
fn error(path: &[Seg], v: &J, kind: Kind) -> SchemaError {
    SchemaError {
        path: path.to_vec(),
        kind,
        value: v.clone(),
    }
}

/// Walks the schema: every keyword supported, every `$ref` resolvable,
/// every pattern compiled.
fn compile(root: &J, s: &J, at: &str, patterns: &mut HashMap<String, Regex>) -> Result<(), String> {
    let s = match s {
        J::Bool(_) => return Ok(()),
        J::Object(s) => s,
        other => {
            return Err(format!(
                "{at}: a schema must be an object or a boolean, not {other}"
            ));
        }
    };
    for (k, x) in s {
        let here = format!("{at}/{k}");
        match k.as_str() {
            "$ref" => {
                let r = x.as_str().unwrap_or_default();
                if !r.starts_with('#') || root.pointer(&r[1..]).is_none() {
                    return Err(format!("{here}: cannot resolve {x}"));
                }
            }
            "$defs" | "definitions" | "properties" => {
                for (name, sub) in x.as_object().into_iter().flatten() {
                    compile(root, sub, &format!("{here}/{name}"), patterns)?;
                }
            }
            "patternProperties" => {
                for (p, sub) in x.as_object().into_iter().flatten() {
                    add_pattern(patterns, p, &here)?;
                    compile(root, sub, &format!("{here}/{p}"), patterns)?;
                }
            }
            "pattern" => add_pattern(patterns, x.as_str().unwrap_or_default(), &here)?,
            "additionalProperties" | "items" => compile(root, x, &here, patterns)?,
            "oneOf" | "anyOf" | "allOf" => {
                for (i, sub) in x.as_array().into_iter().flatten().enumerate() {
                    compile(root, sub, &format!("{here}/{i}"), patterns)?;
                }
            }
            k if APPLIED.contains(&k) || ANNOTATIONS.contains(&k) => {}
            k => return Err(format!("{at}: keyword `{k}` is not supported")),
        }
    }
    Ok(())
}

fn add_pattern(patterns: &mut HashMap<String, Regex>, p: &str, at: &str) -> Result<(), String> {
    if !patterns.contains_key(p) {
        let re = Regex::new(p).map_err(|e| format!("{at}: pattern {p:?}: {e}"))?;
        patterns.insert(p.to_string(), re);
    }
    Ok(())
}

fn is_type(v: &J, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

/// JSON equality, numbers by value (`1` equals `1.0`).
fn json_eq(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| json_eq(a, b)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
