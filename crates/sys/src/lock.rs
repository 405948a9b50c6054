//! Inter-process locks: `flock(2)` on a lock file, held by a guard.
//!
//! The kernel drops a flock when its holder dies, so a crashed process never
//! leaves a stale lock behind. Waiting is retried when a signal handler
//! interrupts it (`EINTR`), so a caught signal does not look like a failure.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// A failure taking a lock.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open lock file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Shared (readers) or exclusive (one writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// A held `flock`; released when dropped.
#[derive(Debug)]
pub struct LockGuard {
    _lock: Flock<File>,
}

/// Takes a lock on `path` (created if missing, its directory must exist),
/// waiting as long as another process holds a conflicting one.
pub fn lock(path: &Path, mode: Mode) -> Result<LockGuard, Error> {
    let file = open_lock_file(path)?;
    let arg = match mode {
        Mode::Shared => FlockArg::LockShared,
        Mode::Exclusive => FlockArg::LockExclusive,
    };
    take(file, path, arg)?.ok_or_else(|| unreachable_would_block(path))
}

/// Takes an exclusive lock on `path` (created if missing) without waiting:
/// `None` when another process holds it.
pub fn try_lock(path: &Path) -> Result<Option<LockGuard>, Error> {
    let file = open_lock_file(path)?;
    take(file, path, FlockArg::LockExclusiveNonblock)
}

/// Takes a lock on an existing file or directory, opened read-only (a
/// directory cannot be opened for writing), waiting for it.
pub fn lock_existing(path: &Path, mode: Mode) -> Result<LockGuard, Error> {
    let file = File::open(path).map_err(|source| Error::Open {
        path: path.to_owned(),
        source,
    })?;
    let arg = match mode {
        Mode::Shared => FlockArg::LockShared,
        Mode::Exclusive => FlockArg::LockExclusive,
    };
    take(file, path, arg)?.ok_or_else(|| unreachable_would_block(path))
}

fn open_lock_file(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })
}

/// `Flock::lock`, retried on `EINTR`; `None` on `EWOULDBLOCK`.
fn take(mut file: File, path: &Path, arg: FlockArg) -> Result<Option<LockGuard>, Error> {
    loop {
        match Flock::lock(file, arg) {
            Ok(lock) => return Ok(Some(LockGuard { _lock: lock })),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
            Err((_, errno)) => {
                return Err(Error::Lock {
                    path: path.to_owned(),
                    source: errno.into(),
                });
            }
        }
    }
}

/// A blocking flock never reports `EWOULDBLOCK`; should a kernel do so,
/// say it rather than panic.
fn unreachable_would_block(path: &Path) -> Error {
    Error::Lock {
        path: path.to_owned(),
        source: Errno::EWOULDBLOCK.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // flock locks belong to the open file description, so two opens in one
    // process conflict just as two processes would.

    #[test]
    fn exclusive_excludes_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let held = lock(&p, Mode::Exclusive).unwrap();
        assert!(try_lock(&p).unwrap().is_none());
        drop(held);
        assert!(try_lock(&p).unwrap().is_some());
    }

    #[test]
    fn shared_locks_coexist_but_exclude_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let a = lock(&p, Mode::Shared).unwrap();
        let b = lock(&p, Mode::Shared).unwrap();
        assert!(try_lock(&p).unwrap().is_none());
        drop((a, b));
        assert!(try_lock(&p).unwrap().is_some());
    }

    #[test]
    fn blocked_waiter_gets_the_lock_when_released() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let held = lock(&p, Mode::Exclusive).unwrap();
        let p2 = p.clone();
        let waiter = std::thread::spawn(move || lock(&p2, Mode::Exclusive).map(drop));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished());
        drop(held);
        waiter.join().unwrap().unwrap();
    }

    #[test]
    fn directory_lock_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_existing(dir.path(), Mode::Exclusive).unwrap();
        drop(held);
        let missing = dir.path().join("no/such/lock");
        let e = lock(&missing, Mode::Exclusive).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("cannot open lock file {}", missing.display())
        );
        assert!(matches!(
            lock_existing(&missing, Mode::Shared),
            Err(Error::Open { .. })
        ));
    }
}
