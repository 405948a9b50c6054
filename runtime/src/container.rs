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

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libcontainer::container::Container as LcContainer;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::image::ImageConfiguration;

use crate::cgroup::CgroupPlan;
use crate::options::{MountSpec, NetworkMode, RunOptions};
use crate::rootfs::{self, RootfsError};
use crate::spec::{self, SpecContext, SpecError};
use crate::user::{self, UserError};
use crate::workload::{self, RstackExecutor};

/// File in the container dir listing the cgroup dirs its creation added.
const CGROUP_RECORD: &str = "cgroup-dirs.json";

/// The cgroup dirs recorded at creation in `container_dir` (empty if none).
pub(crate) fn recorded_cgroup_dirs(container_dir: &Path) -> Vec<PathBuf> {
    std::fs::read(container_dir.join(CGROUP_RECORD))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

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
    fn state_root(&self) -> PathBuf {
        self.run_root.join("containers")
    }
    fn names_dir(&self) -> PathBuf {
        self.run_root.join("names")
    }
    fn container_dir(&self, id: &str) -> PathBuf {
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
    #[error("no container named or with id '{name}'")]
    NoSuchContainer { name: String },
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
    #[error("the container runtime failed to {what}")]
    Executor {
        what: &'static str,
        #[source]
        source: libcontainer::error::LibcontainerError,
    },
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

/// Turns libcontainer's create error into ours, recognising the workload's
/// "command not found" messages (they travel as text through its channel).
fn executor_error(
    what: &'static str,
    source: libcontainer::error::LibcontainerError,
) -> ContainerError {
    let mut text = source.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(&source);
    while let Some(e) = cur {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cur = e.source();
    }
    if let Some(start) = text.find("exec: \"") {
        let msg = &text[start..];
        let end = msg
            .find(workload::NOT_FOUND)
            .map(|i| i + workload::NOT_FOUND.len())
            .or_else(|| {
                msg.find(workload::NOT_EXECUTABLE)
                    .map(|i| i + workload::NOT_EXECUTABLE.len())
            })
            .or_else(|| msg.find("no such file or directory").map(|i| i + 25));
        if let Some(end) = end {
            let message = msg[..end].to_owned();
            return if message.ends_with(workload::NOT_EXECUTABLE) {
                ContainerError::CommandNotExecutable { message }
            } else {
                ContainerError::CommandNotFound { message }
            };
        }
    }
    ContainerError::Executor { what, source }
}

/// Reaps libcontainer's helper processes left as zombies by a failed
/// build: on some failures it returns without waiting for its
/// intermediate and init processes, whose zombies (in the container's pid
/// namespace) would then keep the namespace's PID 1 from ever being
/// reaped. Only zombie children of ours named `youki:[...]` are touched.
fn reap_executor_zombies() {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((comm_part, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (fields.next(), fields.next());
        if state == Some("Z") && ppid == Some(me.as_str()) && comm_part.contains("(youki:[") {
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// Brings `lo` up in the (new, empty) network namespace of `pid`, as
/// Docker and runc do for `--network none`: libcontainer leaves it down, and
/// then even 127.0.0.1 is unreachable. Done from a short-lived thread,
/// since setns(CLONE_NEWNET) only moves the calling thread.
fn loopback_up(pid: Pid) -> Result<(), ContainerError> {
    let ns_path = format!("/proc/{}/ns/net", pid.as_raw());
    let ns = std::fs::File::open(&ns_path).map_err(|source| ContainerError::Io {
        what: "open",
        path: ns_path.into(),
        source,
    })?;
    let sys = |what| move |source| ContainerError::Sys { what, source };
    std::thread::spawn(move || -> Result<(), ContainerError> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(sys("enter the container's network namespace"))?;
        let sock = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(sys("open a socket in the container's network namespace"))?;
        // SAFETY: ifreq is plain old data; zeroed is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS fills `req` for the named interface on a valid socket.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
            return Err(ContainerError::Sys {
                what: "read the flags of lo",
                source: nix::Error::last(),
            });
        }
        // SAFETY: the flags member is the one SIOCGIFFLAGS just set.
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        // SAFETY: SIOCSIFFLAGS reads `req`; the socket is valid.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
            return Err(ContainerError::Sys {
                what: "bring lo up",
                source: nix::Error::last(),
            });
        }
        Ok(())
    })
    .join()
    .unwrap_or(Err(ContainerError::Sys {
        what: "bring lo up",
        source: nix::Error::EIO,
    }))
}

/// A step done during setup, undone on failure or removal.
#[derive(Debug)]
enum Undo {
    NameLink(PathBuf),
    ContainerDir(PathBuf),
    CreatedDir(PathBuf),
    Mount(PathBuf),
    File(PathBuf),
    Cgroup(Box<CgroupPlan>),
    LcState(PathBuf),
}

fn run_undo(steps: &mut Vec<Undo>) -> Vec<String> {
    let mut errors = Vec::new();
    while let Some(step) = steps.pop() {
        let res: Result<(), String> = match &step {
            Undo::NameLink(p) | Undo::File(p) => match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("remove {}: {e}", p.display()))
                }
                _ => Ok(()),
            },
            Undo::ContainerDir(p) | Undo::LcState(p) => match std::fs::remove_dir_all(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("remove {}: {e}", p.display()))
                }
                _ => Ok(()),
            },
            Undo::CreatedDir(p) => match std::fs::remove_dir(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("remove {}: {e}", p.display()))
                }
                _ => Ok(()),
            },
            Undo::Mount(p) => rootfs::unmount(p).map_err(|e| {
                let src = std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                format!("{e}: {src}")
            }),
            Undo::Cgroup(plan) => {
                // The leaf may still exist if libcontainer failed before removing it.
                for leaf in plan.leaf_dirs() {
                    if leaf.exists() {
                        let _ = std::fs::remove_dir(&leaf);
                    }
                }
                let errs = plan.remove_created();
                if errs.is_empty() {
                    Ok(())
                } else {
                    Err(errs
                        .iter()
                        .map(|(p, e)| format!("remove cgroup {}: {e}", p.display()))
                        .collect::<Vec<_>>()
                        .join("; "))
                }
            }
        };
        tracing::trace!(?step, "undone");
        if let Err(e) = res {
            tracing::warn!(error = %e, "cleanup step failed");
            errors.push(e);
        }
    }
    errors
}

