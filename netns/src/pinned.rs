//! Pinned network namespaces: a namespace kept alive by a bind mount of its
//! nsfs file (`/proc/<tid>/ns/net`) onto a plain file, like `ip netns add`.
//! The runtime joins the namespace by that path, the networking code enters
//! it by path, and it outlives every process inside it until unpinned.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

use crate::netlink;

/// Errors of pinning and unpinning.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create pin file {path}")]
    CreateFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("pin file {path} already exists")]
    Exists { path: PathBuf },
    #[error("cannot create a new network namespace")]
    Unshare(#[source] nix::Error),
    #[error("cannot bind-mount {source_path} onto {path}")]
    Bind {
        source_path: PathBuf,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot unmount pinned namespace {path}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot remove pin file {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot bring up the loopback interface in {path}")]
    Loopback {
        path: PathBuf,
        #[source]
        source: netlink::Error,
    },
    #[error("namespace worker thread failed")]
    Worker(#[source] io::Error),
}

fn make_pin_file(path: &Path) -> Result<(), Error> {
    if path.exists() {
        return Err(Error::Exists { path: path.into() });
    }
    let wrap = |source| Error::CreateFile {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(wrap)?;
    }
    File::create(path).map(drop).map_err(wrap)
}

fn bind(source_path: &Path, path: &Path) -> Result<(), Error> {
    mount(
        Some(source_path),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|source| Error::Bind {
        source_path: source_path.into(),
        path: path.into(),
        source,
    })
}

/// Creates a fresh network namespace pinned at `path`, with `lo` up.
/// On failure nothing is left behind.
pub fn create_pinned_netns(path: &Path) -> Result<(), Error> {
    make_pin_file(path)?;
    let pinned = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), Error> {
            // Only this thread moves to the new namespace; it exits right after.
            unshare(CloneFlags::CLONE_NEWNET).map_err(Error::Unshare)?;
            bind(Path::new("/proc/thread-self/ns/net"), path)
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Worker(io::Error::other("panicked"))))
    });
    let result = pinned.and_then(|()| {
        netlink::run(
            Some(path),
            |h| async move { netlink::set_up(&h, "lo").await },
        )
        .map_err(|source| Error::Loopback {
            path: path.into(),
            source,
        })
    });
    if result.is_err() {
        let _ = remove_pinned_netns(path);
    }
    result
}

/// Pins the network namespace of process `pid` at `path`.
pub fn pin_netns_of_pid(pid: u32, path: &Path) -> Result<(), Error> {
    make_pin_file(path)?;
    let result = bind(&PathBuf::from(format!("/proc/{pid}/ns/net")), path);
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

/// Unpins (lazy unmount) and removes the file. Missing or already unmounted
/// files are fine, so this is safe to call during any cleanup.
pub fn remove_pinned_netns(path: &Path) -> Result<(), Error> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(source) => {
            return Err(Error::Unmount {
                path: path.into(),
                source,
            });
        }
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Remove {
            path: path.into(),
            source,
        }),
    }
}
