//! A Compose service turned into what the leaf crates take: the runtime's
//! [`RunOptions`] (docker run semantics), the published [`PortSpec`]s and
//! the network endpoints, plus the config hash that tells whether a
//! running container still matches its service.
//!
//! Everything is validated here, before anything is created, so a bad
//! value fails `up` with the service and key named and nothing to undo.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rstack_compose::Project;
use rstack_compose::model::Service;
use rstack_netns::{Link, NetworkEndpoint, PortSpec};
use rstack_runtime::options::{DnsConfig, MountSpec, NetworkMode, Resources, RunOptions};
use rstack_runtime::parse;
use sha2::Digest;

/// A value of a service that rstack cannot use.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("service {service}: invalid {key} '{value}'")]
    Bad {
        service: String,
        key: &'static str,
        value: String,
    },
    #[error("service {service}: invalid {key}")]
    Parse {
        service: String,
        key: &'static str,
        #[source]
        source: parse::ParseError,
    },
    #[error("service {service}: {key} '{value}' is not supported by rstack")]
    Unsupported {
        service: String,
        key: &'static str,
        value: String,
    },
}

/// How a container joins the network.
#[derive(Debug, Clone)]
pub enum NetPlan {
    /// Its own pinned netns attached to these networks.
    Bridge(Vec<NetworkEndpoint>),
    Host,
    None,
    /// `service:NAME` / `container:NAME`: the namespace of that container.
    Join(String),
}

/// What one container of a service needs.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    pub options: RunOptions,
    pub ports: Vec<PortSpec>,
    pub net: NetPlan,
    /// Named volumes (full name, target, fill from the image when empty).
    pub volumes: Vec<(String, String, bool)>,
    /// Secret and config files to write before the container is created
    /// (`content:` / `environment:` sources), mounted read-only.
    pub files: Vec<FileToWrite>,
    /// The service's `expose` entries (`80`, `8000-8002/udp`).
    pub expose: Vec<String>,
}

/// The ports a container exposes without publishing them, as `docker
/// compose ps` lists them (`80/tcp`): the image's `ExposedPorts` and the
/// service's `expose` (ranges expanded), minus the published ones, sorted
/// by number then protocol. Entries that do not parse are left out.
pub(crate) fn exposed_only(
    image: &[String],
    expose: &[String],
    published: &[String],
) -> Vec<String> {
    let mut out: Vec<(u32, String)> = Vec::new();
    for e in image.iter().chain(expose) {
        let (range, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u32>(), hi.trim().parse::<u32>()) else {
            continue;
        };
        for port in lo..=hi.min(lo + 1000) {
            let text = format!("{port}/{proto}");
            let shown = published.iter().any(|p| p.ends_with(&format!("->{text}")));
            if !shown && !out.iter().any(|(_, t)| *t == text) {
                out.push((port, text));
            }
        }
    }
    out.sort();
    out.into_iter().map(|(_, t)| t).collect()
}

/// The anonymous volumes Docker makes for an image's `VOLUME`s: one per
/// path no mount of the container already covers, in the container's
/// anonymous-volume dir (`anon_root`, named like a compose anonymous
/// volume: the first 16 hex of the target's sha256), as `(source, target)`.
/// The caller fills each from the image's content there when empty.
pub(crate) fn image_volumes(
    image_volumes: &[String],
    mounts: &[MountSpec],
    anon_root: &Path,
) -> Vec<(PathBuf, String)> {
    let norm = |p: &str| {
        let t = p.trim_end_matches('/');
        if t.is_empty() {
            "/".to_owned()
        } else {
            t.to_owned()
        }
    };
    let covered: Vec<String> = mounts
        .iter()
        .map(|m| match m {
            MountSpec::Bind { target, .. } | MountSpec::Tmpfs { target, .. } => norm(target),
        })
        .collect();
    let mut out: Vec<(PathBuf, String)> = Vec::new();
    for v in image_volumes {
        let target = norm(v);
        if !target.starts_with('/')
            || target == "/"
            || covered.contains(&target)
            || out.iter().any(|(_, t)| *t == target)
        {
            continue;
        }
        let h = hex::encode(sha2::Sha256::digest(target.as_bytes()));
        out.push((anon_root.join(&h[..16]), target));
    }
    out
}

