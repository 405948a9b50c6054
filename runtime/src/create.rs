//! Creating a container (not yet running its command), in the order
//! "validate first, apply in order, undo in reverse": [`Plan::new`] builds
//! the whole spec (user, command, caps, seccomp, limits, mounts) and checks
//! the host before anything is created; [`apply`] then creates each
//! resource and pushes it on an undo list; a failure undoes them all and
//! reports both the failure and any cleanup failure.
//!
//! The result is a [`Created`], which [`crate::Container::create`] wraps;
//! the state layout is in [`crate::paths`].

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use libcontainer::container::Container as LcContainer;
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;

use crate::cgroup::CgroupPlan;
use crate::error::ContainerError;
use crate::ids::{random_id, valid_id, valid_name};
use crate::options::{MountSpec, NetworkMode, Resources, RunOptions};
use crate::paths::Paths;
use crate::rootfs::{self, RootfsError};
use crate::signal::parse_signal;
use crate::spec::{self, SpecContext};
use crate::stdio::Stdio;
use crate::sys::{
    bind_console, executor_error, executor_error_text, loopback_up, reap_executor_zombies,
    receive_pty,
};
use crate::undo::{Undo, run_undo};
use crate::user::{self, ResolvedUser};

/// What [`create`] is asked to make; travels through every step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub paths: &'a Paths,
    pub image: &'a ImageConfiguration,
    /// The image's layer dirs, bottom → top.
    pub layers: &'a [PathBuf],
    pub opts: &'a RunOptions,
}

/// A created container: its process waits for `start`.
#[derive(Debug)]
pub(crate) struct Created {
    pub id: String,
    pub pid: Pid,
    pub lc: LcContainer,
    pub cgroup: CgroupPlan,
    pub pty_master: Option<OwnedFd>,
    pub stop_signal: Signal,
    /// The merged rootfs as seen from the host.
    pub rootfs: PathBuf,
    /// What removal undoes (bind sources created for the user stay).
    pub undo: Vec<Undo>,
}

/// Validates everything, then creates the container. Nothing is left
/// behind on failure.
pub(crate) fn create(inputs: Inputs<'_>, stdio: Stdio) -> Result<Created, ContainerError> {
    let primer = crate::cgroup::prime_attach_lock();
    let plan = Plan::new(inputs)?;
    let mut undo: Vec<Undo> = Vec::new();
    let applied = apply(inputs, &plan, stdio, &mut undo);
    if let Some(t) = primer {
        let _ = t.join();
    }
    match applied {
        Ok((lc, pty_master)) => {
            let pid = lc
                .pid()
                .map(|p| Pid::from_raw(p.as_raw()))
                .ok_or(ContainerError::Sys {
                    what: "find the container's process",
                    source: nix::Error::ESRCH,
                })?;
            let Plan {
                id,
                container_dir,
                cgroup,
                stop_signal,
                ..
            } = plan;
            tracing::debug!(%id, pid = pid.as_raw(), cgroup = %cgroup.path, "container created");
            Ok(Created {
                id,
                pid,
                lc,
                cgroup,
                pty_master,
                stop_signal,
                rootfs: container_dir.join("rootfs"),
                // Bind sources created for the user stay, as with Docker.
                undo: undo
                    .into_iter()
                    .filter(|u| !matches!(u, Undo::CreatedDir(_)))
                    .collect(),
            })
        }
        Err(failure) => {
            let cleanup = run_undo(&mut undo);
            if cleanup.is_empty() {
                Err(failure)
            } else {
                Err(ContainerError::WithCleanup {
                    failure: Box::new(failure),
                    cleanup,
                })
            }
        }
    }
}

/// Everything decided before the host is touched.
#[derive(Debug)]
struct Plan {
    id: String,
    /// `<data root>/containers/<id>`.
    container_dir: PathBuf,
    cgroup: CgroupPlan,
    spec: Spec,
    hostname: String,
    stop_signal: Signal,
    /// Bind sources that do not exist: created, like compose does.
    bind_dirs_to_create: Vec<PathBuf>,
    /// Content of the container's /etc/resolv.conf.
    resolv: String,
    /// Content of the container's /etc/hosts.
    hosts: String,
}

