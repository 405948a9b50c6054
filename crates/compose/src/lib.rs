//! rstack-compose: the Compose file model.
//!
//! Loading, merging, interpolation, profiles, validation and the canonical
//! `config` output. Pure logic: no root, no I/O beyond reading files.

pub mod dotenv;
pub mod interpolate;
pub mod merge;
pub mod short;
pub mod yaml;