fn random_id() -> String {
    let mut buf = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
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
        let id = random_id();
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
            let merged = rootfs::mount_overlay(&container_dir, layers)?;
            undo.push(Undo::Mount(merged.clone()));
            // Docker creates the working directory when missing.
            if let Some(cwd) = spec.process().as_ref().map(|p| p.cwd().clone()) {
                let inside = merged.join(cwd.strip_prefix("/").unwrap_or(&cwd));
                if !inside.exists() {
                    std::fs::create_dir_all(&inside).map_err(io("create", &inside))?;
                }
            }
            let config = container_dir.join("config.json");
            spec.save(&config).map_err(|e| ContainerError::Io {
                what: "write",
                path: config.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            // For a later process (crate::adopt) that must clean up without us.
            let record = container_dir.join(CGROUP_RECORD);
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
            let mut builder = ContainerBuilder::new(id.clone(), SyscallType::Linux)
                .with_executor(RstackExecutor { init: opts.init })
                .with_console_socket(console.as_ref().map(|(_, p)| p.clone()));
            builder = builder
                .with_root_path(paths.state_root())
                .map_err(|e| executor_error("use the state dir", e))?;
            if let Some(fd) = stdio.stdin {
                builder = builder.with_stdin(fd);
            } else if !opts.interactive {
                let null =
                    std::fs::File::open("/dev/null").map_err(io("open", Path::new("/dev/null")))?;
                builder = builder.with_stdin(OwnedFd::from(null));
            }
            if let Some(fd) = stdio.stdout {
                builder = builder.with_stdout(fd);
            }
            if let Some(fd) = stdio.stderr {
                builder = builder.with_stderr(fd);
            }
            let lc = {
                let _guard = EXECUTOR_LOCK.lock().unwrap_or_else(|p| p.into_inner());
                // libcontainer creates the cgroup dirs in build().
                let _cgroup_lock = crate::cgroup::lock();
                builder
                    .as_init(&container_dir)
                    .with_systemd(false)
                    .with_detach(true)
                    .build()
                    .map_err(|e| {
                        reap_executor_zombies();
                        executor_error("create the container", e)
                    })?
            };
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

/// Runs a process in the running container `id` (same namespaces, cgroup,
/// capabilities, seccomp filter as its first process; user, env, cwd and
/// terminal as asked). Shared by [`Container::exec`] and
/// [`crate::adopt::Adopted::exec`]. The exec'd process is a child of the
/// caller. A missing command fails with [`ContainerError::CommandNotFound`].
pub(crate) fn exec_in(
    paths: &Paths,
    id: &str,
    opts: &ExecOptions,
    stdio: Stdio,
) -> Result<ExecProcess, ContainerError> {
    let container_dir = paths.container_dir(id);
    let config = container_dir.join("config.json");
    let spec = oci_spec::runtime::Spec::load(&config).map_err(|e| ContainerError::Io {
        what: "read",
        path: config.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    // The exec'd process: the container's (caps, rlimits, no_new_privs,
    // env) with the asked args, env, cwd, user and terminal.
    let mut process = spec.process().clone().unwrap_or_default();
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    let set_env = |env: &mut Vec<String>, entry: String| {
        let key = entry
            .split_once('=')
            .map_or(entry.as_str(), |(k, _)| k)
            .to_owned();
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(entry);
    };
    if let Some(spec_user) = &opts.user {
        let passwd = std::fs::read_to_string(container_dir.join("rootfs").join("etc/passwd"))
            .unwrap_or_default();
        let group = std::fs::read_to_string(container_dir.join("rootfs").join("etc/group"))
            .unwrap_or_default();
        let u = user::resolve_user(spec_user, &[], &passwd, &group)?;
        let mut pu = process.user().clone();
        pu.set_uid(u.uid);
        pu.set_gid(u.gid);
        pu.set_additional_gids(Some(u.additional_gids.clone()));
        process.set_user(pu);
        set_env(&mut env, format!("HOME={}", u.home));
    }
    for e in &opts.env {
        set_env(&mut env, e.clone());
    }
    if opts.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        set_env(&mut env, "TERM=xterm".to_owned());
    }
    process.set_env(Some(env));
    process.set_args(Some(opts.args.clone()));
    if let Some(w) = &opts.workdir {
        process.set_cwd(PathBuf::from(w));
    }
    process.set_terminal(Some(opts.tty));
    let process_file = container_dir.join(format!("exec-{}.json", &random_id()[..12]));
    let text = serde_json::to_vec(&process).map_err(|e| ContainerError::Io {
        what: "encode",
        path: process_file.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&process_file, text).map_err(|source| ContainerError::Io {
        what: "write",
        path: process_file.clone(),
        source,
    })?;
    let _remove_process_file = RemoveOnDrop(process_file.clone());

    let console = if opts.tty {
        let dir = paths.run_root.join("tty");
        std::fs::create_dir_all(&dir).map_err(|source| ContainerError::Io {
            what: "create",
            path: dir.clone(),
            source,
        })?;
        let sock = dir.join(format!("{}.sock", &random_id()[..16]));
        let listener =
            std::os::unix::net::UnixListener::bind(&sock).map_err(|source| ContainerError::Io {
                what: "bind",
                path: sock.clone(),
                source,
            })?;
        Some((listener, RemoveOnDrop(sock)))
    } else {
        None
    };
    let mut builder = ContainerBuilder::new(id.to_owned(), SyscallType::Linux)
        .with_executor(RstackExecutor { init: false })
        .with_console_socket(console.as_ref().map(|(_, p)| p.0.clone()));
    builder = builder
        .with_root_path(paths.state_root())
        .map_err(|e| executor_error("use the state dir", e))?;
    if let Some(fd) = stdio.stdin {
        builder = builder.with_stdin(fd);
    } else if !opts.interactive {
        let null = std::fs::File::open("/dev/null").map_err(|source| ContainerError::Io {
            what: "open",
            path: "/dev/null".into(),
            source,
        })?;
        builder = builder.with_stdin(OwnedFd::from(null));
    }
    if let Some(fd) = stdio.stdout {
        builder = builder.with_stdout(fd);
    }
    if let Some(fd) = stdio.stderr {
        builder = builder.with_stderr(fd);
    }
    let tenant = builder
        .as_tenant()
        .with_process(Some(&process_file))
        .with_detach(opts.tty);
    let pid = {
        let _guard = EXECUTOR_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        tenant.build().map_err(|e| {
            // The failed process may exit a moment later: reap it, or
            // its zombie would keep the container's PID 1 from dying.
            for _ in 0..5 {
                reap_executor_zombies();
                std::thread::sleep(Duration::from_millis(10));
            }
            executor_error("exec in the container", e)
        })?
    };
    let pty_master = match console {
        Some((listener, _)) => Some(receive_pty(&listener)?),
        None => None,
    };
    Ok(ExecProcess {
        pid: Pid::from_raw(pid.as_raw()),
        pty_master,
    })
}

/// Removes a file when dropped (temporary exec files and sockets).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
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

/// A process to run in a running container ([`Container::exec`]).
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub args: Vec<String>,
    /// `KEY=VALUE` added to the container's environment.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    /// `-u` (resolved against the container's /etc/passwd).
    pub user: Option<String>,
    /// `-t`: a pseudo terminal ([`ExecProcess::take_pty_master`]).
    pub tty: bool,
    /// `-i`: keep stdin (else /dev/null when no stdin is given).
    pub interactive: bool,
}

/// A process started by [`Container::exec`].
#[derive(Debug)]
pub struct ExecProcess {
    pid: Pid,
    pty_master: Option<OwnedFd>,
}

impl ExecProcess {
    /// The pseudo terminal's master end with `tty`.
    pub fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Waits for it and returns Docker's exit code (128+signal if killed).
    pub fn wait(&self) -> Result<i32, ContainerError> {
        loop {
            match waitpid(self.pid, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
                Ok(_) | Err(nix::Error::EINTR) => continue,
                Err(source) => {
                    return Err(ContainerError::Sys {
                        what: "wait for the exec'd process",
                        source,
                    });
                }
            }
        }
    }
}

/// Parses `SIGTERM`, `TERM`, `15`.
pub fn parse_signal(s: &str) -> Result<Signal, ContainerError> {
    let bad = || ContainerError::Sys {
        what: "parse the stop signal",
        source: nix::Error::EINVAL,
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

/// Receives the pty master that libcontainer's init sent over the console socket.
fn receive_pty(listener: &std::os::unix::net::UnixListener) -> Result<OwnedFd, ContainerError> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let sys = |what| move |source| ContainerError::Sys { what, source };
    let (stream, _) = listener.accept().map_err(|e| ContainerError::Sys {
        what: "accept the console socket",
        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(sys("receive the pty"))?;
    for c in msg.cmsgs().map_err(sys("receive the pty"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this fd in our table for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(ContainerError::Sys {
        what: "receive the pty",
        source: nix::Error::EBADMSG,
    })
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
        assert_eq!(random_id().len(), 64);
    }
}