impl Plan {
    /// Validates the inputs and builds the whole spec.
    fn new(inputs: Inputs<'_>) -> Result<Plan, ContainerError> {
        let Inputs {
            paths,
            image,
            layers,
            opts,
        } = inputs;
        let id = choose_id(paths, opts)?;
        check_name(paths, opts)?;
        check_layers(layers)?;
        let resolved = resolve_user(image, layers, opts)?;
        let held = crate::caps::caller_bounding_set();
        let caps =
            crate::caps::capability_set(opts.privileged, &opts.cap_add, &opts.cap_drop, &held)?;
        let cgroup = CgroupPlan::new(paths.cgroup_parent.as_deref(), &id);
        check_controllers(&cgroup, &opts.resources)?;
        let container_dir = paths.container_dir(&id);
        let ctx = SpecContext {
            id: id.clone(),
            rootfs: container_dir.join("rootfs"),
            etc_dir: container_dir.join("etc"),
            user: resolved,
            caps,
            target: crate::seccomp::Target::host(),
            cgroups_path: cgroup.path.clone(),
            hard_limits: hard_limits(opts),
            default_hostname: default_hostname(opts, &id),
            swap_limit_supported: cgroup.swap_supported(),
            cgroup_view: cgroup.container_view(),
            host_devices: if opts.privileged {
                spec::host_devices(Path::new("/dev"))
            } else {
                Vec::new()
            },
        };
        let spec = spec::build_spec(image, opts, &ctx)?;
        let hostname = spec.hostname().clone().unwrap_or_default();
        let stop_signal = stop_signal(image, opts)?;
        let bind_dirs_to_create = missing_bind_sources(opts)?;
        let resolv = resolv_conf(opts);
        let hosts = rootfs::hosts_file(&hostname, &opts.addresses, &opts.extra_hosts);
        Ok(Plan {
            id,
            container_dir,
            cgroup,
            spec,
            hostname,
            stop_signal,
            bind_dirs_to_create,
            resolv,
            hosts,
        })
    }
}

/// `RunOptions::id` when it is a valid id not in use, else a new one.
fn choose_id(paths: &Paths, opts: &RunOptions) -> Result<String, ContainerError> {
    match &opts.id {
        Some(id)
            if valid_id(id)
                && !paths.container_dir(id).exists()
                && !paths.state_root().join(id).exists() =>
        {
            Ok(id.clone())
        }
        _ => random_id(),
    }
}

/// `--name`: valid and not taken (reserved for good in [`reserve_name`]).
fn check_name(paths: &Paths, opts: &RunOptions) -> Result<(), ContainerError> {
    if let Some(name) = &opts.name {
        if !valid_name(name) {
            return Err(ContainerError::BadName { name: name.clone() });
        }
        if std::fs::symlink_metadata(paths.names_dir().join(name)).is_ok() {
            return Err(ContainerError::NameInUse { name: name.clone() });
        }
    }
    Ok(())
}

fn check_layers(layers: &[PathBuf]) -> Result<(), ContainerError> {
    if layers.is_empty() {
        return Err(RootfsError::NoLayers.into());
    }
    for layer in layers {
        if !layer.is_dir() {
            return Err(RootfsError::MissingLayer {
                path: layer.clone(),
            }
            .into());
        }
    }
    Ok(())
}

/// `-u` (else the image's USER) against the image's passwd and group files.
fn resolve_user(
    image: &ImageConfiguration,
    layers: &[PathBuf],
    opts: &RunOptions,
) -> Result<ResolvedUser, ContainerError> {
    let user_spec = opts
        .user
        .clone()
        .or_else(|| image.config().as_ref().and_then(|c| c.user().clone()))
        .unwrap_or_default();
    let passwd = user::read_from_layers(layers, "etc/passwd").unwrap_or_default();
    let group = user::read_from_layers(layers, "etc/group").unwrap_or_default();
    Ok(user::resolve_user(
        &user_spec,
        &opts.group_add,
        &passwd,
        &group,
    )?)
}

