//! One layer of a pull: made present in the store once, whoever pulls it.
//!
//! The layer lock (`Store::layer_lock_path`) makes a second puller of the
//! same layer wait for the first and then find it present. The blob is
//! written to its partial file in the store's tmp area as it arrives
//! ([`partial`](super::partial)), and the blocking [`layer::import`] reads
//! that file from its first byte as it grows (hash + decompress + untar
//! into a staging dir), so download and unpacking overlap; the import
//! verifies the blob digest and the diff id, then [`layer::commit`]
//! renames the staged layer into place.
//!
//! A failed download (connection reset or cut, timeout, 5xx) is retried
//! with exponential backoff, asking only for the missing bytes (HTTP
//! `Range`); so does the next pull after a killed one, or after one that
//! gave up (the partial blob stays until `image prune`). The attempts are
//! counted from the last one that got the blob further, so a flaky link
//! that keeps delivering gets there. Bad content is not retried, except once
//! from scratch when the blob was resumed (the earlier bytes may be what
//! was wrong).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{BlobResponse, SizedStream};
use oci_client::errors::OciDistributionError;
use tokio::task::{JoinError, JoinHandle};

use super::partial::{Follower, Partial};
use super::{Ctx, LayerEvent, is_digest_error, short_id};
use crate::error::Error;
use crate::layer::{self, BlobSink, LayerSpec};
use crate::manifest;
use crate::store::Store;

/// Download attempts of one layer in a row that got the blob no further
/// (waits of 1 + 2 + 4 s between them).
const MAX_FAILURES: u32 = 4;
/// Download attempts of one layer in all.
const MAX_ATTEMPTS: u32 = 50;
/// The first wait before a retry; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(16);

/// The wait before retry number `failures` (1-based) of a run of attempts
/// without progress.
pub(super) fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(8);
    (FIRST_BACKOFF * factor).min(MAX_BACKOFF)
}

/// How one download attempt of a layer went.
struct Attempt {
    result: Result<layer::Staged, Error>,
    /// Bytes that were already there (the attempt resumed from there).
    resumed: u64,
    /// Bytes this attempt received.
    received: u64,
}

impl Attempt {
    fn failed(e: Error) -> Attempt {
        Attempt {
            result: Err(e),
            resumed: 0,
            received: 0,
        }
    }
}

