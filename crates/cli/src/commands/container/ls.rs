//! `rstack container ls` (`ps`, `list`): every container rstack knows, in
//! any project, as `docker ps` lists them: CONTAINER ID, IMAGE, COMMAND,
//! CREATED, STATUS, PORTS, NAMES, newest first; `-a`, `-q`, `-n`, `-l`,
//! `--no-trunc`, `--filter name=|status=|label=|ancestor=|network=|id=`,
//! `--format table|json|TEMPLATE`. A stack's containers carry the compose
//! labels (`com.docker.compose.project`, `...service`).

use anyhow::bail;
use rstack_stack::state::{ContainerRecord, Layout};
use serde_json::json;

use crate::commands::images::{print_columns, render};
use crate::global::GlobalOpts;
use rstack_stack::status::{human_duration, since};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Format output: table, json or a template like '{{.Names}}'
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

/// A container and the project it belongs to.
struct Row {
    project: String,
    rec: ContainerRecord,
    /// A single container (`run -d`): no compose labels, like docker's.
    single: bool,
    /// With `-s`: docker's `12.3kB (virtual 4.5MB)` (writable layer, and
    /// that plus the image).
    size: Option<String>,
}

impl Row {
    fn labels(&self) -> Vec<(String, String)> {
        if self.single {
            return Vec::new();
        }
        vec![
            ("com.docker.compose.project".into(), self.project.clone()),
            (
                "com.docker.compose.service".into(),
                self.rec.service.clone(),
            ),
            (
                "com.docker.compose.container-number".into(),
                self.rec.number.to_string(),
            ),
        ]
    }
}

/// Whether `row` passes one `KEY=VALUE` filter (docker's keys).
fn passes(row: &Row, filter: &str) -> anyhow::Result<bool> {
    let Some((key, value)) = filter.split_once('=') else {
        bail!("bad format of filter (expected name=value): {filter}");
    };
    let r = &row.rec;
    Ok(match key {
        "name" => r.name.contains(value),
        "id" => r.id.as_deref().is_some_and(|id| id.starts_with(value)),
        "status" => rstack_stack::status::state_word(r) == value,
        "ancestor" => r.image == value || r.image.starts_with(&format!("{value}:")),
        "network" => r.networks.iter().any(|n| n == value),
        "label" => {
            let (k, v) = value
                .split_once('=')
                .map_or((value, None), |(k, v)| (k, Some(v)));
            row.labels()
                .iter()
                .any(|(lk, lv)| lk == k && v.is_none_or(|v| v == lv))
        }
        other => bail!("invalid filter '{other}'"),
    })
}

fn short(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_owned()
    } else {
        id.chars().take(12).collect()
    }
}

fn command(r: &ContainerRecord, no_trunc: bool) -> String {
    let cmd = r.command.join(" ");
    if no_trunc || cmd.chars().count() <= 20 {
        format!("\"{cmd}\"")
    } else {
        format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
    }
}

fn json_of(row: &Row, no_trunc: bool) -> serde_json::Value {
    let r = &row.rec;
    let labels: Vec<String> = row
        .labels()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    json!({
        "Command": command(r, no_trunc),
        "CreatedAt": r.created,
        "ID": short(r.id.as_deref().unwrap_or_default(), no_trunc),
        "Image": r.image,
        "Labels": labels.join(","),
        "Names": r.name,
        "Networks": r.networks.join(","),
        "Ports": r.ports_text(),
        "RunningFor": format!("{} ago", human_duration(since(Some(&r.created)))),
        "Size": row.size.clone().unwrap_or_default(),
        "State": rstack_stack::status::state_word(r),
        "Status": rstack_stack::status::status_text(r),
    })
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let layout = Layout::new(&global.run_root, &global.root);
    let mut rows = Vec::new();
    for project in layout.list_projects()? {
        let single = super::detached::SingleProject::of(&layout, &project).is_some();
        for rec in layout.project(&project).containers()? {
            rows.push(Row {
                project: project.clone(),
                rec,
                single,
                size: None,
            });
        }
    }
    // newest first, as docker
    rows.sort_by(|a, b| b.rec.created.cmp(&a.rec.created));
    let limit = if args.latest { 1 } else { args.last };
    let mut kept = Vec::new();
    for row in rows {
        let running = matches!(
            rstack_stack::status::state_word(&row.rec),
            "running" | "restarting" | "paused"
        );
        if !(args.all || limit >= 0 || running) {
            continue;
        }
        let mut ok = true;
        for f in &args.filters {
            ok &= passes(&row, f)?;
        }
        if ok {
            kept.push(row);
        }
    }
    if limit >= 0 {
        kept.truncate(usize::try_from(limit).unwrap_or(0));
    }
    if args.size {
        sizes(global, &layout, &mut kept)?;
    }
    print(&kept, &args)
}

