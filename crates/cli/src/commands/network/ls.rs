//! `rstack network ls`: the table of `docker network ls`.

use rstack_netns::Networks;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only display network IDs
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    no_trunc: bool,
    /// Provide filter values (name=..., id=..., label=..., driver=...)
    #[arg(short, long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
}

pub fn run(nets: &Networks, args: Args) -> anyhow::Result<u8> {
    let mut rows = Vec::new();
    for n in nets.list()? {
        let mut keep = true;
        for f in &args.filters {
            let Some((k, v)) = f.split_once('=') else {
                anyhow::bail!("bad format of filter (expected name=value): {f}");
            };
            keep &= match k {
                "name" => n.name.contains(v),
                "id" => n.id.starts_with(v),
                "driver" => n.driver == v,
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => n.labels.get(lk).is_some_and(|x| x == lv),
                    None => n.labels.contains_key(v),
                },
                "scope" => v == "local",
                "type" => v == "custom",
                _ => anyhow::bail!("invalid filter '{k}'"),
            };
        }
        if !keep {
            continue;
        }
        let id = if args.no_trunc {
            n.id.clone()
        } else {
            n.id[..12].to_string()
        };
        rows.push([id, n.name, n.driver, "local".to_string()]);
    }
    if args.quiet {
        for r in rows {
            println!("{}", r[0]);
        }
        return Ok(0);
    }
    let header = ["NETWORK ID", "NAME", "DRIVER", "SCOPE"].map(String::from);
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 3 {
                    c.clone()
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        println!("{}", line.join("   "));
    }
    Ok(0)
}
