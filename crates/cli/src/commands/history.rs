//! `rstack image history IMAGE`: the image's history as `docker history`
//! shows it, newest first: IMAGE (the image's id on the top row,
//! `<missing>` below, as for any pulled image), CREATED, CREATED BY, SIZE
//! (the unpacked layer the step made, `0B` for a config-only step),
//! COMMENT; `-q`, `--no-trunc`, `-H=false`, `--format json|TEMPLATE`.

use anyhow::Context;
use serde_json::json;

use super::images::{created, human_size, print_columns, render, since};
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format the output: table, json or a template like '{{.CreatedBy}}'
    #[arg(long, default_value = "table")]
    pub format: String,
    /// The image (name, name:tag, name@digest or id)
    pub image: String,
}

/// One history row, with Docker's keys.
struct Row {
    id: String,
    created: Option<jiff::Timestamp>,
    created_by: String,
    size: u64,
    comment: String,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let store = global.store()?;
    let image = store
        .lookup(&args.image)?
        .ok_or_else(|| anyhow::anyhow!("No such image: {}", args.image))?;
    let config = store
        .docker_config(&image)
        .with_context(|| format!("read the config of image {}", args.image))?;
    let mut layers = image.layer_dirs.iter();
    let mut rows: Vec<Row> = config
        .history
        .iter()
        .map(|h| Row {
            id: "<missing>".into(),
            created: h.created.as_deref().and_then(|c| c.parse().ok()),
            created_by: h.created_by.clone().unwrap_or_default(),
            size: if h.empty_layer {
                0
            } else {
                layers
                    .next()
                    .map(|d| rstack_images::fsutil::disk_usage(d))
                    .unwrap_or(0)
            },
            comment: h.comment.clone().unwrap_or_default(),
        })
        .collect();
    if rows.is_empty() {
        // an image without history: one row for the image itself
        rows.push(Row {
            id: String::new(),
            created: created(&image),
            created_by: String::new(),
            size: image
                .layer_dirs
                .iter()
                .map(|d| rstack_images::fsutil::disk_usage(d))
                .sum(),
            comment: String::new(),
        });
    }
    rows.reverse();
    rows[0].id = if args.no_trunc {
        image.id.clone()
    } else {
        short_id(&image.id)
    };
    print(&rows, &args)
}

fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

fn print(rows: &[Row], args: &Args) -> anyhow::Result<u8> {
    if args.quiet {
        for r in rows {
            println!("{}", r.id);
        }
        return Ok(0);
    }
    let now = jiff::Timestamp::now();
    let when = |t: Option<jiff::Timestamp>| match (t, args.human) {
        (Some(t), true) => since(t, now),
        (Some(t), false) => t.to_string(),
        (None, _) => "N/A".into(),
    };
    let size = |b: u64| {
        if args.human {
            human_size(b)
        } else {
            b.to_string()
        }
    };
    let by = |s: &str| {
        let s = s.replace('\t', " ");
        if args.no_trunc || s.chars().count() <= 45 {
            s
        } else {
            format!("{}…", s.chars().take(44).collect::<String>())
        }
    };
    if args.format == "table" {
        let mut table = vec![vec![
            "IMAGE".to_owned(),
            "CREATED".into(),
            "CREATED BY".into(),
            "SIZE".into(),
            "COMMENT".into(),
        ]];
        for r in rows {
            table.push(vec![
                r.id.clone(),
                when(r.created),
                by(&r.created_by),
                size(r.size),
                r.comment.clone(),
            ]);
        }
        print_columns(&table);
        return Ok(0);
    }
    for r in rows {
        let v = json!({
            "ID": r.id,
            "CreatedAt": r.created.map(|t| t.to_string()).unwrap_or_default(),
            "CreatedSince": when(r.created),
            "CreatedBy": by(&r.created_by),
            "Size": size(r.size),
            "Comment": r.comment,
        });
        if args.format == "json" {
            println!("{v}");
        } else {
            println!("{}", render(&args.format, &v)?);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_shortened_as_docker_does() {
        assert_eq!(short_id("sha256:0123456789abcdef0123"), "0123456789ab");
    }
}
