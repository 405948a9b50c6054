//! One container of a service brought up and torn down, in the order that
//! lets a crash at any point be cleaned up: the record first (status
//! `creating`, the netns path), then the pinned netns, the network
//! attachments (veths, addresses, DNAT), the DNS server in its netns, the
//! runtime container (record updated with its id and cgroup dirs), start
//! (record updated with pid + start time). Teardown goes in reverse and
//! continues past failures.

use std::path::PathBuf;

use rstack_images::LocalImage;
use rstack_netns::{Attachment, ContainerNetworkSpec, NetworkEndpoint, Sandbox};
use rstack_runtime::adopt::Adopted;
use rstack_runtime::options::{NetworkMode, RunOptions};
use rstack_runtime::{Container, Stdio};

use crate::creator::Creator;
use crate::mapping::{self, NetPlan};
use crate::process::Pidfd;
use crate::state::{ContainerRecord, ProjectPaths, Status, Stream};

pub(crate) use crate::error_chain::chain;
pub use crate::mapping::ContainerPlan;
pub use crate::prepare::{Env, plan};

/// A failure creating or removing a container.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Prepare(#[from] crate::prepare::Error),
    #[error(transparent)]
    State(#[from] crate::state::Error),
    #[error(transparent)]
    Logs(#[from] crate::logs::Error),
    #[error(transparent)]
    Volume(#[from] crate::volumes::Error),
    #[error(transparent)]
    VolumeDriver(#[from] crate::volume_driver::Error),
    #[error("container {name}: cannot set up its network namespace")]
    Netns {
        name: String,
        #[source]
        source: rstack_netns::pinned::Error,
    },
    #[error("container {name}: cannot attach it to its networks")]
    Attach {
        name: String,
        #[source]
        source: rstack_netns::attach::Error,
    },
    #[error("container {name}: cannot serve DNS in its namespace")]
    Dns {
        name: String,
        #[source]
        source: rstack_netns::dns::server::Error,
    },
    #[error("container {name}: cannot join the network of {target}")]
    Join {
        name: String,
        target: String,
        #[source]
        source: Box<rstack_runtime::ContainerError>,
    },
    #[error("container {name}")]
    Runtime {
        name: String,
        #[source]
        source: Box<rstack_runtime::ContainerError>,
    },
    #[error("container {name}: cannot reach the container creator")]
    Creator {
        name: String,
        #[source]
        source: crate::creator::Error,
    },
    #[error("{message}")]
    Create { message: String },
    #[error("container {name}: cannot watch its process")]
    Process {
        name: String,
        #[source]
        source: crate::process::Error,
    },
    #[error("{failure}; cleaning up also failed: {}", cleanup.join("; "))]
    WithCleanup {
        #[source]
        failure: Box<Error>,
        cleanup: Vec<String>,
    },
}

/// A running container the supervisor created.
pub struct Started {
    /// The handle, when created in this process (not by a [`Creator`]).
    pub container: Option<Container>,
    pub pidfd: Pidfd,
    pub attachments: Vec<Attachment>,
    pub dns: Option<rstack_netns::dns::ServeHandle>,
}

/// What stays the same for every step of one [`create_and_start`]: where
/// things go, the image, and who serves DNS and clones the container.
pub struct Launcher<'a> {
    pub env: &'a Env,
    pub pp: &'a ProjectPaths,
    pub image: &'a LocalImage,
    /// Serves the embedded DNS in the container's netns (none: no DNS).
    pub resolver: Option<&'a rstack_netns::Resolver>,
    /// The runtime the DNS server runs on.
    pub rt: &'a tokio::runtime::Handle,
    /// Clones the container from a single-threaded process (the
    /// supervisor's); none: here, with the caller's stdio (`run`).
    pub creator: Option<&'a Creator>,
}

/// The network set up so far for one container: undone on a failure.
#[derive(Default)]
struct Wired {
    attachments: Vec<Attachment>,
    dns: Option<rstack_netns::dns::ServeHandle>,
}

/// Creates and starts container `rec.name` (its record is saved at each
/// step); on failure undoes what was set up and records the container as
/// exited with code 125.
pub fn create_and_start(
    l: &Launcher<'_>,
    rec: &mut ContainerRecord,
    plan: &ContainerPlan,
    stdio: Option<Stdio>,
) -> Result<Started, Error> {
    rec.volumes = plan.volumes.iter().map(|(v, _, _)| v.clone()).collect();
    let mut options = plan.options.clone();
    // a restarted container keeps its id (docker's is the same container);
    // a new one gets it now, so its networks know its short id as an alias
    if rec.id.is_none() {
        rec.id = rstack_sys::random::random_id().ok();
    }
    options.id = rec.id.clone();
    record_creating(l, rec, plan)?;
    let mut wired = Wired::default();
    let result = wire_network(l, rec, plan, &mut options, &mut wired)
        .and_then(|()| prepare_mounts(l, &rec.name, plan, &mut options))
        .and_then(|()| match l.creator {
            Some(creator) => start_in_creator(l, creator, rec, plan, &options),
            None => start_here(l, rec, &options, stdio),
        });
    match result {
        Ok((container, pidfd)) => Ok(Started {
            container,
            pidfd,
            attachments: wired.attachments,
            dns: wired.dns,
        }),
        Err(failure) => Err(undo(l, rec, wired, failure)),
    }
}

/// Step 1: the record, with the netns path before the netns exists.
fn record_creating(
    l: &Launcher<'_>,
    rec: &mut ContainerRecord,
    plan: &ContainerPlan,
) -> Result<(), Error> {
    if let NetPlan::Bridge(_) = &plan.net {
        rec.netns = Some(l.env.netns_path(&rec.name));
    }
    rec.status = Status::Creating;
    l.pp.save_container(rec)?;
    Ok(())
}

/// The step of the sandbox that failed, as the container's error.
fn sandbox_error(name: &str, e: rstack_netns::sandbox::Error) -> Error {
    let name = name.to_owned();
    match e {
        rstack_netns::sandbox::Error::Netns { source, .. } => Error::Netns { name, source },
        rstack_netns::sandbox::Error::Attach(source) => Error::Attach { name, source },
        rstack_netns::sandbox::Error::Dns(source) => Error::Dns { name, source },
    }
}

/// The endpoints with the container's short id (12 hex digits) among
/// their aliases, as Docker resolves it on a user-defined network.
fn with_short_id(eps: &[NetworkEndpoint], id: Option<&str>) -> Vec<NetworkEndpoint> {
    let mut eps = eps.to_vec();
    if let Some(short) = id.and_then(|i| i.get(..12)) {
        for e in &mut eps {
            if !e.aliases.iter().any(|a| a == short) {
                e.aliases.push(short.to_owned());
            }
        }
    }
    eps
}

/// Step 2: the pinned netns, its attachments and DNS server (bridge), or
/// the namespace of the container it joins.
fn wire_network(
    l: &Launcher<'_>,
    rec: &mut ContainerRecord,
    plan: &ContainerPlan,
    options: &mut RunOptions,
    wired: &mut Wired,
) -> Result<(), Error> {
    let name = rec.name.clone();
    match &plan.net {
        NetPlan::Bridge(eps) => {
            let path = rec.netns.clone().unwrap_or_default();
            let spec = ContainerNetworkSpec {
                container_id: name.clone(),
                name: name.clone(),
                hostname: options.hostname.clone(),
                netns: path.clone(),
                networks: with_short_id(eps, rec.id.as_deref()),
                ports: plan.ports.clone(),
            };
            // DNS is served on the supervisor's runtime
            let sandbox = {
                let _guard = l.rt.enter();
                Sandbox::open(&l.env.networks, &spec, l.resolver)
            }
            .map_err(|e| sandbox_error(&name, e))?;
            record_ports(l.image, rec, plan, sandbox.attachments());
            options.addresses = sandbox
                .attachments()
                .iter()
                .map(|a| a.ipv4.into())
                .collect();
            options.network = NetworkMode::Path(path.clone());
            (wired.attachments, wired.dns) = sandbox.into_parts();
            l.pp.save_container(rec)?;
        }
        NetPlan::Join(target) => {
            let path =
                rstack_runtime::container::netns_of(&l.env.runtime, target).map_err(|source| {
                    Error::Join {
                        name: name.clone(),
                        target: target.clone(),
                        source: Box::new(source),
                    }
                })?;
            options.network = NetworkMode::Path(path);
        }
        NetPlan::Host | NetPlan::None => {}
    }
    Ok(())
}

/// The networks, published and exposed-only ports of an attached container.
fn record_ports(
    image: &LocalImage,
    rec: &mut ContainerRecord,
    plan: &ContainerPlan,
    attachments: &[Attachment],
) {
    rec.networks = attachments.iter().map(|a| a.network.clone()).collect();
    rec.ports = attachments
        .iter()
        .flat_map(|a| a.ports.iter().map(|p| p.to_string()))
        .collect();
    let image_exposed: Vec<String> = image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.exposed_ports().clone())
        .unwrap_or_default();
    rec.exposed = mapping::exposed_only(&image_exposed, &plan.expose, &rec.ports);
}

/// Step 3: secrets and configs written, volumes filled, the image's
/// `VOLUME`s added as anonymous volumes.
fn prepare_mounts(
    l: &Launcher<'_>,
    name: &str,
    plan: &ContainerPlan,
    options: &mut RunOptions,
) -> Result<(), Error> {
    for f in &plan.files {
        write_file(f)?;
    }
    for (vol, target, copy) in &plan.volumes {
        crate::volume_driver::ensure_mounted(vol, &l.env.layout.volume_dir(vol))?;
        let data = l.env.layout.volume_dir(vol).join("_data");
        let layers: &[PathBuf] = if *copy { &l.image.layer_dirs } else { &[] };
        crate::volumes::prepare(&data, layers, target)?;
    }
    crate::prepare::add_image_volumes(options, l.image, &l.pp.anon_dir(name), true)?;
    Ok(())
}

/// Step 4, supervisor: the creator's worker creates and starts it.
fn start_in_creator(
    l: &Launcher<'_>,
    creator: &Creator,
    rec: &mut ContainerRecord,
    plan: &ContainerPlan,
    options: &RunOptions,
) -> Result<(Option<Container>, Pidfd), Error> {
    let name = rec.name.clone();
    let netns = match &options.network {
        NetworkMode::Path(p) if matches!(plan.net, NetPlan::Bridge(_)) => Some(p.clone()),
        _ => None,
    };
    let reply = creator
        .call(&crate::creator::Request::Create {
            service: rec.service.clone(),
            name: name.clone(),
            number: rec.number,
            netns,
            addresses: options.addresses.clone(),
            id: rec.id.clone(),
        })
        .map_err(|source| Error::Creator {
            name: name.clone(),
            source,
        })?;
    let (id, pid, dirs, leaves) = match reply {
        crate::creator::Reply::Created {
            id,
            pid,
            cgroup_dirs,
            cgroup_leaves,
        } => (id, pid, cgroup_dirs, cgroup_leaves),
        crate::creator::Reply::Failed(message) => return Err(Error::Create { message }),
    };
    let pidfd = Pidfd::open(pid).map_err(|source| Error::Process { name, source })?;
    rec.id = Some(id);
    rec.cgroup_dirs = dirs;
    rec.cgroup_leaves = leaves;
    mark_running(l.pp, rec, pid)?;
    Ok((None, pidfd))
}

/// Step 4, `run`: created and started in this process. Output goes to
/// files the supervisor tails (never to a pipe whose reader may die),
/// unless the caller brings its own.
fn start_here(
    l: &Launcher<'_>,
    rec: &mut ContainerRecord,
    options: &RunOptions,
    stdio: Option<Stdio>,
) -> Result<(Option<Container>, Pidfd), Error> {
    let name = rec.name.clone();
    let stdio = match stdio {
        Some(s) => s,
        None => {
            let out = crate::logs::open_raw(&l.pp.raw_log(&name, Stream::Stdout))?;
            let err = crate::logs::open_raw(&l.pp.raw_log(&name, Stream::Stderr))?;
            Stdio {
                stdin: None,
                stdout: Some(out.into()),
                stderr: Some(err.into()),
            }
        }
    };
    let runtime = |source| Error::Runtime {
        name: name.clone(),
        source: Box::new(source),
    };
    let mut container = Container::create(
        &l.env.runtime,
        &l.image.config,
        &l.image.layer_dirs,
        options,
        stdio,
    )
    .map_err(runtime)?;
    rec.id = Some(container.id().to_owned());
    rec.cgroup_dirs = container.cgroup().missing_dirs.clone();
    rec.cgroup_leaves = container.cgroup().leaf_dirs();
    rec.status = Status::Created;
    l.pp.save_container(rec)?;
    container.start().map_err(runtime)?;
    let pid = container.pid();
    let pidfd = Pidfd::open(pid).map_err(|source| Error::Process {
        name: name.clone(),
        source,
    })?;
    mark_running(l.pp, rec, pid)?;
    Ok((Some(container), pidfd))
}

/// Step 5: pid + start time recorded, status running.
fn mark_running(pp: &ProjectPaths, rec: &mut ContainerRecord, pid: i32) -> Result<(), Error> {
    rec.pid = Some(pid);
    rec.start_time = crate::process::start_time(pid);
    rec.status = Status::Running;
    rec.started_at = Some(crate::state::now_rfc3339());
    rec.exit_code = None;
    rec.exit_unknown = false;
    rec.finished_at = None;
    pp.save_container(rec)?;
    Ok(())
}

/// A failed create: DNS stopped, network torn down, the record says exit
/// 125; returns the failure with any cleanup failure.
fn undo(l: &Launcher<'_>, rec: &mut ContainerRecord, wired: Wired, failure: Error) -> Error {
    if let Some(d) = wired.dns {
        l.rt.block_on(d.stop());
    }
    drop(wired.attachments);
    let cleanup = teardown_network(l.env, rec);
    rec.status = Status::Exited;
    rec.exit_code = Some(125);
    rec.finished_at = Some(crate::state::now_rfc3339());
    let _ = l.pp.save_container(rec);
    if cleanup.is_empty() {
        failure
    } else {
        Error::WithCleanup {
            failure: Box::new(failure),
            cleanup,
        }
    }
}

/// Writes a secret or config file with its mode and owner.
fn write_file(f: &mapping::FileToWrite) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let err = |what: &'static str| {
        let io = crate::io_error::io(what, &f.path);
        move |e| crate::state::Error::from(io(e))
    };
    if let Some(dir) = f.path.parent() {
        std::fs::create_dir_all(dir).map_err(err("create"))?;
    }
    std::fs::write(&f.path, &f.content).map_err(err("write"))?;
    std::fs::set_permissions(&f.path, std::fs::Permissions::from_mode(f.mode))
        .map_err(err("chmod"))?;
    if f.uid.is_some() || f.gid.is_some() {
        std::os::unix::fs::chown(&f.path, f.uid, f.gid).map_err(err("chown"))?;
    }
    Ok(())
}

