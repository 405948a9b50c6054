//! Crash-safe file replacement.
//!
//! Readers must see the old or the new content of a state file, never a
//! torn one, even if the writer is killed or the machine loses power: the
//! data goes to a temporary file in the same directory (rename is atomic
//! only within a filesystem), the file is fsynced, renamed over the target,
//! and the directory is fsynced so the rename itself is durable. Every
//! error of that sequence is returned: a write that reports success is on
//! disk.

use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// A failure replacing a file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot flush {path} to disk")]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The underlying I/O error, for a caller that words the context itself.
    pub fn into_io(self) -> io::Error {
        match self {
            Error::Write { source, .. }
            | Error::Sync { source, .. }
            | Error::CreateDir { source, .. } => source,
        }
    }
}

/// The mode `File::create` uses (the umask applies): what other tools and
/// the containers reading these files expect.
pub const DEFAULT_MODE: u32 = 0o666;

/// A file being written under a temporary name next to `path`; it replaces
/// `path` on [`AtomicFile::commit`] and is removed if dropped before.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: NamedTempFile,
}

impl AtomicFile {
    /// Starts writing a replacement for `path` with permission bits `mode`
    /// (minus the umask). The directory of `path` must exist.
    pub fn create(path: &Path, mode: u32) -> Result<AtomicFile, Error> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .permissions(Permissions::from_mode(mode))
            .tempfile_in(parent(path))
            .map_err(|source| Error::Write {
                path: path.to_owned(),
                source,
            })?;
        Ok(AtomicFile {
            path: path.to_owned(),
            tmp,
        })
    }

    /// The temporary file (for `set_permissions`, `fchown`, ...).
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// Fsyncs the data, renames it over the target and fsyncs the directory.
    pub fn commit(self) -> Result<(), Error> {
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|source| Error::Sync {
                path: self.path.clone(),
                source,
            })?;
        let path = self.persist()?;
        sync_dir(parent(&path))
    }

    /// Renames the data over the target without any fsync: for content that
    /// a later `syncfs` makes durable, or that may be lost after a crash.
    pub fn commit_unsynced(self) -> Result<(), Error> {
        self.persist().map(drop)
    }

    fn persist(self) -> Result<PathBuf, Error> {
        let AtomicFile { path, tmp } = self;
        match tmp.persist(&path) {
            Ok(_) => Ok(path),
            // The temp file is removed when the error (holding it) drops.
            Err(e) => Err(Error::Write {
                path,
                source: e.error,
            }),
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Replaces `path` with `data` durably (temp file, fsync, rename, fsync of
/// the directory), mode 0666 minus the umask. The directory must exist.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Error> {
    write_atomic_mode(path, data, DEFAULT_MODE)
}

/// [`write_atomic`] with the permission bits of the new file.
pub fn write_atomic_mode(path: &Path, data: &[u8], mode: u32) -> Result<(), Error> {
    let mut f = AtomicFile::create(path, mode)?;
    f.write_all(data).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })?;
    f.commit()
}

/// Replaces `path` with `data` through a temp file and rename, without
/// fsync: readers never see a torn file, but a crash may lose the update.
pub fn replace(path: &Path, data: &[u8], mode: u32) -> Result<(), Error> {
    let mut f = AtomicFile::create(path, mode)?;
    f.write_all(data).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })?;
    f.commit_unsynced()
}

/// Fsyncs directory `dir` so that renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Sync {
            path: dir.to_owned(),
            source,
        })
}

/// Creates directory `dir` and its missing parents.
pub fn create_dir_all(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
        path: dir.to_owned(),
        source,
    })
}

/// Creates the missing directories above `path` (a state file or lock file
/// about to be written in a run dir that may be fresh).
pub fn create_parent_dir(path: &Path) -> Result<(), Error> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => create_dir_all(dir),
        None => Ok(()),
    }
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(names(dir.path()), ["a.json"]);
    }

    #[test]
    fn mode_is_like_file_create_or_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        let umask = {
            let probe = dir.path().join("probe");
            File::create(&probe).unwrap();
            0o666 & !std::fs::metadata(&probe).unwrap().mode()
        };
        let p = dir.path().join("a");
        write_atomic(&p, b"x").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().mode() & 0o777,
            0o666 & !umask
        );
        write_atomic_mode(&p, b"x", 0o600).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing/a.json");
        let e = write_atomic(&p, b"x").unwrap_err();
        assert!(
            matches!(&e, Error::Write { path, .. } if path == &p),
            "{e:?}"
        );
        assert_eq!(e.to_string(), format!("cannot write {}", p.display()));
    }

    #[test]
    fn dropped_writer_leaves_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        write_atomic(&p, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&p, DEFAULT_MODE).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["a"]);
    }

    #[test]
    fn streamed_and_unsynced_writes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let mut f = AtomicFile::create(&p, DEFAULT_MODE).unwrap();
        f.write_all(b"ab").unwrap();
        f.write_all(b"cd").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abcd");
        replace(&p, b"e", DEFAULT_MODE).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"e");
    }

    #[test]
    fn relative_path_without_directory() {
        // `parent("x")` is "": the temp file must go to "." rather than fail.
        assert_eq!(parent(Path::new("x")), Path::new("."));
        assert_eq!(parent(Path::new("/a/x")), Path::new("/a"));
    }

    #[test]
    fn creates_directories_and_parents() {
        let dir = tempfile::tempdir().unwrap();
        create_dir_all(&dir.path().join("a/b")).unwrap();
        assert!(dir.path().join("a/b").is_dir());
        create_parent_dir(&dir.path().join("c/d/file")).unwrap();
        assert!(dir.path().join("c/d").is_dir());
        assert!(!dir.path().join("c/d/file").exists());
        create_parent_dir(Path::new("file-in-cwd")).unwrap();
        let blocker = dir.path().join("f");
        std::fs::write(&blocker, b"").unwrap();
        let e = create_dir_all(&blocker.join("x")).unwrap_err();
        assert!(matches!(&e, Error::CreateDir { path, .. } if path == &blocker.join("x")));
        assert_eq!(
            e.to_string(),
            format!("cannot create directory {}", blocker.join("x").display())
        );
    }

    #[test]
    fn sync_dir_of_missing_directory_fails() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            sync_dir(&dir.path().join("nope")),
            Err(Error::Sync { .. })
        ));
        sync_dir(dir.path()).unwrap();
    }
}
