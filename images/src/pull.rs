//! Pulling an image from a registry (OCI distribution API, via oci-client).
//!
//! Steps: authenticate (anonymous bearer token, or basic / token auth with
//! stored credentials), fetch the manifest (a list/index picks the entry of
//! the wanted platform), fetch and verify the config, then fetch the missing
//! layers concurrently, each streamed into [`crate::layer::import`] on a
//! blocking thread through a bounded channel (download, decompression and
//! untar overlap; several layers use several cores). The index is updated
//! last, under the shared store lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use crate::error::Error;
use crate::layer::{self, LayerSpec};
use crate::manifest::{self, Document, Manifest};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{ImageRecord, LocalImage, Store, hex_of};

/// Largest manifest or config accepted (they are read into memory).
const MAX_SMALL_BLOB: u64 = 32 << 20;

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Platform to pick from a multi-arch image; the host's by default.
    pub platform: Option<Platform>,
    /// Layers downloaded at once.
    pub max_concurrent_downloads: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            max_concurrent_downloads: 4,
        }
    }
}

/// What happens to one layer during a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent {
    AlreadyExists,
    /// Another process is pulling this layer; waiting for it.
    Waiting,
    Downloading {
        done: u64,
        total: u64,
    },
    /// Download finished; unpacking is catching up.
    Extracting {
        done: u64,
        total: u64,
    },
    Complete,
}

/// Callbacks for progress display. Layer ids are the first 12 hex digits
/// of the blob digest, like Docker shows.
pub trait PullProgress: Send + Sync {
    /// The image manifest is known: its digest and layers `(id, size)`.
    fn resolved(&self, _reference: &Reference, _digest: &str, _layers: &[(String, u64)]) {}
    fn layer(&self, _id: &str, _event: LayerEvent) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl PullProgress for NoProgress {}

pub(crate) fn short_id(digest: &str) -> String {
    hex_of(digest).chars().take(12).collect()
}

/// Registries reached over plain HTTP: loopback ones, plus the
/// `insecure-registries` of ROOT/config.json and RSTACK_INSECURE_REGISTRIES.
fn is_insecure(store: &Store, r: &Reference) -> bool {
    if r.is_loopback_registry() {
        return true;
    }
    let mut list: Vec<String> = std::env::var("RSTACK_INSECURE_REGISTRIES")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if let Ok(data) = std::fs::read(store.root().join("config.json"))
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data)
        && let Some(arr) = v.get("insecure-registries").and_then(|a| a.as_array())
    {
        list.extend(arr.iter().filter_map(|s| s.as_str().map(str::to_owned)));
    }
    list.iter().any(|s| s == r.registry())
}

/// oci-client's settings for the registry of `r` (pull and push): plain
/// HTTP when `insecure`, a 30 s connect timeout, and `read_timeout` (a pull
/// sets one; a push has none).
pub(crate) fn client_config(
    r: &Reference,
    insecure: bool,
    read_timeout: Option<Duration>,
) -> ClientConfig {
    ClientConfig {
        protocol: if insecure {
            ClientProtocol::HttpsExcept(vec![r.registry().to_owned()])
        } else {
            ClientProtocol::Https
        },
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(30)),
        read_timeout,
        ..Default::default()
    }
}

/// Plain HTTP for `registry`?
pub fn registry_is_insecure(store: &Store, registry: &str) -> bool {
    Reference::parse(&format!("{registry}/x")).is_ok_and(|r| is_insecure(store, &r))
}

struct Ctx<'a> {
    store: &'a Store,
    client: Client,
    reference: Reference,
    oref: oci_client::Reference,
    progress: &'a dyn PullProgress,
}