/// Every limit asked for has its cgroup controller on this host.
fn check_controllers(cgroup: &CgroupPlan, r: &Resources) -> Result<(), ContainerError> {
    let needs: [(&'static str, &'static str, bool); 6] = [
        ("--memory", "memory", r.memory.is_some()),
        (
            "--memory-reservation",
            "memory",
            r.memory_reservation.is_some(),
        ),
        ("--cpus", "cpu", r.cpus.is_some()),
        ("--cpu-shares", "cpu", r.cpu_shares.is_some()),
        ("--cpuset-cpus", "cpuset", r.cpuset_cpus.is_some()),
        ("--pids-limit", "pids", r.pids_limit.is_some_and(|p| p > 0)),
    ];
    for (flag, controller, asked) in needs {
        if asked && cgroup.missing_controller(controller) {
            return Err(ContainerError::MissingController { flag, controller });
        }
    }
    Ok(())
}

/// The caller's hard limits of the `--ulimit` resources when it cannot
/// raise them. Without CAP_SYS_RESOURCE a hard limit can only be lowered:
/// the spec checks up front rather than fail inside the half-made container.
fn hard_limits(opts: &RunOptions) -> Vec<(&'static str, u64)> {
    let can_raise = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false);
    opts.ulimits
        .iter()
        .filter(|_| !can_raise)
        .filter_map(|u| {
            let res = rlimit_resource(u.resource)?;
            let (_, hard) = nix::sys::resource::getrlimit(res).ok()?;
            Some((u.resource, hard))
        })
        .collect()
}

/// `RLIMIT_*` by its OCI name (`--ulimit` and a spec's `process.rlimits`).
pub(crate) fn rlimit_resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as R;
    Some(match name {
        "RLIMIT_AS" => R::RLIMIT_AS,
        "RLIMIT_CORE" => R::RLIMIT_CORE,
        "RLIMIT_CPU" => R::RLIMIT_CPU,
        "RLIMIT_DATA" => R::RLIMIT_DATA,
        "RLIMIT_FSIZE" => R::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => R::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => R::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => R::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => R::RLIMIT_NICE,
        "RLIMIT_NOFILE" => R::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => R::RLIMIT_NPROC,
        "RLIMIT_RSS" => R::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => R::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => R::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => R::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => R::RLIMIT_STACK,
        _ => return None,
    })
}

/// The hostname without `--hostname`: the short id, or the host's own
/// with `--network host`.
fn default_hostname(opts: &RunOptions, id: &str) -> String {
    if opts.network == NetworkMode::Host {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| id[..12].to_owned())
    } else {
        id[..12].to_owned()
    }
}

/// `--stop-signal`, else the image's STOPSIGNAL, else SIGTERM.
fn stop_signal(image: &ImageConfiguration, opts: &RunOptions) -> Result<Signal, ContainerError> {
    Ok(opts
        .stop_signal
        .clone()
        .or_else(|| {
            image
                .config()
                .as_ref()
                .and_then(|c| c.stop_signal().clone())
        })
        .map(|s| parse_signal(&s))
        .transpose()?
        .unwrap_or(Signal::SIGTERM))
}

/// Bind sources: checks what exists; what does not is created later
/// (like compose).
fn missing_bind_sources(opts: &RunOptions) -> Result<Vec<PathBuf>, ContainerError> {
    let mut missing = Vec::new();
    for m in &opts.mounts {
        if let MountSpec::Bind { source, .. } = m {
            match std::fs::metadata(source) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(source.clone()),
                Err(source_err) => {
                    return Err(ContainerError::BindSource {
                        path: source.clone(),
                        source: source_err,
                    });
                }
            }
        }
    }
    Ok(missing)
}

