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
use std::path::Path;

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

/// Copies what is read into the blob file, hashing and counting it.
struct Tee<'a, R> {
    inner: R,
    file: io::BufWriter<File>,
    hasher: Sha256,
    count: u64,
    limit: Option<u64>,
    progress: &'a (dyn Fn(u64) + Send + Sync),
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.file.write_all(&buf[..n])?;
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

/// Unpacks and verifies a layer into a staging dir (caller holds the layer
/// lock and the shared store lock); [`commit`] moves it into the store.
pub(crate) fn import(
    store: &Store,
    spec: &LayerSpec,
    reader: impl Read,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Staged, Error> {
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
    let blob_tmp = staging.path().join("blob");
    let file = File::create(&blob_tmp).map_err(|source| Error::NotWritable {
        path: blob_tmp.clone(),
        source,
    })?;

    let mut tee = Tee {
        inner: reader,
        file: io::BufWriter::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
        count: 0,
        limit: spec.blob_size,
        progress,
    };
    let unpack_err = |source| Error::Unpack {
        digest: spec.blob_digest.clone(),
        source,
    };
    let stats;
    let diff_id;
    {
        let mut buffered = BufReader::with_capacity(1 << 20, &mut tee);
        let magic = buffered
            .fill_buf()
            .map_err(|e| unpack_err(unpack::Error::Read(e)))?
            .to_vec();
        let decoder: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(
                zstd::stream::read::Decoder::with_buffer(buffered)
                    .map_err(|e| unpack_err(unpack::Error::Read(e)))?,
            )
        } else {
            Box::new(buffered)
        };
        let mut hashing = HashingReader::new(decoder);
        stats =
            unpack::unpack(&mut hashing, &diff, &unpack::Options::default()).map_err(unpack_err)?;
        // The tar end marker may be followed by padding: hash it too.
        let (digest, _) = hashing
            .finish()
            .map_err(|e| unpack_err(unpack::Error::Read(e)))?;
        diff_id = digest;
    }
    // Drain what the decompressor did not need (trailing bytes still count).
    io::copy(&mut tee, &mut io::sink()).map_err(|e| unpack_err(unpack::Error::Read(e)))?;
    let blob_digest = format!("sha256:{}", hex::encode(tee.hasher.finalize()));
    let count = tee.count;
    tee.file
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .map_err(|source| Error::Write {
            path: blob_tmp.clone(),
            source,
        })?;

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
            actual: blob_digest,
        });
    }
    if diff_id != spec.diff_id {
        return Err(Error::DigestMismatch {
            what: format!("uncompressed layer {} (diff id)", spec.blob_digest),
            expected: spec.diff_id.clone(),
            actual: diff_id,
        });
    }

    let meta = LayerMeta {
        diff_id: spec.diff_id.clone(),
        blob_digest: spec.blob_digest.clone(),
        blob_media_type: spec.media_type.clone(),
        blob_size: count,
        size: stats.bytes,
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

/// A verified layer in `images/tmp/`, not yet in the store. Dropping it
/// removes it.
pub(crate) struct Staged {
    dir: tempfile::TempDir,
    pub meta: LayerMeta,
    /// The layer lock, held until the layer is committed.
    pub _lock: Option<fsutil::LockGuard>,
}

/// Moves verified staging dirs into the store. One `syncfs` first for the
/// thousands of unpacked files of all layers (an fsync per file, or a
/// journal commit per layer, costs far more), so nothing reaches its final
/// name before its content is on disk; the directories are fsynced once at
/// the end.
pub(crate) fn commit(store: &Store, staged: Vec<Staged>) -> Result<(), Error> {
    if staged.is_empty() {
        return Ok(());
    }
    fsutil::syncfs(&store.tmp_dir())?;
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
        if store.layer_meta(&meta.diff_id).is_none() {
            if layer_dir.exists() {
                // A layer dir without metadata is not complete; replace it.
                fsutil::remove_all(&layer_dir).map_err(|source| Error::Write {
                    path: layer_dir.clone(),
                    source,
                })?;
            }
            let _ = std::fs::remove_file(&blob_tmp);
            std::fs::rename(s.dir.path(), &layer_dir).map_err(|source| Error::Write {
                path: layer_dir.clone(),
                source,
            })?;
        }
        make_link(store, &meta.diff_id)?;
    }
    fsutil::sync_dir(&store.blob_dir())?;
    fsutil::sync_dir(&store.layers_dir())?;
    fsutil::sync_dir(&store.link_dir())?;
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
