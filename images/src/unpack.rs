//! Unpacking one layer tarball into an overlayfs lower directory.
//!
//! Image layers are tar archives of changes (OCI image-spec `layer.md`).
//! Deletions are "whiteout" files: `.wh.NAME` deletes NAME from the layers
//! below, `.wh..wh..opq` hides everything below in its directory. overlayfs
//! has its own forms for both: a character device 0/0 named NAME, and the
//! xattr `trusted.overlay.opaque=y` on the directory. The layer dir is then
//! usable as-is as a `lowerdir=`.
//!
//! Security: a tarball is hostile input. Every path is resolved with
//! `openat2(RESOLVE_IN_ROOT)` relative to the layer dir, so `..`, absolute
//! symlinks and symlinked parents are all resolved *inside* the layer
//! (contained); entries whose own name contains `..` are rejected outright,
//! the final component is created with `O_NOFOLLOW`/`O_EXCL` semantics (never
//! written through a symlink), and hard links may only point at files already
//! unpacked in this same layer. Image-supplied `trusted.overlay.*` xattrs are
//! dropped: they would steer overlayfs (redirects, metacopy).

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};
use rstack_sys::in_root;

/// xattr overlayfs reads to make a directory opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_NAME: &str = ".wh..wh..opq";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the layer tar stream")]
    Read(#[source] io::Error),
    #[error("layer entry {path:?} escapes the layer directory (`..` component)")]
    PathTraversal { path: String },
    #[error("layer entry {path:?}: hard link target {target:?} is not a file of this layer")]
    BadHardlink { path: String, target: String },
    #[error("layer entry {path:?}: {what}")]
    Entry {
        path: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {path:?}: unsupported entry type {kind}")]
    Unsupported { path: String, kind: String },
    #[error("cannot open layer directory {path}")]
    OpenRoot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What unpacking may do.
#[derive(Debug, Clone)]
pub struct Options {
    /// chown entries to their tar owner (needs root; unprivileged unpacks
    /// keep the caller's ids).
    pub preserve_owners: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            preserve_owners: nix::unistd::geteuid().is_root(),
        }
    }
}

/// Counters of one unpack.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub entries: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
}

/// Unpacks the (uncompressed) tar stream `reader` into the existing
/// directory `dest`. Returns once the tar end marker is read; the caller
/// drains the rest of the stream (its digest covers the padding too).
pub fn unpack<R: Read>(reader: R, dest: &Path, opts: &Options) -> Result<Stats, Error> {
    let root = openat(
        nix::fcntl::AT_FDCWD,
        dest,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::OpenRoot {
        path: dest.to_owned(),
        source: e.into(),
    })?;
    let mut unpacker = Unpacker {
        root,
        opts: opts.clone(),
        stats: Stats::default(),
        dirs: Vec::new(),
        buf: vec![0; 256 << 10],
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(Error::Read)? {
        let mut entry = entry.map_err(Error::Read)?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish_dirs()?;
    Ok(unpacker.stats)
}

struct DirMeta {
    path: Vec<OsString>,
    display: String,
    mode: u32,
    mtime: u64,
}

struct Unpacker {
    root: OwnedFd,
    opts: Options,
    stats: Stats,
    /// Directory modes and mtimes, applied last: creating children would
    /// change the mtime, and a read-only mode would block them.
    dirs: Vec<DirMeta>,
    /// Copy buffer: large writes instead of `io::copy`'s 8 KiB ones.
    buf: Vec<u8>,
}

fn copy_with(from: &mut impl Read, to: &mut std::fs::File, buf: &mut [u8]) -> io::Result<u64> {
    use std::io::Write;
    let mut total = 0;
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Splits a tar path into components, dropping `/`, `.` and empty parts.
fn components(raw: &[u8], display: &str) -> Result<Vec<OsString>, Error> {
    in_root::archive_components(raw).ok_or_else(|| Error::PathTraversal {
        path: display.to_owned(),
    })
}

fn join(parts: &[OsString]) -> PathBuf {
    if parts.is_empty() {
        return PathBuf::from(".");
    }
    let mut bytes = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            bytes.push(b'/');
        }
        bytes.extend_from_slice(p.as_bytes());
    }
    PathBuf::from(OsString::from_vec(bytes))
}

/// Where an entry goes: its parent directory, opened inside the layer, and
/// its name there; `display` is the entry's path for errors.
struct Place<'a> {
    parent: OwnedFd,
    name: &'a OsStr,
    display: &'a str,
}