/// How long a torn-down container's veth pairs may take to go with its
/// namespace before they are deleted one by one.
const LINKS_GONE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Removes a (stopped) container's pinned netns and detaches it from its
/// networks. The namespace goes first: the kernel then deletes its veth
/// pairs in one batch with every namespace dying alongside (a `down`),
/// instead of one `RTM_DELLINK` after another under the rtnl lock; the
/// addresses are released once the links are gone. Idempotent; returns
/// what failed.
pub fn teardown_network(env: &Env, rec: &mut ContainerRecord) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(path) = rec.netns.clone() {
        let links = env.networks.host_links(&rec.name).unwrap_or_default();
        if let Err(e) = rstack_netns::remove_pinned_netns(&path) {
            errors.push(format!("remove netns {}: {}", path.display(), chain(&e)));
        }
        if let Err(e) = env.networks.await_links_gone(&links, LINKS_GONE_WAIT) {
            errors.push(format!("detach {}: {}", rec.name, chain(&e)));
        }
        if let Err(e) = env.networks.disconnect_container(&rec.name) {
            errors.push(format!("detach {}: {}", rec.name, chain(&e)));
        }
    }
    errors
}

/// Removes whatever is left of a container whose supervisor is gone (or a
/// crash left half-created): kills it, tears down the runtime container
/// and its network. Returns what failed.
pub fn remove_leftover(env: &Env, rec: &mut ContainerRecord) -> Vec<String> {
    let mut errors = Vec::new();
    let key = rec.id.clone().unwrap_or_else(|| rec.name.clone());
    match Adopted::open(&env.runtime, &key) {
        Ok(a) => {
            if let Err(e) = a.remove(&rec.cgroup_dirs) {
                errors.push(chain(&e));
            }
        }
        Err(rstack_runtime::ContainerError::NoSuchContainer { .. }) => {}
        Err(e) => errors.push(chain(&e)),
    }
    errors.extend(teardown_network(env, rec));
    errors
}
