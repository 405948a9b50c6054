//! A generic YAML tree that remembers where every node came from.
//!
//! Compose needs more from YAML than typed deserialisation gives: the merge
//! of several files works on the raw tree, `!reset` / `!override` tags steer
//! that merge, and every error must point at `file:line:column`. serde-saphyr
//! deserialises into typed structs (with `Spanned<T>` for positions), but it
//! offers no generic value that keeps tags and positions on every node. Its
//! event parser, `granit_parser` (re-exported by serde-saphyr, so no extra
//! dependency), does: this module builds the tree from those events and
//! resolves anchors, aliases and `<<` merge keys itself, with a budget on
//! alias expansion so a "billion laughs" file fails instead of eating memory.
//!
//! Scalars are resolved like go-yaml v3 (what compose-go uses): `true`/`false`
//! are booleans, `yes`/`no` stay strings, `0x1F`, `0o17` and `017` are ints.

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, Tag as YamlTag};

/// Upper bound of nodes a document may expand to through aliases.
pub const ALIAS_NODE_BUDGET: usize = 1_000_000;

/// Deepest nesting of sequences and mappings accepted. Compose files use a
/// handful of levels; the bound keeps every recursive pass of the loader far
/// from the stack limit.
pub const MAX_DEPTH: usize = 128;

/// Where a node starts: file, 1-based line and 1-based column.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.col)
        }
    }
}

/// The Compose-specific tags of the merge rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// `!reset`: drop the inherited value.
    Reset,
    /// `!override`: replace the inherited value instead of merging.
    Override,
}

/// One YAML node with its position and Compose tag.
#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    /// Position of the mapping key this node is the value of, if any.
    pub key_pos: Option<Pos>,
    pub tag: Option<Tag>,
}

/// A mapping with string keys in document order.
pub type Map = IndexMap<String, Node>;

#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Map),
}

impl PartialEq for Node {
    /// Equality of values only; positions and tags are ignored.
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => {
                (*a as f64) == *b
            }
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Seq(a), Value::Seq(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.get(k) == Some(v))
            }
            _ => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{pos}: {message}")]
    Syntax { pos: Pos, message: String },
    #[error("{pos}: line {line}: mapping key \"{key}\" already defined at line {first}")]
    DuplicateKey {
        pos: Pos,
        key: String,
        line: usize,
        first: usize,
    },
    #[error("{pos}: unknown anchor in alias")]
    UnknownAlias { pos: Pos },
    #[error("{pos}: merge key `<<` expects a mapping or a list of mappings")]
    BadMerge { pos: Pos },
    #[error("{pos}: aliases expand to more than {budget} nodes (alias bomb?)")]
    AliasBudget { pos: Pos, budget: usize },
    #[error("{pos}: mapping keys must be scalars")]
    ComplexKey { pos: Pos },
    #[error("{pos}: nesting deeper than {max} levels")]
    TooDeep { pos: Pos, max: usize },
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Self {
        Node {
            value,
            pos,
            key_pos: None,
            tag: None,
        }
    }

    /// A node made by the loader itself (no source position).
    pub fn synthetic(value: Value) -> Self {
        Node::new(value, Pos::default())
    }

    pub fn str(s: impl Into<String>) -> Self {
        Node::synthetic(Value::Str(s.into()))
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key))
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The scalar as text the way Go's `fmt.Sprint` would show it; `None` for
    /// null and collections.
    pub fn scalar_string(&self) -> Option<String> {
        match &self.value {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(format_float(*f)),
            Value::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// A short name of the node's type for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "sequence",
            Value::Map(_) => "mapping",
        }
    }

    /// Converts to JSON (positions and tags dropped).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(format_float(*f))),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(s) => J::Array(s.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// Builds a position-less tree from JSON.
    pub fn from_json(v: &serde_json::Value) -> Node {
        use serde_json::Value as J;
        let value = match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::Seq(a.iter().map(Node::from_json).collect()),
            J::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v)))
                    .collect(),
            ),
        };
        Node::synthetic(value)
    }

    fn count(&self) -> usize {
        match &self.value {
            Value::Seq(s) => 1 + s.iter().map(Node::count).sum::<usize>(),
            Value::Map(m) => 1 + m.values().map(Node::count).sum::<usize>(),
            _ => 1,
        }
    }
}

/// Formats a float like Go's `strconv.FormatFloat(f, 'g', -1, 64)` for the
/// common cases (`1.5`, `2`, `1e+21`).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == f.trunc() && f.abs() < 1e21 {
        return format!("{}", f as i64);
    }
    format!("{f}")
}

