//! The embedded DNS resolver (a library the stack supervisor hosts).
//!
//! Each container's resolv.conf says `nameserver 127.0.0.11`. For each
//! container the resolver binds a UDP and a TCP socket on 127.0.0.11:53
//! *inside that container's network namespace* (a thread enters the
//! namespace, binds, and hands the fds back to the caller's tokio runtime;
//! a socket stays in the namespace it was created in). So the socket itself
//! tells who is asking, with no source-address tricks, and the answer is
//! that container's view (see `backend`). Records come live from the
//! network state files (see `records`); other names are forwarded (see
//! `upstream`).

pub mod backend;
pub mod records;
pub mod server;
pub mod upstream;

pub use server::{Resolver, ServeHandle};
pub use upstream::Upstreams;
