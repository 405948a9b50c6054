//! Running another process inside a running container (`docker exec`):
//! libcontainer's "tenant" joins the container's namespaces and cgroup and
//! applies the same capabilities, seccomp filter and no_new_privs as its
//! first process. The process is described by an OCI process file
//! (`exec-*.json` in the container dir) derived from the container's own,
//! with the asked args, env, cwd, user and terminal.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use crate::error::ContainerError;
use crate::ids::random_id;
use crate::paths::Paths;
use crate::spec::env_key;
use crate::stdio::Stdio;
use crate::sys::{bind_console, executor_error_text, reap_executor_zombies, receive_pty};
use crate::user;

/// Runs a process in the running container `id` (same namespaces, cgroup,
/// capabilities, seccomp filter as its first process; user, env, cwd and
/// terminal as asked). Shared by [`crate::Container::exec`] and
/// [`crate::adopt::Adopted::exec`]. The exec'd process is a child of the
/// caller. A missing command fails with [`ContainerError::CommandNotFound`].
pub(crate) fn exec_in(
    paths: &Paths,
    id: &str,
    opts: &ExecOptions,
    stdio: Stdio,
) -> Result<ExecProcess, ContainerError> {
    let container_dir = paths.container_dir(id);
    let process = exec_process(&container_dir, opts)?;
    let process_file = write_process_file(&container_dir, &process)?;
    let console = if opts.tty {
        let (listener, sock) = bind_console(paths, &random_id()?[..16])?;
        Some((listener, RemoveOnDrop(sock)))
    } else {
        None
    };
    let request = crate::helper::Request {
        id: id.to_owned(),
        state_root: paths.state_root(),
        bundle: None,
        process_file: Some(process_file.0.clone()),
        console_socket: console.as_ref().map(|(_, p)| p.0.clone()),
        init: false,
        detach: opts.tty,
        null_stdin: !opts.interactive,
    };
    let pid = build_tenant(&request, stdio)?;
    let pty_master = match console {
        Some((listener, _)) => Some(receive_pty(&listener)?),
        None => None,
    };
    Ok(ExecProcess {
        pid: Pid::from_raw(pid),
        pty_master,
    })
}

/// The exec'd process: the container's own (caps, rlimits, no_new_privs,
/// env) from its config.json, with the asked args, env, cwd, user and
/// terminal.
fn exec_process(container_dir: &Path, opts: &ExecOptions) -> Result<Process, ContainerError> {
    let config = container_dir.join("config.json");
    let spec = oci_spec::runtime::Spec::load(&config).map_err(|e| ContainerError::Io {
        what: "read",
        path: config.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut process = spec.process().clone().unwrap_or_default();
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if let Some(spec_user) = &opts.user {
        let rootfs = container_dir.join("rootfs");
        let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
        let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
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
    Ok(process)
}

/// Sets `KEY=VALUE`, replacing any earlier entry of that key.
fn set_env(env: &mut Vec<String>, entry: String) {
    let key = env_key(&entry).to_owned();
    env.retain(|e| env_key(e) != key);
    env.push(entry);
}

/// Writes the process file libcontainer's tenant builder reads
/// (`exec-<random>.json` in the container dir), removed when dropped.
fn write_process_file(
    container_dir: &Path,
    process: &Process,
) -> Result<RemoveOnDrop, ContainerError> {
    let process_file = container_dir.join(format!("exec-{}.json", &random_id()?[..12]));
    let text = serde_json::to_vec(process).map_err(|e| ContainerError::Io {
        what: "encode",
        path: process_file.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&process_file, text).map_err(ContainerError::io("write", &process_file))?;
    Ok(RemoveOnDrop(process_file))
}

/// Starts the tenant process (in the build helper when one is set up);
/// its pid.
fn build_tenant(request: &crate::helper::Request, stdio: Stdio) -> Result<i32, ContainerError> {
    let pid = crate::helper::build(request, stdio).map_err(|text| {
        // The failed process may exit a moment later: reap it, or its
        // zombie would keep the container's PID 1 from dying.
        for _ in 0..5 {
            reap_executor_zombies();
            std::thread::sleep(Duration::from_millis(10));
        }
        executor_error_text("exec in the container", text)
    })?;
    reap_executor_zombies();
    Ok(pid)
}

/// Removes a file when dropped (temporary exec files and sockets).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A process to run in a running container ([`crate::Container::exec`]).
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

/// A process started by [`crate::Container::exec`].
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
