//! Extracting a tar stream into a directory of a [`Root`], the way the
//! Docker daemon handles `PUT /containers/{id}/archive` (and the CLI
//! extracts what it got back).
//!
//! Every parent directory is opened with `openat2` inside the root, and
//! the entry itself is made with a single-name `*at` call that never
//! follows a symlink (`O_EXCL|O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`), so an
//! archive, or the container racing it, cannot write outside the root.
//! As docker does, a directory never replaces a file nor the reverse, and
//! entries whose names climb out with `..` are refused.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use super::Error;
use super::root::{Root, file_type};

/// Who owns what is extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The uid/gid recorded in the archive (`cp -a`).
    Keep,
    /// These ids, whatever the archive says (the container's root).
    Set(u32, u32),
    /// Whoever runs the copy: no chown at all.
    Caller,
}

/// Extracts `input` into the existing directory `dir` of `root`.
pub(crate) fn unpack(root: &Root, dir: &str, input: impl Read, owner: Owner) -> Result<(), Error> {
    let base = PathBuf::from(dir);
    let fd = root.open(&base, OFlag::O_PATH).map_err(|e| match e {
        Errno::ENOENT => root.missing(dir),
        e => Error::Io {
            what: "open",
            path: dir.to_owned(),
            source: e.into(),
        },
    })?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| Error::Io {
        what: "stat",
        path: dir.to_owned(),
        source: e.into(),
    })?;
    if file_type(&st) != SFlag::S_IFDIR {
        return Err(Error::ExtractPointNotDir);
    }
    let mut u = Unpacker {
        root,
        base,
        owner,
        dir_times: Vec::new(),
    };
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(Error::ReadArchive)? {
        let entry = entry.map_err(Error::ReadArchive)?;
        u.entry(entry)?;
    }
    // Last, and deepest first: creating entries touched the directories.
    for (parts, mtime) in u.dir_times.iter().rev() {
        let (last, parents) = parts.split_last().expect("a named entry");
        let parent = u.open_dir(parents, &display(parts))?;
        let t = TimeSpec::new(*mtime, 0);
        nix::sys::stat::utimensat(
            &parent,
            last.as_os_str(),
            &t,
            &t,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(entry_err(&display(parts), "set the times of"))?;
    }
    Ok(())
}

struct Unpacker<'a> {
    root: &'a Root,
    base: PathBuf,
    owner: Owner,
    dir_times: Vec<(Vec<OsString>, i64)>,
}

fn entry_err(path: &str, what: &'static str) -> impl FnOnce(Errno) -> Error {
    let path = path.to_owned();
    move |e| Error::Io {
        what,
        path,
        source: e.into(),
    }
}

fn display(parts: &[OsString]) -> String {
    let v: Vec<_> = parts.iter().map(|p| p.to_string_lossy()).collect();
    v.join("/")
}

/// An entry's name as path elements, `.` and empty elements dropped; an
/// element `..` is a breakout attempt.
pub(crate) fn split_name(raw: &[u8]) -> Result<Vec<OsString>, Error> {
    rstack_sys::in_root::archive_components(raw).ok_or_else(|| Error::Breakout {
        name: String::from_utf8_lossy(raw).into_owned(),
    })
}

