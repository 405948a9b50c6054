//! Pulling an image from a registry (OCI distribution API, via oci-client).
//!
//! Steps: authenticate (anonymous bearer token, or basic / token auth with
//! stored credentials), fetch the manifest (a list/index picks the entry of
//! the wanted platform), fetch and verify the config, then fetch the missing
//! layers concurrently, each streamed into [`crate::layer::import`] on a
//! blocking thread through a bounded channel (download, decompression and
//! untar overlap; several layers use several cores). The index is updated
//! last, under the shared store lock.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol, SizedStream};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use crate::error::Error;
use crate::manifest::{self, Document, Manifest};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registries::Endpoint;
use crate::store::{LocalImage, Store, hex_of};
use crate::store_write::NewImage;

/// Layers one pull downloads at once unless configured (dockerd's default).
pub const DEFAULT_CONCURRENT_DOWNLOADS: usize = 3;

/// Tries of a manifest request answered with 5xx or 429.
const MANIFEST_ATTEMPTS: u32 = 3;

/// Largest manifest or config accepted (they are read into memory).
const MAX_SMALL_BLOB: u64 = 32 << 20;

mod download;
mod partial;

pub(crate) use partial::PREFIX as PARTIAL_PREFIX;

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Platform to pick from a multi-arch image; the host's by default.
    pub platform: Option<Platform>,
    /// Layers downloaded at once; `None`: the store's setting
    /// ([`Store::with_max_concurrent_downloads`]), else
    /// `max-concurrent-downloads` of `ROOT/config.json`, else
    /// [`DEFAULT_CONCURRENT_DOWNLOADS`].
    pub max_concurrent_downloads: Option<usize>,
}

/// What happens to one layer during a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent {
    AlreadyExists,
    /// Another process is pulling this layer; waiting for it.
    Waiting,
    /// The blob download goes on from `from` bytes an interrupted pull
    /// kept (only the rest is transferred).
    Resuming {
        from: u64,
        total: u64,
    },
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

/// The stored credentials for `registry` (`rstack login`, Docker's and
/// Podman's auth files), else anonymous.
pub(crate) fn registry_auth(registry: &str) -> Result<RegistryAuth, Error> {
    Ok(match crate::auth::lookup(registry)? {
        Some(c) => RegistryAuth::Basic(c.username, c.password),
        None => RegistryAuth::Anonymous,
    })
}

struct Ctx<'a> {
    store: &'a Store,
    client: Client,
    /// The image's name (what the store records).
    reference: Reference,
    /// The same image at the location pulled from (a mirror, a remapped
    /// location, or the name itself).
    source: Reference,
    oref: oci_client::Reference,
    progress: &'a dyn PullProgress,
}

impl Ctx<'_> {
    fn map_err(&self, e: OciDistributionError) -> Error {
        let reference = self.reference.familiar();
        let registry = self.source.registry().to_owned();
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
        let mut failures = 0;
        let (body, digest) = loop {
            match self
                .client
                .pull_manifest_raw(oref, &RegistryAuth::Anonymous, manifest::ACCEPTED)
                .await
            {
                Ok(fetched) => break fetched,
                // An overloaded registry (5xx, 429) gets another chance; an
                // unreachable one does not (the next location is tried).
                Err(OciDistributionError::ServerError {
                    code: code @ (429 | 500..=599),
                    ..
                }) if failures + 1 < MANIFEST_ATTEMPTS => {
                    failures += 1;
                    let wait = download::backoff(failures);
                    tracing::warn!(registry = %self.source.registry(), code, "manifest request failed; retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(self.map_err(e)),
            }
        };
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
        let mut stream = self.blob_stream(desc).await?;
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

    /// Starts downloading the blob of `desc` (oci-client checks its digest
    /// at the end of the stream).
    async fn blob_stream(&self, desc: &manifest::Descriptor) -> Result<SizedStream, Error> {
        let oci_desc = oci_client::manifest::OciDescriptor {
            digest: desc.digest.clone(),
            size: desc.size as i64,
            media_type: desc.media_type.clone(),
            ..Default::default()
        };
        self.client
            .pull_blob_stream(&self.oref, &oci_desc)
            .await
            .map_err(|e| self.map_err(e))
    }
}

/// A failure of the location pulled from (unreachable, refusing, not
/// having the image, serving bad content), after which the next location
/// may do better; local failures (disk, credentials files) end the pull.
fn is_location_failure(e: &Error) -> bool {
    matches!(
        e,
        Error::ManifestUnknown { .. }
            | Error::Unauthorized { .. }
            | Error::Registry { .. }
            | Error::DigestMismatch { .. }
            | Error::Truncated { .. }
            | Error::Oversized { .. }
            | Error::Download { .. }
            | Error::NoPlatform { .. }
            | Error::PlatformMismatch { .. }
            | Error::BadManifest { .. }
            | Error::BadConfig { .. }
    )
}

fn is_digest_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<oci_client::errors::DigestError>())
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

/// The image manifest a pull resolved a reference to.
struct Resolved {
    /// The digest of what the reference named (an index or the manifest).
    top_digest: String,
    body: Bytes,
    digest: String,
    manifest: Manifest,
}

/// The image config a pull uses, checked against its manifest.
struct PulledConfig {
    digest: String,
    data: Vec<u8>,
    diff_ids: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// A client for `endpoint`, authenticated for pulling `r` there.
    async fn connect(
        store: &'a Store,
        r: &Reference,
        endpoint: &Endpoint,
        progress: &'a dyn PullProgress,
    ) -> Result<Ctx<'a>, Error> {
        let source = &endpoint.reference;
        let insecure = endpoint.insecure;
        // A registry that stops sending mid-blob fails the pull instead of hanging it.
        let config = client_config(source, insecure, Some(Duration::from_secs(120)));
        crate::tls::init();
        let ctx = Ctx {
            store,
            client: Client::new(config),
            reference: r.clone(),
            source: source.clone(),
            oref: source.to_oci(),
            progress,
        };
        let auth = registry_auth(source.registry())?;
        tracing::debug!(reference = %r, from = %source, insecure, "pulling");
        ctx.client
            .auth(&ctx.oref, &auth, RegistryOperation::Pull)
            .await
            .map_err(|e| ctx.map_err(e))?;
        Ok(ctx)
    }
}