impl Place<'_> {
    /// Maps a failed syscall on this entry to [`Error::Entry`].
    fn err(&self, what: &'static str) -> impl FnOnce(Errno) -> Error + use<> {
        errno_err(self.display, what)
    }
}

/// The metadata of a tar entry that is applied to what it creates.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    fn of<R: Read>(
        header: &tar::Header,
        entry: &mut tar::Entry<'_, R>,
        display: &str,
    ) -> Result<Meta, Error> {
        let old = header.as_old();
        let header_err = |source| Error::Entry {
            path: display.to_owned(),
            what: "bad tar header",
            source,
        };
        let mode =
            numeric(header.mode().map(u64::from), &old.mode).map_err(header_err)? as u32 & 0o7777;
        let uid = numeric(header.uid(), &old.uid).map_err(header_err)?;
        let gid = numeric(header.gid(), &old.gid).map_err(header_err)?;
        let mtime = numeric(header.mtime(), &old.mtime).map_err(header_err)?;
        let xattrs = xattrs_of(entry).map_err(Error::Read)?;
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })
    }
}

/// A closure mapping a failed syscall on entry `display` to [`Error::Entry`].
fn errno_err(display: &str, what: &'static str) -> impl FnOnce(Errno) -> Error + use<> {
    let path = display.to_owned();
    move |e: Errno| Error::Entry {
        path,
        what,
        source: e.into(),
    }
}

/// Sets the mtime (and atime) of `parent/name`, not following a symlink.
fn set_mtime_at(parent: &OwnedFd, name: &OsStr, mtime: u64) -> Result<(), Errno> {
    let t = TimeSpec::new(mtime as i64, 0);
    nix::sys::stat::utimensat(parent, name, &t, &t, UtimensatFlags::NoFollowSymlink)
}