/// A secret or config whose content rstack writes to a host file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileToWrite {
    pub path: PathBuf,
    pub content: Vec<u8>,
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// The config hash of a service (its canonical JSON plus the image id):
/// a container whose recorded hash differs is recreated by `up`.
pub(crate) fn config_hash(service: &Service, image_id: &str) -> String {
    // the number of replicas is not part of a container's config
    let mut service = service.clone();
    service.scale = None;
    if let Some(d) = service.deploy.as_mut() {
        d.replicas = None;
    }
    let mut h = sha2::Sha256::new();
    h.update(serde_json::to_vec(&service).unwrap_or_default());
    h.update(b"\0");
    h.update(image_id.as_bytes());
    hex::encode(h.finalize())
}

/// The service a plan is built for, and how its errors name it.
struct Svc<'a> {
    project: &'a Project,
    name: &'a str,
    svc: &'a Service,
}

impl Svc<'_> {
    fn bad(&self, key: &'static str, value: &str) -> Error {
        Error::Bad {
            service: self.name.to_owned(),
            key,
            value: value.to_owned(),
        }
    }

    fn perr(&self, key: &'static str) -> impl FnOnce(parse::ParseError) -> Error + '_ {
        move |source| Error::Parse {
            service: self.name.to_owned(),
            key,
            source,
        }
    }

    fn unsupported(&self, key: &'static str, value: String) -> Error {
        Error::Unsupported {
            service: self.name.to_owned(),
            key,
            value,
        }
    }
}

/// Builds the plan of container `name` of service `svc_name`.
pub(crate) fn plan_container(
    project: &Project,
    svc_name: &str,
    name: &str,
    number: u32,
    volumes_root: &Path,
    anon_root: &Path,
) -> Result<ContainerPlan, Error> {
    let cx = Svc {
        project,
        name: svc_name,
        svc: &project.services[svc_name],
    };
    let mut o = base_options(&cx, name, number)?;
    security(&cx, &mut o)?;
    o.resources = resources(cx.svc);
    extra_hosts(&cx, &mut o)?;
    let volumes = volume_mounts(&cx, &mut o, volumes_root, anon_root)?;
    let mut files = Vec::new();
    for kind in [FileKind::Secrets, FileKind::Configs] {
        file_mounts(&cx, kind, &mut o, &mut files, anon_root)?;
    }
    for t in &cx.svc.tmpfs {
        o.mounts
            .push(parse::parse_tmpfs(t).map_err(cx.perr("tmpfs"))?);
    }
    let mut ports = ports(&cx)?;
    let net = net_plan(&cx, name)?;
    if !matches!(net, NetPlan::Bridge(_)) && !ports.is_empty() {
        ports.clear();
    }
    dns(&cx, &net, &mut o)?;
    Ok(ContainerPlan {
        options: o,
        ports,
        net,
        volumes,
        files,
        expose: cx.svc.expose.clone(),
    })
}

/// The options taken as they are: command, user, flags, environment and
/// the Compose labels.
fn base_options(cx: &Svc<'_>, name: &str, number: u32) -> Result<RunOptions, Error> {
    let svc = cx.svc;
    let mut o = RunOptions {
        name: Some(name.to_owned()),
        entrypoint: svc.entrypoint.clone(),
        command: svc.command.clone().unwrap_or_default(),
        workdir: svc.working_dir.clone(),
        user: svc.user.clone(),
        group_add: svc.group_add.clone(),
        hostname: svc.hostname.clone(),
        tty: svc.tty.unwrap_or(false),
        privileged: svc.privileged.unwrap_or(false),
        cgroupns_host: match svc.cgroup.as_deref() {
            None | Some("private") => false,
            Some("host") => true,
            Some(other) => return Err(cx.bad("cgroup", other)),
        },
        read_only: svc.read_only.unwrap_or(false),
        cap_add: svc.cap_add.clone(),
        cap_drop: svc.cap_drop.clone(),
        init: svc.init.unwrap_or(false),
        stop_signal: svc.stop_signal.clone(),
        stop_timeout: svc
            .stop_grace_period
            .map(|d| d.as_std().as_secs().min(u32::MAX as u64) as u32),
        shm_size: svc.shm_size.map(|b| b.0 as u64),
        ..Default::default()
    };
    for (k, v) in &svc.environment {
        if let Some(v) = v {
            o.env.push(format!("{k}={v}"));
        }
    }
    for (k, v) in &svc.labels {
        o.labels.insert(k.clone(), v.clone());
    }
    o.labels
        .insert("com.docker.compose.project".into(), cx.project.name.clone());
    o.labels
        .insert("com.docker.compose.service".into(), cx.name.to_owned());
    o.labels.insert(
        "com.docker.compose.container-number".into(),
        number.to_string(),
    );
    Ok(o)
}

