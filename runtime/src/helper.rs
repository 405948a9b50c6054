//! Where libcontainer's `build()` runs: in this process, or in a fresh
//! single-threaded helper process (this same binary re-executed).
//!
//! `build()` clones the container's first processes straight from the
//! calling process (clone3, no fork handlers). In a multi-threaded caller
//! (a tokio supervisor) another thread may hold a lock at that instant —
//! glibc's malloc arena lock, a stdio lock — and the clone then blocks on it
//! forever (seen here: the intermediate process stuck in a futex while the
//! caller waits for it). It also changes the process cwd while binding its
//! sockets. A freshly exec'd helper has one thread and its own cwd, so
//! neither can bite; with `as_sibling` its clones become children of the
//! caller, which can then wait for them as usual.
//!
//! A binary opts in by calling [`run_if_helper`] first thing in `main` (and
//! exiting with the code it returns, if any) and
//! [`use_helper`] with its own path; without it builds run in-process
//! (fine for single-threaded callers), serialised by
//! [`crate::lock::EXECUTOR_LOCK`].

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use rstack_sys::chain::chain as error_text;
use serde::{Deserialize, Serialize};

use crate::lock::lock_executor;
use crate::stdio::Stdio;
use crate::workload::RstackExecutor;

/// The first argument that turns this binary into the build helper.
pub const HELPER_ARG: &str = "__rstack-runtime-build";

static HELPER_EXE: OnceLock<PathBuf> = OnceLock::new();

/// Runs builds in a helper: `exe` must call [`run_if_helper`] at start.
/// `RSTACK_RUNTIME_IN_PROCESS=1` keeps builds in-process (to compare).
pub fn use_helper(exe: PathBuf) {
    if std::env::var_os("RSTACK_RUNTIME_IN_PROCESS").is_none() {
        let _ = HELPER_EXE.set(exe);
    }
}

/// What to build.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Request {
    pub id: String,
    pub state_root: PathBuf,
    /// The container dir (with config.json) for a new container.
    pub bundle: Option<PathBuf>,
    /// The process file for an exec'd (tenant) process.
    pub process_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub init: bool,
    pub detach: bool,
    /// Give the process /dev/null as stdin (when no stdin fd is passed).
    pub null_stdin: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    pid: Option<i32>,
    error: Option<String>,
}

/// Builds in this process; returns the pid or libcontainer's error text.
fn build_here(req: &Request, stdio: Stdio, as_sibling: bool) -> Result<i32, String> {
    let mut builder = ContainerBuilder::new(req.id.clone(), SyscallType::Linux)
        .with_executor(RstackExecutor { init: req.init })
        .with_console_socket(req.console_socket.clone());
    builder = builder
        .with_root_path(&req.state_root)
        .map_err(|e| error_text(&e))?;
    if let Some(fd) = stdio.stdin {
        builder = builder.with_stdin(fd);
    } else if req.null_stdin {
        let null = std::fs::File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
        builder = builder.with_stdin(OwnedFd::from(null));
    }
    if let Some(fd) = stdio.stdout {
        builder = builder.with_stdout(fd);
    }
    if let Some(fd) = stdio.stderr {
        builder = builder.with_stderr(fd);
    }
    let _guard = lock_executor();
    if let Some(bundle) = &req.bundle {
        // libcontainer creates the cgroup dirs in build().
        let _cgroup_lock = crate::cgroup::lock();
        let c = builder
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(req.detach)
            .as_sibling(as_sibling)
            .build()
            .map_err(|e| error_text(&e))?;
        c.pid()
            .map(|p| p.as_raw())
            .ok_or_else(|| "the created container has no pid".to_owned())
    } else {
        let tenant = builder
            .as_tenant()
            .with_process(req.process_file.as_ref())
            .with_detach(req.detach)
            .as_sibling(as_sibling);
        tenant
            .build()
            .map(|p| p.as_raw())
            .map_err(|e| error_text(&e))
    }
}

/// Builds (in the helper when one is configured). The created processes
/// are children of this process either way.
pub(crate) fn build(req: &Request, stdio: Stdio) -> Result<i32, String> {
    let Some(exe) = HELPER_EXE.get() else {
        return build_here(req, stdio, false);
    };
    let json = serde_json::to_string(req).map_err(|e| e.to_string())?;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(HELPER_ARG).arg(json);
    match stdio.stdin {
        Some(fd) => cmd.stdin(fd),
        None if req.null_stdin => cmd.stdin(std::process::Stdio::null()),
        None => cmd.stdin(std::process::Stdio::inherit()),
    };
    if let Some(fd) = stdio.stdout {
        cmd.stdout(fd);
    }
    if let Some(fd) = stdio.stderr {
        cmd.stderr(fd);
    }
    let w_raw = w.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; it puts the reply pipe at fd 3
    // (without close-on-exec) in the child between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(w_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = {
        // One build at a time, like in-process builds (they share state dirs).
        let _guard = lock_executor();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the build helper {}: {e}", exe.display()))?;
        drop(cmd);
        drop(w);
        child.wait().map_err(|e| e.to_string())?
    };
    // The created processes inherit the helper's copy of the pipe, so no
    // EOF comes: the helper has exited, read what it wrote.
    let _ = nix::fcntl::fcntl(
        &r,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut text = String::new();
    let _ = std::fs::File::from(r).read_to_string(&mut text);
    let reply: Reply = serde_json::from_str(text.trim())
        .map_err(|_| format!("the build helper failed ({status}) without a reply"))?;
    match (reply.pid, reply.error) {
        (Some(pid), _) => Ok(pid),
        (None, Some(e)) => Err(e),
        (None, None) => Err("the build helper gave no pid".to_owned()),
    }
}

/// If this process was started as the build helper, builds and returns
/// the exit code the process must exit with (the caller exits: the
/// library never ends the process); `None` in any other process.
#[must_use]
pub fn run_if_helper() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(HELPER_ARG)) {
        return None;
    }
    // Keep the reply pipe out of the container's command.
    // SAFETY: fcntl on fd 3, which the parent set up for us.
    unsafe { libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC) };
    let reply = match args
        .next()
        .and_then(|a| serde_json::from_str::<Request>(&a.to_string_lossy()).ok())
    {
        // The helper's own stdin/stdout/stderr are the container's.
        Some(req) => match build_here(&req, Stdio::default(), true) {
            Ok(pid) => Reply {
                pid: Some(pid),
                error: None,
            },
            Err(e) => Reply {
                pid: None,
                error: Some(e),
            },
        },
        None => Reply {
            pid: None,
            error: Some("the build helper got a bad request".to_owned()),
        },
    };
    // SAFETY: fd 3 is the reply pipe the parent set up for us.
    let mut out = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(3) };
    let _ = out.write_all(serde_json::to_string(&reply).unwrap_or_default().as_bytes());
    drop(out);
    Some(if reply.pid.is_some() { 0 } else { 1 })
}
