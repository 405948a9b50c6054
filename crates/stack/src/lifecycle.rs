//! One container of a service brought up and torn down, in the order that
//! lets a crash at any point be cleaned up: the record first (status
//! `creating`, the netns path), then the pinned netns, the network
//! attachments (veths, addresses, DNAT), the DNS server in its netns, the
//! runtime container (record updated with its id and cgroup dirs), start
//! (record updated with pid + start time). Teardown goes in reverse and
//! continues past failures.

use std::path::{Path, PathBuf};

use rstack_compose::Project;
use rstack_images::LocalImage;
use rstack_netns::{Attachment, ContainerNetworkSpec, Networks};
use rstack_runtime::adopt::Adopted;
use rstack_runtime::options::NetworkMode;
use rstack_runtime::{Container, Stdio};

use crate::creator::Creator;
use crate::mapping::{self, ContainerPlan, NetPlan};
use crate::process::Pidfd;
use crate::state::{ContainerRecord, Layout, ProjectPaths, Status, Stream};

/// A failure creating or removing a container.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Mapping(#[from] mapping::Error),
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

/// What the supervisor needs to reach the leaf crates.
#[derive(Debug, Clone)]
pub struct Env {
    pub layout: Layout,
    pub runtime: rstack_runtime::Paths,
    pub networks: Networks,
}

impl Env {
    pub fn new(run_root: &Path, root: &Path) -> Env {
        Env {
            layout: Layout::new(run_root, root),
            runtime: rstack_runtime::Paths::new(run_root, root),
            networks: Networks::new(rstack_netns::Config::new(run_root)),
        }
    }

    /// Where a container's pinned netns lives.
    pub fn netns_path(&self, name: &str) -> PathBuf {
        self.networks.paths().netns_dir().join(name)
    }
}

/// A running container the supervisor created.
pub struct Started {
    /// The handle, when created in this process (not by a [`Creator`]).
    pub container: Option<Container>,
    pub pidfd: Pidfd,
    pub attachments: Vec<Attachment>,
    pub dns: Option<rstack_netns::dns::ServeHandle>,
}

/// The plan of a container (validated before anything is created).
pub fn plan(
    env: &Env,
    pp: &ProjectPaths,
    project: &Project,
    service: &str,
    name: &str,
    number: u32,
) -> Result<ContainerPlan, Error> {
    let mut plan = mapping::plan_container(
        project,
        service,
        name,
        number,
        &env.layout.root.join("volumes"),
        &pp.anon_dir(name),
    )?;
    plan.options.rw_dir = Some(pp.rw_dir(name));
    Ok(plan)
}

