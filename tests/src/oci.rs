//! Writing OCI image layouts (image-spec `image-layout.md`): `oci-layout`,
//! `index.json` and content-addressed `blobs/sha256/<hex>`. skopeo reads
//! such a directory as `oci:DIR:TAG` and pushes it to a registry, so the
//! harness controls every byte of every blob and manifest it pushes.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::digest_of;

pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The time written into fixture configs and tar headers, so a fixture's
/// bytes (and digests) depend only on its content.
pub const FIXED_TIME: &str = "2024-01-02T03:04:05Z";
/// [`FIXED_TIME`] as seconds since the epoch.
pub const FIXED_MTIME: u64 = 1_704_164_645;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An OCI content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform: Option<Platform>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variant: Option<String>,
}

/// Layer compression, which also picks the layer's media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => MEDIA_OCI_LAYER,
            Compression::Gzip => MEDIA_OCI_LAYER_GZIP,
            Compression::Zstd => MEDIA_OCI_LAYER_ZSTD,
        }
    }

    /// Compresses `tar` deterministically (same input, same bytes).
    pub fn compress(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => tar.to_vec(),
            Compression::Gzip => {
                let mut enc = flate2::GzBuilder::new().mtime(0).write(
                    Vec::with_capacity(tar.len() / 2),
                    flate2::Compression::default(),
                );
                enc.write_all(tar).expect("gzip into memory");
                enc.finish().expect("gzip into memory")
            }
            Compression::Zstd => zstd::encode_all(tar, 3).expect("zstd into memory"),
        }
    }
}

/// An image layer: its uncompressed tar's digest (the diff-id) and its blob.
#[derive(Clone, Debug)]
pub struct Layer {
    pub diff_id: String,
    pub blob: Vec<u8>,
    pub compression: Compression,
}

impl Layer {
    /// Builds the layer blob of an uncompressed `tar`.
    pub fn new(tar: &[u8], compression: Compression) -> Layer {
        Layer {
            diff_id: digest_of(tar),
            blob: compression.compress(tar),
            compression,
        }
    }
}

/// What [`OciLayout::add_image`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The image manifest's descriptor (with the platform set).
    pub manifest: Descriptor,
    /// The config blob's digest: the image ID.
    pub config_digest: String,
    /// Layer descriptors, bottom first.
    pub layers: Vec<Descriptor>,
    /// Diff-ids (uncompressed tar digests), bottom first.
    pub diff_ids: Vec<String>,
}

/// An OCI image layout being written into a directory.
#[derive(Debug)]
pub struct OciLayout {
    dir: PathBuf,
    refs: Vec<Value>,
}

impl OciLayout {
    /// Starts a layout in `dir` (created if needed).
    pub fn create(dir: &Path) -> Result<OciLayout, Error> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(|source| Error::Write {
            path: blobs,
            source,
        })?;
        Ok(OciLayout {
            dir: dir.to_owned(),
            refs: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `data` as a blob; returns its descriptor.
    pub fn add_blob(&mut self, media_type: &str, data: &[u8]) -> Result<Descriptor, Error> {
        let digest = digest_of(data);
        let path = self
            .dir
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..]);
        if !path.exists() {
            std::fs::write(&path, data).map_err(|source| Error::Write { path, source })?;
        }
        Ok(Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size: data.len() as u64,
            platform: None,
        })
    }

    /// Writes an image: its layer blobs, a config (`container_config` is the
    /// config's `config` object: Env, Cmd, ...) and an OCI manifest.
    pub fn add_image(
        &mut self,
        platform: &Platform,
        layers: &[Layer],
        container_config: Value,
    ) -> Result<ImageInfo, Error> {
        let mut layer_descs = Vec::new();
        for layer in layers {
            layer_descs.push(self.add_blob(layer.compression.media_type(), &layer.blob)?);
        }
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let mut config = json!({
            "created": FIXED_TIME,
            "architecture": platform.architecture,
            "os": platform.os,
            "config": container_config,
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": layers.iter().enumerate().map(|(i, _)| json!({
                "created": FIXED_TIME,
                "created_by": format!("rstack-e2e fixture layer {i}"),
            })).collect::<Vec<_>>(),
        });
        if let Some(variant) = &platform.variant {
            config["variant"] = json!(variant);
        }
        let config_desc = self.add_blob(MEDIA_OCI_CONFIG, &to_vec(&config))?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": config_desc,
            "layers": layer_descs,
        });
        let mut manifest_desc = self.add_blob(MEDIA_OCI_MANIFEST, &to_vec(&manifest))?;
        manifest_desc.platform = Some(platform.clone());
        Ok(ImageInfo {
            manifest: manifest_desc,
            config_digest: config_desc.digest,
            layers: layer_descs,
            diff_ids,
        })
    }

    /// Writes an image index (`media_type` OCI index or Docker manifest
    /// list) over `manifests`; returns its descriptor.
    pub fn add_index(
        &mut self,
        media_type: &str,
        manifests: &[Descriptor],
    ) -> Result<Descriptor, Error> {
        let manifests: Vec<Value> = manifests
            .iter()
            .map(|d| {
                let mut v = serde_json::to_value(d).expect("descriptor to json");
                if media_type == MEDIA_DOCKER_LIST {
                    v["mediaType"] = json!(MEDIA_DOCKER_MANIFEST);
                }
                v
            })
            .collect();
        let index = json!({ "schemaVersion": 2, "mediaType": media_type, "manifests": manifests });
        self.add_blob(media_type, &to_vec(&index))
    }

    /// Names `desc` as `tag` in `index.json`
    /// (`org.opencontainers.image.ref.name`), so skopeo finds it as `oci:DIR:tag`.
    pub fn tag(&mut self, desc: &Descriptor, tag: &str) {
        let mut v =
            json!({ "mediaType": desc.media_type, "digest": desc.digest, "size": desc.size });
        v["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
        self.refs.push(v);
    }

    /// Writes `oci-layout` and `index.json`.
    pub fn finish(self) -> Result<(), Error> {
        let layout = self.dir.join("oci-layout");
        std::fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(|source| {
            Error::Write {
                path: layout,
                source,
            }
        })?;
        let index =
            json!({ "schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": self.refs });
        let path = self.dir.join("index.json");
        std::fs::write(&path, to_vec(&index)).map_err(|source| Error::Write { path, source })
    }
}

fn to_vec(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("json to bytes")
}