/// `security_opt` and `ulimits`.
fn security(cx: &Svc<'_>, o: &mut RunOptions) -> Result<(), Error> {
    for s in &cx.svc.security_opt {
        match parse::parse_security_opt(s).map_err(cx.perr("security_opt"))? {
            parse::SecurityOpt::Seccomp(p) => o.seccomp = p,
            parse::SecurityOpt::NoNewPrivileges(b) => o.no_new_privileges = b,
        }
    }
    for (k, u) in &cx.svc.ulimits {
        let spec = format!("{k}={}:{}", u.soft(), u.hard());
        o.ulimits
            .push(parse::parse_ulimit(&spec).map_err(cx.perr("ulimits"))?);
    }
    Ok(())
}

/// The cgroup limits: `deploy.resources.limits` wins over the legacy keys.
fn resources(svc: &Service) -> Resources {
    let limits = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let reservations = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.reservations.as_ref());
    Resources {
        memory: limits.and_then(|l| l.memory).or(svc.mem_limit).map(|b| b.0),
        memory_reservation: reservations
            .and_then(|l| l.memory)
            .or(svc.mem_reservation)
            .map(|b| b.0),
        memory_swap: svc.memswap_limit.map(|b| b.0),
        cpus: limits
            .and_then(|l| l.cpus)
            .or(svc.cpus)
            .filter(|c| *c > 0.0),
        cpu_shares: svc.cpu_shares.map(|s| s as u64),
        cpuset_cpus: svc.cpuset.clone(),
        pids_limit: limits.and_then(|l| l.pids).or(svc.pids_limit),
    }
}

/// `extra_hosts`: `host=ip` or `host:ip`, an IPv6 address maybe bracketed.
fn extra_hosts(cx: &Svc<'_>, o: &mut RunOptions) -> Result<(), Error> {
    for h in &cx.svc.extra_hosts {
        let (host, ip) = h
            .split_once('=')
            .or_else(|| h.split_once(':'))
            .ok_or_else(|| cx.bad("extra_hosts", h))?;
        let ip: IpAddr = ip
            .trim_matches(['[', ']'])
            .parse()
            .map_err(|_| cx.bad("extra_hosts", h))?;
        o.extra_hosts.push((host.to_owned(), ip));
    }
    Ok(())
}

/// `volumes`: binds, named and anonymous volumes (bind-mounted from their
/// directories) and tmpfs. Returns the named volumes (full name, target,
/// fill from the image when empty).
fn volume_mounts(
    cx: &Svc<'_>,
    o: &mut RunOptions,
    volumes_root: &Path,
    anon_root: &Path,
) -> Result<Vec<(String, String, bool)>, Error> {
    let mut volumes = Vec::new();
    for v in &cx.svc.volumes {
        let read_only = v.read_only.unwrap_or(false);
        match v.kind.as_str() {
            "bind" => {
                let source = v
                    .source
                    .clone()
                    .ok_or_else(|| cx.bad("volumes", &v.target))?;
                o.mounts.push(MountSpec::Bind {
                    source: PathBuf::from(source),
                    target: v.target.clone(),
                    read_only,
                });
            }
            "volume" => {
                let source = match &v.source {
                    Some(key) if !key.is_empty() => {
                        let full = cx.project.volume_name(key);
                        let copy = v.volume.as_ref().and_then(|o| o.nocopy) != Some(true);
                        volumes.push((full.clone(), v.target.clone(), copy));
                        volumes_root.join(&full).join("_data")
                    }
                    _ => {
                        // anonymous: private to the container, gone with it
                        let h = hex::encode(sha2::Sha256::digest(v.target.as_bytes()));
                        anon_root.join(&h[..16])
                    }
                };
                o.mounts.push(MountSpec::Bind {
                    source,
                    target: v.target.clone(),
                    read_only,
                });
            }
            "tmpfs" => {
                let mut spec = v.target.clone();
                if let Some(size) = v.tmpfs.as_ref().and_then(|t| t.size) {
                    spec.push_str(&format!(":size={}", size.0));
                }
                o.mounts
                    .push(parse::parse_tmpfs(&spec).map_err(cx.perr("volumes"))?);
            }
            other => return Err(cx.unsupported("volumes.type", other.to_owned())),
        }
    }
    Ok(volumes)
}