/// `RunOptions::dns`, else the host's resolv.conf (loopback servers dropped).
fn resolv_conf(opts: &RunOptions) -> String {
    match &opts.dns {
        Some(dns) => rootfs::resolv_conf(dns),
        None => rootfs::host_resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            opts.network == NetworkMode::Host,
        ),
    }
}

/// Creates the container's resources in order, recording each in `undo`;
/// returns libcontainer's handle and the pty master with `-t`.
fn apply(
    inputs: Inputs<'_>,
    plan: &Plan,
    stdio: Stdio,
    undo: &mut Vec<Undo>,
) -> Result<(LcContainer, Option<OwnedFd>), ContainerError> {
    let Inputs {
        paths,
        layers,
        opts,
        ..
    } = inputs;
    create_state_dirs(paths)?;
    reserve_name(paths, opts, &plan.id, undo)?;
    let container_dir = &plan.container_dir;
    std::fs::create_dir(container_dir).map_err(ContainerError::io("create", container_dir))?;
    undo.push(Undo::ContainerDir(container_dir.clone()));
    create_bind_sources(&plan.bind_dirs_to_create, undo)?;
    rootfs::write_etc_files(
        &container_dir.join("etc"),
        &plan.hostname,
        &plan.hosts,
        &plan.resolv,
    )?;
    let merged = rootfs::mount_overlay(
        container_dir,
        layers,
        opts.rw_dir.as_deref(),
        opts.transient,
    )?;
    undo.push(Undo::Mount(merged.clone()));
    create_dirs_in_rootfs(&merged, &plan.spec, opts)?;
    write_bundle(paths, plan, undo)?;
    let console = if opts.tty {
        let (listener, sock) = bind_console(paths, &plan.id[..16])?;
        undo.push(Undo::File(sock.clone()));
        Some((listener, sock))
    } else {
        None
    };
    let console_socket = console.as_ref().map(|(_, p)| p.clone());
    let lc = build_container(paths, plan, opts, console_socket, stdio)?;
    finish(lc, console.as_ref().map(|(l, _)| l), opts)
}

fn create_state_dirs(paths: &Paths) -> Result<(), ContainerError> {
    for d in [
        paths.names_dir(),
        paths.state_root(),
        paths.containers_dir(),
    ] {
        std::fs::create_dir_all(&d).map_err(ContainerError::io("create", &d))?;
    }
    Ok(())
}

/// Takes the `--name` (an atomic symlink: a concurrent creation loses).
fn reserve_name(
    paths: &Paths,
    opts: &RunOptions,
    id: &str,
    undo: &mut Vec<Undo>,
) -> Result<(), ContainerError> {
    let Some(name) = &opts.name else {
        return Ok(());
    };
    let link = paths.names_dir().join(name);
    std::os::unix::fs::symlink(id, &link).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            ContainerError::NameInUse { name: name.clone() }
        } else {
            ContainerError::Io {
                what: "create",
                path: link.clone(),
                source: e,
            }
        }
    })?;
    undo.push(Undo::NameLink(link));
    Ok(())
}

/// Creates the missing bind sources, recording each dir it adds.
fn create_bind_sources(dirs: &[PathBuf], undo: &mut Vec<Undo>) -> Result<(), ContainerError> {
    for dir in dirs {
        let mut missing = Vec::new();
        let mut cur = dir.clone();
        while !cur.exists() {
            missing.push(cur.clone());
            if !cur.pop() {
                break;
            }
        }
        std::fs::create_dir_all(dir).map_err(|source| ContainerError::BindSource {
            path: dir.clone(),
            source,
        })?;
        undo.extend(missing.into_iter().rev().map(Undo::CreatedDir));
    }
    Ok(())
}

