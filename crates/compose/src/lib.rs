//! rstack-compose: the Compose file model.
//!
//! Loading, merging, interpolation, profiles, validation and the canonical
//! `config` output. Pure logic: no root, no I/O beyond reading files.
//!
//! The entry point is [`load`]: give it [`Options`] (the `-f/-p/--profile/
//! --env-file/--project-directory` flags, the current directory and the
//! process environment, passed in explicitly) and get a [`Project`]: typed
//! services ([`model::Service`], long syntax only, absolute paths, environment
//! resolved), networks, volumes, secrets and configs, and [`Project::plan`]
//! for the start layers and stop order.
//!
//! ```no_run
//! let env = std::env::vars().collect();
//! let opts = rstack_compose::Options::new(std::env::current_dir().unwrap(), env);
//! let project = rstack_compose::load(&opts).expect("a valid project");
//! let plan = project.plan().expect("no cycle");
//! for layer in &plan.start_layers {
//!     println!("start together: {layer:?}");
//! }
//! ```
//!
//! The stages, each in its own module: [`yaml`] (tree with positions, anchors,
//! `!reset`/`!override`), [`interpolate`] and [`dotenv`], [`merge`],
//! [`validate`] (schema and semantic checks), [`canonical`] (short to long
//! syntax), [`paths`], [`loader`] (the pipeline), [`model`], [`plan`],
//! [`render`] (`rstack config` output).

pub mod canonical;
mod deploy;
pub mod dotenv;
mod environment;
mod extends;
pub mod interpolate;
pub mod loader;
mod locate;
pub mod merge;
pub mod model;
mod normalize;
pub mod paths;
pub mod plan;
pub mod project;
pub mod render;
mod resources;
mod schema;
mod semantic;
pub mod short;
pub mod suggest;
pub mod units;
pub mod validate;
pub mod yaml;

pub use loader::{Options, load, load_tree};
pub use plan::Plan;
pub use project::Project;
