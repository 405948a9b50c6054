//! What a caller asks of one container: `docker run` semantics as plain data.
//!
//! The CLI (and later the stack supervisor) fills a [`RunOptions`] from flags
//! or a Compose service; [`crate::parse`] turns Docker's flag strings into
//! these types so both callers share one set of rules.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// Everything `docker run` lets a user choose for one container.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--name`: a human name; unique among running containers of a run root.
    pub name: Option<String>,
    /// `--entrypoint`: `Some(vec![])` resets the image's ENTRYPOINT (`--entrypoint ""`).
    pub entrypoint: Option<Vec<String>>,
    /// The COMMAND and ARGs after the image; empty keeps the image's CMD.
    pub command: Vec<String>,
    /// `-e KEY=VALUE` (already resolved: `-e KEY` is looked up by the caller).
    pub env: Vec<String>,
    /// `-w`: working directory inside the container (absolute).
    pub workdir: Option<String>,
    /// `-u`: `name`, `uid`, `name:group`, `uid:gid`.
    pub user: Option<String>,
    /// `--group-add`: extra groups (names or numbers).
    pub group_add: Vec<String>,
    /// `--hostname`; default: the first 12 characters of the id.
    pub hostname: Option<String>,
    /// `--label`: merged over the image's labels.
    pub labels: BTreeMap<String, String>,
    /// `-t`: allocate a pseudo terminal.
    pub tty: bool,
    /// `-i`: keep stdin open.
    pub interactive: bool,
    /// `--privileged`: all capabilities, no seccomp, no masked paths, all devices.
    pub privileged: bool,
    /// `--cgroupns host` / compose `cgroup: host`: no cgroup namespace (the
    /// default, Docker's on cgroup v2, is a private one).
    pub cgroupns_host: bool,
    /// `--read-only`: the root filesystem is mounted read-only.
    pub read_only: bool,
    /// `--cap-add` (`ALL` allowed), names with or without `CAP_`.
    pub cap_add: Vec<String>,
    /// `--cap-drop` (`ALL` allowed).
    pub cap_drop: Vec<String>,
    /// `--security-opt seccomp=...`.
    pub seccomp: SeccompProfile,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `-v`, `--tmpfs`, `--mount`.
    pub mounts: Vec<MountSpec>,
    /// `--shm-size` in bytes (default 64 MiB like Docker).
    pub shm_size: Option<u64>,
    /// `--ulimit`; limits not named are inherited from the caller.
    pub ulimits: Vec<Ulimit>,
    /// cgroup limits.
    pub resources: Resources,
    /// `--network`.
    pub network: NetworkMode,
    /// Content of /etc/resolv.conf; `None` copies the host's.
    pub dns: Option<DnsConfig>,
    /// `--add-host name:ip`: extra /etc/hosts lines.
    pub extra_hosts: Vec<(String, IpAddr)>,
    /// Addresses of this container written to /etc/hosts next to its hostname.
    pub addresses: Vec<IpAddr>,
    /// `--init`: run a reaping init as PID 1 (see [`crate::workload`]).
    pub init: bool,
    /// `--stop-signal`; default: the image's STOPSIGNAL, else SIGTERM.
    pub stop_signal: Option<String>,
    /// `--stop-timeout` seconds before SIGKILL (default 10).
    pub stop_timeout: Option<u32>,
    /// Where the container's writable layer (overlay upper and work dirs)
    /// lives when it must outlive this run, like a Docker container's
    /// across stop/start and restarts. The caller owns the dir: teardown
    /// leaves it. `None`: inside the container dir, removed with it.
    pub rw_dir: Option<PathBuf>,
    /// `--rm`: the writable layer is thrown away when the container goes, so
    /// its overlay is mounted `volatile` (no sync of the upper layer on
    /// unmount or on fsync inside; volumes are bind mounts and keep their
    /// syncs), as podman does for `--rm` containers.
    pub transient: bool,
    /// The id to give the container (64 hex digits), e.g. a restarted
    /// container's previous one, so it keeps its id as with Docker. A new
    /// random id when `None`, malformed, or still taken.
    pub id: Option<String>,
}

/// Which seccomp profile confines the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompProfile {
    /// Docker's default profile (runtime/data/seccomp-default.json).
    #[default]
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=FILE`: a profile in Docker's JSON format.
    File(PathBuf),
}

/// One mount requested by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// `-v /host:/ctr[:ro]`: bind mount a host path (a missing host dir is created).
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    /// `--tmpfs /ctr[:opts]`: a tmpfs, default `rw,nosuid,nodev,noexec`.
    Tmpfs {
        target: String,
        options: Vec<String>,
    },
}

/// `--ulimit name=soft[:hard]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulimit {
    /// e.g. `RLIMIT_NOFILE`.
    pub resource: &'static str,
    pub soft: u64,
    pub hard: u64,
}

/// cgroup limits, already parsed (bytes, CPU fractions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// `--memory` in bytes.
    pub memory: Option<i64>,
    /// `--memory-reservation` in bytes (soft limit: memory.low / soft_limit_in_bytes).
    pub memory_reservation: Option<i64>,
    /// `--memory-swap` in bytes, memory + swap; `-1` unlimited.
    pub memory_swap: Option<i64>,
    /// `--cpus`: number of CPUs (e.g. 0.5).
    pub cpus: Option<f64>,
    /// `--cpu-shares` (relative weight, 1024 = default).
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus` (e.g. `0-1`, `0,2`).
    pub cpuset_cpus: Option<String>,
    /// `--pids-limit`; `-1` or `0` = unlimited.
    pub pids_limit: Option<i64>,
}

/// The container's network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// A new, empty network namespace (only `lo`).
    #[default]
    None,
    /// The caller's network namespace.
    Host,
    /// Join the namespace at this path: a pinned netns file (from
    /// rstack-netns) or `/proc/<pid>/ns/net` of another container.
    Path(PathBuf),
}

/// Content of the container's /etc/resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}
