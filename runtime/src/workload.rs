//! What runs as the container's process once libcontainer has set up the
//! namespaces, mounts, caps and seccomp: the user's command, optionally
//! under a tiny reaping init.
//!
//! `--init`: instead of bind-mounting an init binary into the rootfs
//! (Docker's docker-init/tini, which needs a static binary on the host),
//! the container's first process — already a copy of rstack in memory —
//! forks: the child execs the command, the parent stays as PID 1, reaps
//! every orphan, forwards signals to the child and exits with its status
//! (128+signal when it was killed), like tini.
//!
//! Validation happens at create time inside the container, so a missing
//! binary fails `create` with Docker's message shape
//! (`exec: "foo": executable file not found in $PATH`), mapped to exit 127.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use std::collections::HashMap;
use std::sync::Mutex;

use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::Spec;

/// Marker of the not-found message (exit 127).
pub const NOT_FOUND: &str = "executable file not found in $PATH";
/// Marker of the not-executable message (exit 126).
pub const NOT_EXECUTABLE: &str = "permission denied";

/// The workload executor used for containers and exec'd processes.
#[derive(Clone, Debug, Default)]
pub struct RstackExecutor {
    /// Run a reaping init as PID 1 (only for the container's first process).
    pub init: bool,
}

fn find_executable(arg0: &str, path_env: &str) -> Result<PathBuf, String> {
    let check = |p: &Path| -> Result<PathBuf, String> {
        let meta = std::fs::metadata(p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "exec: \"{arg0}\": stat {}: no such file or directory",
                    p.display()
                )
            } else {
                format!("exec: \"{arg0}\": stat {}: {e}", p.display())
            }
        })?;
        if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
            return Err(format!("exec: \"{arg0}\": {NOT_EXECUTABLE}"));
        }
        Ok(p.to_owned())
    };
    if arg0.contains('/') {
        return check(Path::new(arg0));
    }
    for dir in path_env.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(format!("exec: \"{arg0}\": {NOT_FOUND}"))
}

fn args_of(spec: &Spec) -> Option<&Vec<String>> {
    spec.process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .filter(|a| !a.is_empty())
}

/// The environment libcontainer computed for the workload (the spec's plus
/// `HOME` when missing), kept by [`RstackExecutor::setup_envs`] for the
/// exec. This process (the container's init or an exec'd process) runs one
/// workload, so one slot is enough.
static ENVS: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

/// The workload's environment: the spec's entries in their order, then
/// what libcontainer added (`HOME`), as `KEY=VALUE`.
fn workload_env(spec: &Spec) -> Vec<String> {
    let mut env: Vec<String> = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default();
    let added = ENVS.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(added) = added {
        let present: std::collections::HashSet<String> = env
            .iter()
            .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_owned())
            .collect();
        let mut extra: Vec<String> = added
            .into_iter()
            .filter(|(k, _)| !present.contains(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        extra.sort();
        env.extend(extra);
    }
    env
}

fn exec_args(args: &[String], env: &[String]) -> Result<std::convert::Infallible, ExecutorError> {
    let c: Vec<CString> = args
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| ExecutorError::InvalidArg))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| ExecutorError::InvalidArg))
        .collect::<Result<_, _>>()?;
    // PATH is looked up in the workload's environment, not this process's
    let path_env = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::spec::DEFAULT_PATH);
    let program = find_executable(&args[0], path_env).map_err(ExecutorError::Other)?;
    let program = CString::new(program.as_os_str().as_encoded_bytes())
        .map_err(|_| ExecutorError::InvalidArg)?;
    // Rust's runtime ignores SIGPIPE in this binary, and an ignored signal
    // stays ignored across execve: the workload would get EPIPE errors
    // instead of dying quietly in `yes | head -1`. It gets the default
    // disposition, as under runc.
    // SAFETY: signal(2) with SIG_DFL in the process that is about to exec.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    nix::unistd::execve(&program, &c, &envp)
        .map_err(|e| ExecutorError::Other(format!("exec: \"{}\": {}", args[0], e.desc())))
}