impl Ctx<'_> {
    fn bad_manifest(&self, digest: &str, reason: String) -> Error {
        Error::BadManifest {
            reference: self.reference.familiar(),
            digest: digest.to_owned(),
            reason,
        }
    }

    /// The image manifest of the reference (from an index: the entry of
    /// the wanted platform), checked.
    async fn resolve(&self, opts: &PullOptions) -> Result<Resolved, Error> {
        let (body, top_digest) = self.manifest(&self.oref).await?;
        let (body, digest, manifest) =
            match manifest::parse(&body).map_err(|e| self.bad_manifest(&top_digest, e))? {
                Document::Manifest(m) => (body, top_digest.clone(), m),
                Document::Index(index) => self.platform_manifest(&index, opts).await?,
            };
        manifest::check_image(&manifest).map_err(|e| self.bad_manifest(&digest, e))?;
        Ok(Resolved {
            top_digest,
            body,
            digest,
            manifest,
        })
    }

    /// The manifest an index lists for the wanted platform.
    async fn platform_manifest(
        &self,
        index: &manifest::Index,
        opts: &PullOptions,
    ) -> Result<(Bytes, String, Manifest), Error> {
        let r = &self.reference;
        let platform = opts.platform.clone().unwrap_or_else(Platform::host);
        let entry = select_platform(r, index, &platform, opts.platform.is_some())?;
        let child = self.source.with_digest(&entry.digest).to_oci();
        let (body, digest) = self.manifest(&child).await?;
        match manifest::parse(&body).map_err(|e| self.bad_manifest(&digest, e))? {
            Document::Manifest(m) => Ok((body, digest, m)),
            Document::Index(_) => Err(self.bad_manifest(&digest, "nested index".into())),
        }
    }

    /// The image config (a stored copy when there is one: same digest =
    /// same bytes), checked against the wanted platform and the layers.
    async fn config(&self, manifest: &Manifest, opts: &PullOptions) -> Result<PulledConfig, Error> {
        let digest = manifest.config.digest.clone();
        let data = match self.store.read_blob_verified(&digest) {
            Some(data) => data,
            None => self.small_blob(&manifest.config).await?,
        };
        let config: oci_spec::image::ImageConfiguration =
            serde_json::from_slice(&data).map_err(|e| Error::BadConfig {
                digest: digest.clone(),
                reason: e.to_string(),
            })?;
        if let Some(want) = &opts.platform {
            check_platform(&self.reference, &config, want)?;
        }
        let diff_ids = diff_ids(&config, &digest, manifest.layers.len())?;
        Ok(PulledConfig {
            digest,
            data,
            diff_ids,
        })
    }

    /// Makes every layer present, `max_concurrent` downloads at a time.
    async fn layers(
        &self,
        manifest: &Manifest,
        diff_ids: &[String],
        max_concurrent: usize,
    ) -> Result<(), Error> {
        // A layer listed twice is fetched once. The jobs are collected into
        // a Vec first: iterator closures held across an await would make
        // this future !Send (rustc's higher-ranked lifetime limitation).
        let mut unique: Vec<(manifest::Descriptor, String)> = Vec::new();
        for (desc, diff_id) in manifest.layers.iter().zip(diff_ids) {
            if !unique
                .iter()
                .any(|(d, id)| d.digest == desc.digest && id == diff_id)
            {
                unique.push((desc.clone(), diff_id.clone()));
            }
        }
        let mut jobs = Vec::with_capacity(unique.len());
        for (desc, diff_id) in &unique {
            jobs.push(self.layer(desc, diff_id));
        }
        let mut stream = futures_util::stream::iter(jobs).buffer_unordered(max_concurrent.max(1));
        while let Some(result) = stream.next().await {
            result?;
        }
        Ok(())
    }
}

