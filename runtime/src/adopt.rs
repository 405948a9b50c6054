//! A container created by another process: found again by name or id.
//!
//! A daemonless supervisor can die (SIGKILL) while its containers keep
//! running; the next supervisor, and plain commands like `rstack exec` or
//! `rstack down`, then need the container without the [`crate::Container`]
//! handle that created it. libcontainer's state dir
//! (`<run root>/containers/<id>`) still names the init pid and the cgroup,
//! and the data dir holds the rootfs mount, so an [`Adopted`] container can
//! exec, be signalled and be removed — teardown continues past failures and
//! reports them all, like [`crate::Container::remove`].

use std::path::{Path, PathBuf};

use libcontainer::container::Container as LcContainer;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::error::ContainerError;
use crate::exec::ExecOptions;
use crate::paths::Paths;
use crate::stdio::Stdio;

/// A container found again from its on-disk state.
#[derive(Debug)]
pub struct Adopted {
    id: String,
    paths: Paths,
    lc: Option<LcContainer>,
    pid: Option<i32>,
}

impl Adopted {
    /// Opens the container `name_or_id`. Fails with `NoSuchContainer` when
    /// neither its libcontainer state nor its data dir exists.
    pub fn open(paths: &Paths, name_or_id: &str) -> Result<Adopted, ContainerError> {
        let id = paths.resolve_id(name_or_id);
        let lc = LcContainer::load(paths.state_root().join(&id)).ok();
        let data_dir = paths.container_dir(&id);
        if lc.is_none() && !data_dir.exists() {
            return Err(ContainerError::NoSuchContainer {
                name: name_or_id.to_owned(),
            });
        }
        let pid = lc.as_ref().and_then(|l| l.pid()).map(|p| p.as_raw());
        Ok(Adopted {
            id,
            paths: paths.clone(),
            lc,
            pid,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The init pid libcontainer recorded (it may have exited since).
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// The merged rootfs as seen from the host.
    pub fn rootfs(&self) -> PathBuf {
        self.paths.container_dir(&self.id).join("rootfs")
    }

    /// Sends `signal` to the init process.
    pub fn kill(&self, signal: Signal) -> Result<(), ContainerError> {
        let Some(pid) = self.pid else { return Ok(()) };
        match nix::sys::signal::kill(Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
            Err(source) => Err(ContainerError::Sys {
                what: "signal the container",
                source,
            }),
        }
    }

    /// Runs a process in the container, as [`crate::Container::exec`]
    /// (same process set-up, `CommandNotFound` for a missing command).
    pub fn exec(&self, opts: &ExecOptions, stdio: Stdio) -> Result<AdoptedExec, ContainerError> {
        if self.lc.is_none() {
            return Err(ContainerError::NoSuchContainer {
                name: self.id.clone(),
            });
        }
        crate::exec::exec_in(&self.paths, &self.id, opts, stdio)
    }

    /// Kills what still runs and removes everything of the container: the
    /// libcontainer state (and its cgroup), the rootfs mount, the data
    /// dir, the name, and the cgroup dirs in `created_cgroup_dirs` (the
    /// [`crate::cgroup::CgroupPlan::missing_dirs`] recorded at creation).
    /// Continues past failures and returns them all.
    pub fn remove(mut self, created_cgroup_dirs: &[PathBuf]) -> Result<(), ContainerError> {
        let mut errors = Vec::new();
        // Read before the data dir goes: the parents its creation added.
        let recorded = crate::cgroup::recorded_cgroup_dirs(&self.paths.container_dir(&self.id));
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            // Not necessarily our child: wait for /proc to show it gone or a zombie.
            for _ in 0..500 {
                match rstack_sys::proc::stat(pid) {
                    Ok(s) if !s.is_zombie() => {
                        let _ = nix::sys::wait::waitpid(
                            Pid::from_raw(pid),
                            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                        );
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    _ => break,
                }
            }
            let _ = nix::sys::wait::waitpid(
                Pid::from_raw(pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
        }
        if let Some(mut lc) = self.lc.take() {
            if let Err(e) = lc.delete(true) {
                errors.push(format!("delete container state: {e}"));
            }
        }
        let state = self.paths.state_root().join(&self.id);
        if state.exists() {
            if let Err(e) = std::fs::remove_dir_all(&state) {
                errors.push(format!("remove {}: {e}", state.display()));
            }
        }
        let dir = self.paths.container_dir(&self.id);
        let rootfs = dir.join("rootfs");
        if crate::rootfs::is_mount_point(&rootfs) {
            if let Err(e) = crate::rootfs::unmount(&rootfs) {
                errors.push(format!("unmount {}: {e}", rootfs.display()));
            }
        }
        if dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                errors.push(format!("remove {}: {e}", dir.display()));
            }
        }
        remove_name_links(&self.paths, &self.id, &mut errors);
        let plan = crate::cgroup::CgroupPlan::new(self.paths.cgroup_parent.as_deref(), &self.id);
        for leaf in plan.leaf_dirs() {
            let _ = std::fs::remove_dir(&leaf);
        }
        for (d, e) in plan.remove_created() {
            errors.push(format!("remove cgroup {}: {e}", d.display()));
        }
        let mut created = recorded;
        created.extend(created_cgroup_dirs.iter().cloned());
        for d in created.iter().rev() {
            if let Err(e) = crate::cgroup::remove_dir_if_unused(d) {
                errors.push(format!("remove cgroup {}: {e}", d.display()));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ContainerError::Teardown(errors))
        }
    }
}

fn remove_name_links(paths: &Paths, id: &str, errors: &mut Vec<String>) {
    let names = paths.names_dir();
    let Ok(entries) = std::fs::read_dir(&names) else {
        return;
    };
    for e in entries.flatten() {
        if std::fs::read_link(e.path()).is_ok_and(|t| t == Path::new(id)) {
            if let Err(err) = std::fs::remove_file(e.path()) {
                errors.push(format!("remove {}: {err}", e.path().display()));
            }
        }
    }
}

/// A process started by [`Adopted::exec`] (a child of the caller).
pub type AdoptedExec = crate::exec::ExecProcess;