impl Executor for RstackExecutor {
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let args = args_of(spec).ok_or_else(|| {
            ExecutorValidationError::ArgValidationError("no command specified".into())
        })?;
        let env = spec
            .process()
            .as_ref()
            .and_then(|p| p.env().clone())
            .unwrap_or_default();
        let path_env = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(crate::spec::DEFAULT_PATH);
        find_executable(&args[0], path_env)
            .map(|_| ())
            .map_err(ExecutorValidationError::ArgValidationError)
    }

    /// Keeps the environment for the execve instead of setting it
    /// variable by variable (libcontainer's default clears and `setenv`s
    /// each one: O(n) apiece in glibc, so an image with 100,000 variables
    /// took minutes).
    fn setup_envs(&self, envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        *ENVS.lock().unwrap_or_else(|e| e.into_inner()) = Some(envs);
        Ok(())
    }

    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = args_of(spec).ok_or(ExecutorError::InvalidArg)?.clone();
        let env = workload_env(spec);
        if !self.init {
            exec_args(&args, &env)?;
            unreachable!("execve returned without an error");
        }
        run_init(&args, &env)
    }
}

/// Closes every file descriptor from `first` up (close_range(2)).
fn close_from(first: u32) -> Result<(), ExecutorError> {
    // SAFETY: close_range(2) only closes descriptors of this process; none
    // at or above `first` is in use by Rust code from here on (the executor
    // is the last step before exec).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
    if rc != 0 {
        return Err(ExecutorError::Other(format!(
            "init: close_range: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// PID 1: fork the command, reap everything, forward signals, exit with
/// the command's status.
fn run_init(args: &[String], env: &[String]) -> Result<(), ExecutorError> {
    // This process never execs, so close-on-exec does not apply to it:
    // whatever the caller's process held (a supervisor's DNS sockets, a
    // directory of the host, pipes) would stay open in the container's
    // PID 1 (the CVE-2024-21626 class). Only 0-2 cross into a container.
    close_from(3)?;
    let all = SigSet::all();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)
        .map_err(|e| ExecutorError::Other(format!("init: sigprocmask: {e}")))?;
    // SAFETY: the child immediately restores its signal mask and execs.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            let _ = nix::sys::signal::sigprocmask(
                SigmaskHow::SIG_SETMASK,
                Some(&SigSet::empty()),
                None,
            );
            // Own process group so that a terminal's signals reach it.
            let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            let Err(e) = exec_args(args, env);
            eprintln!("{e}");
            // SAFETY: terminate the forked child without running destructors.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(ExecutorError::Other(format!("init: fork: {e}"))),
    };
    // Hand the terminal's foreground to the child's group when there is one.
    // SAFETY: tcsetpgrp on fd 0 with a valid pgid; failure (no tty) is ignored.
    unsafe {
        libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        let _ = libc::tcsetpgrp(0, child.as_raw());
    }
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig == Signal::SIGCHLD {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == child => {
                        // SAFETY: PID 1 leaves with the command's status.
                        unsafe { libc::_exit(code) }
                    }
                    Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => {
                        // SAFETY: as above.
                        unsafe { libc::_exit(128 + s as i32) }
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        } else {
            let _ = nix::sys::signal::kill(child, sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_shaped_messages() {
        assert_eq!(
            find_executable("nonexistent-binary-xyz", "/bin:/usr/bin").unwrap_err(),
            "exec: \"nonexistent-binary-xyz\": executable file not found in $PATH"
        );
        assert!(find_executable("sh", "/bin:/usr/bin").is_ok());
        assert!(
            find_executable("/nope/x", "")
                .unwrap_err()
                .contains("no such file or directory")
        );
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        let err = find_executable(plain.to_str().unwrap(), "").unwrap_err();
        assert!(err.ends_with(NOT_EXECUTABLE), "{err}");
    }
}
