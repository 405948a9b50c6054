//! End-to-end test support: a local registry, fixture images, the binary.
//!
//! Every e2e test drives the real `rstack` binary the way a user would. This
//! crate gives those tests the pieces around it:
//!
//! - [`trial`] and [`Need`]: a libtest-mimic trial whose prerequisites
//!   (root, a command on `PATH`, the rstack binary, overlayfs) are checked
//!   when it runs; a missing one makes the trial *ignored* with the reason
//!   printed, never passed.
//! - [`Registry`]: the distro's `docker-registry` (distribution v2) on a free
//!   loopback port with its storage in a temp dir, optionally with basic auth,
//!   token auth ([`tokenauth`]) or as a pull-through cache of another one
//!   ([`Registry::start_mirror_of`]); stopped on drop. [`Registry::shared`]
//!   is one plain registry per test run.
//! - [`fixtures`]: images built here from distro files (busybox-static), as
//!   tar layers written in Rust, stored as an OCI layout and pushed with
//!   `skopeo` — never with rstack. [`Fixtures::shared`] builds and pushes them
//!   once per run.
//! - [`Rstack`]: a sandbox (temp `--root`, `--run-root`, `RSTACK_CONFIG`,
//!   `HOME`, `TMPDIR`) and helpers that run the binary and return its status
//!   and output, panicking with both streams when an expectation fails.
//! - [`leaks`]: mounts and leftover files a command must not leave behind.
//! - [`mountns`]: run code in a private mount namespace, e.g. to look at an
//!   overlayfs view of unpacked layers without touching the host.
//! - [`evil`]: a tiny malicious registry (wrong digests, truncated blobs).
//! - [`tokenauth`]: a token server (RS256 JWTs) for a registry with
//!   distribution's token auth.
//! - [`tcpproxy`]: a forwarder that counts and cuts what a registry
//!   serves, or carries it into a test's network namespace.
//!
//! A typical test:
//!
//! ```no_run
//! use rstack_e2e::{Fixtures, Need, Rstack, trial};
//!
//! fn tests() -> Vec<libtest_mimic::Trial> {
//!     vec![trial("pull_busybox", &[Need::Root, Need::Registry, Need::Rstack], || {
//!         let fixtures = Fixtures::shared();
//!         let rstack = Rstack::new();
//!         rstack.ok(&["pull", "-q", &fixtures.busybox_v2s2.reference()]);
//!         rstack.assert_no_leaks();
//!     })]
//! }
//! ```

pub mod evil;
pub mod fixtures;
pub mod layer;
pub mod leaks;
pub mod mountns;
pub mod oci;
mod process;
pub mod registry;
pub mod rstack;
mod skip;
pub mod tcpproxy;
pub mod tokenauth;
pub mod watchdog;

pub use fixtures::{Fixture, Fixtures};
pub use registry::Registry;
pub use rstack::{Rstack, RunOutput};
pub use skip::{Need, trial};

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// `sha256:<hex>` digest of `data`, as OCI descriptors write it.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// Releases what the process-wide shared resources hold (the shared
/// registry's process and storage). Call it once after
/// `libtest_mimic::run`, before exiting: statics are never dropped. If it is
/// not called, the registry still dies with the test process (it gets
/// `SIGKILL` when its parent exits) but its temp dir stays.
pub fn cleanup() {
    registry::stop_shared();
}