impl Ctx<'_> {
    fn map_err(&self, e: OciDistributionError) -> Error {
        let reference = self.reference.familiar();
        let registry = self.reference.registry().to_owned();
        match &e {
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => {
                return Error::Unauthorized {
                    reference,
                    registry,
                };
            }
            OciDistributionError::ImageManifestNotFoundError(_) => {
                return Error::ManifestUnknown {
                    reference,
                    registry,
                };
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                for err in &envelope.errors {
                    match err.code {
                        OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound => {
                            return Error::ManifestUnknown {
                                reference,
                                registry,
                            };
                        }
                        OciErrorCode::Unauthorized | OciErrorCode::Denied => {
                            return Error::Unauthorized {
                                reference,
                                registry,
                            };
                        }
                        _ => {}
                    }
                }
            }
            OciDistributionError::ServerError { code: 404, .. } => {
                return Error::ManifestUnknown {
                    reference,
                    registry,
                };
            }
            OciDistributionError::ServerError {
                code: 401 | 403, ..
            } => {
                return Error::Unauthorized {
                    reference,
                    registry,
                };
            }
            OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError { expected, actual },
            ) => {
                return Error::DigestMismatch {
                    what: format!("manifest of {reference}"),
                    expected: expected.clone(),
                    actual: actual.clone(),
                };
            }
            _ => {}
        }
        Error::Registry {
            reference,
            registry,
            source: e,
        }
    }

    /// Fetches a manifest (or index) document by tag or digest.
    async fn manifest(&self, oref: &oci_client::Reference) -> Result<(Bytes, String), Error> {
        let (body, digest) = self
            .client
            .pull_manifest_raw(oref, &RegistryAuth::Anonymous, manifest::ACCEPTED)
            .await
            .map_err(|e| self.map_err(e))?;
        if body.len() as u64 > MAX_SMALL_BLOB {
            return Err(Error::BadManifest {
                reference: self.reference.familiar(),
                digest,
                reason: "too large".into(),
            });
        }
        // oci-client checks the digest when the registry sends one or the
        // reference pins one; check it ourselves as well.
        let actual = crate::digest::sha256_digest(&body);
        if oref.digest().is_some_and(|d| d != actual) {
            return Err(Error::DigestMismatch {
                what: format!("manifest of {}", self.reference.familiar()),
                expected: oref.digest().unwrap_or_default().to_owned(),
                actual,
            });
        }
        Ok((body, actual))
    }

    /// Fetches a small blob into memory, verifying digest and size.
    async fn small_blob(&self, desc: &manifest::Descriptor) -> Result<Vec<u8>, Error> {
        if desc.size > MAX_SMALL_BLOB {
            return Err(Error::BadConfig {
                digest: desc.digest.clone(),
                reason: format!("too large ({} bytes)", desc.size),
            });
        }
        let oci_desc = oci_client::manifest::OciDescriptor {
            digest: desc.digest.clone(),
            size: desc.size as i64,
            media_type: desc.media_type.clone(),
            ..Default::default()
        };
        let mut stream = self
            .client
            .pull_blob_stream(&self.oref, &oci_desc)
            .await
            .map_err(|e| self.map_err(e))?;
        let mut data = Vec::with_capacity(desc.size as usize);
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => {
                    data.extend_from_slice(&b);
                    if data.len() as u64 > desc.size {
                        return Err(Error::Oversized {
                            digest: desc.digest.clone(),
                            expected: desc.size,
                        });
                    }
                }
                // Digest and size are checked below.
                Err(source) if is_digest_error(&source) => break,
                Err(source) => {
                    return Err(Error::Download {
                        digest: desc.digest.clone(),
                        source,
                    });
                }
            }
        }
        if (data.len() as u64) < desc.size {
            return Err(Error::Truncated {
                digest: desc.digest.clone(),
                expected: desc.size,
                got: data.len() as u64,
            });
        }
        let actual = crate::digest::sha256_digest(&data);
        if actual != desc.digest {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", desc.digest),
                expected: desc.digest.clone(),
                actual,
            });
        }
        Ok(data)
    }

    /// Makes one layer present in the store.
    async fn layer(&self, desc: &manifest::Descriptor, diff_id: &str) -> Result<(), Error> {
        let id = short_id(&desc.digest);
        let store = self.store;
        if store.has_layer(diff_id, &desc.digest) {
            layer::ensure_link(store, diff_id)?;
            self.progress.layer(&id, LayerEvent::AlreadyExists);
            return Ok(());
        }
        let lock_path_store = store.clone();
        let d = diff_id.to_owned();
        let lock = match crate::fsutil::try_lock(&store.layer_lock_path(diff_id))? {
            Some(lock) => lock,
            None => {
                self.progress.layer(&id, LayerEvent::Waiting);
                tokio::task::spawn_blocking(move || lock_path_store.layer_lock(&d))
                    .await
                    .map_err(Error::Join)??
            }
        };
        if store.has_layer(diff_id, &desc.digest) {
            layer::ensure_link(store, diff_id)?;
            self.progress.layer(&id, LayerEvent::AlreadyExists);
            return Ok(());
        }
        // Network failures are retried (from scratch: the import verifies
        // whole blobs); bad content is not.
        let mut attempt = 1;
        let staged = loop {
            match self.fetch(desc, diff_id, &id).await {
                Err(e) if attempt < DOWNLOAD_ATTEMPTS && is_transient(&e) => {
                    tracing::warn!(layer = %id, attempt, error = %e, "layer download failed; retrying");
                    tokio::time::sleep(Duration::from_secs(attempt)).await;
                    attempt += 1;
                }
                other => break other?,
            }
        };
        let commit_store = store.clone();
        tokio::task::spawn_blocking(move || layer::commit(&commit_store, vec![staged]))
            .await
            .map_err(Error::Join)??;
        drop(lock);
        self.progress.layer(&id, LayerEvent::Complete);
        Ok(())
    }

    /// Downloads and imports one layer blob into a staging dir.
    async fn fetch(
        &self,
        desc: &manifest::Descriptor,
        diff_id: &str,
        id: &str,
    ) -> Result<layer::Staged, Error> {
        let store = self.store;
        let oci_desc = oci_client::manifest::OciDescriptor {
            digest: desc.digest.clone(),
            size: desc.size as i64,
            media_type: desc.media_type.clone(),
            ..Default::default()
        };
        let mut stream = self
            .client
            .pull_blob_stream(&self.oref, &oci_desc)
            .await
            .map_err(|e| self.map_err(e))?;
        let total = desc.size;
        self.progress
            .layer(id, LayerEvent::Downloading { done: 0, total });

        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
        let consumed = Arc::new(AtomicU64::new(0));
        let spec = LayerSpec {
            blob_digest: desc.digest.clone(),
            media_type: desc.media_type.clone(),
            blob_size: Some(desc.size),
            diff_id: diff_id.to_owned(),
        };
        let task_store = store.clone();
        let task_consumed = consumed.clone();
        let mut task = tokio::task::spawn_blocking(move || {
            let reader = ChannelReader {
                rx,
                cur: Bytes::new(),
            };
            layer::import(&task_store, &spec, reader, &move |n| {
                task_consumed.store(n, Ordering::Relaxed)
            })
        });

        let mut downloaded = 0u64;
        let mut download_error = None;
        let mut receiver_alive = true;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    downloaded += bytes.len() as u64;
                    if downloaded > total {
                        download_error = Some(Error::Oversized {
                            digest: desc.digest.clone(),
                            expected: total,
                        });
                        break;
                    }
                    self.progress.layer(
                        id,
                        LayerEvent::Downloading {
                            done: downloaded,
                            total,
                        },
                    );
                    // The import reads the whole blob even when unpacking
                    // failed, so its digest check still tells a bad blob.
                    if receiver_alive && tx.send(bytes).await.is_err() {
                        receiver_alive = false;
                    }
                }
                // The end-of-stream digest check of oci-client: the import's
                // own check says more (truncated or mismatch).
                Err(source) if is_digest_error(&source) => break,
                Err(source) => {
                    if download_error.is_none() && downloaded < total {
                        download_error = Some(Error::Download {
                            digest: desc.digest.clone(),
                            source,
                        });
                    }
                    break;
                }
            }
        }
        drop(tx);
        let result = loop {
            tokio::select! {
                r = &mut task => break r.map_err(Error::Join)?,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    let done = consumed.load(Ordering::Relaxed);
                    self.progress.layer(id, LayerEvent::Extracting { done, total });
                }
            }
        };
        if downloaded < total {
            return Err(download_error.unwrap_or(Error::Truncated {
                digest: desc.digest.clone(),
                expected: total,
                got: downloaded,
            }));
        }
        if let Some(e @ Error::Oversized { .. }) = download_error {
            return Err(e);
        }
        // The import checked both digests (blob and diff id).
        result
    }
}

