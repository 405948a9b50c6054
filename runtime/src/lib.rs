//! rstack-runtime: one container's life.
//!
//! OCI runtime spec generation, the overlay rootfs, namespaces, cgroups,
//! capabilities, seccomp, start/stop/kill/exec and exit status. Knows
//! nothing of Compose.
