//! The `process` section: Docker's ENTRYPOINT/CMD rules, the environment
//! merge, the hostname, the working directory, capabilities and rlimits;
//! and the execve(2) size limit checked before any container exists.

use caps::Capability;
use oci_spec::image::ImageConfiguration;
use serde_json::{Value, json};

use super::context::SpecContext;
use super::error::SpecError;
use crate::options::RunOptions;

/// Default PATH when the image sets none (Docker's `oci.DefaultPathEnv`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process arguments: Docker's ENTRYPOINT/CMD rules. `--entrypoint`
/// replaces the image's ENTRYPOINT and drops its CMD; a COMMAND replaces CMD.
pub fn command_line(
    image: &ImageConfiguration,
    opts: &RunOptions,
) -> Result<Vec<String>, SpecError> {
    let cfg = image.config().as_ref();
    let mut args: Vec<String> = match &opts.entrypoint {
        Some(ep) => ep.clone(),
        None => cfg.and_then(|c| c.entrypoint().clone()).unwrap_or_default(),
    };
    if !opts.command.is_empty() {
        args.extend(opts.command.iter().cloned());
    } else if opts.entrypoint.is_none() {
        args.extend(cfg.and_then(|c| c.cmd().clone()).unwrap_or_default());
    }
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

pub(crate) fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// The environment: the image's, overridden by `-e`, plus PATH, HOSTNAME,
/// HOME and TERM like Docker.
pub fn environment(
    image: &ImageConfiguration,
    opts: &RunOptions,
    hostname: &str,
    home: &str,
) -> Result<Vec<String>, SpecError> {
    // order kept, a later entry replaces an earlier one of the same name;
    // the index makes each lookup O(1) (an image may carry 100k entries)
    let mut env: Vec<String> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut set = |entry: String, env: &mut Vec<String>| {
        let key = env_key(&entry).to_owned();
        match index.get(&key) {
            Some(&i) => env[i] = entry,
            None => {
                index.insert(key, env.len());
                env.push(entry);
            }
        }
    };
    set(format!("PATH={DEFAULT_PATH}"), &mut env);
    set(format!("HOSTNAME={hostname}"), &mut env);
    if opts.tty {
        set("TERM=xterm".to_owned(), &mut env);
    }
    let image_env = image
        .config()
        .as_ref()
        .and_then(|c| c.env().clone())
        .unwrap_or_default();
    for entry in image_env.into_iter().chain(opts.env.iter().cloned()) {
        if env_key(&entry).is_empty() || !entry.contains('=') {
            return Err(SpecError::Env { entry });
        }
        set(entry, &mut env);
    }
    if !env.iter().any(|e| env_key(e) == "HOME") {
        env.push(format!("HOME={home}"));
    }
    Ok(env)
}

/// What execve(2) takes in strings with the default 8 MiB stack (a
/// quarter of it), and at most per string (`MAX_ARG_STRLEN`).
const EXEC_STRINGS_MAX: usize = 2 << 20;
const EXEC_STRING_MAX: usize = 128 << 10;

/// Refuses what execve would fail with E2BIG, naming the culprit, instead
/// of a container that dies with no message.
pub(super) fn check_exec_size(args: &[String], env: &[String]) -> Result<(), SpecError> {
    let size: usize = args.iter().chain(env).map(|s| s.len() + 1).sum();
    let longest = args.iter().chain(env).max_by_key(|s| s.len());
    let too_long = longest.is_some_and(|s| s.len() >= EXEC_STRING_MAX);
    if size > EXEC_STRINGS_MAX || too_long {
        return Err(SpecError::ArgsTooLarge {
            size,
            limit: if too_long {
                EXEC_STRING_MAX
            } else {
                EXEC_STRINGS_MAX
            },
            largest: longest.map(|s| {
                let key = env_key(s);
                format!("{} ({} bytes)", &key[..key.len().min(40)], s.len())
            }),
        });
    }
    Ok(())
}

/// The hostname: `--hostname`, else the default (first 12 chars of the id).
pub fn hostname(opts: &RunOptions, default: &str) -> Result<String, SpecError> {
    let h = opts.hostname.clone().unwrap_or_else(|| default.to_owned());
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if !ok {
        return Err(SpecError::Hostname { hostname: h });
    }
    Ok(h)
}

/// The `process` section: `args` from [`command_line`], the environment,
/// user, working directory, capabilities and rlimits.
pub(super) fn process_section(
    image: &ImageConfiguration,
    opts: &RunOptions,
    ctx: &SpecContext,
    args: Vec<String>,
    hostname: &str,
) -> Result<Value, SpecError> {
    let env = environment(image, opts, hostname, &ctx.user.home)?;
    check_exec_size(&args, &env)?;
    let cwd = workdir(image, opts)?;
    let cap_names = capability_names(ctx);
    let rlimits = rlimits(opts, ctx)?;
    let mut process = json!({
        "terminal": opts.tty,
        "user": {
            "uid": ctx.user.uid,
            "gid": ctx.user.gid,
            "additionalGids": ctx.user.additional_gids,
        },
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {
            "bounding": cap_names,
            "effective": cap_names,
            "permitted": cap_names,
        },
    });
    // Only when set: libcontainer 0.7 loads the seccomp filter after
    // dropping capabilities whenever the field is present (even `false`),
    // and without no_new_privs the kernel then refuses the filter.
    if opts.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if !rlimits.is_empty() {
        process["rlimits"] = json!(rlimits);
    }
    Ok(process)
}

/// `-w`, else the image's WORKDIR, else `/`; absolute.
fn workdir(image: &ImageConfiguration, opts: &RunOptions) -> Result<String, SpecError> {
    let cwd = opts
        .workdir
        .clone()
        .or_else(|| {
            image
                .config()
                .as_ref()
                .and_then(|c| c.working_dir().clone())
        })
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    if !cwd.starts_with('/') {
        return Err(SpecError::Workdir { dir: cwd });
    }
    Ok(cwd)
}

/// The capability set's names, in the kernel's order.
fn capability_names(ctx: &SpecContext) -> Vec<String> {
    let mut sorted: Vec<Capability> = ctx.caps.iter().copied().collect();
    sorted.sort_by_key(|c| c.index());
    sorted.iter().map(|c| c.to_string()).collect()
}

/// `--ulimit`s, none above the caller's hard limit when it cannot raise it.
fn rlimits(opts: &RunOptions, ctx: &SpecContext) -> Result<Vec<Value>, SpecError> {
    let mut rlimits = Vec::new();
    for u in &opts.ulimits {
        if let Some((_, current)) = ctx.hard_limits.iter().find(|(r, _)| *r == u.resource) {
            if u.hard > *current {
                return Err(SpecError::Ulimit {
                    resource: u.resource,
                    current: *current,
                });
            }
        }
        rlimits.push(json!({"type": u.resource, "soft": u.soft, "hard": u.hard}));
    }
    Ok(rlimits)
}
