//! A filesystem root that paths are resolved in: a running container's
//! (`/proc/<pid>/root`), a stopped container's (its overlay, mounted
//! privately: [`super::container`]), an extraction directory (all three
//! confined) or the host's.
//!
//! `/proc/<pid>/root` is the container's root directory *in its own mount
//! namespace*: walking down from it crosses the container's mounts (named
//! volumes, bind mounts, tmpfs), so a copy sees exactly what the container
//! sees. A stopped container has no mount namespace left: its root is its
//! own files only (image layers under its writable layer), and the places
//! where it mounts volumes when running are refused
//! ([`Root::hidden_mount`]) rather than showing their empty mount points.
//! Every lookup goes through `openat2(RESOLVE_IN_ROOT)` on the root's fd:
//! `..`, absolute symlinks and symlinked parents resolve inside the
//! container, never on the host, even when the container rewrites its
//! tree meanwhile; magic links (`/proc/self/root` inside the container)
//! are refused.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag};

use super::Error;
use crate::process::Pidfd;

/// Symlinks followed in one resolution before giving up (Linux's limit).
const MAX_SYMLINKS: usize = 40;

#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    confined: bool,
    /// The container's name; `None` for the host.
    container: Option<String>,
    /// Where the container mounts volumes, bind mounts, tmpfs when it runs
    /// (cleaned, absolute): empty but for a stopped container's root,
    /// which does not show them.
    hidden_mounts: Vec<String>,
}

impl Root {
    /// The root of the running container whose init is `pid` (started at
    /// `start_time`, so a recycled pid is never mistaken for it).
    pub(crate) fn container(pid: i32, start_time: u64, name: &str) -> Result<Root, Error> {
        let not_running = || Error::NotRunning {
            container: name.to_owned(),
        };
        let pidfd = Pidfd::open_verified(pid, start_time).ok_or_else(not_running)?;
        let path = format!("/proc/{pid}/root");
        let fd = nix::fcntl::open(
            path.as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::Io {
            what: "open",
            path: path.clone(),
            source: e.into(),
        })?;
        // Still alive after the open: the fd is that process's root, not
        // the root of a process that got its pid since.
        if pidfd.exited() {
            return Err(not_running());
        }
        Ok(Root {
            fd,
            confined: true,
            container: Some(name.to_owned()),
            hidden_mounts: Vec::new(),
        })
    }

