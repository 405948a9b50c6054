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
    // A broken registry configuration is reported, not fatal: `info` is
    // where one looks when pulls fail.
    let registries = global
        .store()?
        .registry_config()
        .map_err(|e| rstack_sys::chain::chain(&e));
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
            let config = match &registries {
                Ok(r) => r.to_json(),
                Err(e) => serde_json::json!({ "Error": e }),
            };
            obj.insert("RegistryConfig".into(), config);
            println!("{}", serde_json::Value::Object(obj));
        }
        None | Some("table") => {
            println!("Server:");
            for (k, v) in fields {
                println!(" {k}: {v}");
            }
            match &registries {
                Ok(r) => {
                    for line in r.describe() {
                        println!(" {line}");
                    }
                }
                Err(e) => println!(" Registry Config: error: {e}"),
            }
        }
        Some(other) => anyhow::bail!("invalid --format {other:?}: use json, or none for text"),
    }
    Ok(0)
}
