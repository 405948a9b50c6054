//! rstack-stack: a Compose project brought to life.
//!
//! The daemonless supervisor ([`supervisor`]), healthchecks ([`health`]),
//! restart policies ([`restart`]), logs ([`logs`]) and the on-disk state
//! every other command reads ([`state`]).

pub mod health;
pub mod logs;
pub mod mapping;
pub mod process;
pub mod restart;
pub mod state;
