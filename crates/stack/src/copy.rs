//! `cp` between a container and the host, with `docker cp`'s semantics.
//!
//! Both directions go through a tar stream, as with the Docker API: the
//! source is archived ([`pack`]) under the name docker's path rules give it
//! ([`paths::place`]), and extracted ([`unpack`]) into the directory those
//! rules pick. The container's side is a [`Root`] in which every path is
//! resolved with `openat2(RESOLVE_IN_ROOT)`: a symlink in the container
//! pointing at `/etc/shadow` means the container's file. [`container`]
//! opens it: a running container through `/proc/<pid>/root` of its init,
//! which shows the container's own mount namespace (volumes and bind
//! mounts included); a stopped one through an overlay of its image layers
//! and its kept writable layer, mounted in a private mount namespace of
//! this process. A stopped container shows its own files only: its named
//! volumes, bind mounts and tmpfs are not mounted, and a copy from or to
//! where they would be is refused ([`Error::OnMount`]).

pub mod container;
pub(crate) mod pack;
pub mod paths;
pub(crate) mod root;
pub(crate) mod unpack;

use std::io::{self, Read, Write};

use nix::sys::stat::SFlag;

pub use container::{Access, Opened};
pub(crate) use paths::{DestInfo, Placement};
pub(crate) use root::Root;
pub(crate) use unpack::Owner;

