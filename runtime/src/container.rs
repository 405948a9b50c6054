//! One container's life: validate, create (rootfs, files, namespaces,
//! cgroup), start, wait, signal, stop, remove — with youki's libcontainer
//! as the executor.
//!
//! Setup follows "validate first, apply in order, undo in reverse": the
//! whole spec (user, command, caps, seccomp, limits, mounts) is built
//! before anything is created; each created resource is pushed on an undo
//! list; a failure undoes them all and reports both the failure and any
//! cleanup failure.
//!
//! libcontainer changes the process cwd while it binds its notify and
//! console sockets, so concurrent creations from several threads can
//! resolve paths against another's cwd. [`EXECUTOR_LOCK`] serialises every
//! build/start/exec call in this process.
//!
//! State layout:
//! - `<run root>/containers/<id>/` libcontainer's state (state.json, notify socket)
//! - `<run root>/names/<name>` symlink to the id (name reservation, atomic)
//! - `<run root>/tty/<id16>.sock` console socket while a `-t` container is created
//! - `<data root>/containers/<id>/` upper/work/rootfs/etc/config.json (see
//!   [`crate::rootfs`]), `cgroup-dirs.json` (cgroup dirs the creation added,
//!   for [`crate::adopt`]), `exec-*.json` (a tenant process while it starts)

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libcontainer::container::Container as LcContainer;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::image::ImageConfiguration;

use crate::cgroup::CgroupPlan;
use crate::exec::exec_in;
pub use crate::exec::{ExecOptions, ExecProcess};
use crate::options::{MountSpec, NetworkMode, RunOptions};
use crate::rootfs::{self, RootfsError};
use crate::spec::{self, SpecContext, SpecError};
use crate::sys::{
    executor_error, executor_error_text, loopback_up, reap_executor_zombies, receive_pty,
};
use crate::undo::{Undo, run_undo};
use crate::user::{self, UserError};

/// Serialises libcontainer's cwd-changing calls (see module docs).
pub static EXECUTOR_LOCK: Mutex<()> = Mutex::new(());

/// Where containers keep their state.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Volatile state (libcontainer state dirs, names, console sockets).
    pub run_root: PathBuf,
    /// Persistent per-container dirs (upper/work/rootfs).
    pub data_root: PathBuf,
    /// cgroup parent; `None` = `<caller's cgroup>/rstack`.
    pub cgroup_parent: Option<String>,
}

impl Paths {
    /// `run_root` (e.g. /run/rstack) and `data_root` (e.g. /var/lib/rstack).
    pub fn new(run_root: &Path, data_root: &Path) -> Paths {
        Paths {
            run_root: run_root.to_owned(),
            data_root: data_root.to_owned(),
            cgroup_parent: None,
        }
    }
    pub(crate) fn state_root(&self) -> PathBuf {
        self.run_root.join("containers")
    }
    fn names_dir(&self) -> PathBuf {
        self.run_root.join("names")
    }
    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.data_root.join("containers").join(id)
    }
}

/// Standard streams for the container's process; `None` inherits the caller's.
#[derive(Debug, Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// How a container's (or exec'd) process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Docker's exit code: the code, or 128+signal.
    pub code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// Killed by the kernel's OOM killer inside the memory limit.
    pub oom_killed: bool,
}