impl Unpacker<'_> {
    fn path_of(&self, parts: &[OsString]) -> PathBuf {
        let mut p = self.base.clone();
        for part in parts {
            p.push(part);
        }
        p
    }

    /// Chowns what `parent/name` is, per the owner policy.
    fn chown(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        uid: u64,
        gid: u64,
        shown: &str,
    ) -> Result<(), Error> {
        let ids = match self.owner {
            Owner::Keep => (uid as u32, gid as u32),
            Owner::Set(u, g) => (u, g),
            Owner::Caller => return Ok(()),
        };
        nix::unistd::fchownat(
            parent,
            name,
            Some(Uid::from_raw(ids.0)),
            Some(Gid::from_raw(ids.1)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(entry_err(shown, "change the owner of"))
    }

    /// Opens `base/parts` as a directory, creating missing ones (0755,
    /// owned like the container's root) as docker does for archives that
    /// lack parent entries.
    fn open_dir(&self, parts: &[OsString], shown: &str) -> Result<OwnedFd, Error> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        match self.root.open(&self.path_of(parts), flags) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(entry_err(shown, "open the directory of")(e)),
        }
        let mut cur = self
            .root
            .open(&self.base, flags)
            .map_err(entry_err(shown, "open the directory of"))?;
        for (i, part) in parts.iter().enumerate() {
            match nix::sys::stat::mkdirat(&cur, part.as_os_str(), Mode::from_bits_truncate(0o755)) {
                Ok(()) => {
                    let ids = match self.owner {
                        Owner::Caller => None,
                        Owner::Keep => Some((0, 0)),
                        Owner::Set(u, g) => Some((u, g)),
                    };
                    if let Some((u, g)) = ids {
                        self.chown(&cur, part, u64::from(u), u64::from(g), shown)?;
                    }
                    nix::sys::stat::fchmodat(
                        &cur,
                        part.as_os_str(),
                        Mode::from_bits_truncate(0o755),
                        FchmodatFlags::NoFollowSymlink,
                    )
                    .map_err(entry_err(shown, "set the mode of"))?;
                }
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(entry_err(shown, "create a parent directory of")(e)),
            }
            // Re-resolved from the root, so a symlinked element stays inside.
            cur = self
                .root
                .open(&self.path_of(&parts[..=i]), flags)
                .map_err(entry_err(shown, "open the directory of"))?;
        }
        Ok(cur)
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), Error> {
        let raw = entry.path_bytes().into_owned();
        let parts = split_name(&raw)?;
        let shown = self.path_of(&parts).to_string_lossy().into_owned();
        let h = entry.header();
        let kind = h.entry_type();
        let meta = Meta::of(h);
        let Some((name, parents)) = parts.split_last() else {
            // The extraction directory itself (`./`): already there, and
            // docker leaves its metadata alone.
            return Ok(());
        };
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let parent = self.open_dir(parents, &shown)?;
        let at = At {
            parent: &parent,
            name: name.as_os_str(),
            shown: &shown,
        };
        clear_existing(&at, kind == tar::EntryType::Directory)?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.write_file(&at, &mut entry, &meta)
            }
            tar::EntryType::Directory => {
                self.make_dir(&at, &meta)?;
                self.dir_times.push((parts.clone(), meta.mtime));
                Ok(())
            }
            tar::EntryType::Symlink => self.make_symlink(&at, &link_target(&entry, &shown)?, &meta),
            tar::EntryType::Link => self.make_hard_link(&at, &link_target(&entry, &shown)?),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                self.make_node(&at, entry.header(), &meta)
            }
            other => Err(Error::Unsupported {
                name: shown.clone(),
                kind: format!("{other:?}"),
            }),
        }
    }

    /// A regular file, its content copied from the archive.
    fn write_file(&self, at: &At<'_>, content: &mut impl Read, meta: &Meta) -> Result<(), Error> {
        let fd = nix::fcntl::openat(
            at.parent,
            at.name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(entry_err(at.shown, "create"))?;
        let mut file = std::fs::File::from(fd);
        std::io::copy(content, &mut file).map_err(|e| Error::Io {
            what: "write",
            path: at.shown.to_owned(),
            source: e,
        })?;
        self.chown(at.parent, at.name, meta.uid, meta.gid, at.shown)?;
        nix::sys::stat::fchmod(&file, meta.mode).map_err(entry_err(at.shown, "set the mode of"))?;
        let t = meta.time();
        nix::sys::stat::futimens(&file, &t, &t).map_err(entry_err(at.shown, "set the times of"))
    }

    /// A directory (an existing one is kept); its times are set at the end.
    fn make_dir(&self, at: &At<'_>, meta: &Meta) -> Result<(), Error> {
        match nix::sys::stat::mkdirat(at.parent, at.name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(entry_err(at.shown, "create")(e)),
        }
        self.own_and_mode(at, meta)
    }

    /// The entry's owner (per the policy) and mode, on what `at` names.
    fn own_and_mode(&self, at: &At<'_>, meta: &Meta) -> Result<(), Error> {
        self.chown(at.parent, at.name, meta.uid, meta.gid, at.shown)?;
        nix::sys::stat::fchmodat(
            at.parent,
            at.name,
            meta.mode,
            FchmodatFlags::NoFollowSymlink,
        )
        .map_err(entry_err(at.shown, "set the mode of"))
    }

    fn make_symlink(&self, at: &At<'_>, target: &[u8], meta: &Meta) -> Result<(), Error> {
        nix::unistd::symlinkat(OsStr::from_bytes(target), at.parent, at.name)
            .map_err(entry_err(at.shown, "create"))?;
        self.chown(at.parent, at.name, meta.uid, meta.gid, at.shown)?;
        set_times(at, meta)
    }

    /// A hard link to an entry already extracted: the target's directory
    /// resolved in the root, its last element linked as is (linkat never
    /// follows it).
    fn make_hard_link(&self, at: &At<'_>, target: &[u8]) -> Result<(), Error> {
        let target_parts = split_name(target)?;
        let Some((target_name, target_dir)) = target_parts.split_last() else {
            return Err(Error::Breakout {
                name: String::from_utf8_lossy(target).into_owned(),
            });
        };
        let target_parent = self
            .root
            .open(
                &self.path_of(target_dir),
                OFlag::O_PATH | OFlag::O_DIRECTORY,
            )
            .map_err(entry_err(at.shown, "find the hard link target of"))?;
        nix::unistd::linkat(
            &target_parent,
            target_name.as_os_str(),
            at.parent,
            at.name,
            AtFlags::empty(),
        )
        .map_err(entry_err(at.shown, "create"))
    }

    /// A character or block device, or a FIFO.
    fn make_node(&self, at: &At<'_>, h: &tar::Header, meta: &Meta) -> Result<(), Error> {
        let hdr_err = |e: std::io::Error| Error::Io {
            what: "read the archive header of",
            path: at.shown.to_owned(),
            source: e,
        };
        let kind = h.entry_type();
        let (sflag, dev) = match kind {
            tar::EntryType::Fifo => (SFlag::S_IFIFO, 0),
            _ => {
                let major = h.device_major().map_err(hdr_err)?.unwrap_or(0);
                let minor = h.device_minor().map_err(hdr_err)?.unwrap_or(0);
                let sflag = if kind == tar::EntryType::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                (sflag, libc::makedev(major, minor))
            }
        };
        nix::sys::stat::mknodat(
            at.parent,
            at.name,
            sflag,
            Mode::from_bits_truncate(0o600),
            dev,
        )
        .map_err(entry_err(at.shown, "create"))?;
        self.own_and_mode(at, meta)?;
        set_times(at, meta)
    }
}

