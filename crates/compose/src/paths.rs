//! Relative paths made absolute against the right directory: the project
//! directory for the main files, the file's own directory for a service
//! taken from another file by `extends` or `include` (compose-go
//! `paths.ResolveRelativePaths`). `~` is the `HOME` of the environment.

use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;

use crate::short;
use crate::yaml::{Node, Value};

/// Lexically cleans a path (`a/./b/../c` → `a/c`), like Go's `filepath.Clean`.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn expand_home(p: &str, env: &IndexMap<String, String>) -> String {
    if p == "~" || p.starts_with("~/") {
        if let Some(home) = env.get("HOME") {
            return format!("{home}{}", &p[1..]);
        }
    }
    p.to_string()
}

fn abs_str(base: &Path, p: &str, env: &IndexMap<String, String>) -> String {
    let p = expand_home(p, env);
    let path = Path::new(&p);
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    clean(&full).display().to_string()
}

/// Remote build contexts stay as written.
fn is_remote(ctx: &str) -> bool {
    ctx.contains("://")
        || ctx.starts_with("git@")
        || ctx.starts_with("github.com/")
        || ctx.starts_with("docker-image:")
        || ctx.starts_with("service:")
        || ctx.starts_with("oci-layout:")
}

fn set_abs(n: &mut Node, base: &Path, env: &IndexMap<String, String>) {
    if let Value::Str(s) = &n.value
        && !s.is_empty()
    {
        n.value = Value::Str(abs_str(base, s, env));
    }
}

/// Resolves the paths of a canonical project tree.
pub fn resolve(root: &mut Node, base: &Path, env: &IndexMap<String, String>) {
    let Some(top) = root.as_map_mut() else { return };
    if let Some(services) = top.get_mut("services").and_then(Node::as_map_mut) {
        for svc in services.values_mut() {
            resolve_service(svc, base, env);
        }
    }
    for kind in ["secrets", "configs"] {
        if let Some(m) = top.get_mut(kind).and_then(Node::as_map_mut) {
            for v in m.values_mut() {
                if let Some(f) = v.as_map_mut().and_then(|m| m.get_mut("file")) {
                    set_abs(f, base, env);
                }
            }
        }
    }
    if let Some(m) = top.get_mut("volumes").and_then(Node::as_map_mut) {
        for v in m.values_mut() {
            let Some(vm) = v.as_map_mut() else { continue };
            let local = vm
                .get("driver")
                .and_then(Node::as_str)
                .is_none_or(|d| d == "local");
            if let Some(opts) = vm.get_mut("driver_opts").and_then(Node::as_map_mut) {
                let bind = opts
                    .get("o")
                    .and_then(Node::as_str)
                    .is_some_and(|o| o.split(',').any(|x| x == "bind"));
                if local
                    && bind
                    && let Some(dev) = opts.get_mut("device")
                {
                    set_abs(dev, base, env);
                }
            }
        }
    }
}

/// Resolves the paths of one canonical service.
pub fn resolve_service(svc: &mut Node, base: &Path, env: &IndexMap<String, String>) {
    let Some(sm) = svc.as_map_mut() else { return };
    if let Some(b) = sm.get_mut("build").and_then(Node::as_map_mut) {
        if let Some(c) = b.get_mut("context")
            && c.as_str().is_some_and(|s| !is_remote(s))
        {
            set_abs(c, base, env);
        }
        if let Some(ac) = b.get_mut("additional_contexts").and_then(Node::as_map_mut) {
            for c in ac.values_mut() {
                if c.as_str().is_some_and(|s| !is_remote(s)) {
                    set_abs(c, base, env);
                }
            }
        }
    }
    if let Some(files) = sm.get_mut("env_file") {
        if let Value::Seq(items) = &mut files.value {
            for it in items {
                match &mut it.value {
                    Value::Map(m) => {
                        if let Some(p) = m.get_mut("path") {
                            set_abs(p, base, env);
                        }
                    }
                    Value::Str(_) => set_abs(it, base, env),
                    _ => {}
                }
            }
        } else {
            set_abs(files, base, env);
        }
    }
    if let Some(Value::Seq(items)) = sm.get_mut("label_file").map(|n| &mut n.value) {
        for it in items {
            set_abs(it, base, env);
        }
    }
    if let Some(Value::Seq(items)) = sm.get_mut("volumes").map(|n| &mut n.value) {
        for it in items {
            if let Some(vm) = it.as_map_mut()
                && vm.get("type").and_then(Node::as_str) == Some("bind")
                && let Some(src) = vm.get_mut("source")
            {
                set_abs(src, base, env);
            }
        }
    }
    if let Some(w) = sm
        .get_mut("develop")
        .and_then(Node::as_map_mut)
        .and_then(|d| d.get_mut("watch"))
        && let Value::Seq(items) = &mut w.value
    {
        for it in items {
            if let Some(p) = it.as_map_mut().and_then(|m| m.get_mut("path")) {
                set_abs(p, base, env);
            }
        }
    }
}

/// Resolves the paths of a raw service (short syntax allowed), for a base
/// service taken from another file by `extends`.
pub fn resolve_service_raw(svc: &mut Node, base: &Path, env: &IndexMap<String, String>) {
    if let Some(sm) = svc.as_map_mut() {
        if let Some(b) = sm.get_mut("build")
            && let Value::Str(ctx) = &b.value
            && !is_remote(ctx)
        {
            set_abs(b, base, env);
        }
        if let Some(Value::Seq(items)) = sm.get_mut("volumes").map(|n| &mut n.value) {
            for it in items.iter_mut() {
                if let Value::Str(spec) = &it.value
                    && let Ok(parsed) = short::parse_volume(spec)
                {
                    let pos = it.pos.clone();
                    *it = Node::from_json(&serde_json::to_value(&parsed).unwrap_or_default());
                    it.pos = pos;
                }
            }
        }
    }
    resolve_service(svc, base, env);
}
