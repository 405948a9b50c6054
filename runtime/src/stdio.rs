//! The standard streams handed to a container's (or exec'd) process.

use std::os::fd::OwnedFd;

/// Standard streams for the container's process; `None` inherits the caller's.
#[derive(Debug, Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}
