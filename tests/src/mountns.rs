//! Looking at mounts without touching the host's mount table.
//!
//! A mount namespace belongs to a task (thread), not to the whole process:
//! `unshare(CLONE_NEWNS)` on a fresh thread gives that thread a private copy
//! of the mount table (it also unshares the thread's `fs_struct`, which
//! `CLONE_NEWNS` implies). Propagation is then made private recursively so
//! nothing mounted there reaches the host, and when the thread ends the
//! namespace — and every mount in it — goes away with it.

use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

/// Runs `f` on a new thread inside a new, private mount namespace and
/// returns its result; a panic in `f` is propagated. Needs root.
pub fn in_private_mount_ns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            unshare(CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS) (needs root)");
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .expect("make / rprivate in the new mount namespace");
            f()
        });
        match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Mounts the layer dirs `lowers` (top first, like overlayfs `lowerdir`
/// and docker's `GraphDriver.Data.LowerDir`) read-only with overlayfs in a
/// private mount namespace, and calls `f` with the merged dir. The mount
/// vanishes with the namespace when `f` returns. Needs root and overlayfs.
pub fn with_overlay<T: Send>(lowers: &[PathBuf], f: impl FnOnce(&Path) -> T + Send) -> T {
    assert!(
        !lowers.is_empty(),
        "with_overlay needs at least one lower dir"
    );
    let scratch = tempfile::Builder::new()
        .prefix("rstack-e2e-overlay-")
        .tempdir()
        .expect("overlay temp dir");
    let merged = scratch.path().join("merged");
    let empty = scratch.path().join("empty");
    std::fs::create_dir(&merged).expect("create merged dir");
    std::fs::create_dir(&empty).expect("create empty dir");
    // A read-only overlay (no upperdir) needs two lower dirs at least.
    let mut dirs: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
    if dirs.len() == 1 {
        dirs.push(&empty);
    }
    let lowerdir = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let options = format!("lowerdir={lowerdir}");
    in_private_mount_ns(|| {
        mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::MS_RDONLY,
            Some(options.as_str()),
        )
        .unwrap_or_else(|e| panic!("mount -t overlay -o {options} {}: {e}", merged.display()));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&merged)));
        let _ = umount2(&merged, nix::mount::MntFlags::MNT_DETACH);
        match result {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
