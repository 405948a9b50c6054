//! Loading a project: find the files, read the environment, parse,
//! interpolate, apply `include` and `extends`, merge, validate, canonicalise,
//! resolve paths and environment, apply profiles, normalise, and produce the
//! typed [`Project`]. The order follows compose-go's `loader.LoadWithContext`.
//!
//! No process state is read here: the caller passes the environment
//! variables and the current directory in [`Options`], so tests are hermetic.

use std::path::{Path, PathBuf};

use indexmap::{IndexMap, IndexSet};

use crate::dotenv;
use crate::environment::resolve_environment;
use crate::interpolate;
use crate::merge;
use crate::model::{FileObject, Network, Service, Volume};
use crate::project::Project;
use crate::validate::{self, Issue, Issues, report_pos};
use crate::yaml::{self, Map, Node, Pos, Value};
use crate::{canonical, paths};

pub use crate::locate::{
    DEFAULT_FILES, OVERRIDE_FILES, check_project_name, discover, normalize_project_name,
};
use crate::locate::{Located, locate, project_name};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no configuration file provided: not found (looked for {} in {} and its parents)", DEFAULT_FILES.join(", "), dir.display())]
    NoConfigFile { dir: PathBuf },
    #[error("read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Yaml(#[from] yaml::Error),
    #[error(transparent)]
    Interpolate(#[from] interpolate::TreeError),
    #[error(transparent)]
    Merge(#[from] merge::Error),
    #[error(transparent)]
    Canonical(#[from] canonical::Error),
    #[error(transparent)]
    Dotenv(#[from] dotenv::Error),
    #[error(transparent)]
    Invalid(#[from] Issues),
    #[error("{pos}: top-level object must be a mapping")]
    NotAMapping { pos: Pos },
    #[error(
        "invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
    )]
    InvalidProjectName { name: String },
    #[error("project name must not be empty")]
    EmptyProjectName,
    #[error("{pos}: include cycle detected: {} is included again", path.display())]
    IncludeCycle { pos: Pos, path: PathBuf },
    #[error(
        "{pos}: services.{service}: cannot extend service {service:?} in {file}: service {base:?} not found"
    )]
    ExtendsNotFound {
        pos: Pos,
        service: String,
        file: String,
        base: String,
    },
    #[error("{pos}: services.{service}.extends: circular reference: {}", chain.join(" -> "))]
    ExtendsCycle {
        pos: Pos,
        service: String,
        chain: Vec<String>,
    },
    #[error("{pos}: services.{service}.env_file: env file {} not found", path.display())]
    EnvFileMissing {
        pos: Pos,
        service: String,
        path: PathBuf,
    },
    #[error("{pos}: {path}: imported resource conflicts with the one defined here")]
    IncludeConflict { pos: Pos, path: String },
    #[error("no such service: {name}")]
    NoSuchService { name: String },
    #[error("{pos}: {path}: invalid value")]
    Model {
        pos: Pos,
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// What to load and how. Build it with [`Options::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct Options {
    /// `-f` files in order (`-` is standard input); empty = discovery.
    pub files: Vec<PathBuf>,
    /// The text of standard input, used for a `-` file.
    pub stdin: Option<String>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--profile` (empty = `COMPOSE_PROFILES`).
    pub profiles: Vec<String>,
    /// `--env-file` (empty = `.env` in the project directory).
    pub env_files: Vec<PathBuf>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// The current directory (relative paths of options are resolved here).
    pub cwd: PathBuf,
    /// The process environment, passed in explicitly.
    pub environment: IndexMap<String, String>,
    /// Services named on the command line: they are active whatever their
    /// profiles, and only they (and their dependencies) are checked.
    pub services: Vec<String>,
    /// Services the command acts on (`up web`, `run web`...): only their
    /// `env_file`s (and their dependencies') must exist; the other services
    /// stay in the model. Empty: every active service.
    pub acting_on: Vec<String>,
    /// Interpolate `${VAR}` (off for `config --no-interpolate`).
    pub interpolate: bool,
    /// Make relative paths absolute.
    pub resolve_paths: bool,
    /// Add the default network and resource names.
    pub normalize: bool,
    /// Validate against the schema.
    pub validate_schema: bool,
    /// Semantic checks (undefined references, cycles).
    pub consistency: bool,
    /// Drop `env_file` after loading it into `environment`.
    pub discard_env_files: bool,
    /// Read `env_file` entries into `environment`.
    pub resolve_env_files: bool,
}

impl Options {
    pub fn new(cwd: impl Into<PathBuf>, environment: IndexMap<String, String>) -> Self {
        Options {
            files: Vec::new(),
            stdin: None,
            project_name: None,
            profiles: Vec::new(),
            env_files: Vec::new(),
            project_directory: None,
            cwd: cwd.into(),
            environment,
            services: Vec::new(),
            acting_on: Vec::new(),
            interpolate: true,
            resolve_paths: true,
            normalize: true,
            validate_schema: true,
            consistency: true,
            discard_env_files: false,
            resolve_env_files: true,
        }
    }
}

pub(crate) fn abs(base: &Path, p: &Path) -> PathBuf {
    paths::clean(&if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    })
}

pub(crate) struct Ctx<'a> {
    pub(crate) opts: &'a Options,
    /// Variables for interpolation of the file being loaded.
    pub(crate) env: IndexMap<String, String>,
    /// Files being included, for cycle detection.
    pub(crate) include_stack: Vec<PathBuf>,
    /// Warnings met so far.
    pub(crate) warnings: Vec<String>,
}

/// Loads a project.
pub fn load(opts: &Options) -> Result<Project, Error> {
    load_loaded(opts)?.into_project()
}

/// Loads a project up to the canonical tree, without the typed model: for
/// `config --no-interpolate`, where values may still hold `${...}` that the
/// typed model cannot (a port like `"${PORT}:80"`).
pub fn load_tree(opts: &Options) -> Result<serde_json::Value, Error> {
    Ok(load_loaded(opts)?.dict.to_json())
}

/// The result of the pipeline before the typed model.
struct Loaded {
    dict: Node,
    disabled: Map,
    name: String,
    working_dir: PathBuf,
    files: Vec<PathBuf>,
    env: IndexMap<String, String>,
    warnings: Vec<String>,
}

impl Loaded {
    fn into_project(self) -> Result<Project, Error> {
        let mut project = to_project(&self.dict)?;
        for (n, s) in self.disabled {
            let svc: Service = typed(&s, &format!("services.{n}"))?;
            project.disabled_services.insert(n, svc);
        }
        // `environment:` secrets and configs take their content from the
        // project environment now, so the runtime needs no lookup.
        let mut warnings = self.warnings;
        for (kind, objects) in [
            ("secret", &mut project.secrets),
            ("config", &mut project.configs),
        ] {
            for (key, obj) in objects.iter_mut() {
                if let Some(var) = &obj.environment {
                    match self.env.get(var) {
                        Some(v) => obj.content = Some(v.clone()),
                        None => {
                            let w = format!(
                                "{kind} {key:?} comes from environment variable {var}, which is not set"
                            );
                            tracing::warn!("{w}");
                            warnings.push(w);
                        }
                    }
                }
            }
        }
        project.name = self.name;
        project.working_dir = self.working_dir;
        project.compose_files = self.files;
        project.environment = self.env;
        project.warnings = warnings;
        Ok(project)
    }
}

fn load_loaded(opts: &Options) -> Result<Loaded, Error> {
    if let Some(n) = &opts.project_name
        && !n.is_empty()
    {
        check_project_name(n)?;
    }
    let mut located = locate(opts)?;
    // Parse every file once, to find the project name before interpolating.
    let raw = parse_files(opts, &located.files)?;
    let name = project_name(opts, &located, &raw)?;
    // `${COMPOSE_PROJECT_NAME}` always interpolates to the project name; the
    // project's own environment holds it only when the user set it.
    let mut interp_env = located.env.clone();
    interp_env.insert("COMPOSE_PROJECT_NAME".into(), name.clone());
    if opts.project_name.as_deref().is_some_and(|n| !n.is_empty()) {
        located
            .env
            .insert("COMPOSE_PROJECT_NAME".into(), name.clone());
    }
    let mut ctx = Ctx {
        opts,
        env: interp_env,
        include_stack: located
            .files
            .iter()
            .filter(|f| f.as_os_str() != "-")
            .cloned()
            .collect(),
        warnings: Vec::new(),
    };
    let mut warnings = Vec::new();
    let mut dict = merge_files(&mut ctx, raw, &located.working_dir, &mut warnings)?;
    merge::enforce_unicity(&mut dict)?;
    if let Some(m) = dict.as_map_mut() {
        m.insert("name".into(), Node::str(name.clone()));
    }
    warnings.append(&mut ctx.warnings);
    finish(dict, opts, located, name, warnings)
}

/// Every document of every file (`-` is standard input), each a mapping.
fn parse_files(opts: &Options, files: &[PathBuf]) -> Result<Vec<(PathBuf, Node)>, Error> {
    let mut raw = Vec::new();
    for f in files {
        let (text, label) = if f.as_os_str() == "-" {
            (opts.stdin.clone().unwrap_or_default(), "-".to_string())
        } else {
            (read(f)?, f.display().to_string())
        };
        let docs = yaml::parse(&text, &label)?;
        for d in docs {
            if !matches!(d.value, Value::Map(_)) {
                return Err(Error::NotAMapping { pos: d.pos });
            }
            raw.push((f.clone(), d));
        }
    }
    Ok(raw)
}

/// Processes every document (interpolation, `include`, `extends`) and
/// merges them in order; `version:` is dropped with a warning.
fn merge_files(
    ctx: &mut Ctx<'_>,
    raw: Vec<(PathBuf, Node)>,
    working_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Node, Error> {
    let mut dict: Option<Node> = None;
    for (file, mut doc) in raw {
        if doc.get("version").is_some() {
            let w = format!(
                "{}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion",
                file.display()
            );
            tracing::warn!("{w}");
            warnings.push(w);
            if let Some(m) = doc.as_map_mut() {
                m.shift_remove("version");
            }
        }
        let file_dir = if file.as_os_str() == "-" {
            working_dir.to_path_buf()
        } else {
            file.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let at = FileAt {
            file: &file,
            dir: &file_dir,
            working_dir,
        };
        process_file(ctx, &mut doc, at)?;
        dict = Some(merge::merge_next(dict, doc));
    }
    Ok(dict.unwrap_or_else(|| Node::synthetic(Value::Map(Map::new()))))
}

pub(crate) fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A file being loaded: its path, its directory (what its relative paths
/// start from) and the project directory.
#[derive(Clone, Copy)]
pub(crate) struct FileAt<'a> {
    pub(crate) file: &'a Path,
    pub(crate) dir: &'a Path,
    pub(crate) working_dir: &'a Path,
}

/// Interpolates one file, then applies its `include` and `extends`.
pub(crate) fn process_file(ctx: &mut Ctx<'_>, doc: &mut Node, at: FileAt<'_>) -> Result<(), Error> {
    if ctx.opts.interpolate {
        interpolate::interpolate_tree_warn(doc, &ctx.env, &mut ctx.warnings)?;
    }
    crate::extends::apply_include(ctx, doc, at.dir)?;
    crate::extends::apply_extends(ctx, doc, at)?;
    Ok(())
}

/// `names` and, transitively, the services they depend on.
fn with_dependencies(dict: &Node, names: &[String]) -> Vec<String> {
    let mut sel: IndexSet<String> = names.iter().cloned().collect();
    let mut i = 0;
    while i < sel.len() {
        if let Some(deps) = dict
            .get("services")
            .and_then(|m| m.get(&sel[i]))
            .and_then(|s| s.get("depends_on"))
            .and_then(Node::as_map)
        {
            for d in deps.keys() {
                sel.insert(d.clone());
            }
        }
        i += 1;
    }
    sel.into_iter().collect()
}

fn finish(
    mut dict: Node,
    opts: &Options,
    located: Located,
    name: String,
    warnings: Vec<String>,
) -> Result<Loaded, Error> {
    let Located {
        files,
        working_dir,
        env,
    } = located;
    if opts.validate_schema {
        let issues = validate::schema(&dict);
        if !issues.is_empty() {
            return Err(Issues { issues }.into());
        }
    }
    canonical::canonicalize(&mut dict, !opts.interpolate)?;
    if opts.resolve_paths {
        paths::resolve(&mut dict, &working_dir, &env);
    }
    let (active, selected) = select_services(&dict, opts, &profiles(opts, &env))?;
    let acting_on = with_dependencies(&dict, &opts.acting_on);
    resolve_environment(&mut dict, &env, opts, &selected, &acting_on, &working_dir)?;
    let disabled = split_disabled(&mut dict, &active);
    let mut uses_default = false;
    if opts.normalize {
        uses_default = crate::normalize::normalize(&mut dict, &name);
    }
    if opts.consistency {
        check_consistency(&dict, uses_default)?;
    }
    Ok(Loaded {
        dict,
        disabled,
        name,
        working_dir,
        files,
        env,
        warnings,
    })
}

/// `--profile`, else `COMPOSE_PROFILES`.
fn profiles(opts: &Options, env: &IndexMap<String, String>) -> Vec<String> {
    if !opts.profiles.is_empty() {
        return opts.profiles.clone();
    }
    env.get("COMPOSE_PROFILES")
        .map(|p| {
            p.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The active services (profiles, services named on the command line and
/// their dependencies) and the ones whose environment is resolved.
fn select_services(
    dict: &Node,
    opts: &Options,
    profiles: &[String],
) -> Result<(IndexSet<String>, Vec<String>), Error> {
    for s in &opts.services {
        if dict.get("services").and_then(|m| m.get(s)).is_none() {
            return Err(Error::NoSuchService { name: s.clone() });
        }
    }
    let mut active = crate::normalize::active_services(dict, profiles, &opts.services);
    // Only the selected services (and their dependencies) need their env files.
    let selected: Vec<String> = if opts.services.is_empty() {
        active.iter().cloned().collect()
    } else {
        with_dependencies(dict, &opts.services)
    };
    if !opts.services.is_empty() {
        active.retain(|n| selected.contains(n));
    }
    Ok((active, selected))
}

/// Takes the services that are not active out of `dict`.
fn split_disabled(dict: &mut Node, active: &IndexSet<String>) -> Map {
    let mut disabled = Map::new();
    if let Some(services) = dict
        .as_map_mut()
        .and_then(|m| m.get_mut("services"))
        .and_then(Node::as_map_mut)
    {
        let names: Vec<String> = services.keys().cloned().collect();
        for n in names {
            if !active.contains(&n)
                && let Some(s) = services.shift_remove(&n)
            {
                disabled.insert(n, s);
            }
        }
    }
    disabled
}

/// The semantic checks, and no cycle in `depends_on`.
fn check_consistency(dict: &Node, uses_default: bool) -> Result<(), Error> {
    let mut issues: Vec<Issue> = crate::semantic::semantic(dict, uses_default);
    if let Some(services) = dict.get("services").and_then(Node::as_map)
        && let Some(issue) = dependency_cycle(services)
    {
        issues.push(issue);
    }
    if !issues.is_empty() {
        return Err(Issues { issues }.into());
    }
    Ok(())
}

fn dependency_cycle(services: &Map) -> Option<Issue> {
    let mut waits: IndexMap<String, Vec<crate::plan::Wait>> = IndexMap::new();
    for (n, s) in services {
        let deps = s
            .get("depends_on")
            .and_then(Node::as_map)
            .map(|d| {
                d.keys()
                    .filter(|k| services.contains_key(*k))
                    .map(|k| crate::plan::Wait {
                        dependency: k.clone(),
                        condition: crate::model::DependencyCondition::Started,
                        required: true,
                        restart: false,
                    })
                    .collect()
            })
            .unwrap_or_default();
        waits.insert(n.clone(), deps);
    }
    let cycle = crate::plan::find_cycle(&waits)?;
    let pos = services.get(&cycle[0]).map(report_pos).unwrap_or_default();
    Some(Issue {
        pos,
        path: format!("services.{}.depends_on", cycle[0]),
        message: format!("dependency cycle detected: {}", cycle.join(" -> ")),
    })
}

/// Deserialises one node into its typed model; a failure names the exact
/// key, with its position (schema-valid values can still be wrong here,
/// e.g. `retries: many` or a size like `12x`).
fn typed<T: serde::de::DeserializeOwned>(node: &Node, path: &str) -> Result<T, Error> {
    let json = if node.is_null() {
        serde_json::json!({})
    } else {
        node.to_json()
    };
    serde_path_to_error::deserialize(json).map_err(|e| {
        let mut at = node;
        let mut full = path.to_string();
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Map { key } => {
                    full.push('.');
                    full.push_str(key);
                    if let Some(n) = at.get(key) {
                        at = n;
                    }
                }
                serde_path_to_error::Segment::Seq { index } => {
                    full.push_str(&format!("[{index}]"));
                    if let Some(n) = at.as_seq().and_then(|s| s.get(*index)) {
                        at = n;
                    }
                }
                _ => {}
            }
        }
        Error::Model {
            pos: report_pos(at),
            path: full,
            source: e.into_inner(),
        }
    })
}

fn to_project(dict: &Node) -> Result<Project, Error> {
    let mut p = Project::default();
    let Some(top) = dict.as_map() else {
        return Ok(p);
    };
    fn section<T: serde::de::DeserializeOwned>(
        top: &Map,
        kind: &str,
    ) -> Result<IndexMap<String, T>, Error> {
        let mut out = IndexMap::new();
        if let Some(m) = top.get(kind).and_then(Node::as_map) {
            for (k, v) in m {
                let t = typed(v, &format!("{kind}.{k}"))?;
                out.insert(k.clone(), t);
            }
        }
        Ok(out)
    }
    p.services = section::<Service>(top, "services")?;
    p.networks = section::<Network>(top, "networks")?;
    p.volumes = section::<Volume>(top, "volumes")?;
    p.secrets = section::<FileObject>(top, "secrets")?;
    p.configs = section::<FileObject>(top, "configs")?;
    p.models = section::<serde_json::Value>(top, "models")?;
    for (k, v) in top {
        if k.starts_with("x-") {
            p.extensions.insert(k.clone(), v.to_json());
        }
    }
    Ok(p)
}
