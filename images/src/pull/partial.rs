//! A layer blob being downloaded, kept across interruptions.
//!
//! The bytes of a layer blob go to `images/tmp/partial-<hex of its
//! digest>` as they arrive. When a pull dies (SIGKILL, a cut connection,
//! a timeout), the file stays; the next download of that blob asks the
//! registry only for the rest (HTTP `Range: bytes=N-`) and appends it. The
//! import reads the file from its first byte while it grows
//! ([`Follower`]), so download, decompression and untar still overlap, and
//! the blob digest is always computed over the whole file: a resumed blob
//! is verified exactly like a fresh one. Nothing in the file is trusted
//! before that check; a file that fails it is removed. Once verified, the
//! file is renamed into the layer's staging dir and becomes the stored
//! blob.
//!
//! Concurrency: the layer lock (`Store::layer_lock_path`, per diff id) is
//! held while a partial file is written, so one process at a time writes
//! it; a killed holder's lock is released by the kernel.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use crate::error::Error;
use crate::store::{Store, hex_of};

/// File name prefix of partial blobs in `images/tmp/` (kept by
/// `Store::clean_tmp`).
pub(crate) const PREFIX: &str = "partial-";

/// How much of the file is written, shared with its [`Follower`]s.
#[derive(Debug, Default)]
struct Written {
    len: u64,
    /// No more bytes will come.
    done: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<Written>,
    grown: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Written)) {
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut w);
        self.grown.notify_all();
    }
}

/// The partial file of one blob, open for appending.
#[derive(Debug)]
pub(crate) struct Partial {
    path: PathBuf,
    file: File,
    len: u64,
    shared: Arc<Shared>,
}

impl Partial {
    /// Opens (creating) the partial file of `digest`; one longer than the
    /// blob's `size` cannot be a prefix of it and is emptied.
    pub(crate) fn open(store: &Store, digest: &str, size: u64) -> Result<Partial, Error> {
        let path = store.tmp_dir().join(format!("{PREFIX}{}", hex_of(digest)));
        let werr = |source| Error::Write {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(werr)?;
        let mut len = file.metadata().map_err(werr)?.len();
        if len > size {
            file.set_len(0).map_err(werr)?;
            len = 0;
        }
        let shared = Arc::new(Shared::default());
        shared.update(|w| w.len = len);
        Ok(Partial {
            path,
            file,
            len,
            shared,
        })
    }

    /// Bytes already there.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Empties the file (the registry sent the whole blob, not the rest).
    /// Only before any [`Follower`] was made.
    pub(crate) fn restart(&mut self) -> Result<(), Error> {
        self.file.set_len(0).map_err(|source| Error::Write {
            path: self.path.clone(),
            source,
        })?;
        self.len = 0;
        self.shared.update(|w| w.len = 0);
        Ok(())
    }

    /// Appends downloaded bytes.
    pub(crate) fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, self.len)?;
        self.len += data.len() as u64;
        let len = self.len;
        self.shared.update(|w| w.len = len);
        Ok(())
    }

    /// No more bytes come: followers see the end of the file.
    pub(crate) fn finish(&self) {
        self.shared.update(|w| w.done = true);
    }

    /// A reader of the whole blob from its first byte, following the
    /// file as it grows until [`Partial::finish`].
    pub(crate) fn follower(&self) -> Result<Follower, Error> {
        let file = File::open(&self.path).map_err(|source| Error::Read {
            path: self.path.clone(),
            source,
        })?;
        Ok(Follower {
            file,
            pos: 0,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Removes the file (its content failed verification).
    pub(crate) fn remove(self) {
        self.finish();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // A follower must never wait for bytes no one will write.
        self.finish();
    }
}

/// Reads a partial file from the start while it is being written.
pub(crate) struct Follower {
    file: File,
    pos: u64,
    shared: Arc<Shared>,
}

impl Read for Follower {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = {
            let mut w = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            while w.len <= self.pos && !w.done {
                w = self.shared.grown.wait(w).unwrap_or_else(|e| e.into_inner());
            }
            w.len.saturating_sub(self.pos)
        };
        if available == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(available as usize);
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:00aa";

    #[test]
    fn follower_reads_what_was_there_and_what_comes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let mut p = Partial::open(&store, DIGEST, 10).unwrap();
        p.append(b"abc").unwrap();
        drop(p);
        // A new download finds the three bytes and goes on.
        let mut p = Partial::open(&store, DIGEST, 10).unwrap();
        assert_eq!(p.len(), 3);
        let mut follower = p.follower().unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            follower.read_to_end(&mut all).unwrap();
            all
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        p.append(b"defg").unwrap();
        p.append(b"hij").unwrap();
        p.finish();
        assert_eq!(reader.join().unwrap(), b"abcdefghij");
        assert!(p.path().starts_with(store.tmp_dir()));
        p.remove();
        let p = Partial::open(&store, DIGEST, 10).unwrap();
        assert_eq!(p.len(), 0, "removed");
    }

    #[test]
    fn longer_than_the_blob_or_restarted_is_emptied() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let mut p = Partial::open(&store, DIGEST, 100).unwrap();
        p.append(b"0123456789").unwrap();
        drop(p);
        assert_eq!(Partial::open(&store, DIGEST, 5).unwrap().len(), 0);
        let mut p = Partial::open(&store, DIGEST, 100).unwrap();
        p.append(b"xy").unwrap();
        p.restart().unwrap();
        p.append(b"z").unwrap();
        p.finish();
        let mut all = Vec::new();
        p.follower().unwrap().read_to_end(&mut all).unwrap();
        assert_eq!(all, b"z");
    }
}