/// A failed copy. Messages that users of `docker cp` know keep docker's words.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Could not find the file {path} in container {container}")]
    NotFound { path: String, container: String },
    #[error("container {container} is not running")]
    NotRunning { container: String },
    #[error(
        "{path} is on {mount}, a volume, bind mount or tmpfs of container {container}: \
         rstack cp reaches those only while the container runs"
    )]
    OnMount {
        container: String,
        path: String,
        mount: String,
    },
    #[error(
        "container {container} is not running and has no files kept on disk \
         (it never started, or an older rstack created it): start it to copy"
    )]
    NoFilesystem { container: String },
    #[error("container {container} is {status}: try again once it runs or is stopped")]
    Busy {
        container: String,
        status: &'static str,
    },
    #[error("container {container} no longer exists")]
    Gone { container: String },
    #[error("cannot read the state of container {container}")]
    State {
        container: String,
        #[source]
        source: crate::state::Error,
    },
    #[error("cannot find the image {image} of container {container}")]
    Image {
        container: String,
        image: String,
        #[source]
        source: Option<Box<rstack_images::Error>>,
    },
    #[error("cannot set up a private mount namespace: {what}")]
    PrivateMounts {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot mount the files of stopped container {container}")]
    Mount {
        container: String,
        #[source]
        source: rstack_runtime::rootfs::RootfsError,
    },
    #[error("cannot unmount the files of container {container} from {target}")]
    Unmount {
        container: String,
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("{op} {path}")]
    HostStat {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("invalid output path: directory \"{dir}\" does not exist")]
    OutputDirMissing { dir: String },
    #[error("invalid output path: \"{path}\" must be a directory or a regular file")]
    OutputNotFile { path: String },
    #[error("destination \"{container}:{path}\" must be a directory or a regular file")]
    DestinationNotFile { container: String, path: String },
    #[error("destination \"{container}:{path}\" must be a directory")]
    DestinationNotDir { container: String, path: String },
    #[error("cannot copy directory")]
    CannotCopyDir,
    #[error("no such directory")]
    DirNotExists,
    #[error("not a directory")]
    NotDirectory,
    #[error("too many symlinks in {path}")]
    TooManySymlinks { path: String },
    #[error("extraction point is not a directory")]
    ExtractPointNotDir,
    #[error("cannot overwrite directory {path:?} with non-directory")]
    OverwriteDir { path: String },
    #[error("cannot overwrite non-directory {path:?} with directory")]
    OverwriteNonDir { path: String },
    #[error("archive entry {name:?} points outside of the extraction directory")]
    Breakout { name: String },
    #[error("archive entry {name:?}: unsupported entry type {kind}")]
    Unsupported { name: String, kind: String },
    #[error("cannot {what} {path}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the tar stream")]
    ReadArchive(#[source] io::Error),
    #[error("cannot write the tar stream")]
    WriteArchive(#[source] io::Error),
}

/// `cp` flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `-a`: keep the archive's uid/gid instead of the receiving side's.
    pub archive: bool,
    /// `-L`: follow a symlink that the source path itself names.
    pub follow_link: bool,
}

/// What a copy into a container reads.
pub enum Source<'a> {
    /// A host path, absolute, its trailing `/` or `/.` kept
    /// ([`paths::host_abs`]).
    Path(&'a str),
    /// A tar stream, extracted into the destination directory as is.
    Tar(&'a mut dyn Read),
}

/// What a copy out of a container writes.
pub enum Dest<'a> {
    /// A host path, absolute, its trailing `/` or `/.` kept.
    Path(&'a str),
    /// The tar stream itself.
    Tar(&'a mut dyn Write),
}

/// Where a copy went and how many bytes of tar it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub bytes: u64,
    /// The destination path, symlinks of its last element followed.
    pub dest: String,
}

/// `cp SRC CONTAINER:DST` into the container of `root`.
pub fn copy_into(root: &Root, src: Source<'_>, dst: &str, opts: Options) -> Result<Copied, Error> {
    let container = root.container_name().unwrap_or("host").to_owned();
    let dst_abs = paths::container_abs(dst);
    let info = container_dest_info(root, &dst_abs, &container, dst)?;
    let on_mount = |path: &str, follow: bool| match root.hidden_mount(path, follow) {
        Some(mount) => Err(Error::OnMount {
            container: container.clone(),
            path: dst.to_owned(),
            mount: mount.to_owned(),
        }),
        None => Ok(()),
    };
    let owner = if opts.archive {
        Owner::Keep
    } else {
        Owner::Set(0, 0)
    };
    match src {
        Source::Tar(input) => {
            if !info.is_dir {
                return Err(Error::DestinationNotDir {
                    container,
                    path: dst.to_owned(),
                });
            }
            on_mount(&info.path, true)?;
            let mut counted = Counting::new(input);
            unpack::unpack(root, &info.path, &mut counted, owner)?;
            io::copy(&mut counted, &mut io::sink()).map_err(Error::ReadArchive)?;
            Ok(Copied {
                bytes: counted.bytes,
                dest: info.path,
            })
        }
        Source::Path(src) => {
            let host = Root::host()?;
            let (_, st) = host
                .lookup(src, opts.follow_link)
                .map_err(|e| Error::HostStat {
                    op: "lstat",
                    path: src.to_owned(),
                    source: e.into(),
                })?;
            let is_dir = root::file_type(&st) == SFlag::S_IFDIR;
            let place = paths::place(src, is_dir, &info)?;
            on_mount(&landing(&place), false)?;
            let bytes = through_pipe(
                |w| pack::pack(&host, src, opts.follow_link, &place.name, w).map(drop),
                |r| unpack::unpack(root, &place.dir, r, owner),
            )?;
            Ok(Copied {
                bytes,
                dest: info.path,
            })
        }
    }
}

/// `cp CONTAINER:SRC DST` out of the container of `root`.
pub fn copy_out(root: &Root, src: &str, dst: Dest<'_>, opts: Options) -> Result<Copied, Error> {
    let src_abs = paths::container_abs(src);
    let name = paths::archive_name(&src_abs);
    if let Some(mount) = root.hidden_mount(&src_abs, opts.follow_link) {
        return Err(Error::OnMount {
            container: root.container_name().unwrap_or("host").to_owned(),
            path: src.to_owned(),
            mount: mount.to_owned(),
        });
    }
    match dst {
        Dest::Tar(out) => {
            let mut counted = Counting::new(out);
            pack::pack(root, &src_abs, opts.follow_link, &name, &mut counted)
                .map_err(|e| not_found_as_given(e, src))?;
            counted.flush().map_err(Error::WriteArchive)?;
            Ok(Copied {
                bytes: counted.bytes,
                dest: "-".into(),
            })
        }
        Dest::Path(dst) => {
            validate_output_path(dst)?;
            let (_, st) = root
                .lookup(&src_abs, opts.follow_link)
                .map_err(|e| match e {
                    nix::errno::Errno::ENOENT => root.missing(src),
                    e => Error::Io {
                        what: "stat",
                        path: src.to_owned(),
                        source: e.into(),
                    },
                })?;
            let is_dir = root::file_type(&st) == SFlag::S_IFDIR;
            let info = host_dest_info(dst)?;
            let place = paths::place(&src_abs, is_dir, &info)?;
            let jail = Root::jail(&place.dir)?;
            let owner = if opts.archive {
                Owner::Keep
            } else {
                Owner::Caller
            };
            let bytes = through_pipe(
                |w| {
                    pack::pack(root, &src_abs, opts.follow_link, &place.name, w)
                        .map(drop)
                        .map_err(|e| not_found_as_given(e, src))
                },
                |r| unpack::unpack(&jail, "/", r, owner),
            )?;
            Ok(Copied {
                bytes,
                dest: info.path,
            })
        }
    }
}

/// Where the top entry of an archive extracted per `place` lands.
fn landing(place: &Placement) -> String {
    if place.name == "." {
        place.dir.clone()
    } else {
        paths::clean(&format!("{}/{}", place.dir, place.name))
    }
}

/// Docker names a missing source as the user spelled it.
fn not_found_as_given(e: Error, src: &str) -> Error {
    match e {
        Error::NotFound { container, .. } => Error::NotFound {
            path: src.to_owned(),
            container,
        },
        e => e,
    }
}

/// compose's `ContainerStatPath` on the destination, a symlink followed
/// once (to its target resolved in the container). A destination that
/// cannot be stat'ed is taken as not existing: the extraction says why.
fn container_dest_info(
    root: &Root,
    dst_abs: &str,
    container: &str,
    dst: &str,
) -> Result<DestInfo, Error> {
    let mut info = DestInfo {
        path: dst_abs.to_owned(),
        exists: false,
        is_dir: false,
    };
    let mut stat = root.lookup(dst_abs, false).ok();
    if let Some((_, st)) = &stat
        && root::file_type(st) == SFlag::S_IFLNK
    {
        info.path = root.resolve(dst_abs).map_err(|e| Error::Io {
            what: "resolve",
            path: dst.to_owned(),
            source: e.into(),
        })?;
        stat = root.lookup(&info.path, false).ok();
    }
    if let Some((_, st)) = stat {
        let kind = root::file_type(&st);
        if kind == SFlag::S_IFCHR || kind == SFlag::S_IFBLK {
            return Err(Error::DestinationNotFile {
                container: container.to_owned(),
                path: dst.to_owned(),
            });
        }
        info.exists = true;
        info.is_dir = kind == SFlag::S_IFDIR;
    }
    Ok(info)
}

/// docker's `ValidateOutputPath`: the parent must exist, an existing
/// destination must be a directory or a regular file.
fn validate_output_path(dst: &str) -> Result<(), Error> {
    let dir = paths::dir(&paths::clean(dst));
    if dir != "." && !std::path::Path::new(&dir).exists() {
        return Err(Error::OutputDirMissing { dir });
    }
    if let Ok(m) = std::fs::metadata(dst)
        && !m.is_dir()
        && !m.is_file()
    {
        use std::os::unix::fs::FileTypeExt;
        let ft = m.file_type();
        if ft.is_block_device() || ft.is_char_device() {
            return Err(Error::OutputNotFile {
                path: dst.to_owned(),
            });
        }
    }
    Ok(())
}

/// moby's `CopyInfoDestinationPath`: symlinks at the destination itself are
/// followed (up to 10); a missing destination needs an existing parent.
fn host_dest_info(dst: &str) -> Result<DestInfo, Error> {
    let mut path = dst.to_owned();
    let mut meta = std::fs::symlink_metadata(&path);
    let mut n = 0;
    while let Ok(m) = &meta
        && m.file_type().is_symlink()
    {
        n += 1;
        if n > 10 {
            return Err(Error::TooManySymlinks {
                path: dst.to_owned(),
            });
        }
        let target = std::fs::read_link(&path).map_err(|e| Error::HostStat {
            op: "readlink",
            path: path.clone(),
            source: e,
        })?;
        let target = target.to_string_lossy().into_owned();
        path = if target.starts_with('/') {
            target
        } else {
            let (parent, _) = paths::split_path_dir_entry(&path);
            paths::clean(&format!("{parent}/{target}"))
        };
        meta = std::fs::symlink_metadata(&path);
    }
    match meta {
        Ok(m) => Ok(DestInfo {
            path,
            exists: true,
            is_dir: m.is_dir(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let (parent, _) = paths::split_path_dir_entry(&path);
            let pm = std::fs::metadata(&parent).map_err(|e| Error::HostStat {
                op: "stat",
                path: parent.clone(),
                source: e,
            })?;
            if !pm.is_dir() {
                return Err(Error::NotDirectory);
            }
            Ok(DestInfo {
                path,
                exists: false,
                is_dir: false,
            })
        }
        Err(e) => Err(Error::HostStat {
            op: "lstat",
            path,
            source: e,
        }),
    }
}

/// Runs `produce` (writing a tar stream) on a thread and `consume` (reading
/// it) here, connected by a pipe; returns the stream's length. The
/// consumer's error wins: the producer then only sees a closed pipe.
fn through_pipe(
    produce: impl FnOnce(&mut dyn Write) -> Result<(), Error> + Send,
    consume: impl FnOnce(&mut dyn Read) -> Result<(), Error>,
) -> Result<u64, Error> {
    let (reader, writer) = nix::unistd::pipe().map_err(|e| Error::Io {
        what: "create",
        path: "a pipe".into(),
        source: e.into(),
    })?;
    let (reader, mut writer) = (std::fs::File::from(reader), std::fs::File::from(writer));
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let r = produce(&mut writer);
            drop(writer);
            r
        });
        let mut counted = Counting::new(reader);
        let consumed = consume(&mut counted).and_then(|()| {
            // The end-of-archive blocks, so the producer never blocks.
            io::copy(&mut counted, &mut io::sink())
                .map(drop)
                .map_err(Error::ReadArchive)
        });
        drop(counted.inner);
        let produced = producer.join().unwrap_or_else(|_| {
            Err(Error::WriteArchive(io::Error::other(
                "the archiving thread panicked",
            )))
        });
        match (consumed, produced) {
            (Ok(()), Ok(())) => Ok(counted.bytes),
            // A source error (not found, unreadable) explains a
            // truncated stream better than the extraction does.
            (Err(_), Err(p)) if !matches!(p, Error::WriteArchive(_)) => Err(p),
            (Err(c), _) => Err(c),
            (Ok(()), Err(p)) => Err(p),
        }
    })
}

