//! Why a spec cannot be built: the one error of the spec modules.

use crate::seccomp::SeccompError;

/// A spec that cannot be built from these inputs.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(
        "no command specified: the image has no ENTRYPOINT or CMD, give a command after the image"
    )]
    NoCommand,
    #[error("the working directory '{dir}' is invalid: it must be an absolute path")]
    Workdir { dir: String },
    #[error("invalid environment variable '{entry}'")]
    Env { entry: String },
    #[error(
        "the command line and environment are {size} bytes: more than the {limit} bytes \
         execve(2) accepts (the image's Env or -e has too many or too long variables{})",
        largest.as_deref().map(|k| format!("; the longest is {k}")).unwrap_or_default()
    )]
    ArgsTooLarge {
        size: usize,
        limit: usize,
        largest: Option<String>,
    },
    #[error("invalid hostname '{hostname}'")]
    Hostname { hostname: String },
    #[error("invalid mount target '{target}': must be absolute and not '/'")]
    MountTarget { target: String },
    #[error("--memory-swap needs --memory too")]
    SwapWithoutMemory,
    #[error("--memory-swap ({swap} bytes) must be at least --memory ({memory} bytes), or -1")]
    MemorySwap { memory: i64, swap: i64 },
    #[error("--memory-reservation ({reservation}) must be smaller than --memory ({memory})")]
    MemoryReservation { reservation: i64, memory: i64 },
    #[error(
        "cannot raise {resource} above the caller's hard limit ({current}): rstack lacks CAP_SYS_RESOURCE here"
    )]
    Ulimit {
        resource: &'static str,
        current: u64,
    },
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error("generated spec is invalid")]
    Invalid(#[source] serde_json::Error),
}