/// Parses every document of a YAML text. An empty text gives no document.
pub fn parse(text: &str, file: &str) -> Result<Vec<Node>, Error> {
    let file: Arc<str> = Arc::from(file);
    let mut builder = Builder {
        file,
        anchors: Vec::new(),
        expanded: 0,
        depth: 0,
    };
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    loop {
        let (ev, span) = builder.next(&mut parser)?;
        match ev {
            Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(..) => {
                builder.anchors.clear();
                let (ev, span) = builder.next(&mut parser)?;
                if matches!(ev, Event::DocumentEnd) {
                    continue;
                }
                let node = builder.node(ev, span, &mut parser)?;
                docs.push(node);
            }
            _ => {
                let node = builder.node(ev, span, &mut parser)?;
                docs.push(node);
            }
        }
    }
    Ok(docs)
}

/// Parses a text that holds one document; no document gives `None`.
pub fn parse_one(text: &str, file: &str) -> Result<Option<Node>, Error> {
    Ok(parse(text, file)?.into_iter().next())
}

struct Builder {
    file: Arc<str>,
    anchors: Vec<Option<Node>>,
    expanded: usize,
    depth: usize,
}

type Ev<'a> = (Event<'a>, Span);

impl Builder {
    fn pos(&self, span: &Span) -> Pos {
        Pos {
            file: self.file.clone(),
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }

    fn next<'a>(&self, parser: &mut Input<'a>) -> Result<Ev<'a>, Error> {
        loop {
            match parser.next_event() {
                None => {
                    return Ok((
                        Event::StreamEnd,
                        Span::empty(serde_saphyr::granit_parser::Marker::new(0, 0, 0)),
                    ));
                }
                Some(Err(e)) => {
                    return Err(Error::Syntax {
                        pos: Pos {
                            file: self.file.clone(),
                            line: e.marker().line(),
                            col: e.marker().col() + 1,
                        },
                        message: e.info().to_string(),
                    });
                }
                Some(Ok((ev, span))) => {
                    if matches!(ev, Event::Comment(..) | Event::Anchor(..)) {
                        continue;
                    }
                    return Ok((ev, span));
                }
            }
        }
    }

    fn enter(&mut self, pos: &Pos) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::TooDeep {
                pos: pos.clone(),
                max: MAX_DEPTH,
            });
        }
        Ok(())
    }

    /// A new node, remembered under its anchor (0: none).
    fn anchored(&mut self, anchor: usize, value: Value, pos: Pos, tag: Option<Tag>) -> Node {
        let node = Node {
            value,
            pos,
            key_pos: None,
            tag,
        };
        self.remember(anchor, &node);
        node
    }

    fn remember(&mut self, id: usize, node: &Node) {
        if id == 0 {
            return;
        }
        if self.anchors.len() <= id {
            self.anchors.resize(id + 1, None);
        }
        self.anchors[id] = Some(node.clone());
    }

    fn node<'a>(
        &mut self,
        ev: Event<'a>,
        span: Span,
        parser: &mut Input<'a>,
    ) -> Result<Node, Error> {
        let pos = self.pos(&span);
        match ev {
            Event::Alias(id) => self.alias(id, pos),
            Event::UnresolvedAlias(_) => Err(Error::UnknownAlias { pos }),
            Event::Scalar(text, style, anchor, tag) => {
                let (value, tag) = resolve_scalar(&text, style, tag.as_deref());
                Ok(self.anchored(anchor, value, pos, tag))
            }
            Event::SequenceStart(_, anchor, tag) => {
                let items = self.sequence(&pos, parser)?;
                Ok(self.anchored(anchor, Value::Seq(items), pos, compose_tag(tag.as_deref())))
            }
            Event::MappingStart(_, anchor, tag) => {
                let map = self.mapping(&pos, parser)?;
                Ok(self.anchored(anchor, Value::Map(map), pos, compose_tag(tag.as_deref())))
            }
            other => Err(Error::Syntax {
                pos,
                message: format!("unexpected YAML event {other:?}"),
            }),
        }
    }

    /// A copy of the anchored node, counted against the alias budget.
    fn alias(&mut self, id: usize, pos: Pos) -> Result<Node, Error> {
        let node = self
            .anchors
            .get(id)
            .and_then(Option::clone)
            .ok_or(Error::UnknownAlias { pos: pos.clone() })?;
        self.expanded += node.count();
        if self.expanded > ALIAS_NODE_BUDGET {
            return Err(Error::AliasBudget {
                pos,
                budget: ALIAS_NODE_BUDGET,
            });
        }
        Ok(node)
    }

    /// The items of a sequence, up to its end event.
    fn sequence<'a>(&mut self, pos: &Pos, parser: &mut Input<'a>) -> Result<Vec<Node>, Error> {
        self.enter(pos)?;
        let mut items = Vec::new();
        loop {
            let (ev, span) = self.next(parser)?;
            if matches!(ev, Event::SequenceEnd) {
                break;
            }
            if matches!(ev, Event::StreamEnd) {
                return Err(Error::Syntax {
                    pos: pos.clone(),
                    message: "unexpected end of stream in sequence".into(),
                });
            }
            items.push(self.node(ev, span, parser)?);
        }
        self.depth -= 1;
        Ok(items)
    }

    /// The entries of a mapping, up to its end event, with its `<<` merge
    /// keys applied.
    fn mapping<'a>(&mut self, pos: &Pos, parser: &mut Input<'a>) -> Result<Map, Error> {
        self.enter(pos)?;
        let mut map = Map::new();
        let mut merges: Vec<Node> = Vec::new();
        loop {
            let (ev, kspan) = self.next(parser)?;
            if matches!(ev, Event::MappingEnd) {
                break;
            }
            if matches!(ev, Event::StreamEnd) {
                return Err(Error::Syntax {
                    pos: pos.clone(),
                    message: "unexpected end of stream in mapping".into(),
                });
            }
            let key_is_merge =
                matches!(&ev, Event::Scalar(t, ScalarStyle::Plain, _, None) if t == "<<");
            let key = self.node(ev, kspan, parser)?;
            let (vev, vspan) = self.next(parser)?;
            let mut value = self.node(vev, vspan, parser)?;
            if key_is_merge {
                merge_sources(value, &mut merges)?;
                continue;
            }
            let key_text = key_text(&key)?;
            if let Some(first) = map.get(&key_text) {
                let first = first.key_pos.as_ref().map(|p| p.line).unwrap_or(0);
                return Err(Error::DuplicateKey {
                    line: key.pos.line,
                    pos: key.pos,
                    key: key_text,
                    first,
                });
            }
            value.key_pos = Some(key.pos);
            map.insert(key_text, value);
        }
        self.depth -= 1;
        // Explicit keys win over merged ones; among merged mappings
        // the first one listed wins (YAML merge key spec).
        for src in merges {
            if let Value::Map(m) = src.value {
                for (k, v) in m {
                    map.entry(k).or_insert(v);
                }
            }
        }
        Ok(map)
    }
}

