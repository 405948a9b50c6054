//! One layer of a pull: made present in the store once, whoever pulls it.
//!
//! The layer lock (`Store::layer_lock_path`) makes a second puller of the
//! same layer wait for the first and then find it present. The blob is
//! streamed from the registry into a bounded channel that the blocking
//! [`layer::import`] reads (hash + decompress + untar into a staging dir),
//! so download and unpacking overlap; the import verifies the blob digest
//! and the diff id, then [`layer::commit`] renames the staged layer into
//! place. Network failures are retried from scratch, bad content is not.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::client::SizedStream;
use oci_client::errors::OciDistributionError;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};

use super::{Ctx, LayerEvent, is_digest_error, short_id};
use crate::error::Error;
use crate::layer::{self, LayerSpec};
use crate::manifest;
use crate::store::Store;

/// Tries per layer download.
const DOWNLOAD_ATTEMPTS: u64 = 3;

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

    /// [`Ctx::fetch`], again after a network failure (from scratch: the
    /// import verifies whole blobs); bad content is not retried.
    async fn fetch_with_retries(
        &self,
        desc: &manifest::Descriptor,
        diff_id: &str,
        id: &str,
    ) -> Result<layer::Staged, Error> {
        let mut attempt = 1;
        loop {
            match self.fetch(desc, diff_id, id).await {
                Err(e) if attempt < DOWNLOAD_ATTEMPTS && is_transient(&e) => {
                    tracing::warn!(layer = %id, attempt, error = %e, "layer download failed; retrying");
                    tokio::time::sleep(Duration::from_secs(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Downloads and imports one layer blob into a staging dir.
    async fn fetch(
        &self,
        desc: &manifest::Descriptor,
        diff_id: &str,
        id: &str,
    ) -> Result<layer::Staged, Error> {
        let stream = self.blob_stream(desc).await?;
        let total = desc.size;
        self.progress
            .layer(id, LayerEvent::Downloading { done: 0, total });
        let import = Import::spawn(self.store, desc, diff_id);
        let downloaded = self.forward(stream, import.tx, desc, id).await;
        let result = self
            .wait_import(import.task, &import.consumed, id, total)
            .await
            .map_err(Error::Join)?;
        downloaded.check(desc)?;
        // The import checked both digests (blob and diff id).
        result
    }

    /// Sends the blob's chunks to the import, reporting progress; the
    /// channel is closed on return.
    async fn forward(
        &self,
        mut stream: SizedStream,
        tx: mpsc::Sender<Bytes>,
        desc: &manifest::Descriptor,
        id: &str,
    ) -> Downloaded {
        let total = desc.size;
        let mut downloaded = Downloaded {
            bytes: 0,
            error: None,
        };
        let mut receiver_alive = true;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    downloaded.bytes += bytes.len() as u64;
                    if downloaded.bytes > total {
                        downloaded.error = Some(Error::Oversized {
                            digest: desc.digest.clone(),
                            expected: total,
                        });
                        break;
                    }
                    self.progress.layer(
                        id,
                        LayerEvent::Downloading {
                            done: downloaded.bytes,
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
                    if downloaded.error.is_none() && downloaded.bytes < total {
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

/// The blocking import of one layer, fed through a channel.
struct Import {
    tx: mpsc::Sender<Bytes>,
    /// Compressed bytes the import has read so far.
    consumed: Arc<AtomicU64>,
    task: JoinHandle<Result<layer::Staged, Error>>,
}

impl Import {
    fn spawn(store: &Store, desc: &manifest::Descriptor, diff_id: &str) -> Import {
        let (tx, rx) = mpsc::channel::<Bytes>(64);
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
            let reader = ChannelReader {
                rx,
                cur: Bytes::new(),
            };
            layer::import(&task_store, &spec, reader, &move |n| {
                task_consumed.store(n, Ordering::Relaxed)
            })
        });
        Import { tx, consumed, task }
    }
}

/// How a blob's download ended.
struct Downloaded {
    bytes: u64,
    /// A download failure, or the blob being larger than its descriptor.
    error: Option<Error>,
}

impl Downloaded {
    /// A short blob is truncated (or failed); a long one is oversized.
    fn check(self, desc: &manifest::Descriptor) -> Result<(), Error> {
        if self.bytes < desc.size {
            return Err(self.error.unwrap_or(Error::Truncated {
                digest: desc.digest.clone(),
                expected: desc.size,
                got: self.bytes,
            }));
        }
        if let Some(e @ Error::Oversized { .. }) = self.error {
            return Err(e);
        }
        Ok(())
    }
}

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

/// Feeds the blocking import from the download's channel.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
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
