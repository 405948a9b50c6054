//! `image push`: uploads a stored image (its layer blobs, config and
//! manifest, byte for byte as stored, so the digest does not change) to a
//! registry with oci-client. Blobs the registry already has are skipped.
//! Loopback and configured insecure registries are reached over plain
//! HTTP, like pulls.

use oci_client::errors::OciDistributionError;
use oci_client::{Client, RegistryOperation};

use crate::error::Error;
use crate::pull::short_id;
use crate::reference::Reference;
use crate::store::Store;

/// What happens to one blob during a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushEvent {
    /// Already in the registry.
    AlreadyExists,
    Pushing {
        size: u64,
    },
    Pushed,
}

/// Callbacks for push progress; ids are 12 hex digits of the blob digest.
pub trait PushProgress: Send + Sync {
    fn blob(&self, _id: &str, _event: PushEvent) {}
}

/// A finished push.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The familiar name pushed, e.g. `localhost:5000/app:1`.
    pub reference: String,
    /// Digest of the manifest in the registry.
    pub digest: String,
    /// Size of the manifest in bytes (docker prints it).
    pub size: usize,
}

/// A client for one push: the registry connection and what errors name.
struct Pusher<'a> {
    store: &'a Store,
    client: Client,
    reference: Reference,
    oref: oci_client::Reference,
    progress: &'a dyn PushProgress,
}

/// The stored manifest of the image pushed.
struct StoredManifest {
    digest: String,
    bytes: Vec<u8>,
    media_type: String,
    /// Layer blobs then the config: `(digest, size)`.
    blobs: Vec<(String, u64)>,
}

impl<'a> Pusher<'a> {
    /// A client for the registry of `r`, authenticated for pushing.
    async fn connect(
        store: &'a Store,
        r: &Reference,
        progress: &'a dyn PushProgress,
    ) -> Result<Pusher<'a>, Error> {
        let insecure = store.registry_config()?.is_insecure(r.registry());
        crate::tls::init();
        let pusher = Pusher {
            store,
            client: Client::new(crate::pull::client_config(r, insecure, None)),
            reference: r.clone(),
            oref: r.to_oci(),
            progress,
        };
        let auth = crate::pull::registry_auth(r.registry())?;
        pusher
            .client
            .auth(&pusher.oref, &auth, RegistryOperation::Push)
            .await
            .map_err(|e| pusher.reg_err(e))?;
        Ok(pusher)
    }

    fn reg_err(&self, source: OciDistributionError) -> Error {
        Error::Registry {
            reference: self.reference.familiar(),
            registry: self.reference.registry().to_owned(),
            source,
        }
    }

    fn bad_manifest(&self, manifest: &StoredManifest, reason: String) -> Error {
        Error::BadManifest {
            reference: self.reference.familiar(),
            digest: manifest.digest.clone(),
            reason,
        }
    }

    /// Reads the stored manifest `digest` and the blobs it names.
    fn manifest(&self, digest: &str) -> Result<StoredManifest, Error> {
        let bytes = self.store.read_blob(digest)?;
        let parsed: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::BadManifest {
                reference: self.reference.familiar(),
                digest: digest.to_owned(),
                reason: e.to_string(),
            })?;
        let media_type = parsed
            .get("mediaType")
            .and_then(|m| m.as_str())
            .unwrap_or("application/vnd.oci.image.manifest.v1+json")
            .to_owned();
        let mut blobs: Vec<(String, u64)> = Vec::new();
        for d in parsed["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain([&parsed["config"]])
        {
            if let Some(digest) = d.get("digest").and_then(|x| x.as_str()) {
                blobs.push((
                    digest.to_owned(),
                    d.get("size").and_then(|s| s.as_u64()).unwrap_or(0),
                ));
            }
        }
        Ok(StoredManifest {
            digest: digest.to_owned(),
            bytes,
            media_type,
            blobs,
        })
    }

    /// Uploads one stored blob unless the registry has it.
    async fn blob(&self, digest: &str, size: u64) -> Result<(), Error> {
        let id = short_id(digest);
        if self
            .client
            .blob_exists(&self.oref, digest)
            .await
            .map_err(|e| self.reg_err(e))?
        {
            self.progress.blob(&id, PushEvent::AlreadyExists);
            return Ok(());
        }
        self.progress.blob(&id, PushEvent::Pushing { size });
        let path = self.store.blob_path(digest);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
        self.client
            .push_blob_stream(&self.oref, file_chunks(file), digest, Some(size))
            .await
            .map_err(|e| self.reg_err(e))?;
        self.progress.blob(&id, PushEvent::Pushed);
        Ok(())
    }

    /// Uploads the manifest byte for byte, with its own media type.
    async fn push_manifest(&self, manifest: &StoredManifest) -> Result<(), Error> {
        let media_type = &manifest.media_type;
        let content_type = media_type.parse().map_err(|_| {
            self.bad_manifest(
                manifest,
                format!("media type {media_type:?} is not a valid header value"),
            )
        })?;
        self.client
            .push_manifest_raw(&self.oref, manifest.bytes.clone(), content_type)
            .await
            .map_err(|e| self.reg_err(e))?;
        Ok(())
    }
}

/// A file as a stream of 4 MiB chunks: layers are not read into memory.
fn file_chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = oci_client::errors::Result<bytes::Bytes>> {
    futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 4 << 20];
        let mut filled = 0;
        while filled < buf.len() {
            match f.read(&mut buf[filled..]).await {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Some((Err(e.into()), f)),
            }
        }
        if filled == 0 {
            return None;
        }
        buf.truncate(filled);
        Some((Ok(bytes::Bytes::from(buf)), f))
    })
}

impl Store {
    /// Pushes the local image `reference` (a tag in the store) to the
    /// registry its name points at.
    pub async fn push(
        &self,
        reference: &str,
        progress: &dyn PushProgress,
    ) -> Result<Pushed, Error> {
        let r = Reference::parse(reference)?;
        let image = self
            .lookup(reference)?
            .ok_or_else(|| Error::ImageNotFound {
                reference: reference.to_owned(),
            })?;
        let pusher = Pusher::connect(self, &r, progress).await?;
        let manifest = pusher.manifest(&image.record.manifest_digest)?;
        for (digest, size) in &manifest.blobs {
            pusher.blob(digest, *size).await?;
        }
        pusher.push_manifest(&manifest).await?;
        Ok(Pushed {
            reference: r.familiar(),
            digest: manifest.digest,
            size: manifest.bytes.len(),
        })
    }
}
