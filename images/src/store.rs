//! The image store on disk.
//!
//! Layout under ROOT (`/var/lib/rstack` by default):
//!
//! ```text
//! blobs/sha256/<hex>        content-addressed blobs: manifests, configs and
//!                           the layer blobs as pulled (kept for `save`)
//! layers/<hex>/diff/        a layer unpacked in overlayfs form; <hex> is the
//!                           layer's diff-id (digest of the uncompressed tar)
//! layers/<hex>/layer.json   its metadata (blob digest, unpacked size)
//! l/<short>                 symlink -> ../layers/<hex>/diff: short names keep
//!                           `lowerdir=` of 100+ layers under the page-size
//!                           limit of mount options (docker's overlay2 trick)
//! images/index.json         image id -> tags, repo digests, manifest, layers
//! images/*.lock, locks/     flock files (see below)
//! images/tmp/               staging; entries of dead processes are removed
//! images/tmp/partial-<hex>  a layer blob as far as an interrupted pull got
//!                           it; the next pull resumes it (`pull/partial.rs`),
//!                           `image prune` removes it
//! ```
//!
//! Crash safety: a layer is unpacked and verified in `images/tmp/`, then
//! renamed into `layers/` with its `layer.json` — a directory in `layers/`
//! with `layer.json` is complete. Small blobs and the index are written
//! temp + fsync + rename, and every index write follows one `syncfs`, so
//! what the index references is on disk. A kill -9 leaves at most
//! unreferenced content, which the next pull reuses (same boot) and
//! `image prune` removes; after a power cut, unreferenced layers of the
//! earlier boot are not trusted and are unpacked again.
//!
//! Locks: `store.lock` is shared by pulls/loads and exclusive for removals
//! (so a removal never deletes a layer a pull is about to reference);
//! `index.lock` serialises index updates; `locks/layer-<hex>.lock` makes two
//! processes pulling the same layer wait for each other instead of both
//! unpacking it.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fsutil;
use crate::reference::Reference;

/// Length of the short link names in `l/`.
const SHORT_LEN: usize = 16;

/// The image store rooted at ROOT.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// registries.conf to read instead of the system's (see
    /// [`crate::registries`]).
    registries_conf: Option<PathBuf>,
    /// Layers a pull downloads at once, over `ROOT/config.json`'s.
    max_concurrent_downloads: Option<usize>,
}

/// An image present in the store.
#[derive(Debug, Clone)]
pub struct LocalImage {
    /// `sha256:<config digest hex>`
    pub id: String,
    /// The reference it was found by (or its first tag when found by id;
    /// `None` for an image with no name at all).
    pub reference: Option<Reference>,
    pub config: oci_spec::image::ImageConfiguration,
    /// Unpacked diff dirs, bottom (first) to top (last).
    pub layer_dirs: Vec<PathBuf>,
    /// Short names of the same dirs, relative to [`Store::link_dir`].
    pub layer_links: Vec<String>,
    pub record: ImageRecord,
}

/// What the index knows about one image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    pub id: String,
    /// Digest of the (platform) image manifest, stored in `blobs/`.
    pub manifest_digest: String,
    /// Full references: `docker.io/library/redis:latest`.
    #[serde(default)]
    pub repo_tags: Vec<String>,
    /// `docker.io/library/redis@sha256:...` (the digest as pulled: of the
    /// manifest list for multi-arch images).
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Diff ids, bottom to top.
    pub layers: Vec<String>,
    /// Unpacked size in bytes.
    pub size: u64,
    /// When it was pulled or loaded (RFC 3339).
    pub added: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Index {
    #[serde(default)]
    pub images: BTreeMap<String, ImageRecord>,
}

/// Metadata of an unpacked layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LayerMeta {
    pub diff_id: String,
    pub blob_digest: String,
    pub blob_media_type: String,
    pub blob_size: u64,
    pub size: u64,
    /// The boot it was unpacked in (`/proc/sys/kernel/random/boot_id`).
    #[serde(default)]
    pub boot_id: String,
}

/// This boot's id: a layer from this boot survived at worst a process
/// crash, so its files are in the page cache even if not yet on disk.
pub(crate) fn boot_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    })
}