type Input<'a> = Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>;

/// The value of a `<<` key: a mapping or a list of mappings.
fn merge_sources(value: Node, merges: &mut Vec<Node>) -> Result<(), Error> {
    match &value.value {
        Value::Map(_) => merges.push(value),
        Value::Seq(items) => {
            for item in items {
                if !matches!(item.value, Value::Map(_)) {
                    return Err(Error::BadMerge {
                        pos: item.pos.clone(),
                    });
                }
                merges.push(item.clone());
            }
        }
        _ => return Err(Error::BadMerge { pos: value.pos }),
    }
    Ok(())
}

/// A mapping key as text: scalars only (`null` for an empty key).
fn key_text(key: &Node) -> Result<String, Error> {
    Ok(match &key.value {
        Value::Null => "null".to_string(),
        Value::Seq(_) | Value::Map(_) => {
            return Err(Error::ComplexKey {
                pos: key.pos.clone(),
            });
        }
        _ => key.scalar_string().unwrap_or_default(),
    })
}

fn compose_tag(tag: Option<&YamlTag>) -> Option<Tag> {
    let tag = tag?;
    if tag.handle() != "!" {
        return None;
    }
    match tag.suffix() {
        "reset" => Some(Tag::Reset),
        "override" => Some(Tag::Override),
        _ => None,
    }
}

fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&YamlTag>) -> (Value, Option<Tag>) {
    let ctag = compose_tag(tag);
    if let Some(t) = tag
        && let Some(core) = t.core_suffix()
    {
        let v = match core {
            "str" => Value::Str(text.to_string()),
            "null" => Value::Null,
            "bool" => resolve_plain(text),
            "int" | "float" => resolve_plain(text),
            _ => Value::Str(text.to_string()),
        };
        return (v, ctag);
    }
    if style != ScalarStyle::Plain {
        return (Value::Str(text.to_string()), ctag);
    }
    (resolve_plain(text), ctag)
}

/// Resolves a plain scalar the way go-yaml v3 does.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return Value::Str(text.to_string());
    }
    if let Some(i) = parse_go_int(text) {
        return Value::Int(i);
    }
    if is_yaml_float(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(text.to_string())
}