/// A failure of a container operation.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("invalid container name '{name}': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName { name: String },
    #[error("the container name \"{name}\" is already in use")]
    NameInUse { name: String },
    #[error("invalid signal '{value}'")]
    BadSignal { value: String },
    #[error("no container named or with id '{name}'")]
    NoSuchContainer { name: String },
    #[error(
        "cannot create the mount point '{target}' inside the container (is it a symlink \
         that leads out of the image's root file system?)"
    )]
    MountTarget {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the working directory '{dir}' inside the container")]
    Workdir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Caps(#[from] crate::caps::CapsError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error("bind mount source {path} cannot be used")]
    BindSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{flag} needs the {controller} cgroup controller, which this host does not have (not mounted or not enabled)"
    )]
    MissingController {
        flag: &'static str,
        controller: &'static str,
    },
    #[error("cannot {what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Docker's shape: `exec: "foo": executable file not found in $PATH` (exit 127).
    #[error("{message}")]
    CommandNotFound { message: String },
    /// `exec: "/x": permission denied` (exit 126).
    #[error("{message}")]
    CommandNotExecutable { message: String },
    #[error("the container runtime failed to {what}: {message}")]
    Executor { what: &'static str, message: String },
    #[error("cannot {what}")]
    Sys {
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("{failure}; cleaning up also failed: {}", cleanup.join("; "))]
    WithCleanup {
        #[source]
        failure: Box<ContainerError>,
        cleanup: Vec<String>,
    },
    #[error("removing the container left things behind: {}", .0.join("; "))]
    Teardown(Vec<String>),
    #[error(transparent)]
    Random(#[from] rstack_sys::random::Error),
}

impl ContainerError {
    /// The exit code `docker run` uses for this failure (125 = the
    /// runtime's own error; 126/127 = the command cannot be run).
    pub fn exit_code(&self) -> u8 {
        match self {
            ContainerError::CommandNotFound { .. } => 127,
            ContainerError::CommandNotExecutable { .. } => 126,
            ContainerError::WithCleanup { failure, .. } => failure.exit_code(),
            _ => 125,
        }
    }
}

/// A new container id (64 hex digits); an error when the kernel has no
/// random bytes to give, never a predictable id.
pub(crate) fn random_id() -> Result<String, ContainerError> {
    Ok(rstack_sys::random::random_id()?)
}

/// A container id as [`random_id`] makes them: 64 lowercase hex digits.
fn valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn rlimit_resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as R;
    Some(match name {
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

/// A created (and later started) container.
#[derive(Debug)]
pub struct Container {
    id: String,
    name: Option<String>,
    paths: Paths,
    pid: Pid,
    lc: LcContainer,
    cgroup: CgroupPlan,
    pty_master: Option<OwnedFd>,
    stop_signal: Signal,
    stop_timeout: Duration,
    exit: Option<ExitStatus>,
    undo: Vec<Undo>,
    rootfs: PathBuf,
    /// A failed exec may leave a zombie in the container's pid namespace
    /// that exits late; waits then poll and reap it (see [`reap_executor_zombies`]).
    failed_exec: std::sync::atomic::AtomicBool,
}

impl Container {
    /// Validates everything, then creates the container (not yet running its
    /// command). Nothing is left behind on failure.
    pub fn create(
        paths: &Paths,
        image: &ImageConfiguration,
        layers: &[PathBuf],
        opts: &RunOptions,
        stdio: Stdio,
    ) -> Result<Container, ContainerError> {
        let id = match &opts.id {
            Some(id)
                if valid_id(id)
                    && !paths.container_dir(id).exists()
                    && !paths.state_root().join(id).exists() =>
            {
                id.clone()
            }
            _ => random_id()?,
        };
        // ---- validate: build the whole spec before touching anything
        if let Some(name) = &opts.name {
            if !valid_name(name) {
                return Err(ContainerError::BadName { name: name.clone() });
            }
            if std::fs::symlink_metadata(paths.names_dir().join(name)).is_ok() {
                return Err(ContainerError::NameInUse { name: name.clone() });
            }
        }
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
        let user_spec = opts
            .user
            .clone()
            .or_else(|| image.config().as_ref().and_then(|c| c.user().clone()))
            .unwrap_or_default();
        let passwd = user::read_from_layers(layers, "etc/passwd").unwrap_or_default();
        let group = user::read_from_layers(layers, "etc/group").unwrap_or_default();
        let resolved = user::resolve_user(&user_spec, &opts.group_add, &passwd, &group)?;
        let held = crate::caps::caller_bounding_set();
        let caps =
            crate::caps::capability_set(opts.privileged, &opts.cap_add, &opts.cap_drop, &held)?;
        let cgroup = CgroupPlan::new(paths.cgroup_parent.as_deref(), &id);
        let r = &opts.resources;
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
        // Without CAP_SYS_RESOURCE a hard limit can only be lowered: check
        // up front rather than fail inside the half-made container.
        let can_raise = caps::has_cap(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_RESOURCE,
        )
        .unwrap_or(false);
        let hard_limits = opts
            .ulimits
            .iter()
            .filter(|_| !can_raise)
            .filter_map(|u| {
                let res = rlimit_resource(u.resource)?;
                let (_, hard) = nix::sys::resource::getrlimit(res).ok()?;
                Some((u.resource, hard))
            })
            .collect();
        let default_hostname = if opts.network == NetworkMode::Host {
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| id[..12].to_owned())
        } else {
            id[..12].to_owned()
        };
        let container_dir = paths.container_dir(&id);
        let etc_dir = container_dir.join("etc");
        let ctx = SpecContext {
            id: id.clone(),
            rootfs: container_dir.join("rootfs"),
            etc_dir: etc_dir.clone(),
            user: resolved,
            caps,
            target: crate::seccomp::Target::host(),
            cgroups_path: cgroup.path.clone(),
            hard_limits,
            default_hostname,
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
        let stop_signal = opts
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
            .unwrap_or(Signal::SIGTERM);
        // Bind sources: check what exists, create what does not (like compose).
        let mut bind_dirs_to_create = Vec::new();
        for m in &opts.mounts {
            if let MountSpec::Bind { source, .. } = m {
                match std::fs::metadata(source) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        bind_dirs_to_create.push(source.clone())
                    }
                    Err(source_err) => {
                        return Err(ContainerError::BindSource {
                            path: source.clone(),
                            source: source_err,
                        });
                    }
                }
            }
        }
        let resolv = match &opts.dns {
            Some(dns) => rootfs::resolv_conf(dns),
            None => rootfs::host_resolv_conf(
                &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
                opts.network == NetworkMode::Host,
            ),
        };
        let hosts = rootfs::hosts_file(&hostname, &opts.addresses, &opts.extra_hosts);

        // ---- apply, recording each step
        let mut undo: Vec<Undo> = Vec::new();
        let result = (|| -> Result<(LcContainer, Option<OwnedFd>), ContainerError> {
            let io = |what: &'static str, path: &Path| {
                let path = path.to_owned();
                move |source| ContainerError::Io { what, path, source }
            };
            for d in [
                paths.names_dir(),
                paths.state_root(),
                paths.data_root.join("containers"),
            ] {
                std::fs::create_dir_all(&d).map_err(io("create", &d))?;
            }
            if let Some(name) = &opts.name {
                let link = paths.names_dir().join(name);
                std::os::unix::fs::symlink(&id, &link).map_err(|e| {
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
            }
            std::fs::create_dir(&container_dir).map_err(io("create", &container_dir))?;
            undo.push(Undo::ContainerDir(container_dir.clone()));
            for dir in &bind_dirs_to_create {
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
            rootfs::write_etc_files(&etc_dir, &hostname, &hosts, &resolv)?;
            let merged = rootfs::mount_overlay(&container_dir, layers, opts.rw_dir.as_deref())?;
            undo.push(Undo::Mount(merged.clone()));
            // Docker creates the working directory when missing.
            // Resolved inside the rootfs: an image's symlinks cannot
            // point it at the host.
            if let Some(cwd) = spec.process().as_ref().map(|p| p.cwd().clone()) {
                rootfs::mkdir_all_in_root(&merged, &cwd.to_string_lossy()).map_err(|source| {
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
                rootfs::mkdir_all_in_root(&merged, dir).map_err(|source| {
                    ContainerError::MountTarget {
                        target: target.clone(),
                        source,
                    }
                })?;
            }
            let config = container_dir.join("config.json");
            spec.save(&config).map_err(|e| ContainerError::Io {
                what: "write",
                path: config.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            // For a later process (crate::adopt) that must clean up without us.
            let record = container_dir.join(crate::cgroup::CGROUP_RECORD);
            let dirs = serde_json::to_vec(&cgroup.missing_dirs).unwrap_or_default();
            std::fs::write(&record, dirs).map_err(io("write", &record))?;
            undo.push(Undo::Cgroup(Box::new(cgroup.clone())));
            undo.push(Undo::LcState(paths.state_root().join(&id)));

            let console = if opts.tty {
                let dir = paths.run_root.join("tty");
                std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
                let sock = dir.join(format!("{}.sock", &id[..16]));
                let listener =
                    std::os::unix::net::UnixListener::bind(&sock).map_err(io("bind", &sock))?;
                undo.push(Undo::File(sock.clone()));
                Some((listener, sock))
            } else {
                None
            };
            let request = crate::helper::Request {
                id: id.clone(),
                state_root: paths.state_root(),
                bundle: Some(container_dir.clone()),
                process_file: None,
                console_socket: console.as_ref().map(|(_, p)| p.clone()),
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
            let lc = LcContainer::load(paths.state_root().join(&id))
                .map_err(|e| executor_error("load the container state", e))?;
            let mut lc = lc;
            let init_pid = lc.pid().map(|p| Pid::from_raw(p.as_raw()));
            let finish = || -> Result<Option<OwnedFd>, ContainerError> {
                let pty = match &console {
                    Some((listener, _)) => Some(receive_pty(listener)?),
                    None => None,
                };
                if let (NetworkMode::None, Some(pid)) = (&opts.network, init_pid) {
                    loopback_up(pid)?;
                }
                Ok(pty)
            };
            match finish() {
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
        })();
        match result {
            Ok((lc, pty_master)) => {
                let pid =
                    lc.pid()
                        .map(|p| Pid::from_raw(p.as_raw()))
                        .ok_or(ContainerError::Sys {
                            what: "find the container's process",
                            source: nix::Error::ESRCH,
                        })?;
                tracing::debug!(%id, pid = pid.as_raw(), cgroup = %cgroup.path, "container created");
                Ok(Container {
                    id,
                    name: opts.name.clone(),
                    paths: paths.clone(),
                    pid,
                    lc,
                    rootfs: container_dir.join("rootfs"),
                    cgroup,
                    pty_master,
                    stop_signal,
                    stop_timeout: Duration::from_secs(opts.stop_timeout.unwrap_or(10).into()),
                    exit: None,
                    // Bind sources created for the user stay, as with Docker.
                    undo: undo
                        .into_iter()
                        .filter(|u| !matches!(u, Undo::CreatedDir(_)))
                        .collect(),
                    failed_exec: std::sync::atomic::AtomicBool::new(false),
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

    /// Runs the command (the process was created by [`Container::create`]).
    pub fn start(&mut self) -> Result<(), ContainerError> {
        let _guard = EXECUTOR_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        self.lc
            .start()
            .map_err(|e| executor_error("start the container", e))
    }

    /// The full id (64 hex characters).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The `--name`, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// PID of the container's first process, in the caller's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Path of the container's network namespace (for `container:<name>`
    /// and for rstack-netns to configure it).
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.pid.as_raw()))
    }

    /// The merged rootfs as seen from the host.
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// The cgroup plan (paths of the container's cgroup in each hierarchy).
    pub fn cgroup(&self) -> &CgroupPlan {
        &self.cgroup
    }

    /// The pseudo-terminal master with `-t`.
    pub fn pty_master(&self) -> Option<&OwnedFd> {
        self.pty_master.as_ref()
    }

    /// Takes the pseudo-terminal master (to move it into a relay thread).
    pub fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    /// Sends a signal to the container's first process.
    pub fn kill(&self, signal: Signal) -> Result<(), ContainerError> {
        if self.exit.is_some() {
            return Ok(());
        }
        match nix::sys::signal::kill(self.pid, signal) {
            Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
            Err(source) => Err(ContainerError::Sys {
                what: "signal the container",
                source,
            }),
        }
    }

    fn status_from(&self, ws: WaitStatus) -> Option<ExitStatus> {
        match ws {
            WaitStatus::Exited(_, code) => Some(ExitStatus {
                code,
                signal: None,
                oom_killed: false,
            }),
            WaitStatus::Signaled(_, sig, _) => Some(ExitStatus {
                code: 128 + sig as i32,
                signal: Some(sig as i32),
                oom_killed: sig == Signal::SIGKILL && self.cgroup.oom_killed(),
            }),
            _ => None,
        }
    }

    fn record(&mut self, ws: WaitStatus) -> Option<ExitStatus> {
        let mut st = self.status_from(ws)?;
        // An OOM kill of a child under --init or a shell shows as 137 too.
        if st.code == 137 && !st.oom_killed {
            st.oom_killed = self.cgroup.oom_killed();
        }
        self.exit = Some(st);
        Some(st)
    }

    /// Waits for the container's first process to exit.
    pub fn wait(&mut self) -> Result<ExitStatus, ContainerError> {
        if let Some(st) = self.exit {
            return Ok(st);
        }
        if self.failed_exec.load(std::sync::atomic::Ordering::SeqCst) {
            loop {
                reap_executor_zombies();
                if let Some(st) = self.try_wait()? {
                    return Ok(st);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        loop {
            match waitpid(self.pid, None) {
                Ok(ws) => {
                    if let Some(st) = self.record(ws) {
                        return Ok(st);
                    }
                }
                Err(nix::Error::EINTR) => continue,
                Err(source) => {
                    return Err(ContainerError::Sys {
                        what: "wait for the container",
                        source,
                    });
                }
            }
        }
    }

    /// Non-blocking: the exit status if the process has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, ContainerError> {
        if let Some(st) = self.exit {
            return Ok(Some(st));
        }
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => Ok(None),
            Ok(ws) => Ok(self.record(ws)),
            Err(source) => Err(ContainerError::Sys {
                what: "wait for the container",
                source,
            }),
        }
    }

    /// Docker's stop: the stop signal, up to `timeout` (default: the
    /// container's stop timeout) to exit, then SIGKILL.
    pub fn stop(&mut self, timeout: Option<Duration>) -> Result<ExitStatus, ContainerError> {
        if let Some(st) = self.exit {
            return Ok(st);
        }
        self.kill(self.stop_signal)?;
        let deadline = Instant::now() + timeout.unwrap_or(self.stop_timeout);
        while Instant::now() < deadline {
            if let Some(st) = self.try_wait()? {
                return Ok(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill(Signal::SIGKILL)?;
        self.wait()
    }

    /// Removes everything the container created: processes (SIGKILL),
    /// the cgroup, the state dir, the rootfs mount and dirs, the name.
    /// Continues past failures and returns them all.
    pub fn remove(mut self) -> Result<(), ContainerError> {
        let errors = self.teardown();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ContainerError::Teardown(errors))
        }
    }

    fn teardown(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.exit.is_none() {
            let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
            let _ = self.wait();
        }
        if let Err(e) = self.lc.delete(true) {
            errors.push(format!("delete container state: {e}"));
        }
        tracing::debug!(id = %self.id, "executor state deleted");
        errors.extend(run_undo(&mut self.undo));
        errors
    }

    /// Runs another process inside the running container (same namespaces,
    /// cgroup, capabilities, seccomp filter; user and env as asked).
    pub fn exec(&self, opts: &ExecOptions, stdio: Stdio) -> Result<ExecProcess, ContainerError> {
        exec_in(&self.paths, &self.id, opts, stdio).inspect_err(|_| {
            self.failed_exec
                .store(true, std::sync::atomic::Ordering::SeqCst);
        })
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.undo.is_empty() {
            for e in self.teardown() {
                tracing::warn!(id = %self.id, error = %e, "teardown on drop");
            }
        }
    }
}

/// Parses `SIGTERM`, `TERM`, `15`.
pub fn parse_signal(s: &str) -> Result<Signal, ContainerError> {
    let bad = || ContainerError::BadSignal {
        value: s.to_owned(),
    };
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().map_err(|_| bad())
}

/// Finds the network namespace of a running container by name or id.
pub fn netns_of(paths: &Paths, name_or_id: &str) -> Result<PathBuf, ContainerError> {
    let id = std::fs::read_link(paths.names_dir().join(name_or_id))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| name_or_id.to_owned());
    let state = paths.state_root().join(&id);
    let lc = LcContainer::load(state).map_err(|_| ContainerError::NoSuchContainer {
        name: name_or_id.to_owned(),
    })?;
    let pid = lc.pid().ok_or_else(|| ContainerError::NoSuchContainer {
        name: name_or_id.to_owned(),
    })?;
    Ok(PathBuf::from(format!("/proc/{}/ns/net", pid.as_raw())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_move_between_threads() {
        fn send<T: Send>() {}
        send::<Container>();
        send::<ExecProcess>();
        send::<crate::adopt::Adopted>();
    }

    #[test]
    fn names_and_signals() {
        assert!(valid_name("web-1"));
        assert!(valid_name("a.b_c"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(""));
        assert_eq!(parse_signal("SIGTERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("kill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("2").unwrap(), Signal::SIGINT);
        assert!(parse_signal("nope").is_err());
        assert_eq!(random_id().unwrap().len(), 64);
    }
}