/// Counts the bytes that pass through.
struct Counting<T> {
    inner: T,
    bytes: u64,
}

impl<T> Counting<T> {
    fn new(inner: T) -> Counting<T> {
        Counting { inner, bytes: 0 }
    }
}

impl<T: Read> Read for Counting<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

impl<T: Write> Write for Counting<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    use std::path::Path;

    use super::*;

    fn s(p: &Path) -> String {
        p.display().to_string()
    }

    /// A "container" tree: a file, a nested dir, links of both kinds and
    /// symlinks that would leave the tree if resolved on the host.
    fn tree(root: &Path) {
        std::fs::create_dir_all(root.join("app/sub")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/shadow"), "inside\n").unwrap();
        std::fs::write(root.join("app/f.txt"), "data\n").unwrap();
        std::fs::set_permissions(
            root.join("app/f.txt"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::fs::write(root.join("app/sub/deep"), "deep\n").unwrap();
        std::fs::hard_link(root.join("app/f.txt"), root.join("app/hard")).unwrap();
        symlink("/etc/shadow", root.join("app/abs")).unwrap();
        symlink("../../../../../../etc/shadow", root.join("app/rel")).unwrap();
        symlink("/", root.join("app/rootlink")).unwrap();
    }

    #[test]
    fn resolution_stays_in_the_root() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path());
        let root = Root::jail(&s(t.path())).unwrap();
        assert_eq!(root.resolve("/app/abs").unwrap(), "/etc/shadow");
        assert_eq!(root.resolve("/app/rel").unwrap(), "/etc/shadow");
        assert_eq!(
            root.resolve("/app/rootlink/app/rootlink/etc/x").unwrap(),
            "/etc/x"
        );
        // opened through any of them, it is the tree's file
        for p in [
            "/app/abs",
            "/app/rel",
            "/app/rootlink/etc/shadow",
            "/../../etc/shadow",
        ] {
            let (fd, _) = root.lookup(p, true).unwrap();
            let st = nix::sys::stat::fstat(&fd).unwrap();
            let inside = std::fs::metadata(t.path().join("etc/shadow")).unwrap();
            assert_eq!(st.st_ino, inside.ino(), "{p} left the root");
        }
        // without following, the link itself
        let (_, st) = root.lookup("/app/abs", false).unwrap();
        assert_eq!(root::file_type(&st), SFlag::S_IFLNK);
    }

    #[test]
    fn copy_out_keeps_modes_links_and_names() {
        let t = tempfile::tempdir().unwrap();
        tree(&t.path().join("c"));
        std::fs::create_dir(t.path().join("out")).unwrap();
        let root = Root::jail(&s(&t.path().join("c"))).unwrap();
        let out = t.path().join("out");

        // a directory into an existing one goes inside
        let done = copy_out(&root, "/app", Dest::Path(&s(&out)), Options::default()).unwrap();
        assert!(done.bytes > 0);
        let got = out.join("app");
        assert_eq!(
            std::fs::read_to_string(got.join("sub/deep")).unwrap(),
            "deep\n"
        );
        let f = std::fs::metadata(got.join("f.txt")).unwrap();
        assert_eq!(f.mode() & 0o7777, 0o640);
        assert_eq!(f.ino(), std::fs::metadata(got.join("hard")).unwrap().ino());
        assert_eq!(
            std::fs::read_link(got.join("abs")).unwrap(),
            Path::new("/etc/shadow")
        );
        let want = std::fs::metadata(t.path().join("c/app/sub"))
            .unwrap()
            .mtime();
        assert_eq!(std::fs::metadata(got.join("sub")).unwrap().mtime(), want);

        // `dir/.` to a new path: the contents under that name
        let new = out.join("copy2");
        copy_out(
            &root,
            "/app/sub/.",
            Dest::Path(&s(&new)),
            Options::default(),
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(new.join("deep")).unwrap(), "deep\n");

        // -L reads through a link, resolved in the container
        let file = out.join("shadow");
        let opts = Options {
            follow_link: true,
            ..Options::default()
        };
        for link in ["/app/rel", "app/rootlink/etc/shadow"] {
            copy_out(&root, link, Dest::Path(&s(&file)), opts).unwrap();
            assert_eq!(std::fs::read_to_string(&file).unwrap(), "inside\n");
        }

        // errors keep docker's words
        let e = copy_out(&root, "/app", Dest::Path(&s(&file)), Options::default()).unwrap_err();
        assert_eq!(e.to_string(), "cannot copy directory");
        let e = copy_out(
            &root,
            "/nope",
            Dest::Path(&s(&out.join("x"))),
            Options::default(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::HostStat { op: "lstat", .. }), "{e}");
        let e = copy_out(
            &root,
            "/app/f.txt",
            Dest::Path(&s(&out.join("no/such/x"))),
            Options::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("invalid output path: directory"),
            "{e}"
        );
    }

    #[test]
    fn hostile_archives_stay_in_the_extraction_dir() {
        let t = tempfile::tempdir().unwrap();
        let dst = t.path().join("dst");
        std::fs::create_dir(&dst).unwrap();
        let jail = Root::jail(&s(&dst)).unwrap();

        // a symlink to `/`, then a file written through it
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "up", "/").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, "up/tmp-escaped", &b"bad"[..])
            .unwrap();
        let data = b.into_inner().unwrap();
        unpack::unpack(&jail, "/", data.as_slice(), Owner::Caller).unwrap();
        assert_eq!(std::fs::read(dst.join("tmp-escaped")).unwrap(), b"bad");
        assert!(!Path::new("/tmp-escaped").exists());

        // `..` in a name is refused outright
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        let name = b"../outside";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let e = unpack::unpack(&jail, "/", data.as_slice(), Owner::Caller).unwrap_err();
        assert!(matches!(e, Error::Breakout { .. }), "{e}");
        assert!(!t.path().join("outside").exists());

        // a directory is never replaced by a file
        std::fs::create_dir(dst.join("d")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "d", &b"x"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let e = unpack::unpack(&jail, "/", data.as_slice(), Owner::Caller).unwrap_err();
        assert!(matches!(e, Error::OverwriteDir { .. }), "{e}");
    }
}
