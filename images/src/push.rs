//! `image push`: uploads a stored image (its layer blobs, config and
//! manifest, byte for byte as stored, so the digest does not change) to a
//! registry with oci-client. Blobs the registry already has are skipped.
//! Loopback and configured insecure registries are reached over plain
//! HTTP, like pulls.

use oci_client::secrets::RegistryAuth;
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
        let insecure = crate::pull::registry_is_insecure(self, r.registry());
        crate::tls::init();
        let client = Client::new(crate::pull::client_config(&r, insecure, None));
        let oref = r.to_oci();
        let reg_err = |source| Error::Registry {
            reference: r.familiar(),
            registry: r.registry().to_owned(),
            source,
        };
        let auth = match crate::auth::lookup(r.registry())? {
            Some(c) => RegistryAuth::Basic(c.username, c.password),
            None => RegistryAuth::Anonymous,
        };
        client
            .auth(&oref, &auth, RegistryOperation::Push)
            .await
            .map_err(reg_err)?;
        let manifest = self.read_blob(&image.record.manifest_digest)?;
        let parsed: serde_json::Value =
            serde_json::from_slice(&manifest).map_err(|e| Error::BadManifest {
                reference: r.familiar(),
                digest: image.record.manifest_digest.clone(),
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
        for (digest, size) in &blobs {
            let id = short_id(digest);
            if client.blob_exists(&oref, digest).await.map_err(reg_err)? {
                progress.blob(&id, PushEvent::AlreadyExists);
                continue;
            }
            progress.blob(&id, PushEvent::Pushing { size: *size });
            // Streamed in 4 MiB chunks: layers are not read into memory.
            let path = self.blob_path(digest);
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?;
            let chunks = futures_util::stream::unfold(file, |mut f| async move {
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
            });
            client
                .push_blob_stream(&oref, chunks, digest, Some(*size))
                .await
                .map_err(reg_err)?;
            progress.blob(&id, PushEvent::Pushed);
        }
        let content_type = media_type.parse().map_err(|_| Error::BadManifest {
            reference: r.familiar(),
            digest: image.record.manifest_digest.clone(),
            reason: format!("media type {media_type:?} is not a valid header value"),
        })?;
        client
            .push_manifest_raw(&oref, manifest.clone(), content_type)
            .await
            .map_err(reg_err)?;
        Ok(Pushed {
            reference: r.familiar(),
            digest: image.record.manifest_digest.clone(),
            size: manifest.len(),
        })
    }
}
