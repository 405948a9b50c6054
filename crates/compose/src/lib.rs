//! rstack-compose: the Compose file model.
//!
//! Loading, merging, interpolation, profiles, validation and the canonical
//! `config` output. Pure logic: no root, no I/O beyond reading files.

pub mod canonical;
pub mod dotenv;
pub mod interpolate;
pub mod loader;
pub mod merge;
pub mod model;
pub mod paths;
pub mod plan;
pub mod project;
pub mod render;
pub mod short;
pub mod suggest;
pub mod units;
pub mod validate;
pub mod yaml;

pub use loader::{Options, load};
pub use plan::Plan;
pub use project::Project;