/// Creates and starts container `rec.name` (its record is saved at each step).
#[allow(clippy::too_many_arguments)]
pub fn create_and_start(
    env: &Env,
    pp: &ProjectPaths,
    rec: &mut ContainerRecord,
    plan: &ContainerPlan,
    image: &LocalImage,
    resolver: Option<&rstack_netns::Resolver>,
    rt: &tokio::runtime::Handle,
    stdio: Option<Stdio>,
    creator: Option<&Creator>,
) -> Result<Started, Error> {
    let name = rec.name.clone();
    rec.volumes = plan.volumes.iter().map(|(v, _, _)| v.clone()).collect();
    let mut options = plan.options.clone();
    // a restarted container keeps its id (docker's is the same container)
    options.id = rec.id.clone();
    let mut netns = None;
    let mut attachments = Vec::new();
    let mut dns = None;
    if let NetPlan::Bridge(_) = &plan.net {
        let path = env.netns_path(&name);
        rec.netns = Some(path.clone());
        rec.status = Status::Creating;
        pp.save_container(rec)?;
        netns = Some(path);
    } else {
        rec.status = Status::Creating;
        pp.save_container(rec)?;
    }
    let result = (|| -> Result<Started, Error> {
        match &plan.net {
            NetPlan::Bridge(eps) => {
                let path = netns.clone().unwrap_or_default();
                rstack_netns::create_pinned_netns(&path).map_err(|source| Error::Netns {
                    name: name.clone(),
                    source,
                })?;
                attachments = env
                    .networks
                    .connect_container(&ContainerNetworkSpec {
                        container_id: name.clone(),
                        name: name.clone(),
                        hostname: options.hostname.clone(),
                        netns: path.clone(),
                        networks: eps.clone(),
                        ports: plan.ports.clone(),
                    })
                    .map_err(|source| Error::Attach {
                        name: name.clone(),
                        source,
                    })?;
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
                rec.exposed =
                    crate::mapping::exposed_only(&image_exposed, &plan.expose, &rec.ports);
                options.addresses = attachments.iter().map(|a| a.ipv4.into()).collect();
                options.network = NetworkMode::Path(path.clone());
                pp.save_container(rec)?;
                if let Some(r) = resolver {
                    let _guard = rt.enter();
                    dns = Some(r.serve(&name, &path).map_err(|source| Error::Dns {
                        name: name.clone(),
                        source,
                    })?);
                }
            }
            NetPlan::Join(target) => {
                let path = rstack_runtime::container::netns_of(&env.runtime, target).map_err(
                    |source| Error::Join {
                        name: name.clone(),
                        target: target.clone(),
                        source: Box::new(source),
                    },
                )?;
                options.network = NetworkMode::Path(path);
            }
            NetPlan::Host | NetPlan::None => {}
        }
        for f in &plan.files {
            write_file(f)?;
        }
        for (vol, target, copy) in &plan.volumes {
            crate::volume_driver::ensure_mounted(vol, &env.layout.volume_dir(vol))?;
            let data = env.layout.volume_dir(vol).join("_data");
            let layers: &[PathBuf] = if *copy { &image.layer_dirs } else { &[] };
            crate::volumes::prepare(&data, layers, target)?;
        }
        // the image's VOLUMEs: anonymous volumes, filled from the image
        add_image_volumes(&mut options, image, &pp.anon_dir(&name), true)?;
        if let Some(creator) = creator {
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
                crate::creator::Reply::Failed(message) => {
                    return Err(Error::Create { message });
                }
                crate::creator::Reply::Probed(_) => {
                    return Err(Error::Create {
                        message: format!("container {name}: unexpected answer"),
                    });
                }
            };
            let pidfd = Pidfd::open(pid).map_err(|source| Error::Process {
                name: name.clone(),
                source,
            })?;
            rec.id = Some(id);
            rec.cgroup_dirs = dirs;
            rec.cgroup_leaves = leaves;
            rec.pid = Some(pid);
            rec.start_time = crate::process::start_time(pid);
            rec.status = Status::Running;
            rec.started_at = Some(crate::state::now_rfc3339());
            rec.exit_code = None;
            rec.exit_unknown = false;
            rec.finished_at = None;
            pp.save_container(rec)?;
            return Ok(Started {
                container: None,
                pidfd,
                attachments: std::mem::take(&mut attachments),
                dns: dns.take(),
            });
        }
        // Output goes to files the supervisor tails (never to a pipe whose
        // reader may die), unless the caller brings its own (`run`).
        let stdio = match stdio {
            Some(s) => s,
            None => {
                let out = crate::logs::open_raw(&pp.raw_log(&name, Stream::Stdout))?;
                let err = crate::logs::open_raw(&pp.raw_log(&name, Stream::Stderr))?;
                Stdio {
                    stdin: None,
                    stdout: Some(out.into()),
                    stderr: Some(err.into()),
                }
            }
        };
        let mut container = Container::create(
            &env.runtime,
            &image.config,
            &image.layer_dirs,
            &options,
            stdio,
        )
        .map_err(|source| Error::Runtime {
            name: name.clone(),
            source: Box::new(source),
        })?;
        rec.id = Some(container.id().to_owned());
        rec.cgroup_dirs = container.cgroup().missing_dirs.clone();
        rec.cgroup_leaves = container.cgroup().leaf_dirs();
        rec.status = Status::Created;
        pp.save_container(rec)?;
        container.start().map_err(|source| Error::Runtime {
            name: name.clone(),
            source: Box::new(source),
        })?;
        let pid = container.pid();
        let pidfd = Pidfd::open(pid).map_err(|source| Error::Process {
            name: name.clone(),
            source,
        })?;
        rec.pid = Some(pid);
        rec.start_time = crate::process::start_time(pid);
        rec.status = Status::Running;
        rec.started_at = Some(crate::state::now_rfc3339());
        rec.exit_code = None;
        rec.exit_unknown = false;
        rec.finished_at = None;
        pp.save_container(rec)?;
        Ok(Started {
            container: Some(container),
            pidfd,
            attachments: std::mem::take(&mut attachments),
            dns: dns.take(),
        })
    })();
    match result {
        Ok(s) => Ok(s),
        Err(failure) => {
            if let Some(d) = dns.take() {
                rt.block_on(d.stop());
            }
            drop(std::mem::take(&mut attachments));
            let cleanup = teardown_network(env, rec);
            rec.status = Status::Exited;
            rec.exit_code = Some(125);
            rec.finished_at = Some(crate::state::now_rfc3339());
            let _ = pp.save_container(rec);
            if cleanup.is_empty() {
                Err(failure)
            } else {
                Err(Error::WithCleanup {
                    failure: Box::new(failure),
                    cleanup,
                })
            }
        }
    }
}

/// Writes a secret or config file with its mode and owner.
fn write_file(f: &mapping::FileToWrite) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let err = |what: &'static str| {
        let path = f.path.clone();
        move |source| crate::state::Error::Io { what, path, source }
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

/// Detaches a container from its networks and removes its pinned netns.
/// Idempotent; returns what failed.
pub fn teardown_network(env: &Env, rec: &mut ContainerRecord) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(path) = rec.netns.clone() {
        if let Err(e) = env.networks.disconnect_container(&rec.name) {
            errors.push(format!("detach {}: {}", rec.name, chain(&e)));
        }
        if let Err(e) = rstack_netns::remove_pinned_netns(&path) {
            errors.push(format!("remove netns {}: {}", path.display(), chain(&e)));
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

/// Mounts the image's `VOLUME`s as anonymous volumes (see
/// [`mapping::image_volumes`]), filling each from the image when `fill`
/// (the creator process mounts what its caller already filled). Kept across
/// restarts, gone with the container, as Docker's.
pub(crate) fn add_image_volumes(
    options: &mut rstack_runtime::options::RunOptions,
    image: &LocalImage,
    anon: &Path,
    fill: bool,
) -> Result<(), Error> {
    let declared = image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.volumes().clone())
        .unwrap_or_default();
    for (source, target) in mapping::image_volumes(&declared, &options.mounts, anon) {
        if fill {
            crate::volumes::prepare(&source, &image.layer_dirs, &target)?;
        }
        options
            .mounts
            .push(rstack_runtime::options::MountSpec::Bind {
                source,
                target,
                read_only: false,
            });
    }
    Ok(())
}

/// An error and its causes, `: `-joined.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
