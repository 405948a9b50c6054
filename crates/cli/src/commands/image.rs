//! `rstack image <sub>`: like `docker image`: ls, pull, rm, inspect,
//! prune, save, load.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use rstack_images::{LocalImage, Reference, Store};
use serde_json::{Value, json};

use crate::commands::{build, history, images, pull, push, rmi};
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Build an image from a Dockerfile
    Build(build::ImageArgs),
    /// Upload an image to a registry
    Push(push::Args),
    /// List images
    #[command(visible_alias = "list")]
    Ls(images::Args),
    /// Download an image from a registry
    Pull(pull::Args),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(rmi::Args),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Save one or more images to a tar archive (OCI layout)
    Save(SaveArgs),
    /// Load images from a tar archive (OCI layout or docker save)
    Load(LoadArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Show the history of an image
    History(history::Args),
}

#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG] or image id
    source: String,
    /// TARGET_IMAGE[:TAG]
    target: String,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Format with a template like '{{.Id}}' or '{{json .Config}}'
    #[arg(short, long)]
    format: Option<String>,
    /// Images (name, name:tag, name@digest, or image id)
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove all images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// Write to this file (default: stdout)
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Read from this tar archive file (default: stdin)
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    match args.command {
        ImageCommand::Build(a) => build::run_image(global, a),
        ImageCommand::Push(a) => push::run(global, a),
        ImageCommand::Ls(a) => images::run(global, a),
        ImageCommand::Pull(a) => {
            if a.image.is_none() {
                anyhow::bail!(
                    "\"rstack image pull\" requires exactly 1 argument: the image to pull"
                );
            }
            pull::run(global, a)
        }
        ImageCommand::Rm(a) => rmi::run(global, a),
        ImageCommand::Inspect(a) => inspect(global, a),
        ImageCommand::Prune(a) => prune(global, a),
        ImageCommand::Save(a) => save(global, a),
        ImageCommand::Load(a) => load(global, a),
        ImageCommand::History(a) => history::run(global, a),
        ImageCommand::Tag(a) => {
            global.store()?.tag(&a.source, &a.target)?;
            Ok(0)
        }
    }
}

fn inspect(global: &GlobalOpts, args: InspectArgs) -> anyhow::Result<u8> {
    let store = global.store()?;
    let mut out = Vec::new();
    let mut status = 0;
    for name in &args.images {
        match store.lookup(name)? {
            Some(image) => out.push(inspect_json(&store, &image)?),
            None => {
                eprintln!("Error: No such image: {name}");
                status = 1;
            }
        }
    }
    match &args.format {
        Some(template) => {
            for v in &out {
                println!("{}", images::render(template, v)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&Value::Array(out))?),
    }
    Ok(status)
}

/// Docker's `image inspect` shape.
pub(crate) fn inspect_json(store: &Store, image: &LocalImage) -> anyhow::Result<Value> {
    let familiar = |s: &String| {
        Reference::parse(s)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| s.clone())
    };
    let raw: Value = serde_json::from_slice(&std::fs::read(
        store
            .root()
            .join("blobs/sha256")
            .join(image.id.trim_start_matches("sha256:")),
    )?)
    .context("image config is not JSON")?;
    let lower: Vec<String> = image
        .layer_dirs
        .iter()
        .rev()
        .map(|d| d.display().to_string())
        .collect();
    let created = raw
        .get("created")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let mut out = json!({
        "Id": image.id,
        "RepoTags": image.record.repo_tags.iter().map(familiar).collect::<Vec<_>>(),
        "RepoDigests": image.record.repo_digests.iter().map(familiar).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": raw.get("comment").cloned().unwrap_or(Value::String(String::new())),
        "Created": created,
        "DockerVersion": raw.get("docker_version").cloned().unwrap_or(Value::String(String::new())),
        "Author": raw.get("author").cloned().unwrap_or(Value::String(String::new())),
        "Config": raw.get("config").cloned().unwrap_or(Value::Null),
        "Architecture": raw.get("architecture").cloned().unwrap_or(Value::Null),
        "Variant": raw.get("variant").cloned(),
        "Os": raw.get("os").cloned().unwrap_or(Value::Null),
        "Size": image.record.size,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": { "LowerDir": lower.join(":") }
        },
        "RootFS": {
            "Type": "layers",
            "Layers": image.record.layers,
        },
        "Metadata": { "LastTagTime": image.record.added },
        "Descriptor": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": image.record.manifest_digest,
        },
    });
    if out["Variant"].is_null()
        && let Some(obj) = out.as_object_mut()
    {
        obj.remove("Variant");
    }
    Ok(out)
}

fn prune(global: &GlobalOpts, args: PruneArgs) -> anyhow::Result<u8> {
    if !args.force {
        let what = if args.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        print!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let store = global.store()?;
    let removed = store.prune(args.all)?;
    print_deleted_images(&removed);
    println!(
        "Total reclaimed space: {}",
        images::human_size(removed.reclaimed_bytes)
    );
    Ok(0)
}

fn save(global: &GlobalOpts, args: SaveArgs) -> anyhow::Result<u8> {
    let store = global.store()?;
    match &args.output {
        Some(path) => store.save(&args.images, path)?,
        None => {
            if std::io::stdout().is_terminal() {
                anyhow::bail!(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                );
            }
            store.save_to(&args.images, std::io::stdout().lock())?;
        }
    }
    Ok(0)
}

fn load(global: &GlobalOpts, args: LoadArgs) -> anyhow::Result<u8> {
    let store = global.store()?;
    let loaded = match &args.input {
        Some(path) => store.load(path)?,
        None => store.load_from(std::io::stdin().lock())?,
    };
    if !args.quiet {
        for loaded in &loaded {
            if loaded.names.is_empty() {
                println!("Loaded image ID: {}", loaded.image.id);
            }
            for name in &loaded.names {
                println!("Loaded image: {}", name.familiar());
            }
        }
    }
    Ok(0)
}

/// Docker's `Deleted Images:` section of `image prune` / `system prune`
/// (nothing when nothing was removed).
pub(crate) fn print_deleted_images(removed: &rstack_images::Removed) {
    if removed.untagged.is_empty() && removed.deleted_images.is_empty() {
        return;
    }
    println!("Deleted Images:");
    for name in &removed.untagged {
        println!("untagged: {name}");
    }
    for id in removed.deleted_images.iter().chain(&removed.deleted_layers) {
        println!("deleted: {id}");
    }
    println!();
}
