//! `rstack compose images [SERVICE...]`: the images of the project's
//! containers, with docker compose's columns (CONTAINER REPOSITORY TAG
//! IMAGE ID SIZE) or its JSON array.

use anyhow::Context;
use rstack_images::{Reference, Store};
use rstack_stack::state::ContainerRecord;
use serde_json::json;

use super::images::{human_size, print_columns};
use super::ps::Format;
use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format the output: table, json or a Go template ('{{.Repository}}')
    #[arg(long, default_value = "table")]
    pub format: Format,
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Services whose containers' images to list (default: all)
    pub services: Vec<String>,
}

/// One container's image.
struct Row {
    container: String,
    repository: String,
    tag: String,
    id: String,
    size: Option<u64>,
}

/// `REPO:TAG` of a container record's image reference (docker compose
/// prints `<none>` for what the reference lacks).
fn repo_and_tag(image: &str) -> (String, String) {
    match Reference::parse(image) {
        Ok(r) => (
            r.familiar_name(),
            r.tag().map_or_else(|| "<none>".to_owned(), str::to_owned),
        ),
        Err(_) => (image.to_owned(), "<none>".to_owned()),
    }
}

fn rows(store: &Store, recs: &[ContainerRecord]) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for r in recs {
        let (repository, tag) = repo_and_tag(&r.image);
        // the image may have been removed since: its id stays known
        let size = store
            .lookup(&r.image_id)
            .with_context(|| format!("look up image {}", r.image_id))?
            .map(|i| i.record.size);
        rows.push(Row {
            container: r.name.clone(),
            repository,
            tag,
            id: r.image_id.clone(),
            size,
        });
    }
    Ok(rows)
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let ctx = stack_common::load(global, &args.services)?;
    for s in &args.services {
        if !ctx.project.services.contains_key(s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    let recs: Vec<ContainerRecord> = ctx
        .pp
        .containers()?
        .into_iter()
        .filter(|r| args.services.is_empty() || args.services.contains(&r.service))
        .collect();
    let store = global.store()?;
    let rows = rows(&store, &recs)?;
    if args.quiet {
        stack_common::print_unique(rows.iter().map(|r| r.id.as_str()));
        return Ok(0);
    }
    let as_json = |r: &Row| {
        json!({
            "ID": r.id,
            "ContainerName": r.container,
            "Repository": r.repository,
            "Tag": r.tag,
            "Size": r.size.unwrap_or(0),
        })
    };
    match &args.format {
        Format::Json => {
            let v: Vec<serde_json::Value> = rows.iter().map(as_json).collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        Format::Template(t) => {
            for r in &rows {
                println!("{}", super::images::render(t, &as_json(r))?);
            }
        }
        Format::Table => {
            let mut table = vec![
                ["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for r in &rows {
                let short = r.id.trim_start_matches("sha256:");
                table.push(vec![
                    r.container.clone(),
                    r.repository.clone(),
                    r.tag.clone(),
                    short[..short.len().min(12)].to_owned(),
                    r.size.map_or_else(|| "N/A".to_owned(), human_size),
                ]);
            }
            print_columns(&table);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::repo_and_tag;

    #[test]
    fn repository_and_tag_like_compose() {
        assert_eq!(
            repo_and_tag("127.0.0.1:5000/e2e/busybox:latest"),
            ("127.0.0.1:5000/e2e/busybox".into(), "latest".into())
        );
        let (_, tag) = repo_and_tag(
            "registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        );
        assert_eq!(tag, "<none>");
    }
}
