//! The store's file-system helpers: crash-safe writes and `flock` locks
//! (both from rstack-sys, see there why), one `syncfs` for a whole layer,
//! tree removal and disk usage.
//!
//! The store must stay consistent if the process is killed at any point: a
//! file is written to a temporary name in the same directory, fsynced, and
//! renamed over its final name, then the directory is fsynced. Locks are
//! `flock(2)` locks on lock files: the kernel drops them when the holder
//! dies, so a crashed process never leaves a stale lock behind.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rstack_sys::lock::Mode;

pub use rstack_sys::lock::LockGuard;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Write(#[from] rstack_sys::fs::Error),
    #[error(transparent)]
    Lock(#[from] rstack_sys::lock::Error),
    #[error("cannot flush {path} to disk")]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Creates `path` and its parents.
pub fn create_dir_all(path: &Path) -> Result<(), Error> {
    Ok(rstack_sys::fs::create_dir_all(path)?)
}

/// The mode store files always had (tempfile's default): only the store's
/// owner reads them.
const MODE: u32 = 0o600;

/// Writes `data` to `path` atomically: temp file, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Error> {
    Ok(rstack_sys::fs::write_atomic_mode(path, data, MODE)?)
}

/// Writes `data` to `path` via a temp file and rename, without fsync: for
/// content a later `syncfs` makes durable before anything references it.
pub fn write_replace(path: &Path, data: &[u8]) -> Result<(), Error> {
    Ok(rstack_sys::fs::replace(path, data, MODE)?)
}

/// Fsyncs a directory so renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    Ok(rstack_sys::fs::sync_dir(dir)?)
}

/// Flushes the whole filesystem holding `path` (one `syncfs(2)` instead of
/// an fsync per unpacked file: a layer has thousands of files).
pub fn syncfs(path: &Path) -> Result<(), Error> {
    let err = |source| Error::Sync {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(err)?;
    nix::unistd::syncfs(file.as_fd()).map_err(|e| err(e.into()))
}

/// Takes a shared or exclusive lock on `path`, creating the file. Blocks.
pub fn lock(path: &Path, exclusive: bool) -> Result<LockGuard, Error> {
    let mode = if exclusive {
        Mode::Exclusive
    } else {
        Mode::Shared
    };
    Ok(rstack_sys::lock::lock(path, mode)?)
}

/// Takes an exclusive lock without blocking; `None` when another holds it.
pub fn try_lock(path: &Path) -> Result<Option<LockGuard>, Error> {
    Ok(rstack_sys::lock::try_lock(path)?)
}

/// Removes a file or a directory tree; a missing path is not an error.
pub fn remove_all(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            make_writable(path);
            fs::remove_dir_all(path)
        }
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Directories unpacked from images may be read-only (e.g. mode 0555);
/// an unprivileged process must make them writable before removing them.
fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if nix::unistd::geteuid().is_root() {
        return;
    }
    let mut stack = vec![path.to_owned()];
    while let Some(dir) = stack.pop() {
        if let Ok(meta) = fs::symlink_metadata(&dir)
            && meta.is_dir()
        {
            let mode = meta.permissions().mode();
            let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(mode | 0o700));
            if let Ok(entries) = fs::read_dir(&dir) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
}

/// Total size in bytes of the regular files under `path` (hard links once).
pub fn disk_usage(path: &Path) -> u64 {
    use std::collections::HashSet;
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_owned()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = fs::read_dir(&p) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file() && (meta.nlink() == 1 || seen.insert((meta.dev(), meta.ino()))) {
            total += meta.len();
        }
    }
    total
}