/// What a removal did.
#[derive(Debug, Default)]
pub struct Removed {
    pub untagged: Vec<String>,
    pub deleted_images: Vec<String>,
    pub deleted_layers: Vec<String>,
    pub reclaimed_bytes: u64,
}

pub(crate) fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

impl Store {
    /// Opens (creating as needed) the store under `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, Error> {
        let store = Store {
            root: root.into(),
            registries_conf: None,
            max_concurrent_downloads: None,
        };
        for dir in [
            store.blob_dir(),
            store.layers_dir(),
            store.link_dir(),
            store.tmp_dir(),
            store.images_dir().join("locks"),
        ] {
            std::fs::create_dir_all(&dir).map_err(|source| Error::NotWritable {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads `path` as registries.conf instead of
    /// `/etc/containers/registries.conf` (`--registries-conf`).
    pub fn with_registries_conf(mut self, path: Option<PathBuf>) -> Store {
        self.registries_conf = path;
        self
    }

    /// Layers one pull downloads at once (`--max-concurrent-downloads`),
    /// over `max-concurrent-downloads` of `ROOT/config.json`.
    pub fn with_max_concurrent_downloads(mut self, n: Option<usize>) -> Store {
        self.max_concurrent_downloads = n;
        self
    }

    pub(crate) fn max_concurrent_downloads(&self) -> Option<usize> {
        self.max_concurrent_downloads
    }

    /// The registry configuration pulls, pushes and logins use:
    /// `ROOT/config.json` and registries.conf.
    pub fn registry_config(&self) -> Result<crate::RegistryConfig, crate::registries::Error> {
        crate::RegistryConfig::load(&self.root, self.registries_conf.as_deref())
    }

    pub(crate) fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub(crate) fn blob_path(&self, digest: &str) -> PathBuf {
        self.blob_dir().join(hex_of(digest))
    }

    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// The directory of the short layer links (`l/`): mount overlayfs with
    /// this as working directory and `lowerdir=l/A:l/B:...`.
    pub fn link_dir(&self) -> PathBuf {
        self.root.join("l")
    }

    pub(crate) fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("images/tmp")
    }

    fn index_path(&self) -> PathBuf {
        self.images_dir().join("index.json")
    }

    /// The unpacked dir of a layer.
    pub fn layer_diff_dir(&self, diff_id: &str) -> PathBuf {
        self.layers_dir().join(hex_of(diff_id)).join("diff")
    }

    pub(crate) fn layer_meta_path(&self, diff_id: &str) -> PathBuf {
        self.layers_dir().join(hex_of(diff_id)).join("layer.json")
    }

    /// The short link name of a layer.
    pub fn layer_link_name(diff_id: &str) -> String {
        hex_of(diff_id).chars().take(SHORT_LEN).collect()
    }

    pub(crate) fn store_lock(&self, exclusive: bool) -> Result<fsutil::LockGuard, Error> {
        Ok(fsutil::lock(
            &self.images_dir().join("store.lock"),
            exclusive,
        )?)
    }

    pub(crate) fn layer_lock_path(&self, diff_id: &str) -> PathBuf {
        self.images_dir()
            .join("locks")
            .join(format!("layer-{}.lock", hex_of(diff_id)))
    }

    pub(crate) fn layer_lock(&self, diff_id: &str) -> Result<fsutil::LockGuard, Error> {
        Ok(fsutil::lock(&self.layer_lock_path(diff_id), true)?)
    }

    pub(crate) fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }

    pub(crate) fn read_blob(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        std::fs::read(&path).map_err(|source| Error::Read { path, source })
    }

    /// Verifies and stores a small blob (manifest, config).
    pub(crate) fn put_blob(&self, digest: &str, data: &[u8]) -> Result<(), Error> {
        let actual = crate::digest::sha256_digest(data);
        if actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("blob {digest}"),
                expected: digest.to_owned(),
                actual,
            });
        }
        if self.read_blob_verified(digest).is_none() {
            // No fsync: the `syncfs` before the index write that references
            // this blob covers it; readers re-verify blobs they reuse.
            fsutil::write_replace(&self.blob_path(digest), data)?;
        }
        Ok(())
    }

    /// A stored small blob, only if its content still matches its digest.
    pub(crate) fn read_blob_verified(&self, digest: &str) -> Option<Vec<u8>> {
        let data = self.read_blob(digest).ok()?;
        (crate::digest::sha256_digest(&data) == digest).then_some(data)
    }

    pub(crate) fn layer_meta(&self, diff_id: &str) -> Option<LayerMeta> {
        let data = std::fs::read(self.layer_meta_path(diff_id)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// A layer counts as present when unpacked, trusted and its blob kept.
    pub(crate) fn has_layer(&self, diff_id: &str, blob_digest: &str) -> bool {
        self.layer_is_trusted(diff_id) && self.has_blob(blob_digest)
    }

    /// A complete layer dir whose files are known to be intact: unpacked in
    /// this boot (a killed process leaves its writes in the page cache), or
    /// referenced by the index (every index write follows a `syncfs`). A
    /// layer from an earlier boot that no image references may have lost
    /// data in a power cut, so it is unpacked again.
    pub(crate) fn layer_is_trusted(&self, diff_id: &str) -> bool {
        let Some(meta) = self.layer_meta(diff_id) else {
            return false;
        };
        if !meta.boot_id.is_empty() && meta.boot_id == boot_id() {
            return true;
        }
        self.read_index().is_ok_and(|index| {
            index
                .images
                .values()
                .any(|r| r.layers.iter().any(|l| l == diff_id))
        })
    }

    /// Flushes everything written so far (layers, blobs, links) before an
    /// index write makes it referenced.
    pub(crate) fn sync_content(&self) -> Result<(), Error> {
        // syncfs writes back every dirty inode of the filesystem, the
        // directories holding our renames included.
        Ok(fsutil::syncfs(&self.root)?)
    }

    pub(crate) fn read_index(&self) -> Result<Index, Error> {
        let path = self.index_path();
        match std::fs::read(&path) {
            Ok(data) => {
                serde_json::from_slice(&data).map_err(|source| Error::CorruptIndex { path, source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(source) => Err(Error::Read { path, source }),
        }
    }

    /// Read-modify-write of the index under its lock.
    pub(crate) fn update_index<T>(
        &self,
        f: impl FnOnce(&mut Index) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let _lock = fsutil::lock(&self.images_dir().join("index.lock"), true)?;
        let mut index = self.read_index()?;
        let out = f(&mut index)?;
        let data = serde_json::to_vec_pretty(&index).map_err(|e| Error::Write {
            path: self.index_path(),
            source: io::Error::other(e),
        })?;
        fsutil::write_atomic(&self.index_path(), &data)?;
        Ok(out)
    }

    /// Records an image and points `tags` at it (taking them from any
    /// other image, which then may be left dangling like in Docker).
    pub(crate) fn record_image(&self, mut record: ImageRecord) -> Result<(), Error> {
        self.sync_content()?;
        self.update_index(|index| {
            // A tag that moves leaves the old image dangling (`<none>`), as
            // in Docker: it loses the tag and its digests of that repository.
            let name_of = |r: &String| Reference::parse(r).map(|r| r.name()).unwrap_or_default();
            for other in index.images.values_mut() {
                if other.id != record.id {
                    let lost: Vec<String> = other
                        .repo_tags
                        .iter()
                        .filter(|t| record.repo_tags.contains(t))
                        .map(name_of)
                        .collect();
                    other.repo_tags.retain(|t| !record.repo_tags.contains(t));
                    other.repo_digests.retain(|d| !lost.contains(&name_of(d)));
                }
            }
            if let Some(existing) = index.images.get(&record.id) {
                for t in &existing.repo_tags {
                    if !record.repo_tags.contains(t) {
                        record.repo_tags.push(t.clone());
                    }
                }
                for d in &existing.repo_digests {
                    if !record.repo_digests.contains(d) {
                        record.repo_digests.push(d.clone());
                    }
                }
            }
            index.images.insert(record.id.clone(), record);
            Ok(())
        })
    }

    /// All images, newest first.
    pub fn list(&self) -> Result<Vec<LocalImage>, Error> {
        let index = self.read_index()?;
        let mut out = Vec::new();
        for record in index.images.values() {
            out.push(self.local_image(record, None)?);
        }
        out.sort_by(|a, b| b.record.added.cmp(&a.record.added));
        Ok(out)
    }

    pub(crate) fn local_image(
        &self,
        record: &ImageRecord,
        reference: Option<Reference>,
    ) -> Result<LocalImage, Error> {
        let config_data = self.read_blob(&record.id)?;
        let config = serde_json::from_slice(&config_data).map_err(|e| Error::BadConfig {
            digest: record.id.clone(),
            reason: e.to_string(),
        })?;
        let reference = reference.or_else(|| {
            record
                .repo_tags
                .first()
                .or(record.repo_digests.first())
                .and_then(|r| Reference::parse(r).ok())
        });
        Ok(LocalImage {
            id: record.id.clone(),
            reference,
            config,
            layer_dirs: record
                .layers
                .iter()
                .map(|l| self.layer_diff_dir(l))
                .collect(),
            layer_links: record
                .layers
                .iter()
                .map(|l| Store::layer_link_name(l))
                .collect(),
            record: record.clone(),
        })
    }

    /// The local image for a reference or an image id (full or short hex).
    pub fn lookup(&self, reference: &str) -> Result<Option<LocalImage>, Error> {
        let index = self.read_index()?;
        Ok(match find(&index, reference)? {
            Some((id, reference)) => Some(self.local_image(&index.images[&id], reference)?),
            None => None,
        })
    }

    /// `image tag`: names the image `source` (reference or id) `target`
    /// too; the tag leaves any other image it named.
    pub fn tag(&self, source: &str, target: &str) -> Result<LocalImage, Error> {
        let target_ref = Reference::parse(target)?;
        if target_ref.digest().is_some() {
            return Err(Error::TagWithDigest {
                reference: target.to_owned(),
            });
        }
        let full = target_ref.to_string();
        let id = self.update_index(|index| {
            let Some((id, _)) = find(index, source)? else {
                return Err(Error::ImageNotFound {
                    reference: source.to_owned(),
                });
            };
            for other in index.images.values_mut() {
                other.repo_tags.retain(|t| *t != full);
            }
            let record = index.images.get_mut(&id).expect("found above");
            record.repo_tags.push(full.clone());
            Ok(id)
        })?;
        let index = self.read_index()?;
        self.local_image(&index.images[&id], Some(target_ref))
    }

    /// `rmi`: untags `reference`, and deletes the image when it has no
    /// name left (or when given by id); then removes unreferenced content.
    pub fn remove(&self, reference: &str, force: bool) -> Result<Removed, Error> {
        let _lock = self.store_lock(true)?;
        let mut removed = Removed::default();
        self.update_index(|index| {
            let Some((id, by_ref)) = find(index, reference)? else {
                return Err(Error::ImageNotFound {
                    reference: reference.to_owned(),
                });
            };
            let record = index.images.get_mut(&id).expect("found above");
            match by_ref {
                Some(r) if r.digest().is_none() => {
                    let full = r.to_string();
                    record.repo_tags.retain(|t| *t != full);
                    removed.untagged.push(r.familiar());
                    if record.repo_tags.is_empty() {
                        removed.untagged.extend(
                            record
                                .repo_digests
                                .iter()
                                .filter_map(|d| Reference::parse(d).ok())
                                .map(|r| r.familiar()),
                        );
                        index.images.remove(&id);
                        removed.deleted_images.push(id);
                    }
                }
                _ => {
                    if record.repo_tags.len() > 1 && !force {
                        return Err(Error::MultipleTags { id: id.clone() });
                    }
                    for t in record.repo_tags.iter().chain(&record.repo_digests) {
                        if let Ok(r) = Reference::parse(t) {
                            removed.untagged.push(r.familiar());
                        }
                    }
                    index.images.remove(&id);
                    removed.deleted_images.push(id);
                }
            }
            Ok(())
        })?;
        self.collect_garbage(&mut removed)?;
        Ok(removed)
    }

    /// `image prune`: removes dangling images (no tag, no digest), or all
    /// images with `all`, then everything no image references.
    pub fn prune(&self, all: bool) -> Result<Removed, Error> {
        self.prune_keeping(all, &[])
    }

    /// `prune`, sparing the image ids in `keep` (those containers use).
    pub fn prune_keeping(&self, all: bool, keep: &[String]) -> Result<Removed, Error> {
        let _lock = self.store_lock(true)?;
        let mut removed = Removed::default();
        self.update_index(|index| {
            let doomed: Vec<String> = index
                .images
                .values()
                .filter(|r| !keep.contains(&r.id))
                .filter(|r| all || (r.repo_tags.is_empty() && r.repo_digests.is_empty()))
                .map(|r| r.id.clone())
                .collect();
            for id in doomed {
                if let Some(r) = index.images.remove(&id) {
                    for t in r.repo_tags.iter().chain(&r.repo_digests) {
                        if let Ok(r) = Reference::parse(t) {
                            removed.untagged.push(r.familiar());
                        }
                    }
                }
                removed.deleted_images.push(id);
            }
            Ok(())
        })?;
        self.collect_garbage(&mut removed)?;
        self.remove_partial_blobs(&mut removed);
        Ok(removed)
    }

    /// Deletes the partial blobs of interrupted pulls. Caller holds the
    /// exclusive store lock (no pull is writing one).
    fn remove_partial_blobs(&self, removed: &mut Removed) {
        let Ok(entries) = std::fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name
                .to_string_lossy()
                .starts_with(crate::pull::PARTIAL_PREFIX)
            {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                if std::fs::remove_file(entry.path()).is_ok() {
                    removed.reclaimed_bytes += size;
                }
            }
        }
    }

    /// Deletes layers, blobs, links and staging dirs no image references.
    /// Caller holds the exclusive store lock.
    pub(crate) fn collect_garbage(&self, removed: &mut Removed) -> Result<(), Error> {
        self.clean_tmp();
        let index = self.read_index()?;
        let mut keep_layers = BTreeSet::new();
        let mut keep_blobs = BTreeSet::new();
        for r in index.images.values() {
            keep_blobs.insert(hex_of(&r.id).to_owned());
            keep_blobs.insert(hex_of(&r.manifest_digest).to_owned());
            for l in &r.layers {
                keep_layers.insert(hex_of(l).to_owned());
            }
            // The layer blobs the manifest references.
            if let Ok(data) = self.read_blob(&r.manifest_digest)
                && let Ok(m) = serde_json::from_slice::<oci_spec::image::ImageManifest>(&data)
            {
                for l in m.layers() {
                    keep_blobs.insert(l.digest().digest().to_owned());
                }
            }
        }
        let read = |dir: PathBuf| -> Result<Vec<String>, Error> {
            let entries = std::fs::read_dir(&dir).map_err(|source| Error::Read {
                path: dir.clone(),
                source,
            })?;
            Ok(entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect())
        };
        for hex in read(self.layers_dir())? {
            if keep_layers.contains(&hex) {
                continue;
            }
            let dir = self.layers_dir().join(&hex);
            // Rename first: a half-deleted layer must never look complete.
            let doomed = self
                .tmp_dir()
                .join(format!("rm-{}-{hex}", std::process::id()));
            std::fs::rename(&dir, &doomed).map_err(|source| Error::Write {
                path: dir.clone(),
                source,
            })?;
            let link = self.link_dir().join(Store::layer_link_name(&hex));
            let _ = std::fs::remove_file(&link);
            removed.reclaimed_bytes += fsutil::disk_usage(&doomed);
            fsutil::remove_all(&doomed).map_err(|source| Error::Write {
                path: doomed.clone(),
                source,
            })?;
            removed.deleted_layers.push(format!("sha256:{hex}"));
        }
        for hex in read(self.blob_dir())? {
            // Temp files (`.tmp-*`) are leftovers of a killed writer: blob
            // writers hold the shared store lock, so none is running now.
            if keep_blobs.contains(&hex) {
                continue;
            }
            let path = self.blob_dir().join(&hex);
            removed.reclaimed_bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            std::fs::remove_file(&path).map_err(|source| Error::Write { path, source })?;
        }
        // Layer lock files: nobody holds one while we hold the store lock.
        for name in read(self.images_dir().join("locks"))? {
            let _ = std::fs::remove_file(self.images_dir().join("locks").join(name));
        }
        // Links whose layer is gone (a crash between the two steps).
        for name in read(self.link_dir())? {
            let link = self.link_dir().join(&name);
            if name.starts_with(".tmp-") || std::fs::metadata(&link).is_err() {
                let _ = std::fs::remove_file(&link);
            }
        }
        Ok(())
    }

    /// Removes staging entries left by processes that no longer run
    /// (partial blobs stay: a later pull resumes them).
    pub(crate) fn clean_tmp(&self) {
        let Ok(entries) = std::fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(crate::pull::PARTIAL_PREFIX) {
                continue;
            }
            let pid = name.split('-').nth(1).and_then(|p| p.parse::<i32>().ok());
            let alive = pid.is_some_and(|pid| {
                pid == std::process::id() as i32
                    || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            });
            if !alive || name.starts_with("rm-") && pid != Some(std::process::id() as i32) {
                tracing::debug!(entry = name, "removing stale staging entry");
                let _ = fsutil::remove_all(&entry.path());
            }
        }
    }
}

/// Finds an image by reference or id; returns its id and the parsed
/// reference when found by reference.
fn find(index: &Index, input: &str) -> Result<Option<(String, Option<Reference>)>, Error> {
    let hexpart = input.strip_prefix("sha256:").unwrap_or(input);
    let looks_like_id = !hexpart.is_empty()
        && hexpart.len() <= 64
        && hexpart.bytes().all(|b| b.is_ascii_hexdigit());
    match Reference::parse(input) {
        Ok(r) => {
            let full = r.to_string();
            for rec in index.images.values() {
                let hit = if r.digest().is_some() {
                    rec.repo_digests.iter().any(|d| {
                        Reference::parse(d)
                            .is_ok_and(|d| d.name() == r.name() && d.digest() == r.digest())
                    }) || (rec.manifest_digest == r.digest().unwrap_or_default()
                        && rec
                            .repo_tags
                            .iter()
                            .chain(&rec.repo_digests)
                            .any(|t| Reference::parse(t).is_ok_and(|t| t.name() == r.name())))
                } else {
                    rec.repo_tags.contains(&full)
                };
                if hit {
                    return Ok(Some((rec.id.clone(), Some(r))));
                }
            }
        }
        Err(e) if !looks_like_id => return Err(e.into()),
        Err(_) => {}
    }
    if looks_like_id {
        let matches: Vec<&String> = index
            .images
            .keys()
            .filter(|id| hex_of(id).starts_with(hexpart))
            .collect();
        if matches.len() == 1 {
            return Ok(Some((matches[0].clone(), None)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, tags: &[&str]) -> ImageRecord {
        ImageRecord {
            id: format!("sha256:{id}"),
            manifest_digest: "sha256:m".into(),
            repo_tags: tags
                .iter()
                .map(|t| Reference::parse(t).unwrap().to_string())
                .collect(),
            repo_digests: vec![],
            layers: vec![],
            size: 0,
            added: String::new(),
        }
    }

    #[test]
    fn find_by_tag_and_id() {
        let mut index = Index::default();
        let a = format!("{}{}", "ab".repeat(31), "01");
        let b = format!("{}{}", "ab".repeat(31), "02");
        index
            .images
            .insert(format!("sha256:{a}"), rec(&a, &["redis"]));
        index
            .images
            .insert(format!("sha256:{b}"), rec(&b, &["user/app:1"]));
        let (id, r) = find(&index, "redis:latest").unwrap().unwrap();
        assert_eq!(id, format!("sha256:{a}"));
        assert_eq!(r.unwrap().to_string(), "docker.io/library/redis:latest");
        assert_eq!(
            find(&index, "docker.io/user/app:1").unwrap().unwrap().0,
            format!("sha256:{b}")
        );
        assert!(find(&index, "user/app:2").unwrap().is_none());
        // Ambiguous prefix: none; unique prefix and full id: found.
        assert!(find(&index, "abab").unwrap().is_none());
        assert_eq!(
            find(&index, &b[..64]).unwrap().unwrap().0,
            format!("sha256:{b}")
        );
        assert_eq!(
            find(&index, &format!("sha256:{a}")).unwrap().unwrap().0,
            format!("sha256:{a}")
        );
        assert!(find(&index, "Bad Ref").is_err());
    }
}
