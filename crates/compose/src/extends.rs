//! `include` and `extends`: bringing services in from other files.
//!
//! An included file is loaded as its own project (its own directory and
//! env files), fully resolved, then its resources are imported. A service
//! that `extends` another is merged on top of a copy of it with the service
//! merge rules; a base from another file has its relative paths resolved
//! against that file's directory first.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::environment::resolve_environment;
use crate::loader::{Ctx, Error, FileAt, abs, process_file, read};
use crate::validate::report_pos;
use crate::yaml::{self, Map, Node, Pos, Value};
use crate::{canonical, dotenv, interpolate, merge, paths};

/// One `include` entry, resolved against the including file's directory.
struct Include {
    /// The files of the entry, merged in order.
    files: Vec<PathBuf>,
    /// The project directory of the included files.
    dir: PathBuf,
    /// The env files that give its variables.
    env_files: Vec<PathBuf>,
}

/// The scalars of a string-or-list value.
fn strings(n: Option<Node>) -> Vec<String> {
    match n.map(|n| n.value) {
        Some(Value::Seq(s)) => s.iter().filter_map(Node::scalar_string).collect(),
        Some(v) => Node::synthetic(v).scalar_string().into_iter().collect(),
        None => Vec::new(),
    }
}

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
        let Some(include) = include_of(ctx, &entry, file_dir)? else {
            continue;
        };
        let env = include_env(ctx, &include.env_files)?;
        let Some(inc) = load_included(ctx, &include, &env)? else {
            continue;
        };
        import_resources(doc, inc)?;
    }
    Ok(())
}

/// The files, directory and env files of one entry (`None` when it names
/// no file); a file already being included is a cycle.
fn include_of(ctx: &Ctx<'_>, entry: &Node, file_dir: &Path) -> Result<Option<Include>, Error> {
    let (paths_n, project_dir, env_files) = match &entry.value {
        Value::Map(m) => (
            m.get("path").cloned(),
            m.get("project_directory").cloned(),
            m.get("env_file").cloned(),
        ),
        _ => (Some(entry.clone()), None, None),
    };
    let files: Vec<PathBuf> = strings(paths_n)
        .iter()
        .map(|p| abs(file_dir, Path::new(p)))
        .collect();
    let Some(first) = files.first() else {
        return Ok(None);
    };
    for f in &files {
        if ctx.include_stack.contains(f) {
            return Err(Error::IncludeCycle {
                pos: entry.pos.clone(),
                path: f.clone(),
            });
        }
    }
    let dir = match project_dir.and_then(|p| p.scalar_string()) {
        Some(p) => abs(file_dir, Path::new(&p)),
        None => first.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let env_files: Vec<PathBuf> = {
        let l = strings(env_files);
        if l.is_empty() {
            let dot = dir.join(".env");
            if dot.is_file() { vec![dot] } else { Vec::new() }
        } else {
            l.iter().map(|p| abs(file_dir, Path::new(p))).collect()
        }
    };
    Ok(Some(Include {
        files,
        dir,
        env_files,
    }))
}

/// The interpolation environment of an included project: the includer's,
/// with the variables of its env files the shell does not set.
fn include_env(ctx: &Ctx<'_>, env_files: &[PathBuf]) -> Result<IndexMap<String, String>, Error> {
    let mut env = ctx.env.clone();
    let from_files = dotenv::read_files(env_files, &ctx.opts.environment)?;
    for (k, v) in from_files {
        if !ctx.opts.environment.contains_key(&k) {
            env.insert(k, v);
        }
    }
    Ok(env)
}

/// Loads the files of one entry as a project of its own: interpolated,
/// merged, canonical, paths and environment resolved. `None` when the
/// files hold no document.
fn load_included(
    ctx: &mut Ctx<'_>,
    include: &Include,
    env: &IndexMap<String, String>,
) -> Result<Option<Node>, Error> {
    let mut sub = Ctx {
        opts: ctx.opts,
        env: env.clone(),
        include_stack: ctx.include_stack.clone(),
        warnings: std::mem::take(&mut ctx.warnings),
    };
    sub.include_stack.extend(include.files.iter().cloned());
    let mut merged: Option<Node> = None;
    for f in &include.files {
        let text = read(f)?;
        for mut d in yaml::parse(&text, &f.display().to_string())? {
            let fdir = f.parent().map(Path::to_path_buf).unwrap_or_default();
            let at = FileAt {
                file: f,
                dir: &fdir,
                working_dir: &include.dir,
            };
            process_file(&mut sub, &mut d, at)?;
            merged = Some(merge::merge_next(merged, d));
        }
    }
    ctx.warnings = std::mem::take(&mut sub.warnings);
    let Some(mut inc) = merged else {
        return Ok(None);
    };
    merge::enforce_unicity(&mut inc)?;
    canonical::canonicalize(&mut inc, !ctx.opts.interpolate)?;
    if ctx.opts.resolve_paths {
        paths::resolve(&mut inc, &include.dir, env);
    }
    resolve_environment(&mut inc, env, ctx.opts, &[], &[], &include.dir)?;
    Ok(Some(inc))
}

/// Adds the resources of an included project to `doc`: a service defined
/// on both sides must be the same.
fn import_resources(doc: &mut Node, inc: Node) -> Result<(), Error> {
    let target = doc.as_map_mut().ok_or(Error::NotAMapping {
        pos: Pos::default(),
    })?;
    let Value::Map(im) = inc.value else {
        return Ok(());
    };
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
                        pos: report_pos(existing),
                        path: format!("{kind}.{k}"),
                    });
                }
                continue;
            }
            dm.insert(k, v);
        }
    }
    Ok(())
}

