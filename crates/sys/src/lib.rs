//! Small system helpers every rstack crate shares, written once: crash-safe
//! file replacement, `flock` guards, random ids, `/proc/<pid>/stat`, Go
//! durations and Docker byte sizes, error-chain text, and path resolution
//! confined to a root with `openat2(RESOLVE_IN_ROOT)`, and work done on a thread
//! inside another network namespace, and a long-lived process's memory after
//! its start.
//!
//! A leaf crate: it depends on no other rstack crate, so `images`,
//! `runtime`, `netns` and `compose` can all use it without knowing about
//! each other. Each module has its own error enum whose messages carry the
//! context (the path, the pid), so callers wrap them `#[error(transparent)]`.

pub mod chain;
pub mod duration;
pub mod fs;
pub mod in_root;
pub mod lock;
pub mod mem;
pub mod netns;
pub mod proc;
pub mod random;
pub mod units;
