//! Short processes next to a running container's own — healthcheck probes —
//! started directly instead of through libcontainer's tenant path.
//!
//! The tenant path ([`crate::exec`]) costs 35–50 ms a process: a re-exec of
//! this binary, libcontainer's state load, an intermediate process, a
//! process file on disk and a fresh seccomp compilation. A probe every few
//! seconds in each of ten services makes that most of the runtime's CPU on
//! an edge device. A [`Target`] is prepared once per container run (the
//! init's pidfd, its cgroup, the process's user, capabilities, rlimits,
//! no_new_privs, env and cwd from config.json, and its seccomp filter
//! compiled to BPF by [`crate::seccomp_bpf`]); [`Target::spawn`] then only
//! forks and execs:
//!
//! - the calling thread enters the container's PID namespace for its
//!   children (`setns(pidfd, CLONE_NEWPID)`, a per-thread setting, undone
//!   right after the clone), so the child is born inside it;
//! - the child (a `CLONE_VM | CLONE_VFORK` child of a multi-threaded
//!   process, [`crate::vfork`]: system calls only, no allocation) joins
//!   the container's cgroups (`0` into each v1 `tasks`, see [`join_file`],
//!   or the v2 `cgroup.procs`; `clone3(CLONE_INTO_CGROUP)` would save the
//!   v2 write but needs a raw clone3 with a child stack), its mount, UTS,
//!   IPC, network and cgroup namespaces (`setns(pidfd, ...)`), becomes its
//!   own process group (killed as one on timeout), marks every fd but 0–2
//!   close-on-exec, applies rlimits and umask, drops the bounding set,
//!   switches user and groups, sets capabilities (ambient included),
//!   no_new_privs and the seccomp filter in runc's order, changes to the
//!   working directory and execs with the container's environment (the
//!   `PATH` search runs in the child, inside the container's root).
//!
//! No pty, no state file, no helper process: the process is the caller's
//! child, waited for like any other.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use oci_spec::runtime::{LinuxCapabilities, Process, Spec};

use crate::error::ContainerError;
use crate::paths::Paths;
use crate::seccomp_bpf::Bpf;
use crate::vfork::SpawnError;

/// A running container, ready for [`Target::spawn`].
#[derive(Debug)]
pub struct Target {
    pidfd: OwnedFd,
    cgroup_procs: Vec<PathBuf>,
    setup: ChildSetup,
    env: Vec<(String, String)>,
}

/// What the forked child applies (plain data: read without allocating).
#[derive(Debug)]
struct ChildSetup {
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
    umask: Option<libc::mode_t>,
    rlimits: Vec<(libc::__rlimit_resource_t, libc::rlimit)>,
    caps: CapMasks,
    last_cap: u32,
    no_new_privs: bool,
    seccomp: Option<Arc<Bpf>>,
    cwd: CString,
}

/// The five capability sets as bit masks (bit n = capability n).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct CapMasks {
    bounding: u64,
    effective: u64,
    permitted: u64,
    inheritable: u64,
    ambient: u64,
}

