//! `rstack system df` and `rstack system prune`, like `docker system`.
//!
//! What Docker's four kinds of data are in rstack:
//! - Images: the image store (`ROOT/layers`, `ROOT/blobs`), measured by
//!   [`rstack_images::usage`]; an image is *active* when an existing
//!   container record of any project (RUN/projects/*/containers) names it.
//! - Containers: those records; *active* when running, paused or
//!   restarting (docker's rule); the size is the writable layer
//!   (`ROOT/containers/<id>/upper`), which only a created container has.
//! - Local volumes: the named volumes `ROOT/volumes/<name>` (`volume ls`);
//!   *active* when a container record mounts it (docker's RefCount counts
//!   stopped containers too).
//! - Build cache: `ROOT/build/cache` entries and the layers only they
//!   name. An entry is in use only while a build runs, and `system df`
//!   never sees one then (builds hold the store lock), so ACTIVE is 0.

pub(crate) mod prune;

use std::collections::BTreeSet;

use anyhow::bail;
use rstack_images::usage::DiskUsage;
use rstack_stack::state::{ContainerRecord, Layout, ProjectPaths};

use super::images;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Show rstack disk usage
    Df(DfArgs),
    /// Remove unused data
    Prune(prune::PruneArgs),
    /// Display system-wide information
    Info(super::info::Args),
}

#[derive(Debug, clap::Args)]
struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    verbose: bool,
    /// Format the output: "table" (default) or "json" (one object per line)
    #[arg(long)]
    format: Option<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    match args.command {
        Sub::Df(a) => df(global, a),
        Sub::Prune(a) => prune::run(global, a),
        Sub::Info(a) => super::info::run(global, a),
    }
}

/// A container record of some project, as `system df/prune` see it.
pub(crate) struct Ctr {
    pub(crate) rec: ContainerRecord,
    /// Running, paused or restarting.
    pub(crate) active: bool,
    /// Bytes of its writable layer.
    pub(crate) size: u64,
}

/// Every container record of every project.
pub(crate) fn containers(layout: &Layout) -> anyhow::Result<Vec<Ctr>> {
    let mut out = Vec::new();
    for project in layout.list_projects()? {
        let pp = layout.project(&project);
        for rec in pp.containers()? {
            let active = matches!(
                rstack_stack::status::state_word(&rec),
                "running" | "paused" | "restarting"
            );
            let size = writable_layer(&pp, &rec);
            out.push(Ctr { rec, active, size });
        }
    }
    Ok(out)
}

/// The bytes of a container's writable layer (kept from its creation to
/// its removal, running or not).
pub(crate) fn writable_layer(pp: &ProjectPaths, rec: &ContainerRecord) -> u64 {
    rstack_images::fsutil::disk_usage(&pp.rw_dir(&rec.name).join("upper"))
}

/// The named volumes (`ROOT/volumes/<name>/_data`), sorted.
pub(crate) fn volume_names(layout: &Layout) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(layout.root.join("volumes"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("_data").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Docker's `units.HumanSize`: decimal units, 4 significant digits
/// (`%.4g`), no space (`1.235MB`, `0B`).
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", format_g(size, 4), UNITS[unit])
}

/// Go's `%.{precision}g` for the non-negative values of [`human_size`]:
/// `precision` significant digits, trailing zeros dropped.
fn format_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".into();
    }
    // Round to the significant digits first: the exponent is that of the
    // rounded value (999.96 -> 1000).
    let sci = format!("{:.*e}", precision - 1, value);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if exp < -4 || exp >= precision as i32 {
        return format!(
            "{}e{}{:02}",
            trim(mantissa.to_owned()),
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    }
    let decimals = (precision as i32 - 1 - exp).max(0) as usize;
    trim(format!("{value:.decimals$}"))
}

/// `12.3MB (45%)`: docker's reclaimable column (no percentage of nothing).
pub(crate) fn reclaimable(reclaim: u64, total: u64) -> String {
    match (reclaim * 100).checked_div(total) {
        Some(pct) => format!("{} ({pct}%)", human_size(reclaim)),
        None => human_size(reclaim),
    }
}

/// Docker's table writer (`tabwriter` with min width 10, padding 3): every
/// column but the last is padded to its widest cell plus 3.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count() + 3).max(10);
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One line of the summary.
struct Summary {
    kind: &'static str,
    total: usize,
    active: usize,
    size: u64,
    reclaimable: String,
}

struct Gathered {
    usage: DiskUsage,
    ctrs: Vec<Ctr>,
    /// (name, containers mounting it, size)
    volumes: Vec<(String, usize, u64)>,
    used_images: BTreeSet<String>,
}

