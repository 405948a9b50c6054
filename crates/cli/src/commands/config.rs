//! `rstack config`: parse, resolve and render the Compose model in
//! canonical form, like `docker compose config`.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use rstack_compose::{Options, Project};

use crate::global::GlobalOpts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format the output
    #[arg(long, value_enum, default_value = "yaml")]
    format: Format,
    /// Print the service names, one per line
    #[arg(long)]
    services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    volumes: bool,
    /// Print the network names, one per line
    #[arg(long)]
    networks: bool,
    /// Print the profile names, one per line
    #[arg(long)]
    profiles: bool,
    /// Print the image names, one per line
    #[arg(long)]
    images: bool,
    /// Print the environment used for interpolation (`KEY=VALUE`, sorted)
    #[arg(long)]
    environment: bool,
    /// Don't interpolate environment variables
    #[arg(long = "no-interpolate")]
    no_interpolate: bool,
    /// Don't normalize the model (no default network, no resource names)
    #[arg(long = "no-normalize")]
    no_normalize: bool,
    /// Don't resolve file paths
    #[arg(long = "no-path-resolution")]
    no_path_resolution: bool,
    /// Don't check the model for consistency (undefined references, cycles)
    #[arg(long = "no-consistency")]
    no_consistency: bool,
    /// Only validate the configuration, don't print anything
    #[arg(short, long)]
    quiet: bool,
    /// Save to file (default: standard output)
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Services to show (and their dependencies)
    service_names: Vec<String>,
}

/// The loader options of the global `-f/-p/--profile/--env-file/--project-directory`
/// flags, with the process environment and current directory.
pub fn compose_options(global: &GlobalOpts) -> anyhow::Result<Options> {
    let cwd = std::env::current_dir().context("find the current directory")?;
    let environment = std::env::vars().collect();
    let c = &global.compose;
    let mut o = Options::new(cwd, environment);
    o.files = c.files.clone();
    o.project_name = c.project_name.clone();
    o.profiles = c.profiles.clone();
    o.env_files = c.env_files.clone();
    o.project_directory = c.project_directory.clone();
    if o.files.iter().any(|f| f.as_os_str() == "-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("read the Compose file from standard input")?;
        o.stdin = Some(text);
    }
    Ok(o)
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let mut o = compose_options(global)?;
    o.interpolate = !args.no_interpolate;
    o.normalize = !args.no_normalize;
    o.resolve_paths = !args.no_path_resolution;
    o.consistency = !args.no_consistency;
    o.services = args.service_names.clone();
    // Without interpolation, values may still hold `${...}` where the typed
    // model wants a port or a number: print the canonical tree instead.
    let plain_output = !(args.services
        || args.volumes
        || args.networks
        || args.profiles
        || args.images
        || args.environment);
    if args.no_interpolate && plain_output {
        let tree = rstack_compose::load_tree(&o)?;
        if args.quiet {
            return Ok(0);
        }
        let text = match args.format {
            Format::Json => serde_json::to_string_pretty(&tree)? + "\n",
            Format::Yaml => rstack_compose::render::yaml_value(&tree)?,
        };
        return write_out(&args, &text);
    }
    // Warnings (obsolete `version`, unset variables) are logged by the loader.
    let project = rstack_compose::load(&o)?;
    if args.quiet {
        return Ok(0);
    }
    let text = render(&project, &args)?;
    write_out(&args, &text)
}

fn write_out(args: &Args, text: &str) -> anyhow::Result<u8> {
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(0)
}

fn lines<I: IntoIterator<Item = String>>(items: I) -> String {
    items.into_iter().map(|s| s + "\n").collect()
}

fn render(project: &Project, args: &Args) -> anyhow::Result<String> {
    // Names are listed sorted, as docker compose lists them.
    let project = &rstack_compose::render::sorted(project);
    if args.services {
        return Ok(lines(project.services.keys().cloned()));
    }
    if args.volumes {
        return Ok(lines(project.volumes.keys().cloned()));
    }
    if args.networks {
        return Ok(lines(project.networks.keys().cloned()));
    }
    if args.profiles {
        return Ok(lines(project.all_profiles()));
    }
    if args.environment {
        let mut vars: Vec<String> = project
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        vars.sort();
        return Ok(lines(vars));
    }
    if args.images {
        return Ok(lines(project.services.iter().map(|(name, s)| {
            s.image
                .clone()
                .unwrap_or_else(|| format!("{}-{name}", project.name))
        })));
    }
    Ok(match args.format {
        Format::Json => serde_json::to_string_pretty(project)? + "\n",
        Format::Yaml => rstack_compose::render::yaml(project)?,
    })
}