/// Tries per layer download.
const DOWNLOAD_ATTEMPTS: u64 = 3;

/// A failure the network may not repeat (connection reset, timeout, 5xx).
fn is_transient(e: &Error) -> bool {
    match e {
        Error::Download { .. } => true,
        Error::Registry { source, .. } => matches!(
            source,
            OciDistributionError::RequestError(_)
                | OciDistributionError::IoError(_)
                | OciDistributionError::ServerError {
                    code: 500..=599,
                    ..
                }
        ),
        _ => false,
    }
}

fn is_digest_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<oci_client::errors::DigestError>())
}

/// Feeds the blocking import from the download's channel.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

/// Picks the manifest of `platform` from an index.
fn select_platform(
    reference: &Reference,
    index: &manifest::Index,
    platform: &Platform,
    explicit: bool,
) -> Result<manifest::Descriptor, Error> {
    let candidates: Vec<&manifest::Descriptor> = index
        .manifests
        .iter()
        .filter(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| platform.matches(&p.os, &p.architecture, p.variant.as_deref()))
        })
        .collect();
    // Without an explicit variant, prefer the host's (or none).
    let host_variant = if explicit {
        platform.variant.clone()
    } else {
        Platform::host().variant
    };
    let best = candidates
        .iter()
        .find(|d| d.platform.as_ref().and_then(|p| p.variant.clone()) == host_variant)
        .or(candidates.first());
    match best {
        Some(d) => Ok((*d).clone()),
        None => {
            let available: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .filter(|p| p.os != "unknown")
                .map(|p| match &p.variant {
                    Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                    None => format!("{}/{}", p.os, p.architecture),
                })
                .collect();
            Err(Error::NoPlatform {
                reference: reference.familiar(),
                platform: platform.to_string(),
                available: if available.is_empty() {
                    "none".into()
                } else {
                    available.join(", ")
                },
            })
        }
    }
}