fn gather(global: &GlobalOpts) -> anyhow::Result<Gathered> {
    let layout = Layout::new(&global.run_root, &global.root);
    let usage = global.store()?.disk_usage()?;
    let ctrs = containers(&layout)?;
    let used_images = ctrs.iter().map(|c| c.rec.image_id.clone()).collect();
    let volumes = volume_names(&layout)
        .into_iter()
        .map(|n| {
            let links = ctrs.iter().filter(|c| c.rec.volumes.contains(&n)).count();
            let size = rstack_images::fsutil::disk_usage(&layout.volume_dir(&n));
            (n, links, size)
        })
        .collect();
    Ok(Gathered {
        usage,
        ctrs,
        volumes,
        used_images,
    })
}

fn summaries(g: &Gathered) -> Vec<Summary> {
    let active_images: BTreeSet<String> = g
        .usage
        .images
        .iter()
        .filter(|i| g.used_images.contains(&i.id))
        .map(|i| i.id.clone())
        .collect();
    let images_size = g.usage.images_size();
    let images_kept = g.usage.images_size_of(&active_images);
    let ctr_sizes: Vec<(bool, u64)> = g.ctrs.iter().map(|c| (c.active, c.size)).collect();
    let ctr_size = ctr_sizes.iter().map(|c| c.1).sum();
    let ctr_reclaim = ctr_sizes.iter().filter(|c| !c.0).map(|c| c.1).sum();
    let vol_size = g.volumes.iter().map(|v| v.2).sum();
    let vol_reclaim = g.volumes.iter().filter(|v| v.1 == 0).map(|v| v.2).sum();
    let cache_size = g.usage.build_cache_size();
    vec![
        Summary {
            kind: "Images",
            total: g.usage.images.len(),
            active: active_images.len(),
            size: images_size,
            reclaimable: reclaimable(images_size - images_kept.min(images_size), images_size),
        },
        Summary {
            kind: "Containers",
            total: g.ctrs.len(),
            active: g.ctrs.iter().filter(|c| c.active).count(),
            size: ctr_size,
            reclaimable: reclaimable(ctr_reclaim, ctr_size),
        },
        Summary {
            kind: "Local Volumes",
            total: g.volumes.len(),
            active: g.volumes.iter().filter(|v| v.1 > 0).count(),
            size: vol_size,
            reclaimable: reclaimable(vol_reclaim, vol_size),
        },
        Summary {
            kind: "Build Cache",
            total: g.usage.build_cache.len(),
            active: 0,
            size: cache_size,
            // docker prints no percentage here
            reclaimable: human_size(cache_size),
        },
    ]
}

fn summary_table(rows: &[Summary]) -> String {
    let mut cells = vec![
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
            .map(String::from)
            .to_vec(),
    ];
    for r in rows {
        cells.push(vec![
            r.kind.to_owned(),
            r.total.to_string(),
            r.active.to_string(),
            human_size(r.size),
            r.reclaimable.clone(),
        ]);
    }
    table(&cells)
}

fn df(global: &GlobalOpts, args: DfArgs) -> anyhow::Result<u8> {
    let json = match args.format.as_deref() {
        None | Some("table") => false,
        Some("json") => true,
        Some(other) => bail!("unsupported format {other:?}: use \"table\" or \"json\""),
    };
    if json && args.verbose {
        bail!("--verbose cannot be combined with --format json");
    }
    let g = gather(global)?;
    let rows = summaries(&g);
    if json {
        for r in &rows {
            // docker renders every field as a string, keys sorted
            println!(
                "{}",
                serde_json::json!({
                    "Active": r.active.to_string(),
                    "Reclaimable": r.reclaimable,
                    "Size": human_size(r.size),
                    "TotalCount": r.total.to_string(),
                    "Type": r.kind,
                })
            );
        }
        return Ok(0);
    }
    if !args.verbose {
        print!("{}", summary_table(&rows));
        return Ok(0);
    }
    print!("{}", verbose(&g));
    Ok(0)
}

