//! The error of the store's public operations (pull, lookup, remove, save,
//! load). Messages follow Docker's wording where users grep for it
//! ("manifest unknown", "unauthorized", "No such image").

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] crate::reference::Error),
    #[error(transparent)]
    Fs(#[from] crate::fsutil::Error),
    #[error(transparent)]
    Auth(#[from] crate::auth::Error),
    #[error(transparent)]
    Platform(#[from] crate::platform::Error),
    #[error(transparent)]
    Registries(Box<crate::registries::Error>),
    #[error("store directory {path} is not writable")]
    NotWritable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image index {path} is corrupt")]
    CorruptIndex {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("manifest unknown: {reference} not found in registry {registry}")]
    ManifestUnknown { reference: String, registry: String },
    #[error(
        "unauthorized: authentication required to pull {reference}; use `rstack login {registry}`"
    )]
    Unauthorized { reference: String, registry: String },
    #[error("cannot reach registry {registry} for {reference}")]
    Registry {
        reference: String,
        registry: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("blob {digest} is truncated: got {got} of {expected} bytes")]
    Truncated {
        digest: String,
        expected: u64,
        got: u64,
    },
    #[error("blob {digest} is larger than announced: more than {expected} bytes")]
    Oversized { digest: String, expected: u64 },
    #[error("download of blob {digest} failed")]
    Download {
        digest: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "no matching manifest for {platform} in the manifest list of {reference} (available: {available})"
    )]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error(
        "image {reference} was found but its platform ({found}) does not match the specified platform ({wanted})"
    )]
    PlatformMismatch {
        reference: String,
        found: String,
        wanted: String,
    },
    #[error("manifest {digest} of {reference}: {reason}")]
    BadManifest {
        reference: String,
        digest: String,
        reason: String,
    },
    #[error("image config {digest}: {reason}")]
    BadConfig { digest: String, reason: String },
    #[error("layer {digest}")]
    Unpack {
        digest: String,
        #[source]
        source: crate::unpack::Error,
    },
    #[error("refusing to create a tag with a digest reference: {reference}")]
    TagWithDigest { reference: String },
    #[error("No such image: {reference}")]
    ImageNotFound { reference: String },
    #[error(
        "conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories"
    )]
    MultipleTags { id: String },
    #[error("archive {path}: {reason}")]
    Archive { path: PathBuf, reason: String },
    #[error("cannot pull {reference} from any of its locations:{tried}")]
    AllLocationsFailed {
        reference: String,
        /// `\n  location: error chain` for each.
        tried: String,
    },
    #[error("background task failed")]
    Join(#[source] tokio::task::JoinError),
}

impl From<crate::registries::Error> for Error {
    fn from(e: crate::registries::Error) -> Error {
        Error::Registries(Box::new(e))
    }
}