/// Secrets (`/run/secrets/<name>`) or configs (`/<name>`), mounted read-only.
#[derive(Debug, Clone, Copy)]
enum FileKind {
    Secrets,
    Configs,
}

/// Mounts the service's secrets or configs: a file of the host as it is,
/// content given inline or from the environment written under `anon_root`
/// (added to `files`).
fn file_mounts(
    cx: &Svc<'_>,
    kind: FileKind,
    o: &mut RunOptions,
    files: &mut Vec<FileToWrite>,
    anon_root: &Path,
) -> Result<(), Error> {
    let (key, mounts, objects, default_dir, default_mode) = match kind {
        FileKind::Secrets => (
            "secrets",
            &cx.svc.secrets,
            &cx.project.secrets,
            "/run/secrets",
            0o444,
        ),
        FileKind::Configs => ("configs", &cx.svc.configs, &cx.project.configs, "", 0o444),
    };
    let num = |v: &Option<String>, key: &'static str| -> Result<Option<u32>, Error> {
        v.as_deref()
            .map(|x| x.parse::<u32>().map_err(|_| cx.bad(key, x)))
            .transpose()
    };
    for m in mounts {
        let obj = objects
            .get(&m.source)
            .ok_or_else(|| cx.bad(key, &m.source))?;
        let target = match &m.target {
            Some(t) if t.starts_with('/') => t.clone(),
            Some(t) => format!("{default_dir}/{t}"),
            None => format!("{default_dir}/{}", m.source),
        };
        let content = match &obj.content {
            Some(c) => Some(c.clone().into_bytes()),
            None => obj.environment.as_ref().map(|var| {
                cx.project
                    .environment
                    .get(var)
                    .cloned()
                    .unwrap_or_default()
                    .into_bytes()
            }),
        };
        let source = match (content, &obj.file) {
            (Some(content), _) => {
                let path = anon_root.join(key).join(&m.source);
                files.push(FileToWrite {
                    path: path.clone(),
                    content,
                    mode: m.mode.map(|f| f.0).unwrap_or(default_mode),
                    uid: num(&m.uid, "uid")?,
                    gid: num(&m.gid, "gid")?,
                });
                path
            }
            (None, Some(file)) => PathBuf::from(file),
            (None, None) => {
                return Err(cx.unsupported(key, format!("{} (external or driver-based)", m.source)));
            }
        };
        o.mounts.push(MountSpec::Bind {
            source,
            target,
            read_only: true,
        });
    }
    Ok(())
}

/// `ports`, in docker run's `-p` syntax.
fn ports(cx: &Svc<'_>) -> Result<Vec<PortSpec>, Error> {
    let mut ports = Vec::new();
    for p in &cx.svc.ports {
        let proto = p.protocol.as_deref().unwrap_or("tcp");
        let mut spec = String::new();
        if let Some(ip) = p.host_ip.as_deref().filter(|i| !i.is_empty()) {
            spec.push_str(ip);
            spec.push(':');
        }
        if let Some(pub_) = p.published.as_deref().filter(|s| !s.is_empty()) {
            spec.push_str(pub_);
            spec.push(':');
        } else if !spec.is_empty() {
            spec.push(':');
        }
        spec.push_str(&format!("{}/{proto}", p.target));
        ports.push(
            spec.parse::<PortSpec>()
                .map_err(|_| cx.bad("ports", &spec))?,
        );
    }
    Ok(ports)
}

/// `network_mode` and `networks`: how container `name` joins the network.
fn net_plan(cx: &Svc<'_>, name: &str) -> Result<NetPlan, Error> {
    Ok(match cx.svc.network_mode.as_deref() {
        Some("host") => NetPlan::Host,
        Some("none") => NetPlan::None,
        Some(m) if m.starts_with("service:") => {
            let target = &m["service:".len()..];
            NetPlan::Join(cx.project.container_name(target, 1))
        }
        Some(m) if m.starts_with("container:") => NetPlan::Join(m["container:".len()..].into()),
        Some("bridge") | Some("default") | None => {
            let eps = endpoints(cx, name)?;
            if eps.is_empty() {
                NetPlan::None
            } else {
                NetPlan::Bridge(eps)
            }
        }
        Some(other) => return Err(cx.unsupported("network_mode", other.to_owned())),
    })
}

