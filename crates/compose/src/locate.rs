//! Where a project is and what it is called, before any file is
//! interpreted: its Compose files (given, `COMPOSE_FILE`, or discovered
//! upwards with their override file), its directory, the environment of its
//! `.env` files, and its name (`-p`, `COMPOSE_PROJECT_NAME`, `name:`, the
//! directory). Re-exported from [`crate::loader`], whose [`Error`] it uses.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::environment;
use crate::interpolate;
use crate::loader::{Error, Options, abs};
use crate::yaml::Node;

/// The names docker compose looks for, in order of preference.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
/// Override files merged automatically next to a discovered file.
pub const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// Checks a project name given by the user (`-p`, `COMPOSE_PROJECT_NAME`, `name:`).
pub fn check_project_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidProjectName {
            name: name.to_string(),
        })
    }
}

/// A directory name made into a project name: lowercase, only `[a-z0-9_-]`,
/// no leading `_` or `-`.
pub fn normalize_project_name(name: &str) -> String {
    let s: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    s.trim_start_matches(['_', '-']).to_string()
}

/// Finds the Compose files when none is given: `COMPOSE_FILE`, else the
/// first default name in `dir` or a parent, plus its override file.
pub fn discover(dir: &Path, env: &IndexMap<String, String>) -> Result<Vec<PathBuf>, Error> {
    if let Some(cf) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .map(String::as_str)
            .unwrap_or(":");
        return Ok(cf
            .split(sep)
            .filter(|s| !s.is_empty())
            .map(|f| abs(dir, Path::new(f)))
            .collect());
    }
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if let Some(found) = DEFAULT_FILES
            .iter()
            .map(|f| d.join(f))
            .find(|p| p.is_file())
        {
            let mut files = vec![found];
            if let Some(o) = OVERRIDE_FILES
                .iter()
                .map(|f| d.join(f))
                .find(|p| p.is_file())
            {
                files.push(o);
            }
            return Ok(files);
        }
        cur = d.parent();
    }
    Err(Error::NoConfigFile {
        dir: dir.to_path_buf(),
    })
}

/// The files of a project, its directory and its environment.
pub(crate) struct Located {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) working_dir: PathBuf,
    /// The shell over the project directory's `.env`.
    pub(crate) env: IndexMap<String, String>,
}

/// Finds the files, the project directory and the environment.
pub(crate) fn locate(opts: &Options) -> Result<Located, Error> {
    let pre_dir = opts
        .project_directory
        .as_ref()
        .map(|d| abs(&opts.cwd, d))
        .unwrap_or_else(|| opts.cwd.clone());
    // compose v2: the `.env` of where the command starts may choose the
    // files, the name and the profiles (its `COMPOSE_*` variables)...
    let mut env = opts.environment.clone();
    let mut first = None;
    if opts.files.is_empty() {
        let vars = environment::dotenv_of(opts, &pre_dir)?;
        environment::add_compose_vars(&mut env, &vars);
        first = Some((pre_dir.clone(), vars));
    }
    let files: Vec<PathBuf> = if opts.files.is_empty() {
        discover(&pre_dir, &env)?
    } else {
        opts.files
            .iter()
            .map(|f| {
                if f.as_os_str() == "-" {
                    f.clone()
                } else {
                    abs(&opts.cwd, f)
                }
            })
            .collect()
    };
    let working_dir = match &opts.project_directory {
        Some(d) => abs(&opts.cwd, d),
        None => match files.first() {
            Some(f) if f.as_os_str() != "-" => f
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| opts.cwd.clone()),
            _ => opts.cwd.clone(),
        },
    };
    // ...and the project directory's `.env` gives the variables.
    let project_dotenv = match first {
        Some((dir, vars)) if dir == working_dir => vars,
        _ => environment::dotenv_of(opts, &working_dir)?,
    };
    let env = environment::layered(&env, project_dotenv);
    Ok(Located {
        files,
        working_dir,
        env,
    })
}

/// Project name: -p, COMPOSE_PROJECT_NAME, `name:`, the directory.
pub(crate) fn project_name(
    opts: &Options,
    located: &Located,
    raw: &[(PathBuf, Node)],
) -> Result<String, Error> {
    if let Some(n) = opts.project_name.as_deref().filter(|n| !n.is_empty()) {
        return Ok(n.to_string());
    }
    if let Some(n) = located
        .env
        .get("COMPOSE_PROJECT_NAME")
        .filter(|n| !n.is_empty())
    {
        check_project_name(n)?;
        return Ok(n.clone());
    }
    let mut yaml_name = None;
    for (_, d) in raw {
        if let Some(n) = d.get("name") {
            let mut n = n.clone();
            if opts.interpolate {
                interpolate::interpolate_tree(&mut n, &located.env)?;
            }
            if let Some(s) = n.scalar_string().filter(|s| !s.is_empty()) {
                yaml_name = Some(s);
            }
        }
    }
    if let Some(n) = yaml_name {
        check_project_name(&n)?;
        return Ok(n);
    }
    let base = located
        .working_dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = normalize_project_name(&base);
    if n.is_empty() {
        return Err(Error::EmptyProjectName);
    }
    Ok(n)
}
