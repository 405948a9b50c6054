//! Turns every short syntax of a merged, validated Compose tree into its long
//! form (compose-go `transform/`), so the typed model has one shape only:
//! `"8080:80"` becomes a port object, `./data:/data` a bind mount, lists of
//! `KEY=VALUE` become maps, `command: "a b"` becomes `[a, b]`, and so on.

use crate::short;
use crate::yaml::{Map, Node, Pos, Value, format_float};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{pos}: {path}: invalid short syntax")]
    Short {
        pos: Pos,
        path: String,
        #[source]
        source: short::Error,
    },
    #[error("{pos}: {path}: invalid command line: {reason}")]
    Command {
        pos: Pos,
        path: String,
        reason: String,
    },
    #[error("{pos}: {path}: environment variable {name} is declared with a trailing space")]
    TrailingSpace {
        pos: Pos,
        path: String,
        name: String,
    },
    #[error("{pos}: {path}: invalid value: {reason}")]
    Invalid {
        pos: Pos,
        path: String,
        reason: String,
    },
}

fn s(v: impl Into<String>) -> Node {
    Node::str(v)
}

fn scalar_text(n: &Node) -> Option<String> {
    match &n.value {
        Value::Float(f) => Some(format_float(*f)),
        _ => n.scalar_string(),
    }
}

/// Keys holding durations and byte sizes, checked here so a bad value is
/// reported with its position (`*` is any key, `[]` any list item).
const DURATIONS: &[&str] = &[
    "services.*.healthcheck.interval",
    "services.*.healthcheck.timeout",
    "services.*.healthcheck.start_period",
    "services.*.healthcheck.start_interval",
    "services.*.stop_grace_period",
    "services.*.deploy.update_config.delay",
    "services.*.deploy.update_config.monitor",
    "services.*.deploy.rollback_config.delay",
    "services.*.deploy.rollback_config.monitor",
    "services.*.deploy.restart_policy.delay",
    "services.*.deploy.restart_policy.window",
];
const SIZES: &[&str] = &[
    "services.*.mem_limit",
    "services.*.mem_reservation",
    "services.*.memswap_limit",
    "services.*.shm_size",
    "services.*.build.shm_size",
    "services.*.deploy.resources.limits.memory",
    "services.*.deploy.resources.reservations.memory",
    "services.*.volumes.[].tmpfs.size",
];