impl Store {
    /// Pulls `reference` (unless all of it is present) and returns it.
    pub async fn pull(
        &self,
        reference: &str,
        opts: &PullOptions,
        progress: &dyn PullProgress,
    ) -> Result<LocalImage, Error> {
        let r = Reference::parse(reference)?;
        let insecure = is_insecure(self, &r);
        // A registry that stops sending mid-blob fails the pull instead of hanging it.
        let config = client_config(&r, insecure, Some(Duration::from_secs(120)));
        crate::tls::init();
        let ctx = Ctx {
            store: self,
            client: Client::new(config),
            reference: r.clone(),
            oref: r.to_oci(),
            progress,
        };
        let auth = match crate::auth::lookup(r.registry())? {
            Some(c) => RegistryAuth::Basic(c.username, c.password),
            None => RegistryAuth::Anonymous,
        };
        tracing::debug!(reference = %r, insecure, "pulling");
        ctx.client
            .auth(&ctx.oref, &auth, RegistryOperation::Pull)
            .await
            .map_err(|e| ctx.map_err(e))?;

        let (body, top_digest) = ctx.manifest(&ctx.oref).await?;
        let bad = |digest: &str, reason: String| Error::BadManifest {
            reference: r.familiar(),
            digest: digest.to_owned(),
            reason,
        };
        let (manifest_body, manifest_digest, manifest): (Bytes, String, Manifest) =
            match manifest::parse(&body).map_err(|e| bad(&top_digest, e))? {
                Document::Manifest(m) => (body, top_digest.clone(), m),
                Document::Index(index) => {
                    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
                    let entry = select_platform(&r, &index, &platform, opts.platform.is_some())?;
                    let child = r.with_digest(&entry.digest).to_oci();
                    let (body, digest) = ctx.manifest(&child).await?;
                    match manifest::parse(&body).map_err(|e| bad(&digest, e))? {
                        Document::Manifest(m) => (body, digest, m),
                        Document::Index(_) => return Err(bad(&digest, "nested index".into())),
                    }
                }
            };
        manifest::check_image(&manifest).map_err(|e| bad(&manifest_digest, e))?;
        let layers: Vec<(String, u64)> = manifest
            .layers
            .iter()
            .map(|l| (short_id(&l.digest), l.size))
            .collect();
        progress.resolved(&r, &top_digest, &layers);

        // Config: reuse a stored copy (same digest = same bytes).
        let config_digest = manifest.config.digest.clone();
        let config_data = match self.read_blob_verified(&config_digest) {
            Some(data) => data,
            None => ctx.small_blob(&manifest.config).await?,
        };
        let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&config_data)
            .map_err(|e| Error::BadConfig {
                digest: config_digest.clone(),
                reason: e.to_string(),
            })?;
        if let Some(want) = &opts.platform {
            let os = config.os().to_string();
            let arch = config.architecture().to_string();
            if !want.matches(&os, &arch, config.variant().as_deref()) {
                return Err(Error::PlatformMismatch {
                    reference: r.familiar(),
                    found: format!("{os}/{arch}"),
                    wanted: want.to_string(),
                });
            }
        }
        let diff_ids: Vec<String> = config.rootfs().diff_ids().to_vec();
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::BadConfig {
                digest: config_digest,
                reason: format!(
                    "{} diff ids for {} layers",
                    diff_ids.len(),
                    manifest.layers.len()
                ),
            });
        }
        if let Some(bad_id) = diff_ids
            .iter()
            .find(|d| !crate::reference::is_sha256_digest(d))
        {
            return Err(Error::BadConfig {
                digest: config_digest,
                reason: format!("bad diff id {bad_id:?}"),
            });
        }

        let lock_store = self.clone();
        let _store_lock = tokio::task::spawn_blocking(move || lock_store.store_lock(false))
            .await
            .map_err(Error::Join)??;
        self.clean_tmp();

        // A layer listed twice is fetched once. The jobs are collected into
        // a Vec first: iterator closures held across an await would make
        // this future !Send (rustc's higher-ranked lifetime limitation).
        let mut unique: Vec<(manifest::Descriptor, String)> = Vec::new();
        for (desc, diff_id) in manifest.layers.iter().zip(&diff_ids) {
            if !unique
                .iter()
                .any(|(d, id)| d.digest == desc.digest && id == diff_id)
            {
                unique.push((desc.clone(), diff_id.clone()));
            }
        }
        let mut jobs = Vec::with_capacity(unique.len());
        for (desc, diff_id) in &unique {
            jobs.push(ctx.layer(desc, diff_id));
        }
        let mut stream =
            futures_util::stream::iter(jobs).buffer_unordered(opts.max_concurrent_downloads.max(1));
        while let Some(result) = stream.next().await {
            result?;
        }
        drop(stream);

        self.put_blob(&config_digest, &config_data)?;
        self.put_blob(&manifest_digest, &manifest_body)?;
        let mut size = 0;
        for d in &diff_ids {
            size += self.layer_meta(d).map(|m| m.size).unwrap_or(0);
        }
        let record = ImageRecord {
            id: config_digest.clone(),
            manifest_digest,
            repo_tags: match (r.tag(), r.digest()) {
                (Some(_), None) => vec![r.to_string()],
                _ => vec![],
            },
            repo_digests: vec![format!("{}@{}", r.name(), top_digest)],
            layers: diff_ids,
            size,
            added: jiff::Timestamp::now().to_string(),
        };
        self.record_image(record)?;
        let index = self.read_index()?;
        let record = index
            .images
            .get(&config_digest)
            .ok_or_else(|| Error::ImageNotFound {
                reference: r.familiar(),
            })?;
        self.local_image(record, Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Callers spawn pulls on a multi-threaded runtime: the future must be Send.
    #[test]
    fn pull_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let opts = PullOptions::default();
        let future = store.pull("127.0.0.1:1/x", &opts, &NoProgress);
        assert_send(&future);
    }

    #[test]
    fn platform_selection_prefers_the_host_variant_and_names_the_choices() {
        let entry = |arch: &str, variant: Option<&str>, digest: &str| manifest::Descriptor {
            media_type: manifest::OCI_MANIFEST.into(),
            digest: digest.into(),
            size: 1,
            platform: Some(manifest::PlatformJson {
                os: "linux".into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
            annotations: None,
        };
        let index = manifest::Index {
            manifests: vec![
                entry("arm", Some("v6"), "sha256:a6"),
                entry("arm", Some("v7"), "sha256:a7"),
                entry("arm64", Some("v8"), "sha256:a8"),
                entry("amd64", None, "sha256:x86"),
            ],
        };
        let r = Reference::parse("app").unwrap();
        let pick = |p: &str| {
            select_platform(&r, &index, &Platform::parse(p).unwrap(), true).map(|d| d.digest)
        };
        assert_eq!(pick("linux/arm64").unwrap(), "sha256:a8");
        assert_eq!(pick("linux/arm/v6").unwrap(), "sha256:a6");
        assert_eq!(pick("linux/arm").unwrap(), "sha256:a7");
        assert_eq!(pick("linux/amd64").unwrap(), "sha256:x86");
        let err = pick("linux/s390x").unwrap_err().to_string();
        assert!(
            err.contains("linux/s390x") && err.contains("linux/arm/v6, linux/arm/v7"),
            "{err}"
        );
    }
}
