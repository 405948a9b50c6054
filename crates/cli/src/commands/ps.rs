//! `rstack ps`: the project's containers with docker compose's columns
//! (NAME IMAGE COMMAND SERVICE CREATED STATUS PORTS), read from the state
//! files — no supervisor needed; a recorded process is checked to be
//! alive through a pidfd.

use rstack_stack::state::ContainerRecord;

use rstack_stack::status::{human_duration, since};

use super::stack_common;
use crate::global::GlobalOpts;

/// `--format`: `table`, `json`, or a Go template such as
/// `{{.Name}}\t{{.Status}}` applied to each object of the json form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Template(String),
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "table" | "" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            t if t.contains("{{") => {
                // a broken template fails before anything is read
                super::images::render(t, &serde_json::Value::Null)
                    .map(|_| Format::Template(t.to_owned()))
                    .map_err(|e| e.to_string())
            }
            other => Err(format!(
                "invalid format {other:?}: use table, json or a Go template like '{{{{.Name}}}}'"
            )),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all stopped containers
    #[arg(short, long)]
    pub all: bool,
    /// Format the output: table, json or a Go template ('{{.Name}}\t{{.Status}}')
    #[arg(long, default_value = "table")]
    pub format: Format,
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Display services
    #[arg(long)]
    pub services: bool,
    /// Filter services by status (created, restarting, running, removing, paused, exited, dead)
    #[arg(long, value_name = "STATUS")]
    pub status: Vec<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Services to show
    pub service_names: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let (project, _env, pp) = stack_common::load_or_name(global, &args.service_names)?;
    if let Some(p) = &project {
        for s in &args.service_names {
            if !p.services.contains_key(s) {
                anyhow::bail!("no such service: {s}");
            }
        }
    }
    let project_name = project
        .as_ref()
        .map(|p| p.name.clone())
        .or_else(|| global.compose.project_name.clone())
        .unwrap_or_default();
    let recs: Vec<ContainerRecord> = pp
        .containers()?
        .into_iter()
        .filter(|r| args.service_names.is_empty() || args.service_names.contains(&r.service))
        .filter(|r| {
            let state = rstack_stack::status::state_word(r);
            if !args.status.is_empty() {
                return args.status.iter().any(|s| s == state);
            }
            args.all || matches!(state, "running" | "restarting" | "paused")
        })
        .collect();
    if args.services {
        stack_common::print_unique(recs.iter().map(|r| r.service.as_str()));
        return Ok(0);
    }
    if args.quiet {
        for r in &recs {
            println!("{}", r.id.clone().unwrap_or_default());
        }
        return Ok(0);
    }
    match &args.format {
        Format::Json => {
            for r in &recs {
                println!("{}", serde_json::to_string(&json_of(r, &project_name))?);
            }
        }
        Format::Template(t) => {
            for r in &recs {
                println!("{}", super::images::render(t, &json_of(r, &project_name))?);
            }
        }
        Format::Table => {
            let rows: Vec<[String; 7]> = recs
                .iter()
                .map(|r| {
                    [
                        r.name.clone(),
                        r.image.clone(),
                        command_text(r, args.no_trunc),
                        r.service.clone(),
                        format!("{} ago", human_duration(since(Some(&r.created)))),
                        rstack_stack::status::status_text(r),
                        r.ports_text(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
                ],
                &rows,
            );
        }
    }
    Ok(0)
}

fn command_text(r: &ContainerRecord, no_trunc: bool) -> String {
    let cmd = r.command.join(" ");
    if no_trunc || cmd.chars().count() <= 20 {
        format!("\"{cmd}\"")
    } else {
        let short: String = cmd.chars().take(19).collect();
        format!("\"{short}…\"")
    }
}

/// Columns separated by 3 spaces, like docker's tabwriter output.
fn print_table(headers: &[&str], rows: &[[String; 7]]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 3));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

fn json_of(r: &ContainerRecord, project: &str) -> serde_json::Value {
    let publishers: Vec<serde_json::Value> = r
        .ports
        .iter()
        .filter_map(|p| stack_common::parse_published(p))
        .map(|p| {
            serde_json::json!({
                "URL": p.host_ip,
                "TargetPort": p.container_port,
                "PublishedPort": p.host_port,
                "Protocol": p.protocol,
            })
        })
        .collect();
    serde_json::json!({
        "Command": format!("\"{}\"", r.command.join(" ")),
        "CreatedAt": r.created,
        "ExitCode": r.exit_code.unwrap_or(0),
        "Health": r.health.as_ref().map(|h| h.status.as_str()).unwrap_or(""),
        "ID": r.id.clone().unwrap_or_default(),
        "Image": r.image,
        "Name": r.name,
        "Names": r.name,
        "Networks": r.networks.join(","),
        "Ports": r.ports_text(),
        "Project": project,
        "Publishers": publishers,
        "RunningFor": format!("{} ago", human_duration(since(Some(&r.created)))),
        "Service": r.service,
        "State": rstack_stack::status::state_word(r),
        "Status": rstack_stack::status::status_text(r),
        "RestartCount": r.restart_count,
    })
}
