//! `rstack ls`: the projects on this host, like `docker compose ls`
//! (NAME, STATUS such as `running(3)`, CONFIG FILES), from the state dirs.

use std::collections::BTreeMap;

use rstack_stack::state::Layout;

use crate::global::GlobalOpts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all stopped Compose projects
    #[arg(short, long)]
    pub all: bool,
    /// Format the output
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Only display project names
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let layout = Layout::new(&global.run_root, &global.root);
    let mut rows = Vec::new();
    for name in layout.list_projects()? {
        // a `run -d` container's project is not a Compose project
        if crate::commands::container::is_single_project(&layout, &name) {
            continue;
        }
        let pp = layout.project(&name);
        let recs = pp.containers()?;
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for r in &recs {
            *counts
                .entry(rstack_stack::status::state_word(r))
                .or_default() += 1;
        }
        let running = counts.get("running").copied().unwrap_or(0);
        if !args.all && running == 0 {
            continue;
        }
        if recs.is_empty() {
            continue;
        }
        let status = counts
            .iter()
            .map(|(k, v)| format!("{k}({v})"))
            .collect::<Vec<_>>()
            .join(", ");
        let files = pp
            .resources()?
            .config_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",");
        rows.push((name, status, files));
    }
    if args.quiet {
        for (n, _, _) in &rows {
            println!("{n}");
        }
        return Ok(0);
    }
    match args.format {
        Format::Json => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|(n, s, f)| serde_json::json!({"Name": n, "Status": s, "ConfigFiles": f}))
                .collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        Format::Table => {
            let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4);
            let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(6);
            println!("{:<w0$}   {:<w1$}   CONFIG FILES", "NAME", "STATUS");
            for (n, s, f) in &rows {
                println!("{n:<w0$}   {s:<w1$}   {f}");
            }
        }
    }
    Ok(0)
}