impl Target {
    /// Prepares container `name_or_id` (running): reads its config.json,
    /// compiles its seccomp filter (cached) and holds its init by pidfd.
    pub fn prepare(paths: &Paths, name_or_id: &str) -> Result<Target, ContainerError> {
        let adopted = crate::adopt::Adopted::open(paths, name_or_id)?;
        let id = adopted.id().to_owned();
        let pid = adopted.pid().ok_or(ContainerError::Sys {
            what: "find the container's init process (not running)",
            source: nix::Error::ESRCH,
        })?;
        let pidfd = rstack_sys::proc::pidfd_open(pid).map_err(|e| ContainerError::Sys {
            what: "hold the container's init process",
            source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        let config = paths.container_dir(&id).join("config.json");
        let spec = Spec::load(&config).map_err(|e| ContainerError::Io {
            what: "read",
            path: config.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let process = spec.process().clone().unwrap_or_default();
        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(
                crate::seccomp_bpf::compile(s).map_err(|e| ContainerError::Io {
                    what: "use the seccomp filter of",
                    path: config.clone(),
                    source: std::io::Error::other(e),
                })?,
            ),
            None => None,
        };
        let plan = crate::cgroup::CgroupPlan::new(paths.cgroup_parent.as_deref(), &id);
        let cgroup_procs = plan
            .leaf_dirs()
            .into_iter()
            .filter_map(|d| join_file(&d))
            .collect();
        let env = process
            .env()
            .iter()
            .flatten()
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(Target {
            pidfd,
            cgroup_procs,
            setup: child_setup(&process, seccomp)?,
            env,
        })
    }

    /// Starts `argv` in the container with stdin /dev/null and the given
    /// stdout/stderr. The child leads its own process group (kill the
    /// group to kill what it started). A missing command is the spawn's
    /// `ENOENT`.
    pub fn spawn(
        &self,
        argv: &[String],
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<DirectChild, ContainerError> {
        let Some(program) = argv.first() else {
            return Err(ContainerError::Sys {
                what: "run an empty command in the container",
                source: nix::Error::EINVAL,
            });
        };
        let procs: Vec<OwnedFd> = self
            .cgroup_procs
            .iter()
            .map(|p| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .map(OwnedFd::from)
                    .map_err(ContainerError::io("open", p))
            })
            .collect::<Result<_, _>>()?;
        let path = self
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
        let prog =
            crate::vfork::Program::new(argv, &self.env, path).ok_or(ContainerError::Sys {
                what: "run a command or environment holding a NUL byte",
                source: nix::Error::EINVAL,
            })?;
        let null = std::fs::File::open("/dev/null").map_err(ContainerError::io(
            "open",
            std::path::Path::new("/dev/null"),
        ))?;
        let setup: &ChildSetup = &self.setup;
        let pidfd = self.pidfd.as_raw_fd();
        let proc_fds: Vec<i32> = procs.iter().map(|f| f.as_raw_fd()).collect();
        let init = || child_init(pidfd, &proc_fds, setup);
        let _in_pidns = PidnsForChildren::enter(&self.pidfd)?;
        let stdio = [null.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()];
        match crate::vfork::spawn(&prog, stdio, &init) {
            Ok(pid) => Ok(DirectChild { pid }),
            Err(SpawnError::Exec(e)) if e.raw_os_error() == Some(libc::ENOENT) => {
                Err(ContainerError::CommandNotFound {
                    message: format!("exec: \"{program}\": executable file not found in $PATH"),
                })
            }
            Err(SpawnError::Exec(e)) if e.raw_os_error() == Some(libc::EACCES) => {
                Err(ContainerError::CommandNotExecutable {
                    message: format!("exec: \"{program}\": permission denied"),
                })
            }
            Err(SpawnError::Exec(source)) => Err(ContainerError::Io {
                what: "run",
                path: PathBuf::from(program),
                source,
            }),
            Err(SpawnError::Setup(source)) => Err(ContainerError::Io {
                what: "set up the container's process for",
                path: PathBuf::from(program),
                source,
            }),
            Err(SpawnError::Clone(source)) => Err(ContainerError::Io {
                what: "start a process for",
                path: PathBuf::from(program),
                source,
            }),
        }
    }
}

/// A process started by [`Target::spawn`] (a child of the caller).
#[derive(Debug)]
pub struct DirectChild {
    pid: libc::pid_t,
}

impl DirectChild {
    /// Its pid (it leads its own process group).
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Waits for it to exit.
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        use std::os::unix::process::ExitStatusExt;
        loop {
            let mut status = 0;
            // SAFETY: waitpid on our own child with a status out-pointer.
            let rc = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if rc == self.pid {
                return Ok(std::process::ExitStatus::from_raw(status));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// `PATH` when the container's environment has none (runc's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The file a new single-threaded process writes `0` to, to join the
/// cgroup `dir`: a v1 hierarchy's `tasks` (moving the only thread moves the
/// process, and skips the global threadgroup lock that a `cgroup.procs`
/// write takes — an RCU grace period: 11.5 ms for 7 controllers here
/// against 0.24 ms), else (cgroup v2) `cgroup.procs`.
fn join_file(dir: &std::path::Path) -> Option<PathBuf> {
    ["tasks", "cgroup.procs"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
}

/// The process settings of config.json, resolved for the child.
fn child_setup(p: &Process, seccomp: Option<Arc<Bpf>>) -> Result<ChildSetup, ContainerError> {
    let user = p.user();
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let rlimits = p
        .rlimits()
        .iter()
        .flatten()
        .filter_map(|r| {
            let name = serde_json::to_value(r.typ()).ok()?;
            let res = crate::create::rlimit_resource(name.as_str()?)?;
            Some((
                res as libc::__rlimit_resource_t,
                libc::rlimit {
                    rlim_cur: r.soft(),
                    rlim_max: r.hard(),
                },
            ))
        })
        .collect();
    Ok(ChildSetup {
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        rlimits,
        caps: p.capabilities().as_ref().map(cap_masks).unwrap_or_default(),
        last_cap,
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        seccomp,
        cwd: CString::new(p.cwd().as_os_str().as_encoded_bytes()).map_err(|_| {
            ContainerError::Sys {
                what: "use the container's working directory",
                source: nix::Error::EINVAL,
            }
        })?,
    })
}

fn cap_masks(c: &LinuxCapabilities) -> CapMasks {
    let mask = |set: &Option<oci_spec::runtime::Capabilities>| -> u64 {
        let set: std::collections::HashSet<caps::Capability> = set
            .iter()
            .flatten()
            .filter_map(|cap| {
                let name = serde_json::to_value(cap).ok()?;
                caps::Capability::from_str(name.as_str()?).ok()
            })
            .collect();
        crate::caps::mask(&set)
    };
    CapMasks {
        bounding: mask(c.bounding()),
        effective: mask(c.effective()),
        permitted: mask(c.permitted()),
        inheritable: mask(c.inheritable()),
        ambient: mask(c.ambient()),
    }
}

/// The calling thread's children are born in the container's PID namespace
/// until this is dropped (`setns(CLONE_NEWPID)` only changes
/// `pid_for_children`, per thread; going back to the thread's own active
/// namespace is always allowed).
struct PidnsForChildren {
    own: OwnedFd,
}

impl PidnsForChildren {
    fn enter(pidfd: &OwnedFd) -> Result<PidnsForChildren, ContainerError> {
        let own = std::fs::File::open("/proc/thread-self/ns/pid")
            .map(OwnedFd::from)
            .map_err(ContainerError::io(
                "open",
                std::path::Path::new("/proc/thread-self/ns/pid"),
            ))?;
        // SAFETY: setns with an fd we hold and a namespace flag.
        if unsafe { libc::setns(pidfd.as_raw_fd(), libc::CLONE_NEWPID) } < 0 {
            return Err(ContainerError::Sys {
                what: "enter the container's PID namespace",
                source: nix::Error::last(),
            });
        }
        Ok(PidnsForChildren { own })
    }
}

impl Drop for PidnsForChildren {
    fn drop(&mut self) {
        // SAFETY: setns back to the thread's own active PID namespace.
        if unsafe { libc::setns(self.own.as_raw_fd(), libc::CLONE_NEWPID) } < 0 {
            tracing::error!(
                "cannot leave a container's PID namespace: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Namespaces the child joins through the init's pidfd (PID comes from
/// the parent thread, user namespaces are not used).
const JOIN: libc::c_int = libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP;

fn check(rc: libc::c_long) -> std::io::Result<()> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// In the forked child: system calls only (see the module docs for the order).
fn child_init(pidfd: i32, cgroup_procs: &[i32], s: &ChildSetup) -> std::io::Result<()> {
    // SAFETY: raw system calls on fds and plain data prepared before the
    // fork; nothing allocates or takes a lock.
    unsafe {
        for &fd in cgroup_procs {
            check(libc::write(fd, b"0".as_ptr().cast(), 1) as libc::c_long)?;
        }
        check(libc::setns(pidfd, JOIN) as libc::c_long)?;
        check(libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ))?;
        for (res, lim) in &s.rlimits {
            check(libc::setrlimit(*res, lim) as libc::c_long)?;
        }
        if let Some(m) = s.umask {
            libc::umask(m);
        }
        if !s.no_new_privs {
            // still root with CAP_SYS_ADMIN: the kernel takes the filter
            load_seccomp(s)?;
        }
        for cap in 0..=s.last_cap.min(63) {
            if s.caps.bounding & (1 << cap) == 0 {
                check(libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) as libc::c_long)?;
            }
        }
        check(libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) as libc::c_long)?;
        check(libc::syscall(
            libc::SYS_setgroups,
            s.groups.len(),
            s.groups.as_ptr(),
        ))?;
        check(libc::syscall(libc::SYS_setresgid, s.gid, s.gid, s.gid))?;
        check(libc::syscall(libc::SYS_setresuid, s.uid, s.uid, s.uid))?;
        set_caps(&s.caps)?;
        if s.no_new_privs {
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) as libc::c_long)?;
            load_seccomp(s)?;
        }
        check(libc::chdir(s.cwd.as_ptr()) as libc::c_long)
    }
}

/// `capset(2)` of effective/permitted/inheritable, then the ambient set.
fn set_caps(c: &CapMasks) -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let half = |m: u64, hi: bool| if hi { (m >> 32) as u32 } else { m as u32 };
    let data = [false, true].map(|hi| Data {
        effective: half(c.effective, hi),
        permitted: half(c.permitted, hi),
        inheritable: half(c.inheritable, hi),
    });
    // SAFETY: capset with a v3 header and its two data structs.
    unsafe {
        check(libc::syscall(
            libc::SYS_capset,
            &mut header as *mut Header,
            data.as_ptr(),
        ))?;
        check(libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        ) as libc::c_long)?;
        for cap in 0..64u64 {
            if c.ambient & (1 << cap) != 0 {
                check(
                    libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, cap, 0, 0)
                        as libc::c_long,
                )?;
            }
        }
    }
    Ok(())
}

fn load_seccomp(s: &ChildSetup) -> std::io::Result<()> {
    let Some(bpf) = &s.seccomp else { return Ok(()) };
    let prog = libc::sock_fprog {
        len: bpf.code.len() as u16,
        filter: bpf.code.as_ptr().cast_mut(),
    };
    // SAFETY: seccomp(SET_MODE_FILTER) with a program that outlives the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            bpf.flags,
            &prog as *const libc::sock_fprog,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_masks_use_kernel_numbers() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_SYS_ADMIN"], "inheritable": [], "ambient": ["CAP_CHECKPOINT_RESTORE"]}"#,
        )
        .unwrap();
        let m = cap_masks(&c);
        assert_eq!(m.bounding, (1 << 0) | (1 << 5));
        assert_eq!(m.effective, 1 << 10);
        assert_eq!(m.permitted, 1 << 21);
        assert_eq!(m.inheritable, 0);
        assert_eq!(m.ambient, 1 << 40);
    }

    #[test]
    fn rlimits_by_oci_name() {
        let p: Process = serde_json::from_str(
            r#"{"cwd": "/srv", "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}],
                "noNewPrivileges": true}"#,
        )
        .unwrap();
        let s = child_setup(&p, None).unwrap();
        assert_eq!((s.uid, s.gid, s.groups.clone()), (1000, 1000, vec![5]));
        assert_eq!(s.rlimits.len(), 1);
        assert_eq!(s.rlimits[0].0, libc::RLIMIT_NOFILE);
        assert_eq!((s.rlimits[0].1.rlim_cur, s.rlimits[0].1.rlim_max), (10, 20));
        assert!(s.no_new_privs);
        assert_eq!(s.cwd.as_bytes(), b"/srv");
    }
}