/// `extends:` of every service of one file.
pub(crate) fn apply_extends(
    ctx: &mut Ctx<'_>,
    doc: &mut Node,
    at: FileAt<'_>,
) -> Result<(), Error> {
    let names: Vec<String> = match doc.get("services").and_then(Node::as_map) {
        Some(m) => m.keys().cloned().collect(),
        None => return Ok(()),
    };
    for name in names {
        let mut chain = vec![format!("{}:{name}", at.file.display())];
        let services = doc
            .get("services")
            .and_then(Node::as_map)
            .cloned()
            .unwrap_or_default();
        let from = ServiceFile {
            at,
            services: &services,
        };
        let resolved = extend_service(ctx, &name, &from, &mut chain)?;
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

/// Where services are looked up: a file and its services.
struct ServiceFile<'a> {
    at: FileAt<'a>,
    services: &'a Map,
}

/// One `extends:` of a service: the service, where its `extends` is, and
/// the base it names.
struct Link<'a> {
    service: &'a str,
    pos: &'a Pos,
    base: String,
}

impl Link<'_> {
    fn not_found(&self, file: &Path) -> Error {
        Error::ExtendsNotFound {
            pos: self.pos.clone(),
            service: self.service.into(),
            file: file.display().to_string(),
            base: self.base.clone(),
        }
    }

    /// Adds the base in `file` to the chain; it being there already is a
    /// cycle.
    fn enter(&self, chain: &mut Vec<String>, file: &Path) -> Result<(), Error> {
        let key = format!("{}:{}", file.display(), self.base);
        let cycle = chain.contains(&key);
        chain.push(key);
        if cycle {
            return Err(Error::ExtendsCycle {
                pos: self.pos.clone(),
                service: self.service.into(),
                chain: chain.clone(),
            });
        }
        Ok(())
    }
}

/// Service `name` of `from` with its `extends` chain applied.
fn extend_service(
    ctx: &mut Ctx<'_>,
    name: &str,
    from: &ServiceFile<'_>,
    chain: &mut Vec<String>,
) -> Result<Node, Error> {
    let Some(service) = from.services.get(name).cloned() else {
        return Err(Error::ExtendsNotFound {
            pos: Pos::default(),
            service: name.into(),
            file: from.at.file.display().to_string(),
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
    let link = Link {
        service: name,
        pos: &ext.pos,
        base: base_name,
    };
    let mut base = match base_file {
        Some(bf) => {
            let path = abs(from.at.dir, Path::new(&bf));
            base_in_other_file(ctx, &link, &path, from.at.working_dir, chain)?
        }
        None => {
            link.enter(chain, from.at.file)?;
            if !from.services.contains_key(&link.base) {
                return Err(link.not_found(from.at.file));
            }
            extend_service(ctx, &link.base, from, chain)?
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

/// The base of `extends: {file, service}`: read and interpolated from its
/// file, extended in turn, its relative paths resolved against that file's
/// directory.
fn base_in_other_file(
    ctx: &mut Ctx<'_>,
    link: &Link<'_>,
    path: &Path,
    working_dir: &Path,
    chain: &mut Vec<String>,
) -> Result<Node, Error> {
    link.enter(chain, path)?;
    let text = read(path)?;
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
    if !other.contains_key(&link.base) {
        return Err(link.not_found(path));
    }
    let bdir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let from = ServiceFile {
        at: FileAt {
            file: path,
            dir: &bdir,
            working_dir,
        },
        services: &other,
    };
    let mut b = extend_service(ctx, &link.base, &from, chain)?;
    // Paths of the base are relative to its own file.
    if ctx.opts.resolve_paths && bdir != working_dir {
        paths::resolve_service_raw(&mut b, &bdir, &ctx.env);
    }
    Ok(b)
}
