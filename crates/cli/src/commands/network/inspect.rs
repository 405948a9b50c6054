//! `rstack network inspect`: Docker-shaped JSON.

use rstack_netns::Networks;
use rstack_netns::state::NetworkState;
use serde_json::{Value, json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network names or IDs
    #[arg(required = true)]
    networks: Vec<String>,
}

/// The `docker network inspect` object for a network.
pub fn docker_json(n: &NetworkState) -> Value {
    let containers: serde_json::Map<String, Value> = n
        .endpoints
        .values()
        .map(|e| {
            (
                e.container_id.clone(),
                json!({
                    "Name": e.name,
                    "EndpointID": e.host_veth,
                    "MacAddress": e.mac.clone().unwrap_or_default(),
                    "IPv4Address": format!("{}/{}", e.ipv4, n.subnet.prefix_len()),
                    "IPv6Address": "",
                }),
            )
        })
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}],
        },
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}

pub fn run(nets: &Networks, args: Args) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for name in &args.networks {
        match nets.inspect(name) {
            Ok(n) => out.push(docker_json(&n)),
            Err(e) => errors.push(e),
        }
    }
    println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
    if errors.is_empty() {
        return Ok(0);
    }
    for e in &errors {
        eprintln!("Error: {e}");
    }
    Ok(1)
}
