//! One container's life: create (the steps are in `create.rs`), start,
//! wait, signal, stop, exec, remove — with youki's libcontainer as the
//! executor.
//!
//! Every libcontainer build/start/exec call in this process is serialised
//! by [`EXECUTOR_LOCK`]. The state layout is in the header of `paths.rs`.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libcontainer::container::Container as LcContainer;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::image::ImageConfiguration;

use crate::cgroup::CgroupPlan;
use crate::create::{self, Inputs};
use crate::exec::exec_in;
use crate::lock::lock_executor;
use crate::options::RunOptions;
use crate::sys::{executor_error, reap_executor_zombies};
use crate::undo::{Undo, run_undo};

pub use crate::error::ContainerError;
pub use crate::exec::{ExecOptions, ExecProcess};
pub use crate::lock::EXECUTOR_LOCK;
pub use crate::paths::Paths;
pub use crate::signal::parse_signal;
pub use crate::stdio::Stdio;

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
        let inputs = Inputs {
            paths,
            image,
            layers,
            opts,
        };
        let created = create::create(inputs, stdio)?;
        Ok(Container {
            id: created.id,
            name: opts.name.clone(),
            paths: paths.clone(),
            pid: created.pid,
            lc: created.lc,
            rootfs: created.rootfs,
            cgroup: created.cgroup,
            pty_master: created.pty_master,
            stop_signal: created.stop_signal,
            stop_timeout: Duration::from_secs(opts.stop_timeout.unwrap_or(10).into()),
            exit: None,
            undo: created.undo,
            failed_exec: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Runs the command (the process was created by [`Container::create`]).
    pub fn start(&mut self) -> Result<(), ContainerError> {
        let _guard = lock_executor();
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

/// Finds the network namespace of a running container by name or id.
pub fn netns_of(paths: &Paths, name_or_id: &str) -> Result<PathBuf, ContainerError> {
    let id = paths.resolve_id(name_or_id);
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
}
