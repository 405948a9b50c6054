//! `rstack inspect` and `rstack container inspect`: docker's low-level JSON
//! of containers, images, networks and volumes.
//!
//! Containers are the records of every project under the run root (no
//! supervisor needed), found like docker finds them: full id, then name
//! (`/name` too), then a unique id prefix. Images, networks and volumes
//! take the shapes of `image inspect`, `network inspect` and `volume
//! inspect`. Without `--type` the kinds are tried in docker's order
//! (container, image, network, volume); what is found is printed, and
//! each name that is not found is an error (exit code 1).

use std::collections::BTreeMap;

use anyhow::bail;
use rstack_images::Store;
use rstack_netns::Networks;
use rstack_netns::state::NetworkState;
use rstack_stack::state::{ContainerRecord, Layout, ProjectPaths};
use serde::Serialize;
use serde_json::{Value, json};

use super::network::inspect as network_inspect;
use super::{image, images, network, stack_common, volume};
use crate::global::GlobalOpts;

/// The kinds of object `inspect` knows, in docker's lookup order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Container,
    Image,
    Network,
    Volume,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Container, Kind::Image, Kind::Network, Kind::Volume];

    fn noun(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Image => "image",
            Kind::Network => "network",
            Kind::Volume => "volume",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format the output: 'json' (one line) or a template like
    /// '{{.State.Status}}' or '{{json .State}}'
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only inspect objects of the given type
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<Kind>,
    /// Containers, images, networks or volumes
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ContainerArgs {
    /// Format the output: 'json' (one line) or a template like
    /// '{{.State.Status}}' or '{{json .State}}'
    #[arg(short, long)]
    pub format: Option<String>,
    /// Containers (name, id or unique id prefix)
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let kinds = match args.kind {
        Some(k) => vec![k],
        None => Kind::ALL.to_vec(),
    };
    inspect(global, &args.names, &kinds, args.format.as_deref())
}

pub fn run_container(global: &GlobalOpts, args: ContainerArgs) -> anyhow::Result<u8> {
    inspect(
        global,
        &args.containers,
        &[Kind::Container],
        args.format.as_deref(),
    )
}

fn inspect(
    global: &GlobalOpts,
    names: &[String],
    kinds: &[Kind],
    format: Option<&str>,
) -> anyhow::Result<u8> {
    if let Some(t) = format.filter(|t| *t != "json") {
        // a broken template fails before anything is looked up
        images::render(t, &Value::Null)?;
    }
    let mut objects = Objects::new(global);
    let noun = match kinds {
        [k] => k.noun(),
        _ => "object",
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        match objects.find(name, kinds) {
            Ok(Some(v)) => found.push(v),
            Ok(None) => errors.push(format!("No such {noun}: {name}")),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    print(&found, format)?;
    for e in &errors {
        eprintln!("Error: {e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

/// Docker's inspect output: an array indented by 4 spaces, a compact
/// array for `json`, or the template once per object.
fn print(found: &[Value], format: Option<&str>) -> anyhow::Result<()> {
    match format {
        None => {
            let mut out = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            found.serialize(&mut serde_json::Serializer::with_formatter(&mut out, fmt))?;
            println!("{}", String::from_utf8(out)?);
        }
        Some("json") => println!("{}", serde_json::to_string(found)?),
        Some(template) => {
            for v in found {
                println!("{}", images::render(template, v)?);
            }
        }
    }
    Ok(())
}

/// A container record and the project it belongs to.
#[derive(Debug, Clone)]
struct Found {
    project: String,
    rec: ContainerRecord,
}

/// What the names are looked up in; the image store and the networks are
/// opened on first use.
struct Objects<'g> {
    global: &'g GlobalOpts,
    layout: Layout,
    containers: Option<Vec<Found>>,
    store: Option<Store>,
    nets: Option<Networks>,
}

impl<'g> Objects<'g> {
    fn new(global: &'g GlobalOpts) -> Objects<'g> {
        Objects {
            global,
            layout: Layout::new(&global.run_root, &global.root),
            containers: None,
            store: None,
            nets: None,
        }
    }

    /// The first object of `kinds` named `name`.
    fn find(&mut self, name: &str, kinds: &[Kind]) -> anyhow::Result<Option<Value>> {
        let strict = kinds.len() == 1;
        for kind in kinds {
            let v = match kind {
                Kind::Container => self.container(name)?,
                Kind::Image => self.image(name, strict)?,
                Kind::Network => self.network(name)?,
                Kind::Volume => volume::inspect_json(&self.layout, name),
            };
            if v.is_some() {
                return Ok(v);
            }
        }
        Ok(None)
    }

    fn container(&mut self, name: &str) -> anyhow::Result<Option<Value>> {
        if self.containers.is_none() {
            let mut all = Vec::new();
            for project in self.layout.list_projects()? {
                for rec in self.layout.project(&project).containers()? {
                    all.push(Found {
                        project: project.clone(),
                        rec,
                    });
                }
            }
            self.containers = Some(all);
        }
        let all = self.containers.as_deref().unwrap_or_default();
        let Some(found) = lookup(all, name)?.cloned() else {
            return Ok(None);
        };
        let pp = self.layout.project(&found.project);
        let networks = self.container_networks(&found.rec)?;
        Ok(Some(container_json(&found, &pp, networks)))
    }

    fn image(&mut self, name: &str, strict: bool) -> anyhow::Result<Option<Value>> {
        if self.store.is_none() {
            self.store = Some(self.global.store()?);
        }
        let Some(store) = &self.store else {
            return Ok(None);
        };
        match store.lookup(name) {
            Ok(Some(i)) => Ok(Some(image::inspect_json(store, &i)?)),
            Ok(None) => Ok(None),
            // not a reference: docker skips to the next kind
            Err(rstack_images::Error::Reference(_)) if !strict => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn networks(&mut self) -> anyhow::Result<&Networks> {
        if self.nets.is_none() {
            self.nets = Some(network::networks(self.global)?);
        }
        match &self.nets {
            Some(n) => Ok(n),
            None => bail!("networks are not available"),
        }
    }

    fn network(&mut self, name: &str) -> anyhow::Result<Option<Value>> {
        match self.networks()?.inspect(name) {
            Ok(n) => Ok(Some(network_inspect::docker_json(&n))),
            Err(rstack_netns::network::Error::State(rstack_netns::state::Error::NotFound {
                ..
            })) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The networks a container is attached to, by name, with its endpoint
    /// when the network still has one for it.
    fn container_networks(
        &mut self,
        rec: &ContainerRecord,
    ) -> anyhow::Result<Vec<(String, Option<NetworkState>)>> {
        let mut out = Vec::new();
        for name in &rec.networks {
            let state = match self.networks()?.inspect(name) {
                Ok(n) => Some(n),
                Err(rstack_netns::network::Error::State(
                    rstack_netns::state::Error::NotFound { .. },
                )) => None,
                Err(e) => return Err(e.into()),
            };
            out.push((name.clone(), state));
        }
        Ok(out)
    }
}

/// The container `query` names in any project (full id, name, unique id
/// prefix), with its project.
pub(crate) fn find_container(
    layout: &Layout,
    query: &str,
) -> anyhow::Result<Option<(String, ContainerRecord)>> {
    let mut all = Vec::new();
    for project in layout.list_projects()? {
        for rec in layout.project(&project).containers()? {
            all.push(Found {
                project: project.clone(),
                rec,
            });
        }
    }
    Ok(lookup(&all, query)?.map(|f| (f.project.clone(), f.rec.clone())))
}

/// Docker's resolution of a container reference: a full id, then an exact
/// name, then a unique id prefix. A prefix shared by several containers
/// is an error naming them.
fn lookup<'a>(all: &'a [Found], query: &str) -> anyhow::Result<Option<&'a Found>> {
    if query.is_empty() {
        return Ok(None);
    }
    let id = |f: &Found| f.rec.id.clone().unwrap_or_default();
    if let Some(f) = all.iter().find(|f| id(f) == query) {
        return Ok(Some(f));
    }
    let name = query.strip_prefix('/').unwrap_or(query);
    let named: Vec<&Found> = all.iter().filter(|f| f.rec.name == name).collect();
    match named.as_slice() {
        [f] => return Ok(Some(f)),
        [] => {}
        many => bail!(
            "several containers are named {name}: in projects {}",
            many.iter()
                .map(|f| f.project.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    let prefixed: Vec<&Found> = all.iter().filter(|f| id(f).starts_with(query)).collect();
    match prefixed.as_slice() {
        [] => Ok(None),
        [f] => Ok(Some(f)),
        many => bail!(
            "multiple IDs found with provided prefix: {query} ({})",
            many.iter()
                .map(|f| f.rec.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Go's zero time, docker's value of a time that has not happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Docker's `.State`. Pure: whether the process is alive and frozen is
/// measured by the caller.
fn state_json(rec: &ContainerRecord, alive: bool, paused: bool) -> Value {
    let status = rstack_stack::status::docker_state(rec.status, alive, paused);
    let mut state = json!({
        "Status": status,
        // docker keeps Running set while paused and while restarting
        "Running": matches!(status, "running" | "paused" | "restarting"),
        "Paused": status == "paused",
        "Restarting": status == "restarting",
        "OOMKilled": rec.oom_killed,
        "Dead": false,
        "Pid": if alive { rec.pid.unwrap_or(0) } else { 0 },
        "ExitCode": if alive { 0 } else { rec.exit_code.unwrap_or(0) },
        "Error": if rec.exit_unknown && !alive { "exit code unknown" } else { "" },
        "StartedAt": rec.started_at.as_deref().unwrap_or(ZERO_TIME),
        "FinishedAt": rec.finished_at.as_deref().unwrap_or(ZERO_TIME),
    });
    if let Some(h) = &rec.health {
        let log: Vec<Value> = h
            .log
            .iter()
            .map(|p| {
                json!({
                    "Start": p.start,
                    "End": p.end,
                    "ExitCode": p.exit_code,
                    "Output": p.output,
                })
            })
            .collect();
        state["Health"] = json!({
            "Status": h.status.as_str(),
            "FailingStreak": h.failing_streak,
            "Log": log,
        });
    }
    state
}

/// The labels docker compose puts on a container, from what the record
/// and the project's state know.
fn compose_labels(rec: &ContainerRecord, project: &str, pp: &ProjectPaths) -> Value {
    let mut labels = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        labels.insert(format!("com.docker.compose.{k}"), v);
    };
    put("project", project.to_owned());
    put("service", rec.service.clone());
    put("container-number", rec.number.to_string());
    put(
        "oneoff",
        if rec.oneoff { "True" } else { "False" }.to_owned(),
    );
    if !rec.config_hash.is_empty() {
        put("config-hash", rec.config_hash.clone());
    }
    if !rec.image_id.is_empty() {
        put("image", rec.image_id.clone());
    }
    if let Ok(res) = pp.resources() {
        if !res.config_files.is_empty() {
            let files: Vec<String> = res
                .config_files
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            put("project.config_files", files.join(","));
        }
        if !res.working_dir.as_os_str().is_empty() {
            put("project.working_dir", res.working_dir.display().to_string());
        }
    }
    json!(labels)
}

/// Docker's `NetworkSettings.Ports`: `{"80/tcp": [{"HostIp", "HostPort"}]}`.
fn ports_json(ports: &[String]) -> Value {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in ports
        .iter()
        .filter_map(|p| stack_common::parse_published(p))
    {
        out.entry(format!("{}/{}", p.container_port, p.protocol))
            .or_default()
            .push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
    }
    json!(out)
}

/// One entry of docker's `NetworkSettings.Networks`; the address fields
/// are empty when the network has no endpoint of the container (it is
/// not running).
fn endpoint_json(container: &str, net: Option<&NetworkState>) -> Value {
    let ep = net.and_then(|n| n.endpoints.values().find(|e| e.name == container));
    let dns_names = |e: &rstack_netns::state::Endpoint| {
        let mut names: Vec<String> = Vec::new();
        for n in e.dns_names() {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names
    };
    match (net, ep) {
        (Some(n), Some(e)) => json!({
            "IPAMConfig": null,
            "Links": null,
            "Aliases": e.aliases,
            "MacAddress": e.mac.clone().unwrap_or_default(),
            "NetworkID": n.id,
            "EndpointID": e.host_veth,
            "Gateway": n.gateway.to_string(),
            "IPAddress": e.ipv4.to_string(),
            "IPPrefixLen": n.subnet.prefix_len(),
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DNSNames": dns_names(e),
        }),
        _ => json!({
            "IPAMConfig": null,
            "Links": null,
            "Aliases": null,
            "MacAddress": "",
            "NetworkID": net.map(|n| n.id.as_str()).unwrap_or_default(),
            "EndpointID": "",
            "Gateway": "",
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DNSNames": null,
        }),
    }
}

/// Docker's `container inspect` object, with the keys rstack has data for.
fn container_json(
    found: &Found,
    pp: &ProjectPaths,
    networks: Vec<(String, Option<NetworkState>)>,
) -> Value {
    let rec = &found.rec;
    let live = rstack_stack::status::liveness(rec);
    let nets: serde_json::Map<String, Value> = networks
        .iter()
        .map(|(name, n)| (name.clone(), endpoint_json(&rec.name, n.as_ref())))
        .collect();
    json!({
        "Id": rec.id.clone().unwrap_or_default(),
        "Created": rec.created,
        "Path": rec.command.first().cloned().unwrap_or_default(),
        "Args": rec.command.iter().skip(1).collect::<Vec<_>>(),
        "State": state_json(rec, live.alive, live.paused),
        "Image": rec.image_id,
        "LogPath": pp.json_log(&rec.name),
        "Name": format!("/{}", rec.name),
        "RestartCount": rec.restart_count,
        "Config": {
            "Image": rec.image,
            "Labels": compose_labels(rec, &found.project, pp),
        },
        "NetworkSettings": {
            "SandboxKey": rec.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            "Ports": ports_json(&rec.ports),
            "Networks": nets,
        },
    })
}

#[cfg(test)]
mod tests {
    use rstack_stack::state::{Health, HealthRecord, ProbeResult, Status};

    use super::*;

    fn found(project: &str, name: &str, id: Option<&str>) -> Found {
        let mut rec = ContainerRecord::new(name, "web", 1);
        rec.id = id.map(str::to_owned);
        Found {
            project: project.to_owned(),
            rec,
        }
    }

    fn name_of(r: anyhow::Result<Option<&Found>>) -> Option<String> {
        r.unwrap().map(|f| f.rec.name.clone())
    }

    #[test]
    fn lookup_by_id_name_and_prefix() {
        let all = [
            found("demo", "demo-web-1", Some("abc123")),
            found("demo", "demo-db-1", Some("abd456")),
            found("other", "other-x-1", None),
        ];
        assert_eq!(name_of(lookup(&all, "abc123")), Some("demo-web-1".into()));
        assert_eq!(name_of(lookup(&all, "demo-db-1")), Some("demo-db-1".into()));
        assert_eq!(
            name_of(lookup(&all, "/demo-db-1")),
            Some("demo-db-1".into())
        );
        assert_eq!(name_of(lookup(&all, "other-x-1")), Some("other-x-1".into()));
        assert_eq!(name_of(lookup(&all, "abd")), Some("demo-db-1".into()));
        assert_eq!(name_of(lookup(&all, "nosuch")), None);
        assert_eq!(name_of(lookup(&all, "")), None);
        let err = lookup(&all, "ab").unwrap_err().to_string();
        assert!(err.contains("prefix: ab"), "{err}");
        assert!(
            err.contains("demo-web-1") && err.contains("demo-db-1"),
            "{err}"
        );
    }

    #[test]
    fn lookup_prefers_full_id_then_name() {
        // a container named like another's id prefix
        let all = [
            found("demo", "abc", Some("ffff")),
            found("demo", "demo-web-1", Some("abcdef")),
        ];
        assert_eq!(name_of(lookup(&all, "abc")), Some("abc".into()));
        assert_eq!(name_of(lookup(&all, "abcdef")), Some("demo-web-1".into()));
        let twice = [found("a", "web", Some("1")), found("b", "web", Some("2"))];
        let err = lookup(&twice, "web").unwrap_err().to_string();
        assert!(err.contains("projects a, b"), "{err}");
    }

    #[test]
    fn state_like_docker() {
        let mut rec = ContainerRecord::new("demo-web-1", "web", 1);
        rec.status = Status::Running;
        rec.pid = Some(42);
        rec.started_at = Some("2024-01-01T00:00:00Z".into());
        let s = state_json(&rec, true, false);
        assert_eq!(s["Status"], "running");
        assert_eq!(s["Running"], true);
        assert_eq!(s["Pid"], 42);
        assert_eq!(s["FinishedAt"], ZERO_TIME);
        assert!(s.get("Health").is_none());

        let s = state_json(&rec, true, true);
        assert_eq!(s["Status"], "paused");
        assert_eq!(
            (s["Running"].clone(), s["Paused"].clone()),
            (json!(true), json!(true))
        );

        // recorded running, but the process is gone
        let s = state_json(&rec, false, false);
        assert_eq!(s["Status"], "exited");
        assert_eq!(
            (s["Running"].clone(), s["Pid"].clone()),
            (json!(false), json!(0))
        );

        rec.status = Status::Exited;
        rec.exit_code = Some(3);
        rec.finished_at = Some("2024-01-01T00:01:00Z".into());
        let s = state_json(&rec, false, false);
        assert_eq!(s["ExitCode"], 3);
        assert_eq!(s["FinishedAt"], "2024-01-01T00:01:00Z");

        rec.status = Status::Restarting;
        let s = state_json(&rec, false, false);
        assert_eq!(s["Status"], "restarting");
        assert_eq!(
            (s["Running"].clone(), s["Restarting"].clone()),
            (json!(true), json!(true))
        );

        rec.status = Status::Creating;
        assert_eq!(state_json(&rec, false, false)["Status"], "created");
    }

    #[test]
    fn health_like_docker() {
        let mut rec = ContainerRecord::new("demo-web-1", "web", 1);
        rec.health = Some(HealthRecord {
            status: Health::Unhealthy,
            failing_streak: 3,
            log: vec![ProbeResult {
                start: "s".into(),
                end: "e".into(),
                exit_code: 1,
                output: "connection refused\n".into(),
            }],
        });
        let h = &state_json(&rec, false, false)["Health"];
        assert_eq!(h["Status"], "unhealthy");
        assert_eq!(h["FailingStreak"], 3);
        assert_eq!(
            h["Log"],
            json!([{"Start": "s", "End": "e", "ExitCode": 1, "Output": "connection refused\n"}])
        );
    }

    #[test]
    fn ports_keyed_by_container_port() {
        let ports = [
            "0.0.0.0:8080->80/tcp".to_owned(),
            "127.0.0.1:8081->80/tcp".to_owned(),
            "0.0.0.0:5353->53/udp".to_owned(),
        ];
        assert_eq!(
            ports_json(&ports),
            json!({
                "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
                "80/tcp": [
                    {"HostIp": "0.0.0.0", "HostPort": "8080"},
                    {"HostIp": "127.0.0.1", "HostPort": "8081"},
                ],
            })
        );
    }

    #[test]
    fn compose_labels_from_the_record() {
        // no project.json there: no config_files / working_dir labels
        let none = std::path::Path::new("/nonexistent/rstack");
        let pp = Layout::new(none, none).project("demo");
        let mut rec = ContainerRecord::new("demo-web-1", "web", 2);
        rec.image_id = "sha256:abc".into();
        let l = compose_labels(&rec, "demo", &pp);
        assert_eq!(l["com.docker.compose.project"], "demo");
        assert_eq!(l["com.docker.compose.service"], "web");
        assert_eq!(l["com.docker.compose.container-number"], "2");
        assert_eq!(l["com.docker.compose.oneoff"], "False");
        assert_eq!(l["com.docker.compose.image"], "sha256:abc");
        assert!(l.get("com.docker.compose.config-hash").is_none());
    }
}