/// An explicitly asked platform must be the config's.
fn check_platform(
    r: &Reference,
    config: &oci_spec::image::ImageConfiguration,
    want: &Platform,
) -> Result<(), Error> {
    let os = config.os().to_string();
    let arch = config.architecture().to_string();
    if !want.matches(&os, &arch, config.variant().as_deref()) {
        return Err(Error::PlatformMismatch {
            reference: r.familiar(),
            found: format!("{os}/{arch}"),
            wanted: want.to_string(),
        });
    }
    Ok(())
}

/// The config's diff ids: one sha256 digest per layer of the manifest.
fn diff_ids(
    config: &oci_spec::image::ImageConfiguration,
    config_digest: &str,
    layers: usize,
) -> Result<Vec<String>, Error> {
    let diff_ids: Vec<String> = config.rootfs().diff_ids().to_vec();
    if diff_ids.len() != layers {
        return Err(Error::BadConfig {
            digest: config_digest.to_owned(),
            reason: format!("{} diff ids for {} layers", diff_ids.len(), layers),
        });
    }
    if let Some(bad_id) = diff_ids
        .iter()
        .find(|d| !crate::reference::is_sha256_digest(d))
    {
        return Err(Error::BadConfig {
            digest: config_digest.to_owned(),
            reason: format!("bad diff id {bad_id:?}"),
        });
    }
    Ok(diff_ids)
}

impl Store {
    /// Pulls `reference` (unless all of it is present) and returns it,
    /// from the first of its locations that serves it (see
    /// [`crate::registries`]).
    pub async fn pull(
        &self,
        reference: &str,
        opts: &PullOptions,
        progress: &dyn PullProgress,
    ) -> Result<LocalImage, Error> {
        let r = Reference::parse(reference)?;
        let config = self.registry_config()?;
        let endpoints = config.endpoints(&r, reference)?;
        let opts = &PullOptions {
            max_concurrent_downloads: opts
                .max_concurrent_downloads
                .or(self.max_concurrent_downloads())
                .or(config.daemon.max_concurrent_downloads),
            ..opts.clone()
        };
        let mut tried = Vec::new();
        for (i, endpoint) in endpoints.iter().enumerate() {
            match self.pull_from(&r, endpoint, opts, progress).await {
                Ok(image) => return Ok(image),
                Err(e) if endpoints.len() == 1 || !is_location_failure(&e) => return Err(e),
                Err(e) => {
                    let e = rstack_sys::chain::chain(&e);
                    if i + 1 < endpoints.len() {
                        tracing::warn!(
                            "cannot pull {} from {}: {e}; trying the next location",
                            r.familiar(),
                            endpoint.describe()
                        );
                    }
                    tried.push(format!("\n  {}: {e}", endpoint.describe()));
                }
            }
        }
        Err(Error::AllLocationsFailed {
            reference: r.familiar(),
            tried: tried.concat(),
        })
    }

    /// One pull of `r` from one location.
    async fn pull_from(
        &self,
        r: &Reference,
        endpoint: &Endpoint,
        opts: &PullOptions,
        progress: &dyn PullProgress,
    ) -> Result<LocalImage, Error> {
        let ctx = Ctx::connect(self, r, endpoint, progress).await?;
        let resolved = ctx.resolve(opts).await?;
        let layers: Vec<(String, u64)> = resolved
            .manifest
            .layers
            .iter()
            .map(|l| (short_id(&l.digest), l.size))
            .collect();
        progress.resolved(r, &resolved.top_digest, &layers);
        let config = ctx.config(&resolved.manifest, opts).await?;

        let lock_store = self.clone();
        let _store_lock = tokio::task::spawn_blocking(move || lock_store.store_lock(false))
            .await
            .map_err(Error::Join)??;
        self.clean_tmp();
        ctx.layers(
            &resolved.manifest,
            &config.diff_ids,
            opts.max_concurrent_downloads
                .unwrap_or(DEFAULT_CONCURRENT_DOWNLOADS),
        )
        .await?;
        self.record_pulled(r.clone(), resolved, config)
    }

    /// Stores the config and manifest of a pulled image and records it in
    /// the index (its layers being present).
    fn record_pulled(
        &self,
        r: Reference,
        resolved: Resolved,
        config: PulledConfig,
    ) -> Result<LocalImage, Error> {
        let repo_tags = match (r.tag(), r.digest()) {
            (Some(_), None) => vec![r.to_string()],
            _ => vec![],
        };
        self.add_image(NewImage {
            config_digest: &config.digest,
            config: &config.data,
            manifest_digest: &resolved.digest,
            manifest: &resolved.body,
            repo_tags,
            repo_digests: vec![format!("{}@{}", r.name(), resolved.top_digest)],
            diff_ids: config.diff_ids,
        })?;
        // The index's record: the image may have been there with more names.
        let index = self.read_index()?;
        let record = index
            .images
            .get(&config.digest)
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