fn check_units(node: &Node, segs: &mut Vec<String>, lenient: bool) -> Result<(), Error> {
    let matches = |pattern: &str| {
        let parts: Vec<&str> = pattern.split('.').collect();
        parts.len() == segs.len()
            && parts
                .iter()
                .zip(segs.iter())
                .all(|(p, s)| *p == "*" || p == s)
    };
    if let Value::Str(text) = &node.value
        && !(lenient && text.contains('$'))
    {
        let path = || segs.join(".").replace(".[]", "[]");
        if DURATIONS.iter().any(|p| matches(p)) {
            crate::units::Duration::parse(text).map_err(|e| Error::Invalid {
                pos: node.pos.clone(),
                path: path(),
                reason: e.to_string(),
            })?;
        }
        if SIZES.iter().any(|p| matches(p)) {
            crate::units::Bytes::parse(text).map_err(|e| Error::Invalid {
                pos: node.pos.clone(),
                path: path(),
                reason: e.to_string(),
            })?;
        }
    }
    match &node.value {
        Value::Map(m) => {
            for (k, v) in m {
                segs.push(k.clone());
                check_units(v, segs, lenient)?;
                segs.pop();
            }
        }
        Value::Seq(items) => {
            for v in items {
                segs.push("[]".into());
                check_units(v, segs, lenient)?;
                segs.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// Canonicalises a whole project tree in place.
///
/// `lenient` is for files that were not interpolated (`config
/// --no-interpolate`): a port or a duration that still holds `${...}` is
/// kept as written instead of being an error.
pub fn canonicalize(root: &mut Node, lenient: bool) -> Result<(), Error> {
    check_units(root, &mut Vec::new(), lenient)?;
    let Some(top) = root.as_map_mut() else {
        return Ok(());
    };
    if let Some(services) = top.get_mut("services").and_then(Node::as_map_mut) {
        for (name, svc) in services.iter_mut() {
            if svc.is_null() {
                svc.value = Value::Map(Map::new());
            }
            service(svc, &format!("services.{name}"), lenient)?;
        }
    }
    for kind in ["networks", "volumes", "secrets", "configs"] {
        if let Some(m) = top.get_mut(kind).and_then(Node::as_map_mut) {
            for (name, res) in m.iter_mut() {
                if res.is_null() {
                    res.value = Value::Map(Map::new());
                }
                let path = format!("{kind}.{name}");
                if let Some(rm) = res.as_map_mut() {
                    map_field(rm, "labels", &path)?;
                    string_values(rm, "driver_opts");
                    // Legacy `external: {name: x}`.
                    if let Some(ext) = rm.get("external").cloned()
                        && let Value::Map(em) = &ext.value
                    {
                        if let Some(n) = em.get("name") {
                            rm.insert("name".into(), n.clone());
                        }
                        rm.insert("external".into(), Node::synthetic(Value::Bool(true)));
                    }
                    if let Some(ipam) = rm.get_mut("ipam").and_then(Node::as_map_mut) {
                        string_values(ipam, "options");
                    }
                }
            }
        }
    }
    Ok(())
}

fn service(svc: &mut Node, path: &str, lenient: bool) -> Result<(), Error> {
    let Some(m) = svc.as_map_mut() else {
        return Ok(());
    };
    if let Some(b) = m.get_mut("build") {
        build(b, path)?;
    }
    commands(m, path)?;
    maps_and_numbers(m, path)?;
    depends_on(m);
    env_file(m);
    if let Some(h) = m.get_mut("extra_hosts") {
        extra_hosts(h);
    }
    for k in [
        "dns",
        "dns_search",
        "dns_opt",
        "tmpfs",
        "expose",
        "cap_add",
        "cap_drop",
        "security_opt",
    ] {
        string_list(m, k);
    }
    // `networks` and `models` lists become mappings with null entries.
    for key in ["networks", "models"] {
        list_to_null_map(m, key);
    }
    ports(m, path, lenient)?;
    volumes(m, path)?;
    file_mounts(m, "secrets");
    file_mounts(m, "configs");
    // A secret is mounted at /run/secrets/<source> unless told otherwise.
    if let Some(Value::Seq(items)) = m.get_mut("secrets").map(|n| &mut n.value) {
        for it in items {
            if let Some(fm) = it.as_map_mut()
                && !fm.contains_key("target")
                && let Some(src) = fm.get("source").and_then(Node::scalar_string)
            {
                fm.insert("target".into(), s(format!("/run/secrets/{src}")));
            }
        }
    }
    devices(m, path)?;
    ulimits(m);
    Ok(())
}

/// `build: ctx` becomes `{context: ctx}`; its maps and lists take their
/// long form.
fn build(b: &mut Node, path: &str) -> Result<(), Error> {
    if let Value::Str(ctx) = &b.value {
        let mut bm = Map::new();
        bm.insert(
            "context".into(),
            Node::new(Value::Str(ctx.clone()), b.pos.clone()),
        );
        b.value = Value::Map(bm);
    }
    let Some(bm) = b.as_map_mut() else {
        return Ok(());
    };
    let bpath = format!("{path}.build");
    bm.entry("context".into()).or_insert_with(|| s("."));
    map_field(bm, "args", &bpath)?;
    map_field(bm, "labels", &bpath)?;
    map_field(bm, "additional_contexts", &bpath)?;
    if let Some(args) = bm.get_mut("args").and_then(Node::as_map_mut) {
        non_null_to_strings(args);
    }
    if let Some(ssh) = bm.get_mut("ssh") {
        key_value_list(ssh);
    }
    if let Some(h) = bm.get_mut("extra_hosts") {
        extra_hosts(h);
    }
    for k in ["cache_from", "cache_to", "tags", "platforms"] {
        string_list(bm, k);
    }
    file_mounts(bm, "secrets");
    ulimits(bm);
    Ok(())
}

/// Non-null values become strings (`args`, logging options).
fn non_null_to_strings(m: &mut Map) {
    for v in m.values_mut() {
        if !v.is_null() {
            *v = s(scalar_text(v).unwrap_or_default());
        }
    }
}

/// `command`, `entrypoint`, the healthcheck test and the lifecycle hooks'
/// commands as lists.
fn commands(m: &mut Map, path: &str) -> Result<(), Error> {
    for k in ["command", "entrypoint"] {
        command(m, k, path)?;
    }
    if let Some(hc) = m.get_mut("healthcheck").and_then(Node::as_map_mut)
        && let Some(t) = hc.get_mut("test")
        && let Value::Str(cmd) = &t.value
    {
        t.value = Value::Seq(vec![s("CMD-SHELL"), s(cmd.clone())]);
    }
    for hooks in ["post_start", "pre_stop", "pre_start"] {
        if let Some(items) = m.get_mut(hooks).and_then(|n| match &mut n.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }) {
            for (i, h) in items.iter_mut().enumerate() {
                if let Some(hm) = h.as_map_mut() {
                    let hp = format!("{path}.{hooks}[{i}]");
                    command(hm, "command", &hp)?;
                    map_field(hm, "environment", &hp)?;
                }
            }
        }
    }
    Ok(())
}

/// `KEY=VALUE` lists as maps, string-valued options, and CPU counts as
/// floats.
fn maps_and_numbers(m: &mut Map, path: &str) -> Result<(), Error> {
    map_field(m, "environment", path)?;
    map_field(m, "labels", path)?;
    map_field(m, "annotations", path)?;
    map_field(m, "sysctls", path)?;
    string_values(m, "storage_opt");
    if let Some(d) = m.get_mut("deploy").and_then(Node::as_map_mut) {
        map_field(d, "labels", &format!("{path}.deploy"))?;
        if let Some(r) = d.get_mut("resources").and_then(Node::as_map_mut) {
            for side in ["limits", "reservations"] {
                if let Some(l) = r.get_mut(side).and_then(Node::as_map_mut)
                    && let Some(c) = l.get_mut("cpus")
                {
                    to_float(c, &format!("{path}.deploy.resources.{side}.cpus"))?;
                }
            }
        }
    }
    if let Some(c) = m.get_mut("cpus") {
        to_float(c, &format!("{path}.cpus"))?;
    }
    if let Some(l) = m.get_mut("logging").and_then(Node::as_map_mut)
        && let Some(o) = l.get_mut("options").and_then(Node::as_map_mut)
    {
        non_null_to_strings(o);
    }
    Ok(())
}

fn list_to_null_map(m: &mut Map, key: &str) {
    if let Some(n) = m.get_mut(key)
        && let Value::Seq(items) = &n.value
    {
        let mut nm = Map::new();
        for item in items {
            nm.insert(
                scalar_text(item).unwrap_or_default(),
                Node::new(Value::Null, item.pos.clone()),
            );
        }
        n.value = Value::Map(nm);
    }
}

fn to_float(n: &mut Node, path: &str) -> Result<(), Error> {
    match &n.value {
        Value::Str(t) => {
            let f: f64 = t.trim().parse().map_err(|_| Error::Invalid {
                pos: n.pos.clone(),
                path: path.to_string(),
                reason: format!("{t:?} is not a number"),
            })?;
            n.value = Value::Float(f);
        }
        Value::Int(i) => n.value = Value::Float(*i as f64),
        _ => {}
    }
    Ok(())
}

/// `[a, b]` stays; `"a"` becomes `["a"]`; numbers become strings.
fn string_list(m: &mut Map, key: &str) {
    if let Some(n) = m.get_mut(key) {
        match &mut n.value {
            Value::Seq(items) => {
                for it in items.iter_mut() {
                    if let Some(t) = scalar_text(it) {
                        *it = Node::new(Value::Str(t), it.pos.clone());
                    }
                }
            }
            Value::Null => {}
            _ => {
                let t = scalar_text(n).unwrap_or_default();
                n.value = Value::Seq(vec![Node::new(Value::Str(t), n.pos.clone())]);
            }
        }
    }
}

/// Map values become strings (numbers and booleans as Go prints them).
fn string_values(m: &mut Map, key: &str) {
    if let Some(o) = m.get_mut(key).and_then(Node::as_map_mut) {
        for v in o.values_mut() {
            if let Some(t) = scalar_text(v) {
                *v = Node::new(Value::Str(t), v.pos.clone());
            }
        }
    }
}

/// `KEY=VALUE` lists become maps (`KEY` alone gives a null value); map
/// values become strings.
fn map_field(m: &mut Map, key: &str, path: &str) -> Result<(), Error> {
    let Some(n) = m.get_mut(key) else {
        return Ok(());
    };
    let mut out = Map::new();
    match &n.value {
        Value::Seq(items) => {
            for item in items {
                let t = scalar_text(item).unwrap_or_default();
                let (k, v) = match t.split_once('=') {
                    Some((k, v)) => (
                        k.to_string(),
                        Node::new(Value::Str(v.to_string()), item.pos.clone()),
                    ),
                    None => (t.clone(), Node::new(Value::Null, item.pos.clone())),
                };
                if key == "environment" && k.ends_with(' ') {
                    return Err(Error::TrailingSpace {
                        pos: item.pos.clone(),
                        path: format!("{path}.{key}"),
                        name: k,
                    });
                }
                out.insert(k, v);
            }
        }
        Value::Map(mm) => {
            for (k, v) in mm {
                let nv = match &v.value {
                    Value::Null => Node::new(Value::Null, v.pos.clone()),
                    _ => Node::new(
                        Value::Str(scalar_text(v).unwrap_or_default()),
                        v.pos.clone(),
                    ),
                };
                out.insert(k.clone(), nv);
            }
        }
        _ => return Ok(()),
    }
    n.value = Value::Map(out);
    Ok(())
}

/// A map `{k: v}` becomes `["k=v"]`.
fn key_value_list(n: &mut Node) {
    if let Value::Map(mm) = &n.value {
        let items = mm
            .iter()
            .map(|(k, v)| match scalar_text(v) {
                Some(t) => s(format!("{k}={t}")),
                None => s(k.clone()),
            })
            .collect();
        n.value = Value::Seq(items);
    }
}

/// extra_hosts as `host=ip` entries; `host:ip` is accepted as well.
fn extra_hosts(n: &mut Node) {
    let mut out = Vec::new();
    match &n.value {
        Value::Map(mm) => {
            for (k, v) in mm {
                match &v.value {
                    Value::Seq(ips) => {
                        for ip in ips {
                            out.push(s(format!("{k}={}", scalar_text(ip).unwrap_or_default())));
                        }
                    }
                    _ => out.push(s(format!("{k}={}", scalar_text(v).unwrap_or_default()))),
                }
            }
        }
        Value::Seq(items) => {
            for it in items {
                let t = scalar_text(it).unwrap_or_default();
                let t = if t.contains('=') {
                    t
                } else if let Some((h, ip)) = t.split_once(':') {
                    format!("{h}={ip}")
                } else {
                    t
                };
                out.push(Node::new(Value::Str(t), it.pos.clone()));
            }
        }
        _ => return,
    }
    n.value = Value::Seq(out);
}

fn command(m: &mut Map, key: &str, path: &str) -> Result<(), Error> {
    if let Some(n) = m.get_mut(key)
        && let Value::Str(cmd) = &n.value
    {
        let words = shell_words::split(cmd).map_err(|e| Error::Command {
            pos: n.pos.clone(),
            path: format!("{path}.{key}"),
            reason: e.to_string(),
        })?;
        n.value = Value::Seq(words.into_iter().map(s).collect());
    }
    Ok(())
}

fn depends_on(m: &mut Map) {
    let Some(n) = m.get_mut("depends_on") else {
        return;
    };
    let mut out = Map::new();
    let defaults = |mut dm: Map| {
        dm.entry("condition".into())
            .or_insert_with(|| s("service_started"));
        dm.entry("required".into())
            .or_insert_with(|| Node::synthetic(Value::Bool(true)));
        Node::synthetic(Value::Map(dm))
    };
    match &n.value {
        Value::Seq(items) => {
            for it in items {
                out.insert(scalar_text(it).unwrap_or_default(), defaults(Map::new()));
            }
        }
        Value::Map(mm) => {
            for (k, v) in mm {
                let mut d = defaults(v.as_map().cloned().unwrap_or_default());
                d.pos = v.pos.clone();
                out.insert(k.clone(), d);
            }
        }
        _ => return,
    }
    n.value = Value::Map(out);
}

fn env_file(m: &mut Map) {
    let Some(n) = m.get_mut("env_file") else {
        return;
    };
    let entry = |it: &Node| -> Node {
        let mut em = match &it.value {
            Value::Map(mm) => mm.clone(),
            _ => {
                let mut mm = Map::new();
                mm.insert(
                    "path".into(),
                    Node::new(
                        Value::Str(scalar_text(it).unwrap_or_default()),
                        it.pos.clone(),
                    ),
                );
                mm
            }
        };
        em.entry("required".into())
            .or_insert_with(|| Node::synthetic(Value::Bool(true)));
        Node::new(Value::Map(em), it.pos.clone())
    };
    let items = match &n.value {
        Value::Seq(items) => items.iter().map(entry).collect(),
        Value::Null => return,
        _ => vec![entry(n)],
    };
    n.value = Value::Seq(items);
}

fn ports(m: &mut Map, path: &str, lenient: bool) -> Result<(), Error> {
    let Some(n) = m.get_mut("ports") else {
        return Ok(());
    };
    let Value::Seq(items) = &n.value else {
        return Ok(());
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        match &it.value {
            Value::Map(pm) => {
                let mut pm = pm.clone();
                if let Some(p) = pm.get_mut("published")
                    && let Some(t) = scalar_text(p)
                {
                    *p = Node::new(Value::Str(t), p.pos.clone());
                }
                if let Some(t) = pm.get_mut("target")
                    && let Value::Str(v) = &t.value
                    && let Ok(num) = v.parse::<i64>()
                {
                    t.value = Value::Int(num);
                }
                pm.entry("mode".into()).or_insert_with(|| s("ingress"));
                pm.entry("protocol".into()).or_insert_with(|| s("tcp"));
                out.push(Node::new(Value::Map(pm), it.pos.clone()));
            }
            _ => {
                let spec = scalar_text(it).unwrap_or_default();
                if lenient && spec.contains('$') && short::parse_port(&spec).is_err() {
                    out.push(it.clone());
                    continue;
                }
                let parsed = short::parse_port(&spec).map_err(|source| Error::Short {
                    pos: it.pos.clone(),
                    path: format!("{path}.ports[{i}]"),
                    source,
                })?;
                for p in parsed {
                    let mut node = Node::from_json(&serde_json::to_value(&p).unwrap_or_default());
                    node.pos = it.pos.clone();
                    out.push(node);
                }
            }
        }
    }
    n.value = Value::Seq(out);
    Ok(())
}

fn volumes(m: &mut Map, path: &str) -> Result<(), Error> {
    let Some(n) = m.get_mut("volumes") else {
        return Ok(());
    };
    let Value::Seq(items) = &mut n.value else {
        return Ok(());
    };
    for (i, it) in items.iter_mut().enumerate() {
        match &mut it.value {
            Value::Str(spec) => {
                let parsed = short::parse_volume(spec).map_err(|source| Error::Short {
                    pos: it.pos.clone(),
                    path: format!("{path}.volumes[{i}]"),
                    source,
                })?;
                let pos = it.pos.clone();
                *it = Node::from_json(&serde_json::to_value(&parsed).unwrap_or_default());
                it.pos = pos;
            }
            Value::Map(vm) => {
                if vm.get("type").and_then(Node::as_str) == Some("bind") {
                    let b = vm
                        .entry("bind".into())
                        .or_insert_with(|| Node::synthetic(Value::Map(Map::new())));
                    if let Some(bm) = b.as_map_mut() {
                        bm.entry("create_host_path".into())
                            .or_insert_with(|| Node::synthetic(Value::Bool(true)));
                    }
                }
                if let Some(t) = vm.get_mut("tmpfs").and_then(Node::as_map_mut)
                    && let Some(mode) = t.get_mut("mode")
                    && let Value::Str(ms) = &mode.value
                    && let Ok(v) = u32::from_str_radix(ms.trim_start_matches("0o"), 8)
                {
                    mode.value = Value::Int(i64::from(v));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn file_mounts(m: &mut Map, key: &str) {
    if let Some(n) = m.get_mut(key)
        && let Value::Seq(items) = &mut n.value
    {
        for it in items.iter_mut() {
            match &mut it.value {
                Value::Str(src) => {
                    let mut fm = Map::new();
                    fm.insert("source".into(), s(src.clone()));
                    it.value = Value::Map(fm);
                }
                Value::Map(fm) => {
                    for k in ["uid", "gid"] {
                        if let Some(v) = fm.get_mut(k)
                            && let Some(t) = scalar_text(v)
                        {
                            *v = s(t);
                        }
                    }
                    if let Some(mode) = fm.get_mut("mode")
                        && let Value::Str(ms) = &mode.value
                        && let Ok(v) = u32::from_str_radix(ms.trim_start_matches("0o"), 8)
                    {
                        mode.value = Value::Int(i64::from(v));
                    }
                }
                _ => {}
            }
        }
    }
}

fn devices(m: &mut Map, path: &str) -> Result<(), Error> {
    if let Some(n) = m.get_mut("devices")
        && let Value::Seq(items) = &mut n.value
    {
        for it in items.iter_mut() {
            if let Value::Str(spec) = &it.value {
                let parts: Vec<&str> = spec.split(':').collect();
                if parts.len() > 3 {
                    return Err(Error::Invalid {
                        pos: it.pos.clone(),
                        path: format!("{path}.devices"),
                        reason: format!("confusing device mapping, please use long syntax: {spec}"),
                    });
                }
                let mut dm = Map::new();
                dm.insert("source".into(), s(parts[0]));
                dm.insert("target".into(), s(*parts.get(1).unwrap_or(&parts[0])));
                dm.insert("permissions".into(), s(*parts.get(2).unwrap_or(&"rwm")));
                it.value = Value::Map(dm);
            }
        }
    }
    Ok(())
}

fn ulimits(m: &mut Map) {
    if let Some(u) = m.get_mut("ulimits").and_then(Node::as_map_mut) {
        for v in u.values_mut() {
            if let Value::Str(t) = &v.value
                && let Ok(i) = t.parse::<i64>()
            {
                v.value = Value::Int(i);
            }
            if let Some(r) = v.as_map_mut() {
                for k in ["soft", "hard"] {
                    if let Some(x) = r.get_mut(k)
                        && let Value::Str(t) = &x.value
                        && let Ok(i) = t.parse::<i64>()
                    {
                        x.value = Value::Int(i);
                    }
                }
            }
        }
    }
}
