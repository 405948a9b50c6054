//! rstack-stack: a Compose project brought to life.
//!
//! The plan (dependency graph), the daemonless supervisor, healthchecks,
//! restart policies, logs and on-disk state.