/// The container's endpoint on each of the service's networks.
fn endpoints(cx: &Svc<'_>, name: &str) -> Result<Vec<NetworkEndpoint>, Error> {
    let svc = cx.svc;
    let links = links(cx.project, svc);
    let mut eps = Vec::new();
    for (key, sn) in &svc.networks {
        let mut aliases = vec![cx.name.to_owned(), name.to_owned()];
        let mut ipv4 = None;
        let mut mac = None;
        if let Some(sn) = sn {
            aliases.extend(sn.aliases.iter().cloned());
            if let Some(a) = &sn.ipv4_address {
                ipv4 = Some(a.parse().map_err(|_| cx.bad("ipv4_address", a))?);
            }
            mac = sn.mac_address.clone();
        }
        eps.push(NetworkEndpoint {
            network: cx.project.network_name(key),
            aliases,
            ipv4_address: ipv4,
            mac_address: mac.or_else(|| svc.mac_address.clone()),
            links: links.clone(),
        });
    }
    Ok(eps)
}

/// The container's resolver: the embedded DNS server on a bridge, else
/// the service's `dns` servers if it names any.
fn dns(cx: &Svc<'_>, net: &NetPlan, o: &mut RunOptions) -> Result<(), Error> {
    let svc = cx.svc;
    match net {
        NetPlan::Bridge(_) => {
            o.dns = Some(DnsConfig {
                nameservers: vec!["127.0.0.11".parse().expect("literal address")],
                search: svc.dns_search.clone(),
                options: {
                    let mut opts = vec!["ndots:0".to_owned()];
                    opts.extend(svc.dns_opt.iter().cloned());
                    opts
                },
            })
        }
        NetPlan::Host => o.network = NetworkMode::Host,
        _ => {}
    }
    if !svc.dns.is_empty() && !matches!(net, NetPlan::Bridge(_)) {
        let mut ns = Vec::new();
        for d in &svc.dns {
            ns.push(d.parse().map_err(|_| cx.bad("dns", d))?);
        }
        o.dns = Some(DnsConfig {
            nameservers: ns,
            search: svc.dns_search.clone(),
            options: svc.dns_opt.clone(),
        });
    }
    Ok(())
}

