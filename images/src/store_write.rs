//! Writing images the store did not pull: layers and images made by
//! `build`. A layer blob written by the builder goes through the same
//! import path as a pulled one (digests verified while unpacking, staged,
//! synced, renamed), so the store's invariants hold for built images too.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::digest::sha256_digest;
use crate::error::Error;
use crate::layer::{self, LayerSpec};
use crate::reference::Reference;
use crate::store::{ImageRecord, LocalImage, Store};

/// OCI media type of a gzip layer.
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A layer blob's descriptor, as a manifest lists it.
#[derive(Debug, Clone)]
pub struct LayerBlobInfo {
    pub diff_id: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// OCI media type for a stored layer blob (Docker's names mapped).
fn oci_layer_type(media_type: &str) -> String {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => LAYER_GZIP.into(),
        "application/vnd.docker.image.rootfs.diff.tar" => {
            "application/vnd.oci.image.layer.v1.tar".into()
        }
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => {
            "application/vnd.oci.image.layer.v1.tar+zstd".into()
        }
        other => other.into(),
    }
}

impl Store {
    /// A directory on the store's filesystem for a layer blob being
    /// written, so [`Store::import_layer_file`] moves it in instead of
    /// copying it.
    pub fn staging_dir(&self) -> PathBuf {
        self.tmp_dir()
    }

    /// The store's shared lock: no layer is collected (`rmi`, prune) while
    /// the guard lives, so the layers a build reuses stay until its image
    /// is committed. Drop it before [`Store::commit_image`].
    pub fn hold_layers(&self) -> Result<crate::fsutil::LockGuard, Error> {
        self.store_lock(false)
    }

    /// Is the layer with this diff-id unpacked in the store?
    pub fn has_layer_dir(&self, diff_id: &str) -> bool {
        self.layer_meta(diff_id).is_some() && self.layer_diff_dir(diff_id).is_dir()
    }

    /// The blob a stored layer was imported from.
    pub fn layer_blob(&self, diff_id: &str) -> Option<LayerBlobInfo> {
        let m = self.layer_meta(diff_id)?;
        Some(LayerBlobInfo {
            diff_id: m.diff_id,
            digest: m.blob_digest,
            media_type: oci_layer_type(&m.blob_media_type),
            size: m.blob_size,
        })
    }

    /// Path of a blob in the store (for pushing it).
    pub fn blob_file(&self, digest: &str) -> std::path::PathBuf {
        self.blob_path(digest)
    }

    /// Reads a stored blob (manifest, config).
    pub fn blob_bytes(&self, digest: &str) -> Result<Vec<u8>, Error> {
        self.read_blob(digest)
    }

    /// Imports a gzip layer blob file made by the builder: verifies both
    /// digests while unpacking and moves it into the store. Idempotent.
    pub fn import_layer_file(
        &self,
        path: &Path,
        diff_id: &str,
        blob_digest: &str,
    ) -> Result<(), Error> {
        if self.has_layer(diff_id, blob_digest) {
            return layer::ensure_link(self, diff_id);
        }
        let _store = self.store_lock(false)?;
        let lock = self.layer_lock(diff_id)?;
        if self.layer_meta(diff_id).is_some() {
            return layer::ensure_link(self, diff_id);
        }
        let file = std::fs::File::open(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let spec = LayerSpec {
            blob_digest: blob_digest.to_owned(),
            media_type: LAYER_GZIP.to_owned(),
            blob_size: None,
            diff_id: diff_id.to_owned(),
        };
        let mut staged = layer::import(
            self,
            &spec,
            BufReader::with_capacity(1 << 20, file),
            &|_| {},
            layer::BlobSink::Copy,
        )?;
        staged._lock = Some(lock);
        layer::commit(self, vec![staged])
    }

    /// Stores an image from its config JSON (whose `rootfs.diff_ids` must
    /// all be stored layers), writes an OCI manifest for it and points
    /// `tags` at it. Returns the image.
    pub fn commit_image(&self, config: &[u8], tags: &[Reference]) -> Result<LocalImage, Error> {
        let config_digest = sha256_digest(config);
        let parsed: oci_spec::image::ImageConfiguration =
            serde_json::from_slice(config).map_err(|e| Error::BadConfig {
                digest: config_digest.clone(),
                reason: e.to_string(),
            })?;
        let diff_ids = parsed.rootfs().diff_ids().to_vec();
        let mut layers = Vec::new();
        for d in &diff_ids {
            let info = self.layer_blob(d).ok_or_else(|| Error::BadConfig {
                digest: config_digest.clone(),
                reason: format!("layer {d} is not in the store"),
            })?;
            layers.push(serde_json::json!({
                "mediaType": info.media_type,
                "digest": info.digest,
                "size": info.size,
            }));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": layers,
        });
        let manifest_data = serde_json::to_vec(&manifest).map_err(|e| Error::BadConfig {
            digest: config_digest.clone(),
            reason: e.to_string(),
        })?;
        let manifest_digest = sha256_digest(&manifest_data);
        let _store = self.store_lock(false)?;
        let record = self.add_image(NewImage {
            config_digest: &config_digest,
            config,
            manifest_digest: &manifest_digest,
            manifest: &manifest_data,
            repo_tags: tags
                .iter()
                .filter(|r| r.digest().is_none())
                .map(|r| r.to_string())
                .collect(),
            repo_digests: vec![],
            diff_ids,
        })?;
        self.local_image(&record, tags.first().cloned())
    }

    /// Stores the config and manifest blobs of an image whose layers are
    /// in the store and records it in the index (its size: its layers').
    /// Returns the record written.
    pub(crate) fn add_image(&self, image: NewImage<'_>) -> Result<ImageRecord, Error> {
        self.put_blob(image.config_digest, image.config)?;
        self.put_blob(image.manifest_digest, image.manifest)?;
        let size = image
            .diff_ids
            .iter()
            .filter_map(|d| self.layer_meta(d))
            .map(|m| m.size)
            .sum();
        let record = ImageRecord {
            id: image.config_digest.to_owned(),
            manifest_digest: image.manifest_digest.to_owned(),
            repo_tags: image.repo_tags,
            repo_digests: image.repo_digests,
            layers: image.diff_ids,
            size,
            added: jiff::Timestamp::now().to_string(),
        };
        self.record_image(record.clone())?;
        Ok(record)
    }
}

/// An image to record: its config and manifest (digest and bytes), the
/// names it gets and its layers (diff ids, bottom first).
pub(crate) struct NewImage<'a> {
    pub config_digest: &'a str,
    pub config: &'a [u8],
    pub manifest_digest: &'a str,
    pub manifest: &'a [u8],
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub diff_ids: Vec<String>,
}