/// Where an entry goes: a name in an opened parent directory.
struct At<'a> {
    parent: &'a OwnedFd,
    name: &'a OsStr,
    /// The entry's path, for messages.
    shown: &'a str,
}

/// An entry's metadata from its header.
struct Meta {
    mode: Mode,
    uid: u64,
    gid: u64,
    mtime: i64,
}

impl Meta {
    fn of(h: &tar::Header) -> Meta {
        // Go's archive/tar (docker's) reads an empty numeric field as 0.
        Meta {
            mode: Mode::from_bits_truncate(h.mode().unwrap_or(0) & 0o7777),
            uid: h.uid().unwrap_or(0),
            gid: h.gid().unwrap_or(0),
            mtime: h.mtime().unwrap_or(0) as i64,
        }
    }

    fn time(&self) -> TimeSpec {
        TimeSpec::new(self.mtime, 0)
    }
}

/// Makes room for an entry: an existing non-directory is replaced, an
/// existing directory kept for a directory; a directory never replaces a
/// file nor the reverse.
fn clear_existing(at: &At<'_>, is_dir: bool) -> Result<(), Error> {
    match nix::sys::stat::fstatat(at.parent, at.name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => match (file_type(&st) == SFlag::S_IFDIR, is_dir) {
            (true, false) => Err(Error::OverwriteDir {
                path: at.shown.to_owned(),
            }),
            (false, true) => Err(Error::OverwriteNonDir {
                path: at.shown.to_owned(),
            }),
            (true, true) => Ok(()),
            (false, false) => nix::unistd::unlinkat(at.parent, at.name, UnlinkatFlags::NoRemoveDir)
                .map_err(entry_err(at.shown, "replace")),
        },
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(entry_err(at.shown, "stat")(e)),
    }
}

/// The target of a symbolic or hard link entry.
fn link_target<R: Read>(entry: &tar::Entry<'_, R>, shown: &str) -> Result<Vec<u8>, Error> {
    entry
        .link_name_bytes()
        .map(|t| t.into_owned())
        .ok_or_else(|| Error::Io {
            what: "read the link target of",
            path: shown.to_owned(),
            source: std::io::ErrorKind::InvalidData.into(),
        })
}

/// Sets an entry's times without following it.
fn set_times(at: &At<'_>, meta: &Meta) -> Result<(), Error> {
    let t = meta.time();
    nix::sys::stat::utimensat(at.parent, at.name, &t, &t, UtimensatFlags::NoFollowSymlink)
        .map_err(entry_err(at.shown, "set the times of"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_split_and_checked() {
        let s = |raw: &str| {
            split_name(raw.as_bytes()).map(|v| {
                v.into_iter()
                    .map(|p| p.into_string().unwrap())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(s("./a/b/").unwrap(), ["a", "b"]);
        assert_eq!(s("/abs//x").unwrap(), ["abs", "x"]);
        assert!(s("./").unwrap().is_empty());
        assert!(s("a/../../etc/passwd").is_err());
        assert!(s("..").is_err());
    }
}