/// `system df -v`: one table per kind, like docker's.
fn verbose(g: &Gathered) -> String {
    let now = jiff::Timestamp::now();
    let mut out = String::from("Images space usage:\n\n");
    out.push_str(&table(&images_rows(g, now)));
    out.push_str("\nContainers space usage:\n\n");
    out.push_str(&table(&containers_rows(g, now)));
    out.push_str("\nLocal Volumes space usage:\n\n");
    let mut rows = vec![["VOLUME NAME", "LINKS", "SIZE"].map(String::from).to_vec()];
    for (name, links, size) in &g.volumes {
        rows.push(vec![name.clone(), links.to_string(), human_size(*size)]);
    }
    out.push_str(&table(&rows));
    out.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size(g.usage.build_cache_size())
    ));
    let mut rows = vec![
        ["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "SHARED"]
            .map(String::from)
            .to_vec(),
    ];
    for e in &g.usage.build_cache {
        rows.push(vec![
            short_id(&e.key),
            "regular".into(),
            human_size(e.size),
            ago(&e.created, now),
            e.shared.to_string(),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

/// `12 minutes ago` for an RFC 3339 time; empty when it does not parse.
fn ago(t: &str, now: jiff::Timestamp) -> String {
    t.parse::<jiff::Timestamp>()
        .map(|t| images::since(t, now))
        .unwrap_or_default()
}

/// An id's first 12 hex digits.
fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// `system df -v`'s images: one row per tag (`<none>` when untagged).
fn images_rows(g: &Gathered, now: jiff::Timestamp) -> Vec<Vec<String>> {
    let mut rows = vec![
        [
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for i in &g.usage.images {
        let users = g.ctrs.iter().filter(|c| c.rec.image_id == i.id).count();
        let mut names: Vec<(String, String)> = i
            .repo_tags
            .iter()
            .filter_map(|t| rstack_images::Reference::parse(t).ok())
            .map(|r| {
                let familiar = r.familiar();
                match familiar.rsplit_once(':') {
                    Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), tag.to_owned()),
                    _ => (familiar, "<none>".to_owned()),
                }
            })
            .collect();
        if names.is_empty() {
            names.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in names {
            rows.push(vec![
                repo,
                tag,
                short_id(&i.id),
                ago(&i.added, now),
                human_size(i.size),
                human_size(i.shared_size),
                human_size(i.size - i.shared_size),
                users.to_string(),
            ]);
        }
    }
    rows
}

/// `system df -v`'s containers.
fn containers_rows(g: &Gathered, now: jiff::Timestamp) -> Vec<Vec<String>> {
    let mut rows = vec![
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "LOCAL VOLUMES",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for c in &g.ctrs {
        let mut command = c.rec.command.join(" ");
        if command.chars().count() > 20 {
            command = command.chars().take(19).collect::<String>() + "…";
        }
        rows.push(vec![
            c.rec.id.as_deref().map(short_id).unwrap_or_default(),
            c.rec.image.clone(),
            format!("\"{command}\""),
            c.rec.volumes.len().to_string(),
            human_size(c.size),
            ago(&c.rec.created, now),
            rstack_stack::status::status_text(&c.rec),
            c.rec.name.clone(),
        ]);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_docker_human_size() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1), "1B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1024), "1.024kB");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(12_300_000), "12.3MB");
        assert_eq!(human_size(5_396_000_000), "5.396GB");
        assert_eq!(human_size(100_000_000), "100MB");
        assert_eq!(human_size(999_960), "1000kB", "rounds like %.4g");
        assert_eq!(human_size(4_200_000_000_000), "4.2TB");
    }

    #[test]
    fn format_g_matches_go() {
        assert_eq!(format_g(2.5, 4), "2.5");
        assert_eq!(format_g(123.456, 4), "123.5");
        assert_eq!(format_g(0.000_012_34, 4), "1.234e-05");
        assert_eq!(format_g(12_346.0, 4), "1.235e+04");
    }

    #[test]
    fn reclaimable_has_a_percentage_of_a_total() {
        assert_eq!(reclaimable(12_300_000, 27_333_334), "12.3MB (44%)");
        assert_eq!(reclaimable(0, 1000), "0B (0%)");
        assert_eq!(reclaimable(1000, 1000), "1kB (100%)");
        assert_eq!(reclaimable(0, 0), "0B");
    }

    #[test]
    fn summary_is_docker_table() {
        let rows = [
            Summary {
                kind: "Images",
                total: 2,
                active: 1,
                size: 16_430_000,
                reclaimable: reclaimable(11_630_000, 16_430_000),
            },
            Summary {
                kind: "Local Volumes",
                total: 0,
                active: 0,
                size: 0,
                reclaimable: reclaimable(0, 0),
            },
            Summary {
                kind: "Build Cache",
                total: 0,
                active: 0,
                size: 0,
                reclaimable: human_size(0),
            },
        ];
        assert_eq!(
            summary_table(&rows),
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          2         1         16.43MB   11.63MB (70%)\n\
             Local Volumes   0         0         0B        0B\n\
             Build Cache     0         0         0B        0B\n"
        );
    }

    #[test]
    fn table_pads_to_the_widest_cell() {
        let rows = vec![
            vec!["A".to_owned(), "LONG HEADER X".to_owned(), "Z".to_owned()],
            vec![
                "averyveryverylongcell".to_owned(),
                "b".to_owned(),
                "c".to_owned(),
            ],
        ];
        assert_eq!(
            table(&rows),
            "A                       LONG HEADER X   Z\n\
             averyveryverylongcell   b               c\n"
        );
    }
}
