//! Path resolution confined to a directory tree (an image layer, a
//! container's rootfs) with `openat2(RESOLVE_IN_ROOT)`.
//!
//! The kernel resolves every component as if the root fd were `/`: `..` at
//! the top stays there and absolute symlinks (`etc -> /host/etc`) resolve
//! inside, so a hostile image cannot make rstack touch host files through
//! its symlinks (Docker's `FollowSymlinkInScope`, done by the kernel instead
//! of in user space, which races). Magic links (`/proc/self/root`) are
//! refused.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, mkdirat};

/// A failure of [`mkdir_all`]; `path` is relative to the root (empty for
/// the root itself).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open {} in the root", display(path))]
    Open {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("cannot create directory {} in the root", display(path))]
    Create {
        path: PathBuf,
        #[source]
        source: Errno,
    },
}

fn display(p: &Path) -> String {
    format!("/{}", p.display())
}

/// Opens `path` (absolute or relative, both meaning "from the root") under
/// `root` with `flags` (plus `O_CLOEXEC`), every symlink resolved inside
/// the root. `O_NOFOLLOW` in `flags` keeps a final symlink unfollowed.
pub fn open(root: impl AsFd, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    let rel = relative(path);
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut tries = 0;
    loop {
        match openat2(root.as_fd(), rel, how) {
            // A concurrent rename in the tree makes the kernel refuse a `..`
            // walk it cannot prove safe; trying again is the documented answer.
            Err(Errno::EAGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

/// `path` as seen from a root fd: `/a/b` and `a/b` are `a/b`, `/` and the
/// empty path are `.` (`*at` calls refuse an empty path).
pub fn relative(path: &Path) -> &Path {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}

/// The elements of an entry name from an archive, empty and `.` elements
/// dropped; `None` when one is `..`: such an entry is a breakout attempt
/// and the whole archive is refused, as Docker does, even though a lookup
/// in the root would keep it inside.
pub fn archive_components(raw: &[u8]) -> Option<Vec<OsString>> {
    let mut parts = Vec::new();
    for p in raw.split(|b| *b == b'/') {
        match p {
            b"" | b"." => {}
            b".." => return None,
            p => parts.push(OsStr::from_bytes(p).to_owned()),
        }
    }
    Some(parts)
}

/// `mkdir -p path` inside `root`: each missing component is created with
/// `mode` (minus the umask) in its parent, which was itself resolved inside
/// the root, so a symlink in the tree can never make this create anything
/// outside it. Returns the final directory opened with `flags` (e.g.
/// `O_PATH`, or `O_RDONLY` to use it for `*at` calls and xattrs).
pub fn mkdir_all(root: impl AsFd, path: &Path, mode: Mode, flags: OFlag) -> Result<OwnedFd, Error> {
    let root = root.as_fd();
    let flags = flags | OFlag::O_DIRECTORY;
    let open_at = |rel: &Path| {
        open(root, rel, flags).map_err(|source| Error::Open {
            path: rel.to_owned(),
            source,
        })
    };
    let mut prefix = PathBuf::new();
    let mut parent = open_at(&prefix)?;
    for comp in path.components() {
        let Component::Normal(name) = comp else {
            // `/`, `.`, `..`: the kernel resolves them inside the root.
            if comp != Component::RootDir {
                prefix.push(comp.as_os_str());
                parent = open_at(&prefix)?;
            }
            continue;
        };
        prefix.push(name);
        parent = match open(root, &prefix, flags) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                match mkdirat(&parent, name, mode) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(source) => {
                        return Err(Error::Create {
                            path: prefix,
                            source,
                        });
                    }
                }
                // Re-resolved from the root: a racing symlink stays inside.
                open_at(&prefix)?
            }
            Err(source) => {
                return Err(Error::Open {
                    path: prefix,
                    source,
                });
            }
        };
    }
    Ok(parent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_fd(p: &Path) -> OwnedFd {
        nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn archive_names() {
        let v = |raw: &[u8]| {
            archive_components(raw).map(|p| {
                p.iter()
                    .map(|s| s.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            v(b"./a//b/./c/"),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(v(b"/"), Some(vec![]));
        assert_eq!(v(b"a/../b"), None);
        assert_eq!(v(b".."), None);
        assert_eq!(v(b"a/..b"), Some(vec!["a".into(), "..b".into()]));
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/a/b")), Path::new("a/b"));
        assert_eq!(relative(Path::new("a/b")), Path::new("a/b"));
        assert_eq!(relative(Path::new("/")), Path::new("."));
        assert_eq!(relative(Path::new("")), Path::new("."));
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        std::fs::create_dir(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "inside").unwrap();
        std::fs::write(outside.path().join("passwd"), "outside").unwrap();
        symlink(outside.path(), root.join("abs")).unwrap();
        symlink("../../../../etc", root.join("up")).unwrap();
        let fd = root_fd(root);
        // `abs` points at a host dir: inside the root that path does not exist.
        assert_eq!(
            open(&fd, Path::new("/abs/passwd"), OFlag::O_RDONLY).unwrap_err(),
            Errno::ENOENT
        );
        let f = open(&fd, Path::new("up/passwd"), OFlag::O_RDONLY).unwrap();
        let text = std::io::read_to_string(std::fs::File::from(f)).unwrap();
        assert_eq!(text, "inside");
        assert!(open(&fd, Path::new("/"), OFlag::O_PATH).is_ok());
        assert!(open(&fd, Path::new(""), OFlag::O_PATH).is_ok());
    }

    #[test]
    fn mkdir_all_stays_inside() {
        let outside = tempfile::tempdir().unwrap();
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        symlink(outside.path(), root.join("wd")).unwrap();
        symlink("/../../var/tmp", root.join("rel")).unwrap();
        let fd = root_fd(root);
        let mode = Mode::from_bits_truncate(0o755);
        mkdir_all(&fd, Path::new("/a/b/c"), mode, OFlag::O_PATH).unwrap();
        assert!(root.join("a/b/c").is_dir());
        // A link to a dir missing inside the root: an error, nothing outside.
        assert!(mkdir_all(&fd, Path::new("/wd/x"), mode, OFlag::O_RDONLY).is_err());
        assert!(!outside.path().join("x").exists());
        std::fs::create_dir_all(root.join("var/tmp")).unwrap();
        mkdir_all(&fd, Path::new("rel/y"), mode, OFlag::O_PATH).unwrap();
        assert!(root.join("var/tmp/y").is_dir());
        mkdir_all(&fd, Path::new("/../../up"), mode, OFlag::O_PATH).unwrap();
        assert!(root.join("up").is_dir());
    }

    #[test]
    fn mkdir_all_errors_name_the_component() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(tree.path().join("file"), "").unwrap();
        let fd = root_fd(tree.path());
        let e = mkdir_all(
            &fd,
            Path::new("/file/sub"),
            Mode::from_bits_truncate(0o755),
            OFlag::O_PATH,
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Open { path, source: Errno::ENOTDIR } if path == Path::new("file")),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "cannot open /file in the root");
    }
}