/// Go's `strconv.ParseInt(s, 0, 64)` (which allows `_` between digits) plus
/// YAML's `0o` / `0b` prefixes.
fn parse_go_int(text: &str) -> Option<i64> {
    let (neg, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.is_empty() || body.contains("__") || body.starts_with('_') || body.ends_with('_') {
        return None;
    }
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() {
        return None;
    }
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn is_yaml_float(text: &str) -> bool {
    let body = text.trim_start_matches(['-', '+']);
    !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        && body.chars().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        parse_one(text, "t.yaml").unwrap().unwrap()
    }

    #[test]
    fn scalars_resolve_like_go_yaml() {
        let n = one("a: 1\nb: '1'\nc: true\nd: yes\ne: 1.5\nf: ~\ng: 0x10\nh: 017\ni: 512M\n");
        let m = n.as_map().unwrap();
        assert_eq!(m["a"].value, Value::Int(1));
        assert_eq!(m["b"].value, Value::Str("1".into()));
        assert_eq!(m["c"].value, Value::Bool(true));
        assert_eq!(m["d"].value, Value::Str("yes".into()));
        assert_eq!(m["e"].value, Value::Float(1.5));
        assert_eq!(m["f"].value, Value::Null);
        assert_eq!(m["g"].value, Value::Int(16));
        assert_eq!(m["h"].value, Value::Int(15));
        assert_eq!(m["i"].value, Value::Str("512M".into()));
        let n = one("a: 1_000\nb: _1\nc: 1__0\nd: 1e3\ne: 1.\n");
        let m = n.as_map().unwrap();
        assert_eq!(m["a"].value, Value::Int(1000));
        assert_eq!(m["b"].value, Value::Str("_1".into()));
        assert_eq!(m["c"].value, Value::Str("1__0".into()));
        assert_eq!(m["d"].value, Value::Float(1000.0));
        assert_eq!(m["e"].value, Value::Float(1.0));
    }

    #[test]
    fn positions_are_kept() {
        let n = one("services:\n  web:\n    image: nginx\n");
        let web = n.get("services").unwrap().get("web").unwrap();
        let image = web.get("image").unwrap();
        assert_eq!((image.pos.line, image.pos.col), (3, 12));
        let kp = image.key_pos.as_ref().unwrap();
        assert_eq!((kp.line, kp.col), (3, 5));
        assert_eq!(image.pos.to_string(), "t.yaml:3:12");
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let n = one(
            "x-base: &base\n  image: a\n  restart: always\nservices:\n  web:\n    <<: *base\n    image: b\n  db: *base\n",
        );
        let s = n.get("services").unwrap();
        let web = s.get("web").unwrap();
        assert_eq!(web.get("image").unwrap().as_str(), Some("b"));
        assert_eq!(web.get("restart").unwrap().as_str(), Some("always"));
        assert_eq!(
            s.get("db").unwrap().get("image").unwrap().as_str(),
            Some("a")
        );
    }

    #[test]
    fn merge_key_list_first_wins() {
        let n = one("a: &a {x: 1}\nb: &b {x: 2, y: 3}\nc:\n  <<: [*a, *b]\n");
        let c = n.get("c").unwrap();
        assert_eq!(c.get("x").unwrap().value, Value::Int(1));
        assert_eq!(c.get("y").unwrap().value, Value::Int(3));
    }

    #[test]
    fn compose_tags() {
        let n = one("a: !reset []\nb: !override\n  x: 1\nc: !reset null\n");
        assert_eq!(n.get("a").unwrap().tag, Some(Tag::Reset));
        assert_eq!(n.get("b").unwrap().tag, Some(Tag::Override));
        assert_eq!(n.get("c").unwrap().tag, Some(Tag::Reset));
    }

    #[test]
    fn duplicate_key_is_an_error() {
        let err = parse("a: 1\nb: 2\na: 3\n", "f.yml").unwrap_err();
        assert!(
            err.to_string()
                .contains("line 3: mapping key \"a\" already defined at line 1")
        );
    }

    #[test]
    fn alias_bomb_is_stopped() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(&text, "bomb.yml").unwrap_err();
        assert!(matches!(err, Error::AliasBudget { .. }), "{err}");
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("a: [1, 2\nb: c\n", "bad.yml").unwrap_err();
        assert!(err.to_string().starts_with("bad.yml:"), "{err}");
    }

    #[test]
    fn empty_document() {
        assert!(parse_one("", "e.yml").unwrap().is_none());
        assert!(parse_one("# only a comment\n", "e.yml").unwrap().is_none());
    }
}

#[cfg(test)]
mod deep {
    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!("a: {}{}\n", "[".repeat(200_000), "]".repeat(200_000));
        let r = super::parse(&text, "deep.yml");
        assert!(r.is_err(), "deep nesting should be refused");
        let text = "a:\n".to_string()
            + &(1..3000)
                .map(|i| format!("{}- \n", " ".repeat(i)))
                .collect::<String>();
        let _ = super::parse(&text, "deep2.yml");
    }
}
