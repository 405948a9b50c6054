//! `rstack info` / `rstack system info`: what rstack runs with on this
//! host, in the shape of `docker info`'s text (the parts that exist here).

use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format the output: "json" for one object
    #[arg(short, long)]
    format: Option<String>,
}

/// `1`, `2`, or `1 (hybrid: cgroup2 at /sys/fs/cgroup/unified)`.
fn cgroup_version() -> String {
    let root = std::path::Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        "2".to_owned()
    } else if root.join("unified/cgroup.controllers").exists() {
        "1 (hybrid: cgroup2 at /sys/fs/cgroup/unified)".to_owned()
    } else {
        "1".to_owned()
    }
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let nets = super::network::networks(global)?;
    let firewall = match nets.host_firewall().detect() {
        Ok(fw) => fw.describe(),
        Err(e) => format!("unknown ({e})"),
    };
    let registries = global.store()?.registry_config()?;
    let version = env!("CARGO_PKG_VERSION");
    let networks = nets.list()?.len();
    let fields = [
        ("Server Version", version.to_owned()),
        (
            "Daemon",
            "none (one supervisor process per project)".to_owned(),
        ),
        ("Storage Driver", "overlay2".to_owned()),
        ("Cgroup Driver", "cgroupfs".to_owned()),
        ("Cgroup Version", cgroup_version()),
        ("Networks", networks.to_string()),
        ("Firewall", firewall),
        ("Root Dir", global.root.display().to_string()),
        ("Run Dir", global.run_root.display().to_string()),
    ];
    match args.format.as_deref() {
        Some("json") => {
            let mut obj: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .map(|(k, v)| (k.replace(' ', ""), serde_json::Value::from(v.as_str())))
                .collect();
            obj.insert("RegistryConfig".into(), registries.to_json());
            println!("{}", serde_json::Value::Object(obj));
        }
        None | Some("table") => {
            println!("Server:");
            for (k, v) in fields {
                println!(" {k}: {v}");
            }
            for line in registries.describe() {
                println!(" {line}");
            }
        }
        Some(other) => anyhow::bail!("invalid --format {other:?}: use json, or none for text"),
    }
    Ok(0)
}
