//! The state modules' file helpers: crash-safe writes (temp file, fsync,
//! rename: readers see the old or the new file, never a torn one),
//! advisory `flock` locks held by a guard, random ids — rstack-sys's, with
//! the missing parent directories created first (the run dir may be fresh).

use std::path::Path;

pub use rstack_sys::lock::LockGuard;

/// Errors of the file helpers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Write(#[from] rstack_sys::fs::Error),
    #[error(transparent)]
    Lock(#[from] rstack_sys::lock::Error),
    #[error(transparent)]
    Random(#[from] rstack_sys::random::Error),
}

/// Writes `data` to `path` atomically (temp file, fsync, rename, fsync of
/// the directory), creating the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Error> {
    rstack_sys::fs::create_parent_dir(path)?;
    Ok(rstack_sys::fs::write_atomic(path, data)?)
}

/// Takes an exclusive lock on `path` (created if missing), blocking.
pub fn lock_exclusive(path: &Path) -> Result<LockGuard, Error> {
    rstack_sys::fs::create_parent_dir(path)?;
    Ok(rstack_sys::lock::lock(
        path,
        rstack_sys::lock::Mode::Exclusive,
    )?)
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> Result<String, Error> {
    Ok(rstack_sys::random::random_hex(n)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn atomic_write_creates_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file left behind");
    }

    #[test]
    fn lock_creates_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _g = lock_exclusive(&dir.path().join("a/b/.lock")).unwrap();
        assert!(dir.path().join("a/b/.lock").exists());
    }
}
