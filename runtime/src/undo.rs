//! The undo list of container setup: every resource is recorded when it is
//! created, and undone in reverse on failure or removal, continuing past
//! failures and returning them all (netavark's teardown habit).

use std::path::PathBuf;

use crate::cgroup::CgroupPlan;
use crate::rootfs;

/// A step done during setup, undone on failure or removal.
#[derive(Debug)]
pub(crate) enum Undo {
    NameLink(PathBuf),
    ContainerDir(PathBuf),
    CreatedDir(PathBuf),
    Mount(PathBuf),
    File(PathBuf),
    Cgroup(Box<CgroupPlan>),
    LcState(PathBuf),
}

pub(crate) fn run_undo(steps: &mut Vec<Undo>) -> Vec<String> {
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