impl Ctx<'_> {
    /// Makes one layer present in the store.
    pub(super) async fn layer(
        &self,
        desc: &manifest::Descriptor,
        diff_id: &str,
    ) -> Result<(), Error> {
        let id = short_id(&desc.digest);
        let store = self.store;
        if self.already_present(desc, diff_id, &id)? {
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
        if self.already_present(desc, diff_id, &id)? {
            return Ok(());
        }
        let staged = self.fetch_with_retries(desc, diff_id, &id).await?;
        let commit_store = store.clone();
        tokio::task::spawn_blocking(move || layer::commit(&commit_store, vec![staged]))
            .await
            .map_err(Error::Join)??;
        drop(lock);
        self.progress.layer(&id, LayerEvent::Complete);
        Ok(())
    }

    /// Whether the layer is in the store (its short link then made sure of).
    fn already_present(
        &self,
        desc: &manifest::Descriptor,
        diff_id: &str,
        id: &str,
    ) -> Result<bool, Error> {
        if !self.store.has_layer(diff_id, &desc.digest) {
            return Ok(false);
        }
        layer::ensure_link(self.store, diff_id)?;
        self.progress.layer(id, LayerEvent::AlreadyExists);
        Ok(true)
    }

    /// [`Ctx::fetch`] until it succeeds, fails for good, or has failed
    /// too often (see the module docs).
    async fn fetch_with_retries(
        &self,
        desc: &manifest::Descriptor,
        diff_id: &str,
        id: &str,
    ) -> Result<layer::Staged, Error> {
        let (mut attempts, mut failures, mut restarted) = (0, 0, false);
        // The furthest the partial blob got: an attempt that gets further
        // is progress, one that starts over and stops as early is not.
        let mut furthest = 0;
        loop {
            attempts += 1;
            let attempt = self.fetch(desc, diff_id, id).await;
            let e = match attempt.result {
                Ok(staged) => return Ok(staged),
                Err(e) => e,
            };
            if attempt.resumed > 0 && is_content_error(&e) && !restarted {
                tracing::warn!(layer = %id, error = %e, "resumed layer blob failed verification; downloading it again");
                restarted = true;
                continue;
            }
            let reached = attempt.resumed + attempt.received;
            failures = if reached > furthest { 1 } else { failures + 1 };
            furthest = furthest.max(reached);
            if !is_transient(&e) || failures > MAX_FAILURES || attempts >= MAX_ATTEMPTS {
                return Err(e);
            }
            let wait = backoff(failures);
            tracing::warn!(
                layer = %id,
                attempt = attempts,
                have = attempt.resumed + attempt.received,
                total = desc.size,
                "layer download failed: {}; resuming in {wait:?}",
                rstack_sys::chain::chain(&e)
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// One download attempt: from where the partial blob ends, into it,
    /// with the import following it.
    async fn fetch(&self, desc: &manifest::Descriptor, diff_id: &str, id: &str) -> Attempt {
        let mut partial = match Partial::open(self.store, &desc.digest, desc.size) {
            Ok(p) => p,
            Err(e) => return Attempt::failed(e),
        };
        let total = desc.size;
        let have = partial.len();
        // A complete partial blob (the pull died while unpacking) needs
        // no request; a missing rest is asked for with `Range`.
        let stream = if have == total {
            None
        } else {
            match self.blob_stream_from(desc, have).await {
                Ok(s) => Some(s),
                Err(e) => return Attempt::failed(e),
            }
        };
        let resumed = match &stream {
            Some((_, 0)) if have > 0 => match partial.restart() {
                Ok(()) => 0,
                Err(e) => return Attempt::failed(e),
            },
            Some((_, from)) => *from,
            None => have,
        };
        if resumed > 0 {
            self.progress.layer(
                id,
                LayerEvent::Resuming {
                    from: resumed,
                    total,
                },
            );
        }
        self.progress.layer(
            id,
            LayerEvent::Downloading {
                done: resumed,
                total,
            },
        );
        let import = match partial.follower() {
            Ok(f) => Import::spawn(self.store, desc, diff_id, f, partial.path().to_owned()),
            Err(e) => return Attempt::failed(e),
        };
        let downloaded = match stream {
            Some((stream, _)) => self.forward(stream, &mut partial, desc, id).await,
            None => Downloaded::default(),
        };
        partial.finish();
        let result = match self
            .wait_import(import.task, &import.consumed, id, total)
            .await
        {
            Ok(r) => r,
            Err(e) => Err(Error::Join(e)),
        };
        let received = downloaded.bytes;
        // The import checked both digests (blob and diff id).
        let result = downloaded.check(desc, resumed).and(result);
        if result.as_ref().is_err_and(is_content_error) {
            partial.remove();
        }
        Attempt {
            result,
            resumed,
            received,
        }
    }

    /// The blob from byte `offset` on, and the offset the registry really
    /// answered from (0 when it sent the whole blob).
    async fn blob_stream_from(
        &self,
        desc: &manifest::Descriptor,
        offset: u64,
    ) -> Result<(SizedStream, u64), Error> {
        if offset == 0 {
            return Ok((self.blob_stream(desc).await?, 0));
        }
        let oci_desc = oci_client::manifest::OciDescriptor {
            digest: desc.digest.clone(),
            size: desc.size as i64,
            media_type: desc.media_type.clone(),
            ..Default::default()
        };
        match self
            .client
            .pull_blob_stream_partial(&self.oref, &oci_desc, offset, None)
            .await
            .map_err(|e| self.map_err(e))?
        {
            BlobResponse::Full(stream) => Ok((stream, 0)),
            BlobResponse::Partial(stream) => Ok((stream, offset)),
        }
    }

    /// Appends the blob's chunks to the partial file, reporting progress.
    async fn forward(
        &self,
        mut stream: SizedStream,
        partial: &mut Partial,
        desc: &manifest::Descriptor,
        id: &str,
    ) -> Downloaded {
        let total = desc.size;
        let mut downloaded = Downloaded::default();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    if partial.len() + bytes.len() as u64 > total {
                        downloaded.error = Some(Error::Oversized {
                            digest: desc.digest.clone(),
                            expected: total,
                        });
                        break;
                    }
                    if let Err(source) = partial.append(&bytes) {
                        downloaded.error = Some(Error::Write {
                            path: partial.path().to_owned(),
                            source,
                        });
                        break;
                    }
                    downloaded.bytes += bytes.len() as u64;
                    self.progress.layer(
                        id,
                        LayerEvent::Downloading {
                            done: partial.len(),
                            total,
                        },
                    );
                }
                // The end-of-stream digest check of oci-client: the import's
                // own check says more (truncated or mismatch).
                Err(source) if is_digest_error(&source) => break,
                Err(source) => {
                    if partial.len() < total {
                        downloaded.error = Some(Error::Download {
                            digest: desc.digest.clone(),
                            source,
                        });
                    }
                    break;
                }
            }
        }
        downloaded
    }

    /// Waits for the import, reporting how far unpacking got meanwhile.
    async fn wait_import(
        &self,
        mut task: JoinHandle<Result<layer::Staged, Error>>,
        consumed: &AtomicU64,
        id: &str,
        total: u64,
    ) -> Result<Result<layer::Staged, Error>, JoinError> {
        loop {
            tokio::select! {
                r = &mut task => return r,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    let done = consumed.load(Ordering::Relaxed);
                    self.progress.layer(id, LayerEvent::Extracting { done, total });
                }
            }
        }
    }
}

