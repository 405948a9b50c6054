//! Importing one layer blob: one pass over the bytes does everything.
//!
//! blob bytes -> (sha256 + copy into the blob store) -> decompress (gzip,
//! zstd or none, sniffed from the magic bytes: registries mislabel) ->
//! (sha256 = diff-id) -> untar into a staging dir. Both digests are checked
//! at the end; on any error the staging dir is dropped and nothing reaches
//! the store. This runs on a blocking thread fed by the download, so
//! download, decompression and extraction overlap.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::digest::HashingReader;
use crate::error::Error;
use crate::fsutil;
use crate::store::{LayerMeta, Store, hex_of};
use crate::unpack;

/// A layer to import.
#[derive(Debug, Clone)]
pub(crate) struct LayerSpec {
    pub blob_digest: String,
    pub media_type: String,
    /// Announced blob size (manifest); `None` when unknown (docker archives).
    pub blob_size: Option<u64>,
    pub diff_id: String,
}

/// Where the imported blob's bytes are kept.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BlobSink<'a> {
    /// Copied into the staging dir as they are read.
    Copy,
    /// Already in this file (a pull's partial blob), moved into the
    /// staging dir once verified.
    Kept(&'a Path),
}

/// Copies what is read into the blob file (if any), hashing and counting it.
struct Tee<'a, R> {
    inner: R,
    file: Option<io::BufWriter<File>>,
    hasher: Sha256,
    count: u64,
    limit: Option<u64>,
    progress: &'a (dyn Fn(u64) + Send + Sync),
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        if let Some(file) = &mut self.file {
            file.write_all(&buf[..n])?;
        }
        self.count += n as u64;
        if let Some(limit) = self.limit
            && self.count > limit
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "blob larger than announced",
            ));
        }
        (self.progress)(self.count);
        Ok(n)
    }
}

/// Size of the chunks passed from the decompressing thread to the untar one.
const CHUNK: usize = 256 << 10;
const CHUNKS_IN_FLIGHT: usize = 8;

/// Reads the blob through `tee`, decompresses it (gzip, zstd or none, by
/// magic bytes) and sends the tar stream in chunks. Keeps reading the blob
/// to its end even when the receiver is gone, so its digest is complete.
fn decompress<R: Read>(
    tee: &mut Tee<'_, R>,
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    recycled: std::sync::mpsc::Receiver<Vec<u8>>,
) -> io::Result<()> {
    let result = (|| {
        let mut buffered = BufReader::with_capacity(1 << 20, &mut *tee);
        let magic = buffered.fill_buf()?.to_vec();
        let mut decoder: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?)
        } else {
            Box::new(buffered)
        };
        loop {
            // Reuse the buffers the reader is done with: fresh 256 KiB
            // allocations are mmap'd and cost a page fault per 4 KiB.
            let mut chunk = recycled.try_recv().unwrap_or_default();
            chunk.resize(CHUNK, 0);
            let mut filled = 0;
            while filled < CHUNK {
                match decoder.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if filled == 0 {
                return Ok(());
            }
            chunk.truncate(filled);
            if tx.send(chunk).is_err() {
                return Ok(()); // the untar side failed; it reports why
            }
        }
    })();
    drop(tx);
    // Trailing bytes after the compressed stream count in the digest too.
    let drained = io::copy(tee, &mut io::sink());
    result.and(drained.map(|_| ()))
}

