//! End-to-end test support: a local registry, fixture images, the binary.
