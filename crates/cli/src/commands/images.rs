//! `rstack images` (and `rstack image ls`): list local images like
//! `docker images`, as a table or as one JSON object per line with
//! Docker's keys.

use rstack_images::{LocalImage, Reference};
use serde_json::json;

use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table, json (one object per line) or a template like
    /// '{{.Repository}}:{{.Tag}}'
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Don't truncate image IDs
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Show all images (rstack keeps no intermediate images, so this is the default)
    #[arg(short, long)]
    pub all: bool,
    /// Filter: dangling=true|false, reference=PATTERN (`*` matches within a path part)
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Only images of this repository (REPOSITORY[:TAG])
    pub repository: Option<String>,
}

/// One row: an image under one of its names.
struct Row<'a> {
    image: &'a LocalImage,
    repository: String,
    tag: String,
    digest: String,
}

fn rows(images: &[LocalImage]) -> Vec<Row<'_>> {
    let mut rows = Vec::new();
    for image in images {
        let digests: Vec<Reference> = image
            .record
            .repo_digests
            .iter()
            .filter_map(|d| Reference::parse(d).ok())
            .collect();
        let digest_for = |name: &str| {
            digests
                .iter()
                .find(|d| d.name() == name)
                .and_then(|d| d.digest().map(str::to_owned))
                .unwrap_or_else(|| "<none>".into())
        };
        let tags: Vec<Reference> = image
            .record
            .repo_tags
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
            .collect();
        for t in &tags {
            rows.push(Row {
                image,
                repository: t.familiar_name(),
                tag: t.tag().unwrap_or("<none>").to_owned(),
                digest: digest_for(&t.name()),
            });
        }
        if tags.is_empty() {
            match digests.first() {
                Some(d) => rows.push(Row {
                    image,
                    repository: d.familiar_name(),
                    tag: "<none>".into(),
                    digest: d.digest().unwrap_or("<none>").to_owned(),
                }),
                None => rows.push(Row {
                    image,
                    repository: "<none>".into(),
                    tag: "<none>".into(),
                    digest: "<none>".into(),
                }),
            }
        }
    }
    rows
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let template = args.format.contains("{{");
    if args.format != "table" && args.format != "json" && !template {
        anyhow::bail!(
            "unsupported --format {:?}: use table, json or a {{{{.Field}}}} template",
            args.format
        );
    }
    let store = global.store()?;
    let images = store.list()?;
    let mut rows = rows(&images);
    for filter in &args.filters {
        match filter.split_once('=') {
            Some(("dangling", v @ ("true" | "false"))) => {
                let want = v == "true";
                rows.retain(|r| (r.tag == "<none>") == want);
            }
            Some(("reference", pattern)) => rows.retain(|r| {
                let name = format!("{}:{}", r.repository, r.tag);
                glob(pattern, &r.repository) || glob(pattern, &name)
            }),
            _ => anyhow::bail!(
                "invalid filter {filter:?}: use dangling=true|false or reference=PATTERN"
            ),
        }
    }
    if let Some(filter) = &args.repository {
        let (repo, tag) = match filter.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_owned(), Some(t.to_owned())),
            _ => (filter.clone(), None),
        };
        let repo_full = Reference::parse(&repo)
            .map(|r| r.familiar_name())
            .unwrap_or(repo);
        rows.retain(|r| r.repository == repo_full && tag.as_ref().is_none_or(|t| *t == r.tag));
    }
    let id_of = |image: &LocalImage| {
        let hex = image.id.trim_start_matches("sha256:");
        if args.no_trunc {
            image.id.clone()
        } else {
            hex[..12.min(hex.len())].to_owned()
        }
    };
    if args.quiet {
        for row in &rows {
            println!("{}", id_of(row.image));
        }
        return Ok(0);
    }
    let now = jiff::Timestamp::now();
    if args.format == "json" || template {
        for row in &rows {
            let created = created(row.image);
            let size = human_size(row.image.record.size);
            let line = json!({
                "Containers": "N/A",
                "CreatedAt": created.map(|c| c.strftime("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()).unwrap_or_default(),
                "CreatedSince": created.map(|c| since(c, now)).unwrap_or_else(|| "N/A".into()),
                "Digest": row.digest,
                "ID": id_of(row.image),
                "Repository": row.repository,
                "SharedSize": "N/A",
                "Size": size,
                "Tag": row.tag,
                "UniqueSize": "N/A",
                "VirtualSize": size,
            });
            if template {
                println!("{}", render(&args.format, &line)?);
            } else {
                println!("{line}");
            }
        }
        return Ok(0);
    }
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for row in &rows {
        let mut cells = vec![row.repository.clone(), row.tag.clone()];
        if args.digests {
            cells.push(row.digest.clone());
        }
        cells.push(id_of(row.image));
        cells.push(
            created(row.image)
                .map(|c| since(c, now))
                .unwrap_or_else(|| "N/A".into()),
        );
        cells.push(human_size(row.image.record.size));
        table.push(cells);
    }
    print_columns(&table);
    Ok(0)
}

/// A small subset of Go templates as docker's `--format` uses them:
/// `{{.Field}}`, `{{.A.B}}`, `{{json .Field}}`, `{{json .}}`, `\t`, `\n`.
pub(crate) fn render(template: &str, value: &serde_json::Value) -> anyhow::Result<String> {
    let template = template.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = template.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| anyhow::anyhow!("template {template:?}: unclosed {{{{"))?;
        let action = after[..end].trim();
        let (as_json, path) = match action.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, action),
        };
        let path = path.strip_prefix('.').ok_or_else(|| {
            anyhow::anyhow!("template {template:?}: unsupported action {action:?}")
        })?;
        let mut v = value;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            v = v.get(key).unwrap_or(&serde_json::Value::Null);
        }
        match (as_json, v) {
            (true, v) => out.push_str(&v.to_string()),
            (false, serde_json::Value::String(s)) => out.push_str(s),
            (false, serde_json::Value::Null) => out.push_str("<no value>"),
            // Go prints a slice as `[a b]`.
            (false, serde_json::Value::Array(items)) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                out.push_str(&format!("[{}]", items.join(" ")));
            }
            (false, v) => out.push_str(&v.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Shell-style match where `*` stands for any run of characters but `/`.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .take_while(|&i| !tail[..i].contains('/'))
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// Prints rows as left-aligned columns separated by 3 spaces (docker's
/// tabwriter layout).
pub(crate) fn print_columns(table: &[Vec<String>]) {
    let cols = table.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            table
                .iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in table {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[c]));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// The image's creation time from its config.
pub(crate) fn created(image: &LocalImage) -> Option<jiff::Timestamp> {
    image
        .config
        .created()
        .as_deref()
        .and_then(|c| c.parse().ok())
}

/// Docker's `HumanSizeWithPrecision(size, 3)`: decimal units, 3 digits.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    // %.3g: 3 significant digits, trailing zeros trimmed.
    let digits = if size >= 100.0 {
        0
    } else if size >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{size:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{s}{}", UNITS[unit])
}

/// Docker's `HumanDuration` + " ago".
pub(crate) fn since(t: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let secs = (now.as_second() - t.as_second()).max(0);
    let (min, hour, day) = (60, 3600, 86400);
    let text = if secs < 1 {
        "Less than a second".to_owned()
    } else if secs == 1 {
        "1 second".to_owned()
    } else if secs < min {
        format!("{secs} seconds")
    } else if secs / min == 1 {
        "About a minute".to_owned()
    } else if secs < hour {
        format!("{} minutes", secs / min)
    } else if (secs as f64 / hour as f64).round() as i64 == 1 {
        "About an hour".to_owned()
    } else if secs < 48 * hour {
        format!("{} hours", (secs as f64 / hour as f64).round() as i64)
    } else if secs < 7 * 2 * day {
        format!("{} days", secs / day)
    } else if secs < 30 * 3 * day {
        format!("{} weeks", secs / (7 * day))
    } else if secs < 365 * 2 * day {
        format!("{} months", secs / (30 * day))
    } else {
        format!("{} years", secs / (365 * day))
    };
    format!("{text} ago")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_human_sizes() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(2048), "2.05kB");
        assert_eq!(human_size(10240), "10.2kB");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(123_456_789), "123MB");
    }

    #[test]
    fn templates_render_fields_and_json() {
        let v = json!({"Repository": "redis", "Tag": "7", "Config": {"Cmd": ["a"]}});
        assert_eq!(render("{{.Repository}}:{{.Tag}}", &v).unwrap(), "redis:7");
        let tags = json!({"Tags": ["1.35", "latest"]});
        assert_eq!(render("{{.Tags}}", &tags).unwrap(), "[1.35 latest]");
        assert_eq!(
            render("{{json .Tags}}", &tags).unwrap(),
            r#"["1.35","latest"]"#
        );
        assert_eq!(
            render("{{json .Config.Cmd}}\\t{{.Nope}}", &v).unwrap(),
            "[\"a\"]\t<no value>"
        );
        assert!(render("{{.Repository", &v).is_err());
        assert!(render("{{range .X}}", &v).is_err());
    }

    #[test]
    fn sizes_and_ages_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(4_270_000), "4.27MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size(1_500), "1.5kB");
        let now = jiff::Timestamp::from_second(10_000_000).unwrap();
        let ago = |s: i64| since(jiff::Timestamp::from_second(10_000_000 - s).unwrap(), now);
        assert_eq!(ago(30), "30 seconds ago");
        assert_eq!(ago(90), "About a minute ago");
        assert_eq!(ago(3 * 3600), "3 hours ago");
        assert_eq!(ago(20 * 86400), "2 weeks ago");
    }
}
