//! The environment of a load: which `.env` files are read and in what
//! precedence (compose v2's rules), and the services' `env_file` and
//! `environment` resolved into one map.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::dotenv;
use crate::loader::{Error, Options, abs, read};
use crate::yaml::{Map, Node, Pos, Value};

/// The variables of the `.env` files read for `dir`: the `--env-file`s
/// when given, else `dir/.env` when it is a file.
pub(crate) fn dotenv_of(opts: &Options, dir: &Path) -> Result<IndexMap<String, String>, Error> {
    let env_files: Vec<PathBuf> = if opts.env_files.is_empty() {
        let dot = dir.join(".env");
        if dot.is_file() { vec![dot] } else { Vec::new() }
    } else {
        opts.env_files.iter().map(|f| abs(&opts.cwd, f)).collect()
    };
    Ok(dotenv::read_files(&env_files, &opts.environment)?)
}

/// The `COMPOSE_*` variables of the first `.env` (the one of the directory
/// the command starts from, read before the Compose files are known) that
/// the shell does not set: they choose the files (`COMPOSE_FILE`), the name
/// and the profiles, as docker compose's `setEnvWithDotEnv` makes them.
pub(crate) fn add_compose_vars(
    env: &mut IndexMap<String, String>,
    first: &IndexMap<String, String>,
) {
    for (k, v) in first {
        if k.starts_with("COMPOSE_") {
            env.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// The interpolation environment once the project directory is known: the
/// shell (with the first `.env`'s `COMPOSE_*`) over the project directory's
/// `.env`. The first `.env`'s other variables count only when it is the
/// project directory's own (compose v2: a `.env` belongs to its project).
pub(crate) fn layered(
    shell_and_compose: &IndexMap<String, String>,
    project_dotenv: IndexMap<String, String>,
) -> IndexMap<String, String> {
    let mut env = shell_and_compose.clone();
    for (k, v) in project_dotenv {
        env.entry(k).or_insert(v);
    }
    env
}

/// What resolving the environment of a service needs besides the service.
struct Scope<'a> {
    /// The project environment.
    env: &'a IndexMap<String, String>,
    opts: &'a Options,
    /// Services whose missing `env_file` is an error (all when empty).
    acting_on: &'a [String],
    working_dir: &'a Path,
}

/// Loads `env_file`s into `environment` and takes valueless keys from the
/// project environment, for the services in `only` (all when empty); a
/// missing `env_file` is an error for the services in `acting_on` (all when
/// empty) and skipped for the others.
pub(crate) fn resolve_environment(
    root: &mut Node,
    env: &IndexMap<String, String>,
    opts: &Options,
    only: &[String],
    acting_on: &[String],
    working_dir: &Path,
) -> Result<(), Error> {
    let Some(services) = root
        .as_map_mut()
        .and_then(|m| m.get_mut("services"))
        .and_then(Node::as_map_mut)
    else {
        return Ok(());
    };
    let scope = Scope {
        env,
        opts,
        acting_on,
        working_dir,
    };
    for (name, svc) in services.iter_mut() {
        if !only.is_empty() && !only.contains(name) {
            continue;
        }
        let Some(sm) = svc.as_map_mut() else { continue };
        resolve_service(&scope, name, sm)?;
    }
    Ok(())
}

/// One service: `env_file`s and `environment` into one `environment`,
/// build args and `label_file`s.
fn resolve_service(scope: &Scope<'_>, name: &str, sm: &mut Map) -> Result<(), Error> {
    let env = scope.env;
    let mut values: IndexMap<String, Option<String>> = IndexMap::new();
    if scope.opts.resolve_env_files
        && let Some(files) = sm.get("env_file").and_then(Node::as_seq)
    {
        for f in files {
            env_file_into(scope, name, f, &mut values)?;
        }
    }
    if let Some(e) = sm.get("environment").and_then(Node::as_map) {
        for (k, v) in e {
            match v.scalar_string() {
                Some(s) => {
                    values.insert(k.clone(), Some(s));
                }
                None => {
                    let from_env = env.get(k).cloned();
                    if from_env.is_some() || !values.contains_key(k) {
                        values.insert(k.clone(), from_env);
                    }
                }
            }
        }
    }
    let mut em = Map::new();
    for (k, v) in values {
        em.insert(k, Node::synthetic(v.map_or(Value::Null, Value::Str)));
    }
    let pos = sm
        .get("environment")
        .map(|n| n.pos.clone())
        .unwrap_or_else(|| svc_pos(sm));
    sm.insert("environment".into(), Node::new(Value::Map(em), pos));
    if scope.opts.discard_env_files {
        sm.shift_remove("env_file");
    }
    // Build args without a value come from the environment when set.
    if let Some(args) = sm
        .get_mut("build")
        .and_then(Node::as_map_mut)
        .and_then(|b| b.get_mut("args"))
        .and_then(Node::as_map_mut)
    {
        for (k, v) in args.iter_mut() {
            if v.is_null()
                && let Some(val) = env.get(k)
            {
                v.value = Value::Str(val.clone());
            }
        }
    }
    label_files(sm, scope.working_dir)
}

/// Reads one `env_file` entry into `values`; a missing file is skipped
/// unless it is required of a service acted on.
fn env_file_into(
    scope: &Scope<'_>,
    name: &str,
    f: &Node,
    values: &mut IndexMap<String, Option<String>>,
) -> Result<(), Error> {
    let path = abs(
        scope.working_dir,
        Path::new(f.get("path").and_then(Node::as_str).unwrap_or_default()),
    );
    let required = f
        .get("required")
        .is_none_or(|r| r.value != Value::Bool(false));
    if !path.exists() {
        // docker compose reads the env files of the services
        // it acts on only
        let acted_on = scope.acting_on.is_empty() || scope.acting_on.iter().any(|a| a == name);
        if required && acted_on {
            return Err(Error::EnvFileMissing {
                pos: f.pos.clone(),
                service: name.to_string(),
                path,
            });
        }
        return Ok(());
    }
    let mut m = dotenv::EnvMap::new();
    if f.get("format").and_then(Node::as_str) == Some("raw") {
        let text = read(&path)?;
        m = dotenv::parse_raw(&text);
    } else {
        dotenv::read_file_into(&path, &mut m, scope.env)?;
    }
    for (k, v) in m {
        values.insert(k, Some(v));
    }
    Ok(())
}

/// `label_file`: labels read from files, under the explicit ones.
fn label_files(sm: &mut Map, working_dir: &Path) -> Result<(), Error> {
    let label_files: Vec<PathBuf> = sm
        .get("label_file")
        .and_then(Node::as_seq)
        .unwrap_or_default()
        .iter()
        .filter_map(Node::as_str)
        .map(|p| abs(working_dir, Path::new(p)))
        .collect();
    if label_files.is_empty() {
        return Ok(());
    }
    let mut labels = Map::new();
    for path in &label_files {
        let mut m = dotenv::EnvMap::new();
        dotenv::read_file_into(path, &mut m, &|_: &str| None)?;
        for (k, v) in m {
            labels.insert(k, Node::synthetic(Value::Str(v)));
        }
    }
    if let Some(explicit) = sm.get("labels").and_then(Node::as_map) {
        for (k, v) in explicit {
            labels.insert(k.clone(), v.clone());
        }
    }
    sm.insert("labels".into(), Node::synthetic(Value::Map(labels)));
    Ok(())
}

fn svc_pos(m: &Map) -> Pos {
    m.values().next().map(|n| n.pos.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> IndexMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn first_dotenv_gives_only_compose_variables_the_shell_lacks() {
        let mut env = map(&[("COMPOSE_PROFILES", "shell")]);
        let first = map(&[
            ("COMPOSE_FILE", "sub/compose.yaml"),
            ("COMPOSE_PROFILES", "dotenv"),
            ("FOO", "first"),
        ]);
        add_compose_vars(&mut env, &first);
        assert_eq!(env["COMPOSE_FILE"], "sub/compose.yaml");
        assert_eq!(env["COMPOSE_PROFILES"], "shell");
        assert!(!env.contains_key("FOO"));
    }

    #[test]
    fn shell_wins_over_the_project_dotenv() {
        let shell = map(&[("A", "shell"), ("COMPOSE_PROJECT_NAME", "first")]);
        let project = map(&[
            ("A", "dotenv"),
            ("B", "dotenv"),
            ("COMPOSE_PROJECT_NAME", "p"),
        ]);
        let env = layered(&shell, project);
        assert_eq!(env["A"], "shell");
        assert_eq!(env["B"], "dotenv");
        assert_eq!(env["COMPOSE_PROJECT_NAME"], "first");
    }
}
