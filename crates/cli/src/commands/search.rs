//! `rstack search TERM`: like `docker search`, over Docker Hub's search
//! API or a registry's catalog (`rstack_images::search`); `TERM` may name
//! the registry (`127.0.0.1:5000/busy`). Templates get Docker's fields
//! plus `.Tags` (fetched only when the format uses them).

use rstack_images::{SearchOptions, SearchResult};
use serde_json::json;

use super::images::{print_columns, render};
use crate::global::GlobalOpts;

/// Docker truncates descriptions to this many characters in the table.
const DESCRIPTION_WIDTH: usize = 45;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Filter: stars=N (at least N stars), is-official=true|false, is-automated=true|false
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Output format: table, json (one object per line) or a template like
    /// '{{.Name}}: {{.Tags}}'
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Max number of results per registry
    #[arg(long, default_value_t = rstack_images::search::DEFAULT_LIMIT as u16,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: u16,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// What to search for: TEXT, or REGISTRY/TEXT for another registry than
    /// the unqualified-search ones (Docker Hub by default)
    pub term: String,
}

/// One parsed `--filter`.
#[derive(Debug, PartialEq)]
enum Filter {
    Stars(u64),
    Official(bool),
    Automated(bool),
}

fn parse_filter(f: &str) -> anyhow::Result<Filter> {
    let bad = || {
        anyhow::anyhow!(
            "invalid filter {f:?}: use stars=N, is-official=true|false or is-automated=true|false"
        )
    };
    let (key, value) = f.split_once('=').ok_or_else(bad)?;
    let flag = || match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad()),
    };
    Ok(match key {
        "stars" => Filter::Stars(value.parse().map_err(|_| bad())?),
        "is-official" => Filter::Official(flag()?),
        "is-automated" => Filter::Automated(flag()?),
        _ => return Err(bad()),
    })
}

fn keep(r: &SearchResult, filters: &[Filter]) -> bool {
    filters.iter().all(|f| match f {
        Filter::Stars(n) => r.star_count >= *n,
        Filter::Official(b) => r.is_official == *b,
        Filter::Automated(b) => r.is_automated == *b,
    })
}

/// Docker's template fields of a result, and `Tags`.
fn fields(r: &SearchResult) -> serde_json::Value {
    json!({
        "Name": r.name,
        "Description": r.description,
        "StarCount": r.star_count,
        "IsOfficial": r.is_official,
        "IsAutomated": r.is_automated,
        "Tags": r.tags,
    })
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let template = args.format.contains("{{");
    if !template && args.format != "table" && args.format != "json" {
        anyhow::bail!(
            "unsupported --format {:?}: use table, json or a {{{{.Field}}}} template",
            args.format
        );
    }
    let filters = args
        .filters
        .iter()
        .map(|f| parse_filter(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = SearchOptions {
        limit: usize::from(args.limit),
        tags: args.format == "json" || (template && args.format.contains("Tags")),
    };
    let store = global.store()?;
    let rt = crate::global::tokio_runtime()?;
    let mut results = rt.block_on(store.search(&args.term, &opts))?;
    results.retain(|r| keep(r, &filters));
    if args.format == "json" || template {
        for r in &results {
            let v = fields(r);
            if template {
                println!("{}", render(&args.format, &v)?);
            } else {
                println!("{v}");
            }
        }
        return Ok(0);
    }
    let mut table = vec![
        ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    ];
    for r in &results {
        let description = r.description.replace('\n', " ");
        table.push(vec![
            r.name.clone(),
            if args.no_trunc {
                description
            } else {
                truncate(&description, DESCRIPTION_WIDTH)
            },
            r.star_count.to_string(),
            if r.is_official { "[OK]" } else { "" }.to_owned(),
        ]);
    }
    print_columns(&table);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(parse_filter("stars=3").unwrap(), Filter::Stars(3));
        assert_eq!(
            parse_filter("is-official=true").unwrap(),
            Filter::Official(true)
        );
        assert!(parse_filter("is-official=yes").is_err());
        assert!(parse_filter("name=x").is_err());
        let r = SearchResult {
            name: "busybox".into(),
            star_count: 5,
            is_official: true,
            ..Default::default()
        };
        assert!(keep(&r, &[Filter::Stars(5), Filter::Official(true)]));
        assert!(!keep(&r, &[Filter::Stars(6)]));
        assert!(!keep(&r, &[Filter::Automated(true)]));
    }

    #[test]
    fn descriptions_are_truncated_like_docker() {
        assert_eq!(truncate("short", 45), "short");
        let long = "x".repeat(50);
        let t = truncate(&long, 45);
        assert_eq!(t.chars().count(), 45);
        assert!(t.ends_with('…'));
    }
}
