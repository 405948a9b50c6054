//! `rstack volume create / ls / inspect / rm / prune`: named volumes under
//! `ROOT/volumes/<name>/_data`, like `docker volume`. A volume mounted by
//! a running container is refused by `rm` and kept by `prune`. `create`
//! takes the local driver's options (`--opt type=tmpfs`, `type=none,
//! o=bind, device=/dir`, `type=nfs`...), mounted at first use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::bail;
use rstack_stack::state::Layout;

use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Create a volume
    Create {
        /// Specify volume driver name
        #[arg(short, long, default_value = "local")]
        driver: String,
        /// Set driver specific options (type, o, device)
        #[arg(short, long = "opt", value_name = "KEY=VALUE")]
        opt: Vec<String>,
        /// Set metadata for a volume
        #[arg(long, value_name = "KEY=VALUE")]
        label: Vec<String>,
        /// The volume's name (a random one when left out)
        name: Option<String>,
    },
    /// List volumes
    #[command(visible_alias = "list")]
    Ls {
        /// Only display volume names
        #[arg(short, long)]
        quiet: bool,
        /// Format the output (json)
        #[arg(long)]
        format: Option<String>,
    },
    /// Display detailed information on one or more volumes
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm {
        /// Force the removal of one or more volumes
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused volumes
    Prune {
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
        /// Remove all unused volumes, not just anonymous ones
        #[arg(short, long)]
        all: bool,
    },
}

/// Volumes mounted by a running container of any project.
fn in_use(layout: &Layout) -> anyhow::Result<BTreeSet<String>> {
    let mut used = BTreeSet::new();
    for p in layout.list_projects()? {
        for r in layout.project(&p).containers()? {
            if rstack_stack::status::is_alive(&r) {
                used.extend(r.volumes.iter().cloned());
            }
        }
    }
    Ok(used)
}

fn size_of(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if let Ok(m) = e.path().symlink_metadata() {
                if m.is_dir() {
                    stack.push(e.path());
                } else {
                    total += m.blocks() * 512;
                }
            }
        }
    }
    total
}

/// Docker's rule for a local volume's name.
fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok =
        name.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok {
        bail!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
    }
    Ok(())
}

fn key_values(flag: &str, items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => bail!("invalid argument {kv:?} for \"{flag}\" flag: expected KEY=VALUE"),
        })
        .collect()
}

/// `volume create`: checks the name and the local driver's options, then
/// keeps the options (and labels) with the volume before its `_data`.
/// An existing volume with the same options is returned as it is.
/// Creates the local volume `name` unless it exists (`run -v name:/p`,
/// like Docker's volume created on first use).
pub(crate) fn ensure(layout: &Layout, name: &str) -> anyhow::Result<()> {
    if layout.volume_dir(name).join("_data").is_dir() {
        return Ok(());
    }
    create(layout, "local", &[], &[], Some(name.to_owned())).map(drop)
}

fn create(
    layout: &Layout,
    driver: &str,
    opt: &[String],
    label: &[String],
    name: Option<String>,
) -> anyhow::Result<String> {
    let name = match name {
        Some(n) => n,
        None => rstack_sys::random::random_hex(32)?,
    };
    check_name(&name)?;
    let opts = key_values("--opt", opt)?;
    let labels = key_values("--label", label)?;
    rstack_stack::volume_driver::validate(&name, Some(driver), &opts)?;
    let dir = layout.volume_dir(&name);
    if dir.join("_data").is_dir() {
        if rstack_stack::volume_driver::load(&dir)? != opts {
            bail!("volume {name} already exists with other options");
        }
        return Ok(name);
    }
    rstack_stack::volume_driver::save(&dir, &opts)?;
    if !labels.is_empty() {
        rstack_stack::state::write_json(&dir.join("labels.json"), &labels)?;
    }
    if let Err(e) = std::fs::create_dir_all(dir.join("_data")) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(anyhow::Error::new(e).context(format!("create volume {name}")));
    }
    Ok(name)
}

/// The `docker volume inspect` object of a named volume; `None` when
/// there is no such volume.
pub(crate) fn inspect_json(layout: &Layout, name: &str) -> Option<serde_json::Value> {
    // a name, never a path out of the volumes dir
    if name.is_empty() || name.starts_with('.') || name.contains('/') {
        return None;
    }
    let dir = layout.volume_dir(name);
    if !dir.join("_data").is_dir() {
        return None;
    }
    let created = std::fs::metadata(&dir)
        .and_then(|m| m.created().or_else(|_| m.modified()))
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut labels: BTreeMap<String, String> = std::fs::read(dir.join("labels.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if let Some((p, _)) = name.split_once('_')
        && !dir.join("labels.json").exists()
    {
        labels.insert("com.docker.compose.project".into(), p.to_owned());
    }
    Some(serde_json::json!({
        "CreatedAt": created,
        "Driver": "local",
        "Labels": (!labels.is_empty()).then_some(labels),
        "Mountpoint": dir.join("_data"),
        "Name": name,
        "Options": rstack_stack::volume_driver::load(&dir).ok().filter(|o| !o.is_empty()),
        "Scope": "local",
    }))
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let layout = Layout::new(&global.run_root, &global.root);
    match args.command {
        Sub::Create {
            driver,
            opt,
            label,
            name,
        } => {
            let name = create(&layout, &driver, &opt, &label, name)?;
            println!("{name}");
        }
        Sub::Ls { quiet, format } => {
            let names = super::system::volume_names(&layout);
            if quiet {
                for n in names {
                    println!("{n}");
                }
            } else if format.as_deref() == Some("json") {
                for n in names {
                    println!(
                        "{}",
                        serde_json::json!({"Driver": "local", "Name": n,
                            "Mountpoint": layout.volume_dir(&n).join("_data")})
                    );
                }
            } else {
                println!("DRIVER    VOLUME NAME");
                for n in names {
                    println!("local     {n}");
                }
            }
        }
        Sub::Inspect { names } => {
            let mut out = Vec::new();
            for n in &names {
                match inspect_json(&layout, n) {
                    Some(v) => out.push(v),
                    None => bail!("no such volume: {n}"),
                }
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Sub::Rm { force, names } => {
            let used = in_use(&layout)?;
            let mut code = 0;
            for n in names {
                let dir = layout.volume_dir(&n);
                if !dir.join("_data").is_dir() {
                    if !force {
                        eprintln!("Error: no such volume: {n}");
                        code = 1;
                    }
                    continue;
                }
                if used.contains(&n) {
                    eprintln!("Error: remove {n}: volume is in use");
                    code = 1;
                    continue;
                }
                rstack_stack::volume_driver::remove(&n, &dir)?;
                println!("{n}");
            }
            return Ok(code);
        }
        Sub::Prune { force, all } => {
            if !force {
                bail!("volume prune removes data: pass -f to confirm");
            }
            let used = in_use(&layout)?;
            let mut reclaimed = 0;
            println!("Deleted Volumes:");
            for n in super::system::volume_names(&layout) {
                // without -a only anonymous volumes go; rstack's named
                // volumes all have names, so only -a prunes them
                if !all || used.contains(&n) {
                    continue;
                }
                let dir = layout.volume_dir(&n);
                reclaimed += size_of(&dir);
                rstack_stack::volume_driver::remove(&n, &dir)?;
                println!("{n}");
            }
            println!();
            println!("Total reclaimed space: {reclaimed}B");
        }
    }
    Ok(0)
}