/// Fills each row's `Size`: its writable layer, and that plus its image.
fn sizes(global: &GlobalOpts, layout: &Layout, rows: &mut [Row]) -> anyhow::Result<()> {
    use crate::commands::images::human_size;
    let images: std::collections::HashMap<String, u64> = global
        .store()?
        .list()?
        .into_iter()
        .map(|i| (i.id, i.record.size))
        .collect();
    for row in rows {
        let rw = crate::commands::system::writable_layer(&layout.project(&row.project), &row.rec);
        let image = images.get(&row.rec.image_id).copied().unwrap_or(0);
        row.size = Some(format!(
            "{} (virtual {})",
            human_size(rw),
            human_size(rw + image)
        ));
    }
    Ok(())
}

fn print(rows: &[Row], args: &Args) -> anyhow::Result<u8> {
    if args.quiet {
        for row in rows {
            println!(
                "{}",
                short(row.rec.id.as_deref().unwrap_or_default(), args.no_trunc)
            );
        }
        return Ok(0);
    }
    match args.format.as_str() {
        "table" => {
            let mut table = vec![
                [
                    "CONTAINER ID",
                    "IMAGE",
                    "COMMAND",
                    "CREATED",
                    "STATUS",
                    "PORTS",
                    "NAMES",
                ]
                .map(String::from)
                .to_vec(),
            ];
            if args.size {
                table[0].push("SIZE".into());
            }
            for row in rows {
                let v = json_of(row, args.no_trunc);
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                table.push(vec![
                    s("ID"),
                    s("Image"),
                    s("Command"),
                    s("RunningFor"),
                    s("Status"),
                    s("Ports"),
                    s("Names"),
                ]);
                if args.size {
                    table.last_mut().expect("a row").push(s("Size"));
                }
            }
            print_columns(&table);
        }
        "json" => {
            for row in rows {
                println!("{}", json_of(row, args.no_trunc));
            }
        }
        template => {
            for row in rows {
                println!("{}", render(template, &json_of(row, args.no_trunc))?);
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, service: &str) -> Row {
        let mut rec = ContainerRecord::new(name, service, 1);
        rec.id = Some("0123456789abcdef".into());
        rec.image = "web:1".into();
        rec.networks = vec!["demo_default".into()];
        Row {
            project: "demo".into(),
            rec,
            single: false,
            size: None,
        }
    }

    #[test]
    fn filters_as_docker() {
        let r = row("demo-web-1", "web");
        assert!(passes(&r, "name=web").unwrap());
        assert!(!passes(&r, "name=db").unwrap());
        assert!(passes(&r, "id=0123").unwrap());
        assert!(passes(&r, "ancestor=web").unwrap());
        assert!(passes(&r, "network=demo_default").unwrap());
        assert!(passes(&r, "label=com.docker.compose.service=web").unwrap());
        assert!(passes(&r, "label=com.docker.compose.project").unwrap());
        assert!(!passes(&r, "label=com.docker.compose.project=other").unwrap());
        assert!(passes(&r, "nope=1").is_err());
        assert!(passes(&r, "name").is_err());
    }
}
