//! `include` and `extends`: bringing services in from other files.
//!
//! An included file is loaded as its own project (its own directory and
//! env files), fully resolved, then its resources are imported. A service
//! that `extends` another is merged on top of a copy of it with the service
//! merge rules; a base from another file has its relative paths resolved
//! against that file's directory first.

use std::path::{Path, PathBuf};

use crate::environment::resolve_environment;
use crate::loader::{Ctx, Error, abs, process_file, read};
use crate::yaml::{self, Map, Node, Pos, Value};
use crate::{canonical, dotenv, interpolate, merge, paths};

/// `include:`: each entry is loaded as its own project (its own directory
/// and env files), fully resolved, and its resources are added here.
pub(crate) fn apply_include(
    ctx: &mut Ctx<'_>,
    doc: &mut Node,
    file_dir: &Path,
) -> Result<(), Error> {
    let Some(includes) = doc.as_map_mut().and_then(|m| m.shift_remove("include")) else {
        return Ok(());
    };
    let entries: Vec<Node> = match includes.value {
        Value::Seq(s) => s,
        _ => Vec::new(),
    };
    for entry in entries {
        let (paths_n, project_dir, env_files) = match &entry.value {
            Value::Map(m) => (
                m.get("path").cloned(),
                m.get("project_directory").cloned(),
                m.get("env_file").cloned(),
            ),
            _ => (Some(entry.clone()), None, None),
        };
        let list = |n: Option<Node>| -> Vec<String> {
            match n.map(|n| n.value) {
                Some(Value::Seq(s)) => s.iter().filter_map(Node::scalar_string).collect(),
                Some(v) => Node::synthetic(v).scalar_string().into_iter().collect(),
                None => Vec::new(),
            }
        };
        let inc_files: Vec<PathBuf> = list(paths_n)
            .iter()
            .map(|p| abs(file_dir, Path::new(p)))
            .collect();
        let Some(first) = inc_files.first() else {
            continue;
        };
        for f in &inc_files {
            if ctx.include_stack.contains(f) {
                return Err(Error::IncludeCycle {
                    pos: entry.pos.clone(),
                    path: f.clone(),
                });
            }
        }
        let inc_dir = match project_dir.and_then(|p| p.scalar_string()) {
            Some(p) => abs(file_dir, Path::new(&p)),
            None => first.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let env_paths: Vec<PathBuf> = {
            let l = list(env_files);
            if l.is_empty() {
                let dot = inc_dir.join(".env");
                if dot.is_file() { vec![dot] } else { Vec::new() }
            } else {
                l.iter().map(|p| abs(file_dir, Path::new(p))).collect()
            }
        };
        let mut env = ctx.env.clone();
        let from_files = dotenv::read_files(&env_paths, &ctx.opts.environment)?;
        for (k, v) in from_files {
            if !ctx.opts.environment.contains_key(&k) {
                env.insert(k, v);
            }
        }
        let mut sub = Ctx {
            opts: ctx.opts,
            env: env.clone(),
            include_stack: ctx.include_stack.clone(),
            warnings: std::mem::take(&mut ctx.warnings),
        };
        sub.include_stack.extend(inc_files.iter().cloned());
        let mut merged: Option<Node> = None;
        for f in &inc_files {
            let text = read(f)?;
            for mut d in yaml::parse(&text, &f.display().to_string())? {
                let fdir = f.parent().map(Path::to_path_buf).unwrap_or_default();
                process_file(&mut sub, &mut d, f, &fdir, &inc_dir)?;
                merged = Some(match merged {
                    None => {
                        merge::clean(&mut d);
                        d
                    }
                    Some(b) => merge::merge(b, d),
                });
            }
        }
        ctx.warnings = std::mem::take(&mut sub.warnings);
        let Some(mut inc) = merged else { continue };
        merge::enforce_unicity(&mut inc)?;
        canonical::canonicalize(&mut inc, !ctx.opts.interpolate)?;
        if ctx.opts.resolve_paths {
            paths::resolve(&mut inc, &inc_dir, &env);
        }
        resolve_environment(&mut inc, &env, ctx.opts, &[], &[], &inc_dir)?;
        // Import: a resource defined on both sides must be the same.
        let target = doc.as_map_mut().ok_or(Error::NotAMapping {
            pos: Pos::default(),
        })?;
        if let Value::Map(im) = inc.value {
            for (kind, section) in im {
                if !matches!(
                    kind.as_str(),
                    "services" | "networks" | "volumes" | "secrets" | "configs"
                ) {
                    continue;
                }
                let Value::Map(items) = section.value else {
                    continue;
                };
                let dst = target
                    .entry(kind.clone())
                    .or_insert_with(|| Node::synthetic(Value::Map(Map::new())));
                if dst.is_null() {
                    dst.value = Value::Map(Map::new());
                }
                let Some(dm) = dst.as_map_mut() else { continue };
                for (k, v) in items {
                    if let Some(existing) = dm.get(&k) {
                        if *existing != v && kind == "services" {
                            return Err(Error::IncludeConflict {
                                pos: existing
                                    .key_pos
                                    .clone()
                                    .unwrap_or_else(|| existing.pos.clone()),
                                path: format!("{kind}.{k}"),
                            });
                        }
                        continue;
                    }
                    dm.insert(k, v);
                }
            }
        }
    }
    Ok(())
}

/// `extends:` of every service of one file.
pub(crate) fn apply_extends(
    ctx: &mut Ctx<'_>,
    doc: &mut Node,
    file: &Path,
    file_dir: &Path,
    working_dir: &Path,
) -> Result<(), Error> {
    let names: Vec<String> = match doc.get("services").and_then(Node::as_map) {
        Some(m) => m.keys().cloned().collect(),
        None => return Ok(()),
    };
    for name in names {
        let mut chain = vec![format!("{}:{name}", file.display())];
        let services = doc
            .get("services")
            .and_then(Node::as_map)
            .cloned()
            .unwrap_or_default();
        let resolved = extend_service(
            ctx,
            &name,
            &services,
            file,
            file_dir,
            working_dir,
            &mut chain,
        )?;
        if let Some(s) = doc
            .as_map_mut()
            .and_then(|m| m.get_mut("services"))
            .and_then(Node::as_map_mut)
        {
            s.insert(name, resolved);
        }
    }
    Ok(())
}

fn extend_service(
    ctx: &mut Ctx<'_>,
    name: &str,
    services: &Map,
    file: &Path,
    file_dir: &Path,
    working_dir: &Path,
    chain: &mut Vec<String>,
) -> Result<Node, Error> {
    let Some(service) = services.get(name).cloned() else {
        return Err(Error::ExtendsNotFound {
            pos: Pos::default(),
            service: name.into(),
            file: file.display().to_string(),
            base: name.into(),
        });
    };
    let Some(ext) = service.get("extends").cloned() else {
        return Ok(service);
    };
    let (base_name, base_file) = match &ext.value {
        Value::Map(m) => (
            m.get("service")
                .and_then(Node::scalar_string)
                .unwrap_or_default(),
            m.get("file").and_then(Node::scalar_string),
        ),
        _ => (ext.scalar_string().unwrap_or_default(), None),
    };
    let mut base = match base_file {
        Some(bf) => {
            let path = abs(file_dir, Path::new(&bf));
            let key = format!("{}:{base_name}", path.display());
            if chain.contains(&key) {
                chain.push(key);
                return Err(Error::ExtendsCycle {
                    pos: ext.pos.clone(),
                    service: name.into(),
                    chain: chain.clone(),
                });
            }
            chain.push(key);
            let text = read(&path)?;
            let mut d = yaml::parse_one(&text, &path.display().to_string())?
                .unwrap_or_else(|| Node::synthetic(Value::Map(Map::new())));
            if ctx.opts.interpolate {
                interpolate::interpolate_tree_warn(&mut d, &ctx.env, &mut ctx.warnings)?;
            }
            let other = d
                .get("services")
                .and_then(Node::as_map)
                .cloned()
                .unwrap_or_default();
            if !other.contains_key(&base_name) {
                return Err(Error::ExtendsNotFound {
                    pos: ext.pos.clone(),
                    service: name.into(),
                    file: path.display().to_string(),
                    base: base_name,
                });
            }
            let bdir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let mut b = extend_service(ctx, &base_name, &other, &path, &bdir, working_dir, chain)?;
            // Paths of the base are relative to its own file.
            if ctx.opts.resolve_paths && bdir != working_dir {
                paths::resolve_service_raw(&mut b, &bdir, &ctx.env);
            }
            b
        }
        None => {
            let key = format!("{}:{base_name}", file.display());
            if chain.contains(&key) {
                chain.push(key);
                return Err(Error::ExtendsCycle {
                    pos: ext.pos.clone(),
                    service: name.into(),
                    chain: chain.clone(),
                });
            }
            if !services.contains_key(&base_name) {
                return Err(Error::ExtendsNotFound {
                    pos: ext.pos.clone(),
                    service: name.into(),
                    file: file.display().to_string(),
                    base: base_name,
                });
            }
            chain.push(key);
            extend_service(
                ctx,
                &base_name,
                services,
                file,
                file_dir,
                working_dir,
                chain,
            )?
        }
    };
    merge::clean(&mut base);
    let mut over = service;
    if let Some(m) = over.as_map_mut() {
        m.shift_remove("extends");
    }
    let mut merged = merge::merge_service(base, over);
    if let Some(m) = merged.as_map_mut() {
        m.shift_remove("extends");
    }
    Ok(merged)
}
