//! rstack-images: the image store.
//!
//! References (Docker Hub name rules), registry pulls, the content-addressed
//! blob store, and layers unpacked into overlayfs-ready directories.
