//! rstack-stack: a Compose project brought to life.
//!
//! The daemonless supervisor ([`supervisor`]), one container's set-up and
//! teardown ([`lifecycle`], on what [`prepare`] plans, cloned by the
//! [`creator`]), healthchecks ([`health`]), restart policies
//! ([`restart`]), logs ([`logs`]), the request socket ([`control`]) and
//! the on-disk state every other command reads ([`state`]) and what it
//! means now ([`status`]).

pub mod build;
pub mod cgroups;
pub mod control;
pub mod copy;
pub mod creator;
mod error_chain;
pub mod health;
pub mod io_error;
pub mod lifecycle;
pub mod logs;
pub(crate) mod mapping;
pub mod prepare;
pub mod process;
pub mod restart;
pub mod state;
pub mod status;
pub mod supervisor;
pub mod volume_driver;
pub(crate) mod volumes;