/// The blocking import of one layer, reading its growing partial blob.
struct Import {
    /// Compressed bytes the import has read so far.
    consumed: Arc<AtomicU64>,
    task: JoinHandle<Result<layer::Staged, Error>>,
}

impl Import {
    fn spawn(
        store: &Store,
        desc: &manifest::Descriptor,
        diff_id: &str,
        reader: Follower,
        blob: std::path::PathBuf,
    ) -> Import {
        let consumed = Arc::new(AtomicU64::new(0));
        let spec = LayerSpec {
            blob_digest: desc.digest.clone(),
            media_type: desc.media_type.clone(),
            blob_size: Some(desc.size),
            diff_id: diff_id.to_owned(),
        };
        let task_store = store.clone();
        let task_consumed = consumed.clone();
        let task = tokio::task::spawn_blocking(move || {
            let progress = move |n| task_consumed.store(n, Ordering::Relaxed);
            layer::import(
                &task_store,
                &spec,
                std::io::BufReader::with_capacity(1 << 20, reader),
                &progress,
                BlobSink::Kept(&blob),
            )
        });
        Import { consumed, task }
    }
}

/// How the download part of an attempt ended.
#[derive(Default)]
struct Downloaded {
    /// Bytes received in this attempt.
    bytes: u64,
    /// A download failure, or the blob being larger than its descriptor.
    error: Option<Error>,
}

impl Downloaded {
    /// A short blob is truncated (or failed); a long one is oversized.
    fn check(self, desc: &manifest::Descriptor, resumed: u64) -> Result<(), Error> {
        let have = resumed + self.bytes;
        if let Some(e @ (Error::Oversized { .. } | Error::Write { .. })) = self.error {
            return Err(e);
        }
        if have < desc.size {
            return Err(self.error.unwrap_or(Error::Truncated {
                digest: desc.digest.clone(),
                expected: desc.size,
                got: have,
            }));
        }
        Ok(())
    }
}

/// A failure the network may not repeat (connection reset or cut,
/// timeout, 5xx, 429).
fn is_transient(e: &Error) -> bool {
    match e {
        Error::Download { .. } => true,
        Error::Registry { source, .. } => matches!(
            source,
            OciDistributionError::RequestError(_)
                | OciDistributionError::IoError(_)
                | OciDistributionError::ServerError {
                    code: 429 | 500..=599,
                    ..
                }
        ),
        _ => false,
    }
}

/// The blob's bytes are wrong: its partial file is of no use.
fn is_content_error(e: &Error) -> bool {
    matches!(
        e,
        Error::DigestMismatch { .. } | Error::Oversized { .. } | Error::Unpack { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let waits: Vec<u64> = (1..=7).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 16, 16]);
    }

    #[test]
    fn short_downloads_are_retried_bad_content_is_not() {
        let desc = manifest::Descriptor {
            media_type: manifest::OCI_MANIFEST.into(),
            digest: "sha256:ab".into(),
            size: 10,
            platform: None,
            annotations: None,
        };
        let short = Downloaded {
            bytes: 4,
            error: None,
        };
        let e = short.check(&desc, 3).unwrap_err();
        assert!(matches!(e, Error::Truncated { got: 7, .. }), "{e}");
        // A response that ends cleanly but short is the registry's bug.
        assert!(!is_transient(&e) && !is_content_error(&e));
        let full = Downloaded {
            bytes: 6,
            error: None,
        };
        assert!(full.check(&desc, 4).is_ok());
        let mismatch = Error::DigestMismatch {
            what: "x".into(),
            expected: "a".into(),
            actual: "b".into(),
        };
        assert!(!is_transient(&mismatch) && is_content_error(&mismatch));
    }
}