impl Unpacker {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), Error> {
        let raw_path = entry.path_bytes().into_owned();
        let display = String::from_utf8_lossy(&raw_path).into_owned();
        let parts = components(&raw_path, &display)?;
        let kind = entry.header().entry_type();
        let Some((name, parent_parts)) = parts.split_last() else {
            // The layer root itself ("./"): its metadata belongs to the
            // container's root directory, which the runtime owns.
            return Ok(());
        };
        self.stats.entries += 1;
        if name.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(parent_parts, name, &display);
        }

        let header = entry.header().clone();
        let meta = Meta::of(&header, entry, &display)?;
        let place = Place {
            parent: self.dir(parent_parts, &display)?,
            name,
            display: &display,
        };
        // Regular files and directories find out about an existing entry
        // from EEXIST (one syscall less per file); the rarer kinds check first.
        let fast_kind = matches!(
            kind,
            tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse
                | tar::EntryType::Directory
        );
        if !fast_kind {
            self.clear(&place.parent, name, false, &display)?;
        }

        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.file(&place, &meta, entry)
            }
            tar::EntryType::Directory => self.directory(&place, &meta, &parts),
            tar::EntryType::Symlink => self.symlink(&place, &meta, entry),
            tar::EntryType::Link => self.hardlink(&place, entry),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                self.node(&place, &meta, &header)
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => Ok(()),
            other => Err(Error::Unsupported {
                path: display,
                kind: format!("{other:?}"),
            }),
        }
    }

    /// A `.wh.` entry: an opaque directory or a whiteout device.
    fn whiteout(
        &mut self,
        parent_parts: &[OsString],
        name: &OsStr,
        display: &str,
    ) -> Result<(), Error> {
        let name_bytes = name.as_bytes();
        let hidden = &name_bytes[WHITEOUT_PREFIX.len()..];
        // `.wh..` and `.wh...` would name the directory or its parent.
        if hidden == b"." || hidden == b".." {
            return Err(Error::PathTraversal {
                path: display.to_owned(),
            });
        }
        let parent = self.dir(parent_parts, display)?;
        if name_bytes == OPAQUE_NAME.as_bytes() {
            set_xattr(&parent, None, OPAQUE_XATTR, b"y").map_err(|source| Error::Entry {
                path: display.to_owned(),
                what: "cannot mark directory opaque (trusted.overlay.opaque needs root)",
                source,
            })?;
        } else if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) || hidden.is_empty() {
            // Other `.wh..wh.` names are aufs metadata: nothing to do.
        } else {
            let hidden = OsStr::from_bytes(hidden);
            self.clear(&parent, hidden, false, display)?;
            mknodat(
                &parent,
                hidden,
                SFlag::S_IFCHR,
                Mode::empty(),
                nix::sys::stat::makedev(0, 0),
            )
            .map_err(errno_err(display, "cannot create whiteout device"))?;
        }
        Ok(())
    }

    /// A regular file: created (replacing what is there), written, then
    /// owner, mode, xattrs and mtime.
    fn file<R: Read>(
        &mut self,
        place: &Place<'_>,
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), Error> {
        let create = || {
            openat(
                &place.parent,
                place.name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
        };
        let fd = match create() {
            Err(Errno::EEXIST) => {
                self.clear(&place.parent, place.name, false, place.display)?;
                create()
            }
            other => other,
        }
        .map_err(place.err("cannot create file"))?;
        let mut file = std::fs::File::from(fd);
        let n = copy_with(entry, &mut file, &mut self.buf).map_err(|source| Error::Entry {
            path: place.display.to_owned(),
            what: "cannot write file content",
            source,
        })?;
        self.stats.bytes += n;
        self.chown(place, meta)?;
        nix::sys::stat::fchmod(file.as_fd(), Mode::from_bits_truncate(meta.mode))
            .map_err(place.err("cannot set mode"))?;
        self.apply_xattrs(place, &meta.xattrs)?;
        let t = TimeSpec::new(meta.mtime as i64, 0);
        nix::sys::stat::futimens(file.as_fd(), &t, &t).map_err(place.err("cannot set mtime"))
    }

    /// A directory: kept if one exists, else created; its mode and mtime
    /// wait for [`Unpacker::finish_dirs`].
    fn directory(
        &mut self,
        place: &Place<'_>,
        meta: &Meta,
        parts: &[OsString],
    ) -> Result<(), Error> {
        let mkdir =
            || nix::sys::stat::mkdirat(&place.parent, place.name, Mode::from_bits_truncate(0o700));
        match mkdir() {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                // Keeps an existing directory; replaces anything else.
                self.clear(&place.parent, place.name, true, place.display)?;
                match mkdir() {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(place.err("cannot create directory")(e)),
                }
            }
            Err(e) => return Err(place.err("cannot create directory")(e)),
        }
        self.chown(place, meta)?;
        self.apply_xattrs(place, &meta.xattrs)?;
        self.dirs.push(DirMeta {
            path: parts.to_vec(),
            display: place.display.to_owned(),
            mode: meta.mode,
            mtime: meta.mtime,
        });
        Ok(())
    }

    fn symlink<R: Read>(
        &self,
        place: &Place<'_>,
        meta: &Meta,
        entry: &tar::Entry<'_, R>,
    ) -> Result<(), Error> {
        let target = entry.link_name_bytes().ok_or_else(|| Error::Unsupported {
            path: place.display.to_owned(),
            kind: "symlink without target".into(),
        })?;
        nix::unistd::symlinkat(OsStr::from_bytes(&target), &place.parent, place.name)
            .map_err(place.err("cannot create symlink"))?;
        self.chown(place, meta)?;
        self.apply_xattrs(place, &meta.xattrs)?;
        set_mtime_at(&place.parent, place.name, meta.mtime).map_err(place.err("cannot set mtime"))
    }

    /// A hard link, only to a file already unpacked in this layer.
    fn hardlink<R: Read>(&self, place: &Place<'_>, entry: &tar::Entry<'_, R>) -> Result<(), Error> {
        let target = entry.link_name_bytes().unwrap_or_default().into_owned();
        let target_display = String::from_utf8_lossy(&target).into_owned();
        let bad = || Error::BadHardlink {
            path: place.display.to_owned(),
            target: target_display.clone(),
        };
        let tparts = components(&target, &target_display).map_err(|_| bad())?;
        let Some((tname, tparent_parts)) = tparts.split_last() else {
            return Err(bad());
        };
        let tparent = self.open_in_root(&join(tparent_parts)).map_err(|_| bad())?;
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink
        // itself, never what it points at.
        nix::unistd::linkat(
            &tparent,
            tname.as_os_str(),
            &place.parent,
            place.name,
            AtFlags::empty(),
        )
        .map_err(|_| bad())
    }

    /// A character or block device, or a fifo.
    fn node(&self, place: &Place<'_>, meta: &Meta, header: &tar::Header) -> Result<(), Error> {
        let sflag = match header.entry_type() {
            tar::EntryType::Char => SFlag::S_IFCHR,
            tar::EntryType::Block => SFlag::S_IFBLK,
            _ => SFlag::S_IFIFO,
        };
        let major = header.device_major().ok().flatten().unwrap_or(0);
        let minor = header.device_minor().ok().flatten().unwrap_or(0);
        let dev = nix::sys::stat::makedev(major.into(), minor.into());
        mknodat(
            &place.parent,
            place.name,
            sflag,
            Mode::from_bits_truncate(meta.mode & 0o777),
            dev,
        )
        .map_err(place.err("cannot create device node or fifo"))?;
        self.chown(place, meta)?;
        nix::sys::stat::fchmodat(
            &place.parent,
            place.name,
            Mode::from_bits_truncate(meta.mode),
            FchmodatFlags::NoFollowSymlink,
        )
        .or_else(|e| {
            if e == Errno::EOPNOTSUPP {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(place.err("cannot set mode"))?;
        self.apply_xattrs(place, &meta.xattrs)?;
        set_mtime_at(&place.parent, place.name, meta.mtime).map_err(place.err("cannot set mtime"))
    }

    /// Opens a directory of the layer, resolving symlinks inside the layer.
    fn open_in_root(&self, rel: &Path) -> Result<OwnedFd, Errno> {
        in_root::open(&self.root, rel, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
    }

    /// Opens (creating as needed, mode 0755) the directory `parts`.
    fn dir(&mut self, parts: &[OsString], display: &str) -> Result<OwnedFd, Error> {
        let rel = join(parts);
        match self.open_in_root(&rel) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => {
                return Err(Error::Entry {
                    path: display.to_owned(),
                    what: "cannot open parent directory",
                    source: e.into(),
                });
            }
        }
        let mode = Mode::from_bits_truncate(0o755);
        in_root::mkdir_all(&self.root, &rel, mode, OFlag::O_RDONLY).map_err(|e| {
            let (what, source) = match e {
                in_root::Error::Open { path, source } if path.as_os_str().is_empty() => {
                    ("cannot open layer root", source)
                }
                in_root::Error::Open { source, .. } => ("cannot open parent directory", source),
                in_root::Error::Create { source, .. } => ("cannot create parent directory", source),
            };
            Error::Entry {
                path: display.to_owned(),
                what,
                source: source.into(),
            }
        })
    }

    /// Removes what is at `parent/name` unless both it and the new entry
    /// are directories (a later entry for a path replaces the earlier one).
    fn clear(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        new_is_dir: bool,
        display: &str,
    ) -> Result<(), Error> {
        let st = match nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => {
                return Err(Error::Entry {
                    path: display.to_owned(),
                    what: "cannot stat",
                    source: e.into(),
                });
            }
        };
        let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        if is_dir && new_is_dir {
            return Ok(());
        }
        let res = if is_dir {
            let path = proc_path(parent, name);
            crate::fsutil::remove_all(&path)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        } else {
            nix::unistd::unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
        };
        res.map_err(|e| Error::Entry {
            path: display.to_owned(),
            what: "cannot replace existing entry",
            source: e.into(),
        })
    }

    /// Gives `place` the entry's owner, when unpacking keeps owners.
    fn chown(&self, place: &Place<'_>, meta: &Meta) -> Result<(), Error> {
        if !self.opts.preserve_owners {
            return Ok(());
        }
        let (Ok(uid), Ok(gid)) = (u32::try_from(meta.uid), u32::try_from(meta.gid)) else {
            return Err(Error::Entry {
                path: place.display.to_owned(),
                what: "owner id out of range",
                source: io::Error::from(io::ErrorKind::InvalidData),
            });
        };
        nix::unistd::fchownat(
            &place.parent,
            place.name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(place.err("cannot set owner"))
    }

    fn apply_xattrs(&self, place: &Place<'_>, xattrs: &[(String, Vec<u8>)]) -> Result<(), Error> {
        let entry_path = place.display;
        for (key, value) in xattrs {
            if key.starts_with("trusted.overlay.") {
                tracing::warn!(
                    path = entry_path,
                    key,
                    "dropping overlayfs xattr supplied by the image"
                );
                continue;
            }
            if let Err(e) = set_xattr(&place.parent, Some(place.name), key, value) {
                let unsupported = e.raw_os_error() == Some(libc::EOPNOTSUPP);
                let denied = e.raw_os_error() == Some(libc::EPERM);
                if unsupported || (denied && !self.opts.preserve_owners) {
                    tracing::warn!(path = entry_path, key, error = %e, "xattr not kept");
                } else {
                    return Err(Error::Entry {
                        path: entry_path.to_owned(),
                        what: "cannot set xattr",
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<(), Error> {
        // Deepest first, so setting a parent's mtime comes after its children.
        for dir in self.dirs.iter().rev() {
            let err = |what| errno_err(&dir.display, what);
            let Some((name, parent_parts)) = dir.path.split_last() else {
                continue;
            };
            let parent = self
                .open_in_root(&join(parent_parts))
                .map_err(err("cannot open directory"))?;
            // The entry may have been replaced by a later non-directory.
            match nix::sys::stat::fstatat(&parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st)
                    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR => {}
                _ => continue,
            }
            nix::sys::stat::fchmodat(
                &parent,
                name.as_os_str(),
                Mode::from_bits_truncate(dir.mode),
                FchmodatFlags::NoFollowSymlink,
            )
            .map_err(err("cannot set mode"))?;
            set_mtime_at(&parent, name, dir.mtime).map_err(err("cannot set mtime"))?;
        }
        Ok(())
    }
}

/// A numeric header field; an empty one (all NUL or spaces) is 0, as in
/// Go's archive/tar, which wrote many real layers.
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        other => other,
    }
}

/// `/proc/self/fd/N/name`: a path to `name` inside the directory fd, for the
/// calls that have no `*at` form. The fd link resolves to the directory
/// itself, so the name is looked up in that directory only.
fn proc_path(dir: &OwnedFd, name: &OsStr) -> PathBuf {
    use std::os::fd::AsRawFd;
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(name);
    p
}

/// Sets an xattr on `dir/name` without following a symlink (or on `dir`).
fn set_xattr(dir: &OwnedFd, name: Option<&OsStr>, key: &str, value: &[u8]) -> io::Result<()> {
    match name {
        Some(name) => xattr::set(proc_path(dir, name), key, value),
        None => {
            use xattr::FileExt;
            let file = std::fs::File::from(dir.try_clone()?);
            file.set_xattr(key, value)
        }
    }
}

/// The `SCHILY.xattr.*` PAX records of an entry.
fn xattrs_of<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Ok(key) = ext.key()
                && let Some(name) = key.strip_prefix("SCHILY.xattr.")
            {
                out.push((name.to_owned(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
