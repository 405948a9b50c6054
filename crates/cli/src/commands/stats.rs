//! `rstack stats --no-stream [SERVICE...]`: CPU, memory and pids of the
//! running containers from their cgroup files, like `docker compose
//! stats`. CPU % is measured over half a second.

use std::time::{Duration, Instant};

use rstack_stack::cgroups::usage;
use rstack_stack::state::ContainerRecord;

use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Format the output (json)
    #[arg(long)]
    pub format: Option<String>,
    /// Services to show
    pub services: Vec<String>,
}

fn bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.2}{}", U[i])
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let ctx = stack_common::load(global, &args.services)?;
    let pick = || -> anyhow::Result<Vec<ContainerRecord>> {
        Ok(ctx
            .pp
            .containers()?
            .into_iter()
            .filter(|r| args.services.is_empty() || args.services.contains(&r.service))
            .collect())
    };
    show(pick, args.no_stream, args.format.as_deref())
}

/// Prints the running ones of the containers `pick` gives (asked again
/// at every round), once with `no_stream`, else every half second.
pub(crate) fn show(
    pick: impl Fn() -> anyhow::Result<Vec<ContainerRecord>>,
    no_stream: bool,
    format: Option<&str>,
) -> anyhow::Result<u8> {
    loop {
        let recs: Vec<_> = pick()?
            .into_iter()
            .filter(rstack_stack::status::is_alive)
            .collect();
        let before: Vec<_> = recs.iter().map(|r| usage(&r.cgroup_leaves)).collect();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_millis(500));
        let dt = t0.elapsed().as_nanos() as f64;
        let mut rows = Vec::new();
        for (r, b) in recs.iter().zip(before) {
            let a = usage(&r.cgroup_leaves);
            let cpu = match (a.cpu_ns, b.cpu_ns) {
                (Some(x), Some(y)) => format!("{:.2}%", (x.saturating_sub(y)) as f64 / dt * 100.0),
                _ => "--".into(),
            };
            let mem = a.memory.map_or("--".into(), bytes);
            let limit = a.memory_limit.map_or_else(
                || {
                    std::fs::read_to_string("/proc/meminfo")
                        .ok()
                        .and_then(|m| {
                            m.lines()
                                .find_map(|l| l.strip_prefix("MemTotal:"))
                                .and_then(|v| {
                                    v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
                                })
                        })
                        .map_or("--".into(), |k| bytes(k * 1024))
                },
                bytes,
            );
            let pids = a.pids.map_or("--".into(), |p| p.to_string());
            let id: String = r.id.clone().unwrap_or_default().chars().take(12).collect();
            rows.push((id, r.name.clone(), cpu, format!("{mem} / {limit}"), pids));
        }
        if format == Some("json") {
            for (id, name, cpu, mem, pids) in &rows {
                println!(
                    "{}",
                    serde_json::json!({"ID": id, "Name": name, "CPUPerc": cpu, "MemUsage": mem, "PIDs": pids})
                );
            }
        } else {
            println!(
                "{:<14}{:<28}{:<10}{:<26}PIDS",
                "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT"
            );
            for (id, name, cpu, mem, pids) in &rows {
                println!("{id:<14}{name:<28}{cpu:<10}{mem:<26}{pids}");
            }
        }
        if no_stream {
            return Ok(0);
        }
    }
}