/// `links: [db:database]`: for this service's containers only, `database`
/// (and `db-1`...) name every container of `db`, as docker compose's
/// `getLinks` makes them.
fn links(project: &Project, svc: &Service) -> Vec<Link> {
    let mut out = Vec::new();
    for l in &svc.links {
        let (target, alias) = l.split_once(':').unwrap_or((l, l));
        let Some(t) = project.services.get(target) else {
            continue;
        };
        for n in 1..=u32::try_from(t.replicas()).unwrap_or(0) {
            let container = project.container_name(target, n);
            for alias in [alias.to_owned(), format!("{target}-{n}")] {
                out.push(Link {
                    container: container.clone(),
                    alias,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_host_or_private() {
        for (value, host) in [
            ("", false),
            ("cgroup: private", false),
            ("cgroup: host", true),
        ] {
            let p = project(&format!(
                "services:\n  a:\n    image: busybox\n    {value}\n"
            ));
            let plan =
                plan_container(&p, "a", "p-a-1", 1, Path::new("/v"), Path::new("/anon")).unwrap();
            assert_eq!(plan.options.cgroupns_host, host, "{value}");
        }
        // other values: the loader refuses them (the schema's enum)
    }

    #[test]
    fn image_volumes_become_anonymous_unless_mounted() {
        let mounts = vec![MountSpec::Bind {
            source: "/srv/db".into(),
            target: "/var/lib/postgresql/data/".into(),
            read_only: false,
        }];
        let v = image_volumes(
            &[
                "/var/lib/postgresql/data".into(),
                "/cache/".into(),
                "/cache".into(),
                "relative".into(),
            ],
            &mounts,
            Path::new("/anon"),
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].1, "/cache");
        assert!(v[0].0.starts_with("/anon"));
    }

    #[test]
    fn exposed_only_ports_as_compose_ps_lists_them() {
        let image = vec!["8080/tcp".to_owned(), "80/tcp".to_owned()];
        let expose = vec!["443".to_owned(), "80".to_owned(), "53/udp".to_owned()];
        assert_eq!(
            exposed_only(&image, &expose, &[]),
            ["53/udp", "80/tcp", "443/tcp", "8080/tcp"]
        );
        let published = vec!["0.0.0.0:8000->80/tcp".to_owned()];
        assert_eq!(
            exposed_only(
                &[],
                &["80".into(), "9000-9002".into(), "x".into()],
                &published
            ),
            ["9000/tcp", "9001/tcp", "9002/tcp"]
        );
    }

    fn project(yaml: &str) -> Project {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("compose.yaml"), yaml).unwrap();
        let mut o = rstack_compose::Options::new(tmp.path().to_owned(), Default::default());
        o.project_name = Some("demo".into());
        rstack_compose::load(&o).unwrap()
    }

    #[test]
    fn maps_a_service() {
        let p = project(
            r#"
services:
  web:
    image: busybox
    command: ["httpd", "-f"]
    environment: {A: "1"}
    ports: ["8080:80", "127.0.0.1:9000:9000/udp"]
    volumes: ["data:/data", "/srv:/srv:ro", {type: tmpfs, target: /t}]
    networks: {front: {aliases: [www]}}
    mem_limit: 64m
    stop_grace_period: 3s
    extra_hosts: ["h:10.0.0.1"]
networks: {front: {}}
volumes: {data: {}}
"#,
        );
        let plan =
            plan_container(&p, "web", "demo-web-1", 1, Path::new("/v"), Path::new("/a")).unwrap();
        let o = &plan.options;
        assert_eq!(o.command, ["httpd", "-f"]);
        assert_eq!(o.env, ["A=1"]);
        assert_eq!(o.resources.memory, Some(64 << 20));
        assert_eq!(o.stop_timeout, Some(3));
        assert_eq!(plan.ports.len(), 2);
        assert_eq!(plan.volumes, [("demo_data".into(), "/data".into(), true)]);
        assert!(o.mounts.contains(&MountSpec::Bind {
            source: "/v/demo_data/_data".into(),
            target: "/data".into(),
            read_only: false
        }));
        assert!(o.mounts.contains(&MountSpec::Bind {
            source: "/srv".into(),
            target: "/srv".into(),
            read_only: true
        }));
        let NetPlan::Bridge(eps) = &plan.net else {
            panic!("{:?}", plan.net)
        };
        assert_eq!(eps[0].network, "demo_front");
        assert_eq!(eps[0].aliases, ["web", "demo-web-1", "www"]);
        assert_eq!(o.labels["com.docker.compose.project"], "demo");
        let h1 = config_hash(&p.services["web"], "img");
        assert_eq!(h1, config_hash(&p.services["web"], "img"));
        assert_ne!(h1, config_hash(&p.services["web"], "img2"));
    }

    #[test]
    fn secrets_and_configs() {
        let p = project(
            r#"
services:
  web:
    image: busybox
    secrets: [token, {source: key, target: k.txt, mode: 0400}]
    configs: [{source: conf, target: /etc/app.conf}]
secrets:
  token: {environment: TOKEN}
  key: {file: /srv/key}
configs:
  conf: {content: "a=1"}
"#,
        );
        let plan = plan_container(&p, "web", "c", 1, Path::new("/v"), Path::new("/a")).unwrap();
        let binds: Vec<_> = plan
            .options
            .mounts
            .iter()
            .filter_map(|m| match m {
                MountSpec::Bind {
                    source,
                    target,
                    read_only: true,
                } => Some((source.clone(), target.clone())),
                _ => None,
            })
            .collect();
        assert!(binds.contains(&("/a/secrets/token".into(), "/run/secrets/token".into())));
        assert!(binds.contains(&("/srv/key".into(), "/run/secrets/k.txt".into())));
        assert!(binds.contains(&("/a/configs/conf".into(), "/etc/app.conf".into())));
        let conf = plan
            .files
            .iter()
            .find(|f| f.path.ends_with("conf"))
            .unwrap();
        assert_eq!(conf.content, b"a=1");
    }

    #[test]
    fn bad_values_name_the_service() {
        let p = project("services:\n  web:\n    image: busybox\n    extra_hosts: [\"nocolon\"]\n");
        let e = plan_container(&p, "web", "x", 1, Path::new("/v"), Path::new("/a"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("web") && e.contains("extra_hosts"), "{e}");
    }
}