/// The working directory and the mount targets, created inside the
/// mounted rootfs `merged`.
fn create_dirs_in_rootfs(
    merged: &Path,
    spec: &Spec,
    opts: &RunOptions,
) -> Result<(), ContainerError> {
    // Docker creates the working directory when missing.
    // Resolved inside the rootfs: an image's symlinks cannot
    // point it at the host.
    if let Some(cwd) = spec.process().as_ref().map(|p| p.cwd().clone()) {
        rootfs::mkdir_all_in_root(merged, &cwd.to_string_lossy()).map_err(|source| {
            ContainerError::Workdir {
                dir: cwd.display().to_string(),
                source,
            }
        })?;
    }
    // Mount targets too, so one an image's symlink aims out of the
    // rootfs fails here naming the path (libcontainer would refuse
    // it with a bare "failed to prepare rootfs").
    for m in &opts.mounts {
        let (target, is_dir) = match m {
            MountSpec::Bind { source, target, .. } => (target, source.is_dir()),
            MountSpec::Tmpfs { target, .. } => (target, true),
        };
        let dir = if is_dir {
            target.as_str()
        } else {
            target
                .rsplit_once('/')
                .map_or("/", |(p, _)| if p.is_empty() { "/" } else { p })
        };
        rootfs::mkdir_all_in_root(merged, dir).map_err(|source| ContainerError::MountTarget {
            target: target.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Writes config.json and the cgroup record (for a later process,
/// [`crate::adopt`], that must clean up without us); from here on the
/// cgroup and libcontainer's state are libcontainer's to create.
fn write_bundle(paths: &Paths, plan: &Plan, undo: &mut Vec<Undo>) -> Result<(), ContainerError> {
    let config = plan.container_dir.join("config.json");
    plan.spec.save(&config).map_err(|e| ContainerError::Io {
        what: "write",
        path: config.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let record = plan.container_dir.join(crate::cgroup::CGROUP_RECORD);
    let dirs = serde_json::to_vec(&plan.cgroup.missing_dirs).unwrap_or_default();
    std::fs::write(&record, dirs).map_err(ContainerError::io("write", &record))?;
    undo.push(Undo::Cgroup(Box::new(plan.cgroup.clone())));
    undo.push(Undo::LcState(paths.state_root().join(&plan.id)));
    Ok(())
}

/// Has libcontainer create the container (in the build helper when one is
/// set up) and loads its state.
fn build_container(
    paths: &Paths,
    plan: &Plan,
    opts: &RunOptions,
    console_socket: Option<PathBuf>,
    stdio: Stdio,
) -> Result<LcContainer, ContainerError> {
    let request = crate::helper::Request {
        id: plan.id.clone(),
        state_root: paths.state_root(),
        bundle: Some(plan.container_dir.clone()),
        process_file: None,
        console_socket,
        init: opts.init,
        detach: true,
        null_stdin: !opts.interactive,
    };
    crate::helper::build(&request, stdio).map_err(|text| {
        reap_executor_zombies();
        executor_error_text("create the container", text)
    })?;
    // With a helper, libcontainer's intermediate process is our child.
    reap_executor_zombies();
    LcContainer::load(paths.state_root().join(&plan.id))
        .map_err(|e| executor_error("load the container state", e))
}

/// The last steps on the created process: receive the pty master, bring
/// `lo` up with `--network none`. On failure the process, which waits for
/// start, is killed and reaped.
fn finish(
    mut lc: LcContainer,
    console: Option<&UnixListener>,
    opts: &RunOptions,
) -> Result<(LcContainer, Option<OwnedFd>), ContainerError> {
    let init_pid = lc.pid().map(|p| Pid::from_raw(p.as_raw()));
    let steps = || -> Result<Option<OwnedFd>, ContainerError> {
        let pty = match console {
            Some(listener) => Some(receive_pty(listener)?),
            None => None,
        };
        if let (NetworkMode::None, Some(pid)) = (&opts.network, init_pid) {
            loopback_up(pid)?;
        }
        Ok(pty)
    };
    match steps() {
        Ok(pty) => Ok((lc, pty)),
        Err(e) => {
            // The created process waits for start: kill and reap it.
            let _ = lc.delete(true);
            if let Some(pid) = init_pid {
                let _ = waitpid(pid, None);
            }
            Err(e)
        }
    }
}