/// The receiving end of [`decompress`].
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    recycle: std::sync::mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    let done = std::mem::replace(&mut self.cur, chunk);
                    let _ = self.recycle.try_send(done);
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Unpacks and verifies a layer into a staging dir (caller holds the layer
/// lock and the shared store lock); [`commit`] moves it into the store.
pub(crate) fn import(
    store: &Store,
    spec: &LayerSpec,
    reader: impl Read + Send,
    progress: &(dyn Fn(u64) + Send + Sync),
    sink: BlobSink<'_>,
) -> Result<Staged, Error> {
    let (staging, diff, blob_file) = staging_dir(store, matches!(sink, BlobSink::Copy))?;
    let mut tee = Tee {
        inner: reader,
        file: blob_file.map(|f| io::BufWriter::with_capacity(1 << 20, f)),
        hasher: Sha256::new(),
        count: 0,
        limit: spec.blob_size,
        progress,
    };
    let outcome = unpack_blob(&mut tee, &diff);
    let blob_digest = format!("sha256:{}", hex::encode(tee.hasher.clone().finalize()));
    let count = tee.count;
    // No fsync here: `commit` syncs the filesystem once for all layers.
    if let Some(file) = &mut tee.file {
        let _ = file.flush();
    }
    let stats = outcome.verify(spec, &blob_digest, count)?;
    if let BlobSink::Kept(path) = sink {
        let blob = staging.path().join("blob");
        std::fs::rename(path, &blob).map_err(|source| Error::Write { path: blob, source })?;
    }

    let meta = LayerMeta {
        diff_id: spec.diff_id.clone(),
        blob_digest: spec.blob_digest.clone(),
        blob_media_type: spec.media_type.clone(),
        blob_size: count,
        size: stats.bytes,
        boot_id: crate::store::boot_id().to_owned(),
    };
    let meta_json = serde_json::to_vec_pretty(&meta).expect("layer meta serialises");
    let meta_path = staging.path().join("layer.json");
    std::fs::write(&meta_path, meta_json).map_err(|source| Error::Write {
        path: meta_path,
        source,
    })?;
    Ok(Staged {
        dir: staging,
        meta,
        _lock: None,
    })
}

/// A fresh staging dir in `images/tmp/` with its empty `diff/` and, if
/// asked, the created `blob` file.
fn staging_dir(
    store: &Store,
    with_blob: bool,
) -> Result<(tempfile::TempDir, PathBuf, Option<File>), Error> {
    let tmp_root = store.tmp_dir();
    let staging = tempfile::Builder::new()
        .prefix(&format!("layer-{}-", std::process::id()))
        .tempdir_in(&tmp_root)
        .map_err(|source| Error::NotWritable {
            path: tmp_root.clone(),
            source,
        })?;
    let diff = staging.path().join("diff");
    std::fs::create_dir(&diff).map_err(|source| Error::NotWritable {
        path: diff.clone(),
        source,
    })?;
    if !with_blob {
        return Ok((staging, diff, None));
    }
    let blob_tmp = staging.path().join("blob");
    let file = File::create(&blob_tmp).map_err(|source| Error::NotWritable {
        path: blob_tmp.clone(),
        source,
    })?;
    Ok((staging, diff, Some(file)))
}

/// How the two halves of an import ended.
struct Outcome {
    /// Reading and decompressing the blob.
    decoded: io::Result<()>,
    /// Untarring, with the digest of the tar stream (the diff id).
    unpacked: Result<(unpack::Stats, String), unpack::Error>,
}

/// Untars the blob read through `tee` into `diff`. Two threads per layer:
/// this one untars, a second one reads the blob (hash + copy) and
/// decompresses, so one big layer uses two cores.
fn unpack_blob<R: Read + Send>(tee: &mut Tee<'_, R>, diff: &Path) -> Outcome {
    let (chunks_tx, chunks_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    let (recycle_tx, recycle_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
    std::thread::scope(|scope| {
        let producer = scope.spawn(|| decompress(tee, chunks_tx, recycle_rx));
        let mut hashing = HashingReader::new(BufReader::with_capacity(
            CHUNK,
            ChunkReader {
                rx: chunks_rx,
                recycle: recycle_tx,
                cur: Vec::new(),
                pos: 0,
            },
        ));
        // The tar end marker may be followed by padding: hash it too. On an
        // unpack error the receiver is dropped and the producer stops
        // sending, but still reads the whole blob for its digest.
        let unpacked = match unpack::unpack(&mut hashing, diff, &unpack::Options::default()) {
            Ok(stats) => hashing
                .finish()
                .map(|(digest, _)| (stats, digest))
                .map_err(unpack::Error::Read),
            Err(e) => {
                drop(hashing);
                Err(e)
            }
        };
        let decoded = producer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("decompression thread panicked")));
        Outcome { decoded, unpacked }
    })
}

impl Outcome {
    /// Checks, in this order: the blob's size and digest (`count` bytes
    /// read, hashing to `blob_digest`), decompression, untar, the diff id.
    fn verify(
        self,
        spec: &LayerSpec,
        blob_digest: &str,
        count: u64,
    ) -> Result<unpack::Stats, Error> {
        let unpack_err = |source| Error::Unpack {
            digest: spec.blob_digest.clone(),
            source,
        };
        if let Some(size) = spec.blob_size
            && count < size
        {
            return Err(Error::Truncated {
                digest: spec.blob_digest.clone(),
                expected: size,
                got: count,
            });
        }
        if blob_digest != spec.blob_digest {
            return Err(Error::DigestMismatch {
                what: format!("layer blob {}", spec.blob_digest),
                expected: spec.blob_digest.clone(),
                actual: blob_digest.to_owned(),
            });
        }
        self.decoded
            .map_err(|e| unpack_err(unpack::Error::Read(e)))?;
        let (stats, diff_id) = self.unpacked.map_err(unpack_err)?;
        if diff_id != spec.diff_id {
            return Err(Error::DigestMismatch {
                what: format!("uncompressed layer {} (diff id)", spec.blob_digest),
                expected: spec.diff_id.clone(),
                actual: diff_id,
            });
        }
        Ok(stats)
    }
}

/// A verified layer in `images/tmp/`, not yet in the store. Dropping it
/// removes it.
pub(crate) struct Staged {
    dir: tempfile::TempDir,
    pub meta: LayerMeta,
    /// A layer lock to release only once committed (for callers that
    /// commit later; `commit` drops it when done).
    pub _lock: Option<fsutil::LockGuard>,
}

/// Moves verified staging dirs into the store, right away (the caller then
/// releases the layer lock: holding locks until the end of a pull would
/// deadlock two pulls of images sharing two layers). No sync here: a
/// committed layer is only trusted in this boot, or once an index write
/// referenced it, and every index write comes after a `syncfs` (see
/// [`Store::layer_is_trusted`]).
pub(crate) fn commit(store: &Store, staged: Vec<Staged>) -> Result<(), Error> {
    for s in &staged {
        let meta = &s.meta;
        let blob_tmp = s.dir.path().join("blob");
        let blob_path = store.blob_path(&meta.blob_digest);
        if !blob_path.exists() {
            std::fs::rename(&blob_tmp, &blob_path).map_err(|source| Error::Write {
                path: blob_path.clone(),
                source,
            })?;
        }
        let layer_dir = store.layers_dir().join(hex_of(&meta.diff_id));
        if !store.layer_is_trusted(&meta.diff_id) {
            if layer_dir.exists() {
                // Incomplete, or unsynced from an earlier boot: replace it
                // (rename first: a half-removed dir must never look whole).
                let doomed = store.tmp_dir().join(format!(
                    "rm-{}-{}",
                    std::process::id(),
                    hex_of(&meta.diff_id)
                ));
                std::fs::rename(&layer_dir, &doomed).map_err(|source| Error::Write {
                    path: layer_dir.clone(),
                    source,
                })?;
                let _ = fsutil::remove_all(&doomed);
            }
            let _ = std::fs::remove_file(&blob_tmp);
            std::fs::rename(s.dir.path(), &layer_dir).map_err(|source| Error::Write {
                path: layer_dir.clone(),
                source,
            })?;
        }
        make_link(store, &meta.diff_id)?;
    }
    Ok(())
}

/// Creates `l/<short>` -> `../layers/<hex>/diff` if missing.
pub(crate) fn ensure_link(store: &Store, diff_id: &str) -> Result<(), Error> {
    if make_link(store, diff_id)? {
        fsutil::sync_dir(&store.link_dir())?;
    }
    Ok(())
}

/// The link without the directory fsync; true when it was created.
fn make_link(store: &Store, diff_id: &str) -> Result<bool, Error> {
    let link = store.link_dir().join(Store::layer_link_name(diff_id));
    let target = Path::new("../layers").join(hex_of(diff_id)).join("diff");
    if std::fs::read_link(&link).is_ok_and(|t| t == target) {
        return Ok(false);
    }
    let tmp = store.link_dir().join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        Store::layer_link_name(diff_id)
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp).map_err(|source| Error::Write {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &link).map_err(|source| Error::Write {
        path: link.clone(),
        source,
    })?;
    Ok(true)
}
