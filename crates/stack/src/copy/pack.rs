//! Writing a file or directory tree of a [`Root`] as a tar stream, the
//! way the Docker daemon answers `GET /containers/{id}/archive`.
//!
//! The walk holds an fd per directory and opens each child by its single
//! name with `O_NOFOLLOW`, so nothing the container changes meanwhile can
//! make it read outside the tree. Directories of pseudo filesystems
//! (`/proc`, `/sys`, cgroups, devpts, mqueue) are archived empty: their
//! "files" are kernel state, not content.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

use super::Error;
use super::root::{Root, file_type};

/// mqueue's `f_type` (libc lacks it).
const MQUEUE_MAGIC: i64 = 0x1980_0202;

/// `f_type`s whose contents are never archived.
const PSEUDO_FS: &[i64] = &[
    libc::PROC_SUPER_MAGIC,
    libc::SYSFS_MAGIC,
    libc::CGROUP_SUPER_MAGIC,
    libc::CGROUP2_SUPER_MAGIC,
    libc::DEVPTS_SUPER_MAGIC,
    MQUEUE_MAGIC,
    libc::DEBUGFS_MAGIC,
    libc::SECURITYFS_MAGIC,
    libc::TRACEFS_MAGIC,
    libc::BPF_FS_MAGIC,
];

/// Archives `abs` of `root` to `out`, its top entry named `name` (`.` for
/// "the contents of"). `follow` follows a symlink at `abs` itself (`-L`);
/// symlinks below are always archived as links.
pub(crate) fn pack<W: Write>(
    root: &Root,
    abs: &str,
    follow: bool,
    name: &str,
    out: W,
) -> Result<W, Error> {
    let (fd, st) = root.lookup(abs, follow).map_err(|e| match e {
        Errno::ENOENT => root.missing(abs),
        e => Error::Io {
            what: "stat",
            path: abs.to_owned(),
            source: e.into(),
        },
    })?;
    let mut p = Packer {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
    };
    p.add(&fd, &st, Path::new(name), abs)?;
    p.tar.into_inner().map_err(Error::WriteArchive)
}

struct Packer<W: Write> {
    tar: tar::Builder<W>,
    /// First archive name of every multiply-linked file seen.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Packer<W> {
    /// Adds the node open as `fd` (O_PATH) under `name`, and below it if a
    /// directory. `shown` names it in errors.
    fn add(&mut self, fd: &OwnedFd, st: &FileStat, name: &Path, shown: &str) -> Result<(), Error> {
        let io_err = |what: &'static str| {
            let shown = shown.to_owned();
            move |e: Errno| Error::Io {
                what,
                path: shown,
                source: e.into(),
            }
        };
        let mut h = tar::Header::new_gnu();
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        let kind = file_type(st);
        match kind {
            SFlag::S_IFDIR => {
                h.set_entry_type(tar::EntryType::Directory);
                self.tar
                    .append_data(&mut h, name, io::empty())
                    .map_err(Error::WriteArchive)?;
                let dir = nix::fcntl::openat(
                    fd,
                    ".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io_err("open directory"))?;
                let fs = nix::sys::statfs::fstatfs(&dir).map_err(io_err("statfs"))?;
                if PSEUDO_FS.contains(&(fs.filesystem_type().0 as i64)) {
                    return Ok(());
                }
                self.add_children(dir, name, shown)?;
            }
            SFlag::S_IFREG => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        h.set_entry_type(tar::EntryType::Link);
                        let first = first.clone();
                        return self
                            .tar
                            .append_link(&mut h, name, first)
                            .map_err(Error::WriteArchive);
                    }
                    self.links.insert(key, name.to_owned());
                }
                // Re-open the very inode the O_PATH fd holds.
                let file = nix::fcntl::open(
                    format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
                    OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io_err("open"))?;
                let size = st.st_size.max(0) as u64;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(size);
                // Exactly `size` bytes, even if the file changes meanwhile.
                let data = std::fs::File::from(file)
                    .take(size)
                    .chain(io::repeat(0))
                    .take(size);
                self.tar
                    .append_data(&mut h, name, data)
                    .map_err(Error::WriteArchive)?;
            }
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(fd, "").map_err(io_err("read link"))?;
                h.set_entry_type(tar::EntryType::Symlink);
                self.tar
                    .append_link(&mut h, name, Path::new(&target))
                    .map_err(Error::WriteArchive)?;
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                h.set_entry_type(match kind {
                    SFlag::S_IFCHR => tar::EntryType::Char,
                    SFlag::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                if kind != SFlag::S_IFIFO {
                    let dev = st.st_rdev;
                    h.set_device_major(libc::major(dev))
                        .and_then(|_| h.set_device_minor(libc::minor(dev)))
                        .map_err(Error::WriteArchive)?;
                }
                self.tar
                    .append_data(&mut h, name, io::empty())
                    .map_err(Error::WriteArchive)?;
            }
            _ => {
                // Sockets (and unknown kinds) have no archive form; docker
                // skips them too.
                tracing::warn!(path = shown, "not archived: socket or unknown file type");
            }
        }
        Ok(())
    }

    fn add_children(&mut self, dir: OwnedFd, name: &Path, shown: &str) -> Result<(), Error> {
        let list_err = |e: io::Error| Error::Io {
            what: "list",
            path: shown.to_owned(),
            source: e,
        };
        // Listed through our own fd, never by the container's path.
        let listing =
            std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())).map_err(list_err)?;
        let mut children: Vec<OsString> = Vec::new();
        for entry in listing {
            children.push(entry.map_err(list_err)?.file_name());
        }
        // Docker's walk is in lexical order; so is ours, for stable archives.
        children.sort();
        for child in children {
            let child_shown = format!(
                "{}/{}",
                shown.trim_end_matches('/'),
                child.to_string_lossy()
            );
            let fd = match nix::fcntl::openat(
                dir.as_fd(),
                child.as_os_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                // Removed since the listing: nothing to archive.
                Err(Errno::ENOENT) => continue,
                Err(e) => {
                    return Err(Error::Io {
                        what: "open",
                        path: child_shown,
                        source: e.into(),
                    });
                }
            };
            let st = nix::sys::stat::fstatat(&fd, "", AtFlags::AT_EMPTY_PATH).map_err(|e| {
                Error::Io {
                    what: "stat",
                    path: child_shown.clone(),
                    source: e.into(),
                }
            })?;
            self.add(&fd, &st, &name.join(&child), &child_shown)?;
        }
        Ok(())
    }
}
