//! rstack-images: the image store.
//!
//! References (Docker Hub name rules), registry pulls, the content-addressed
//! blob store, and layers unpacked into overlayfs-ready directories.
//! Entry point: [`Store`].

mod archive;
pub mod auth;
pub mod build_cache;
mod digest;
pub mod docker_config;
mod error;
pub mod fsutil;
mod layer;
pub mod manifest;
pub mod platform;
mod pull;
mod push;
pub mod reference;
mod regclient;
pub mod registries;
pub mod search;
mod store;
mod store_write;
mod tls;
pub mod unpack;
pub mod usage;

pub use archive::LoadedImage;
pub use digest::sha256_digest;
pub use error::Error;
pub use oci_spec;
pub use platform::Platform;
pub use pull::{LayerEvent, NoProgress, PullOptions, PullProgress};
pub use push::{PushEvent, PushProgress, Pushed};
pub use reference::Reference;
pub use registries::RegistryConfig;
pub use search::{SearchOptions, SearchResult};
pub use store::{ImageRecord, LocalImage, Removed, Store};
pub use store_write::LayerBlobInfo;