    /// The directory `path` as the root of container `name`: a stopped
    /// container's filesystem, mounted there by [`super::container`].
    pub(crate) fn dir(path: &Path, name: &str) -> Result<Root, Error> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::Io {
            what: "open",
            path: path.display().to_string(),
            source: e.into(),
        })?;
        Ok(Root {
            fd,
            confined: true,
            container: Some(name.to_owned()),
            hidden_mounts: Vec::new(),
        })
    }

    /// Marks `targets` (absolute container paths) as mount points whose
    /// content this root does not show ([`Root::hidden_mount`]).
    pub(crate) fn hiding_mounts(mut self, targets: &[String]) -> Root {
        self.hidden_mounts = targets
            .iter()
            .map(|t| super::paths::clean(&format!("/{t}")))
            .filter(|t| t != "/")
            .collect();
        self
    }

    /// The mount target of [`Root::hiding_mounts`] that `abs` is at or
    /// under once resolved in this root (its last element resolved only
    /// with `follow` or when spelled as a directory, as [`Root::lookup`]
    /// does), if any.
    pub(crate) fn hidden_mount(&self, abs: &str, follow: bool) -> Option<&str> {
        if self.hidden_mounts.is_empty() {
            return None;
        }
        let resolved = if follow || super::paths::asserts_directory(abs) {
            self.resolve(abs)
        } else {
            let (parent, name) = super::paths::split_path_dir_entry(abs);
            self.resolve(&parent).map(|p| format!("{p}/{name}"))
        };
        // A path that cannot be resolved is checked as spelled.
        let path = super::paths::clean(&resolved.unwrap_or_else(|_| abs.to_owned()));
        self.hidden_mounts
            .iter()
            .find(|m| {
                path.strip_prefix(m.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .map(String::as_str)
    }

    /// The host's `/`; paths must be absolute.
    pub(crate) fn host() -> Result<Root, Error> {
        let fd = nix::fcntl::open(
            "/",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::Io {
            what: "open",
            path: "/".into(),
            source: e.into(),
        })?;
        Ok(Root {
            fd,
            confined: false,
            container: None,
            hidden_mounts: Vec::new(),
        })
    }

    /// A host directory that an archive is extracted into: nothing in the
    /// archive (absolute or `..` symlinks) reaches outside it.
    pub(crate) fn jail(dir: &str) -> Result<Root, Error> {
        let fd = nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::HostStat {
            op: "stat",
            path: dir.to_owned(),
            source: e.into(),
        })?;
        Ok(Root {
            fd,
            confined: true,
            container: None,
            hidden_mounts: Vec::new(),
        })
    }

    pub(crate) fn container_name(&self) -> Option<&str> {
        self.container.as_deref()
    }

    /// The error for `path` not existing, in docker's words.
    pub(crate) fn missing(&self, path: &str) -> Error {
        match &self.container {
            Some(c) => Error::NotFound {
                path: path.to_owned(),
                container: c.clone(),
            },
            None => Error::HostStat {
                op: "lstat",
                path: path.to_owned(),
                source: Errno::ENOENT.into(),
            },
        }
    }

    /// Opens `path` (absolute in this root) with `flags`; every symlink
    /// but a final one under `O_NOFOLLOW` is followed, inside the root.
    pub(crate) fn open(&self, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        if self.confined {
            return rstack_sys::in_root::open(self.fd.as_fd(), path, flags);
        }
        // The host's own tree: plain lookups, relative to its root fd
        // (which makes a relative path mean the same as an absolute one).
        let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC);
        openat2(self.fd.as_fd(), rstack_sys::in_root::relative(path), how)
    }

    /// moby's `ResolvePath` + `Lstat`: an O_PATH fd of `abs` with every
    /// symlink followed except the last element's, unless `abs` spells a
    /// directory (`x/` or `x/.`, where the kernel follows it).
    pub(crate) fn lookup(&self, abs: &str, follow: bool) -> Result<(OwnedFd, FileStat), Errno> {
        let mut flags = OFlag::O_PATH;
        if !follow && !super::paths::asserts_directory(abs) {
            flags |= OFlag::O_NOFOLLOW;
        }
        let fd = self.open(Path::new(abs), flags)?;
        let st = nix::sys::stat::fstat(&fd)?;
        Ok((fd, st))
    }

    /// Docker's `FollowSymlinkInScope`: `path` with every symlink resolved
    /// inside this root, as an absolute path; elements that do not exist
    /// are kept as spelled (a dangling link names what would be created).
    pub(crate) fn resolve(&self, path: &str) -> Result<String, Errno> {
        let mut done: Vec<OsString> = Vec::new();
        let mut todo: Vec<OsString> = components(path.as_bytes());
        todo.reverse();
        let mut links = 0;
        while let Some(part) = todo.pop() {
            match part.as_bytes() {
                b"." => continue,
                b".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let mut candidate = join_abs(&done);
            candidate.push(&part);
            let st = self
                .open(&candidate, OFlag::O_PATH | OFlag::O_NOFOLLOW)
                .and_then(|fd| Ok((nix::sys::stat::fstat(&fd)?, fd)));
            match st {
                Ok((st, fd)) if file_type(&st) == SFlag::S_IFLNK => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Errno::ELOOP);
                    }
                    let target = nix::fcntl::readlinkat(&fd, "")?;
                    let bytes = target.as_bytes();
                    if bytes.starts_with(b"/") {
                        done.clear();
                    }
                    let mut more = components(bytes);
                    more.reverse();
                    todo.extend(more);
                }
                Ok(_) | Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => done.push(part),
                Err(e) => return Err(e),
            }
        }
        Ok(join_abs(&done).to_string_lossy().into_owned())
    }
}

fn components(path: &[u8]) -> Vec<OsString> {
    path.split(|b| *b == b'/')
        .filter(|p| !p.is_empty())
        .map(|p| OsString::from_vec(p.to_vec()))
        .collect()
}

fn join_abs(parts: &[OsString]) -> PathBuf {
    let mut p = PathBuf::from("/");
    for part in parts {
        p.push(part);
    }
    p
}

/// The `S_IFMT` bits of a stat.
pub(crate) fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}
