//! The OCI runtime spec (config.json) of one container, built from the
//! image's config plus the run options with Docker's semantics: the
//! ENTRYPOINT/CMD override rules, the environment merge, the user, Docker's
//! default mounts, masked /proc paths, capabilities, seccomp, device rules
//! and cgroup limits. Pure: it touches no files, so it is unit tested
//! without root; everything it needs from the host comes in [`SpecContext`].

use std::collections::HashSet;
use std::path::PathBuf;

use caps::Capability;
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;
use serde_json::{Value, json};

use crate::options::{MountSpec, NetworkMode, Resources, RunOptions, SeccompProfile};
use crate::seccomp::{self, SeccompError, Target};
use crate::user::ResolvedUser;

/// Default PATH when the image sets none (Docker's `oci.DefaultPathEnv`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Paths Docker hides from containers (bind /dev/null or an empty tmpfs).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

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

/// What the spec needs to know about the host and the prepared container.
#[derive(Debug, Clone)]
pub struct SpecContext {
    /// Container id (also the default hostname, shortened).
    pub id: String,
    /// The mounted rootfs (absolute).
    pub rootfs: PathBuf,
    /// Directory holding this container's hosts, hostname and resolv.conf.
    pub etc_dir: PathBuf,
    /// The resolved `-u`.
    pub user: ResolvedUser,
    /// Capability set (see [`crate::caps::capability_set`]).
    pub caps: HashSet<Capability>,
    /// seccomp filter target (arch, kernel).
    pub target: Target,
    /// Absolute cgroup path (e.g. `/<caller's cgroup>/rstack/<id>`).
    pub cgroups_path: String,
    /// The caller's hard limits, to reject `--ulimit` above them up front.
    pub hard_limits: Vec<(&'static str, u64)>,
    /// Hostname when none is given (the host's with `--network host`).
    pub default_hostname: String,
    /// Whether the host can limit swap (v1 `memory.memsw.*`, v2 `memory.swap.max`).
    pub swap_limit_supported: bool,
    /// How `/sys/fs/cgroup` looks inside (see [`CgroupView`]).
    pub cgroup_view: CgroupView,
    /// The host's device nodes, given to a `--privileged` container (see
    /// [`host_devices`]); empty otherwise.
    pub host_devices: Vec<HostDevice>,
}

/// A device node of the host (`/dev/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    pub path: String,
    /// `c` or `b`.
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Docker's `HostDevices`: every character and block device under `dev`,
/// but the container's own (pts, shm, mqueue, fd) and the console.
pub fn host_devices(dev: &std::path::Path) -> Vec<HostDevice> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut stack = vec![dev.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let ft = meta.file_type();
            let name = e.file_name();
            if ft.is_dir() {
                if !matches!(
                    name.to_str(),
                    Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
                ) {
                    stack.push(path);
                }
                continue;
            }
            let kind = if ft.is_char_device() {
                'c'
            } else if ft.is_block_device() {
                'b'
            } else {
                continue;
            };
            let rel = path.strip_prefix(dev).unwrap_or(&path);
            let inside = format!("/dev/{}", rel.display());
            if inside == "/dev/console" {
                continue;
            }
            let rdev = meta.rdev();
            out.push(HostDevice {
                path: inside,
                kind,
                major: nix::sys::stat::major(rdev),
                minor: nix::sys::stat::minor(rdev),
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// What a (non-privileged) container sees at `/sys/fs/cgroup`: only its
/// own cgroup, read-only, never a host root (whose `release_agent` is the
/// CVE-2022-0492 path), as Docker and podman present it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupView {
    /// cgroup v2: the cgroup2 file system mounted read-only in the
    /// container's cgroup namespace, whose root is the container's cgroup.
    Namespaced,
    /// cgroup v1 / hybrid: a tmpfs holding, for each hierarchy, the
    /// container's own directory of it bound read-only (`(name, host dir)`:
    /// `/sys/fs/cgroup/<name>`). libcontainer's own v1 mount would mount
    /// whole hierarchies read-write, the `name=systemd` one at its root.
    Binds(Vec<(String, PathBuf)>),
}

/// The process arguments: Docker's ENTRYPOINT/CMD rules. `--entrypoint`
/// replaces the image's ENTRYPOINT and drops its CMD; a COMMAND replaces CMD.
pub fn command_line(
    image: &ImageConfiguration,
    opts: &RunOptions,
) -> Result<Vec<String>, SpecError> {
    let cfg = image.config().as_ref();
    let mut args: Vec<String> = match &opts.entrypoint {
        Some(ep) => ep.clone(),
        None => cfg.and_then(|c| c.entrypoint().clone()).unwrap_or_default(),
    };
    if !opts.command.is_empty() {
        args.extend(opts.command.iter().cloned());
    } else if opts.entrypoint.is_none() {
        args.extend(cfg.and_then(|c| c.cmd().clone()).unwrap_or_default());
    }
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

pub(crate) fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// The environment: the image's, overridden by `-e`, plus PATH, HOSTNAME,
/// HOME and TERM like Docker.
pub fn environment(
    image: &ImageConfiguration,
    opts: &RunOptions,
    hostname: &str,
    home: &str,
) -> Result<Vec<String>, SpecError> {
    // order kept, a later entry replaces an earlier one of the same name;
    // the index makes each lookup O(1) (an image may carry 100k entries)
    let mut env: Vec<String> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut set = |entry: String, env: &mut Vec<String>| {
        let key = env_key(&entry).to_owned();
        match index.get(&key) {
            Some(&i) => env[i] = entry,
            None => {
                index.insert(key, env.len());
                env.push(entry);
            }
        }
    };
    set(format!("PATH={DEFAULT_PATH}"), &mut env);
    set(format!("HOSTNAME={hostname}"), &mut env);
    if opts.tty {
        set("TERM=xterm".to_owned(), &mut env);
    }
    let image_env = image
        .config()
        .as_ref()
        .and_then(|c| c.env().clone())
        .unwrap_or_default();
    for entry in image_env.into_iter().chain(opts.env.iter().cloned()) {
        if env_key(&entry).is_empty() || !entry.contains('=') {
            return Err(SpecError::Env { entry });
        }
        set(entry, &mut env);
    }
    if !env.iter().any(|e| env_key(e) == "HOME") {
        env.push(format!("HOME={home}"));
    }
    Ok(env)
}

/// What execve(2) takes in strings with the default 8 MiB stack (a
/// quarter of it), and at most per string (`MAX_ARG_STRLEN`).
const EXEC_STRINGS_MAX: usize = 2 << 20;
const EXEC_STRING_MAX: usize = 128 << 10;

/// Refuses what execve would fail with E2BIG, naming the culprit, instead
/// of a container that dies with no message.
fn check_exec_size(args: &[String], env: &[String]) -> Result<(), SpecError> {
    let size: usize = args.iter().chain(env).map(|s| s.len() + 1).sum();
    let longest = args.iter().chain(env).max_by_key(|s| s.len());
    let too_long = longest.is_some_and(|s| s.len() >= EXEC_STRING_MAX);
    if size > EXEC_STRINGS_MAX || too_long {
        return Err(SpecError::ArgsTooLarge {
            size,
            limit: if too_long {
                EXEC_STRING_MAX
            } else {
                EXEC_STRINGS_MAX
            },
            largest: longest.map(|s| {
                let key = env_key(s);
                format!("{} ({} bytes)", &key[..key.len().min(40)], s.len())
            }),
        });
    }
    Ok(())
}

/// The hostname: `--hostname`, else the default (first 12 chars of the id).
pub fn hostname(opts: &RunOptions, default: &str) -> Result<String, SpecError> {
    let h = opts.hostname.clone().unwrap_or_else(|| default.to_owned());
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if !ok {
        return Err(SpecError::Hostname { hostname: h });
    }
    Ok(h)
}

fn check_target(target: &str) -> Result<(), SpecError> {
    if !target.starts_with('/')
        || target.trim_end_matches('/').is_empty()
        || target.contains("/../")
    {
        return Err(SpecError::MountTarget {
            target: target.to_owned(),
        });
    }
    Ok(())
}

/// Docker's default mounts plus the per-container files and the user's mounts.
fn mounts(opts: &RunOptions, ctx: &SpecContext) -> Result<Vec<Value>, SpecError> {
    let shm = opts.shm_size.unwrap_or(64 << 20);
    let mut m = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", if opts.privileged { "rw" } else { "ro" }]}),
    ];
    match (&ctx.cgroup_view, opts.privileged) {
        (CgroupView::Binds(binds), false) => {
            m.push(json!({"destination": "/sys/fs/cgroup", "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "noexec", "nodev", "mode=755", "size=64k"]}));
            for (name, dir) in binds {
                m.push(json!({"destination": format!("/sys/fs/cgroup/{name}"), "type": "bind",
                              "source": dir,
                              "options": ["rbind", "rprivate", "ro", "nosuid", "noexec", "nodev"]}));
            }
        }
        (_, privileged) => m.push(
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                   "options": ["nosuid", "noexec", "nodev", "relatime", if privileged { "rw" } else { "ro" }]}),
        ),
    }
    m.push(
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
    );
    m.push(
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    );
    for file in ["resolv.conf", "hostname", "hosts"] {
        m.push(
            json!({"destination": format!("/etc/{file}"), "type": "bind",
            "source": ctx.etc_dir.join(file), "options": ["rbind", "rprivate"]}),
        );
    }
    for spec in &opts.mounts {
        match spec {
            MountSpec::Bind {
                source,
                target,
                read_only,
            } => {
                check_target(target)?;
                let mut o = vec!["rbind", "rprivate"];
                if *read_only {
                    o.push("ro");
                }
                m.push(
                    json!({"destination": target, "type": "bind", "source": source, "options": o}),
                );
            }
            MountSpec::Tmpfs { target, options } => {
                check_target(target)?;
                let mut o: Vec<String> = ["nosuid", "nodev", "noexec"]
                    .iter()
                    .map(|s| s.to_string())
                    .filter(|d| {
                        // an explicit exec/suid/dev lifts the default
                        let lifted = &d[2..];
                        !options.iter().any(|u| u == lifted)
                    })
                    .collect();
                o.extend(options.iter().cloned());
                m.push(json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": o}));
            }
        }
    }
    Ok(m)
}

/// Docker's device cgroup rules: deny all, then allow the standard nodes.
fn device_rules(privileged: bool) -> Value {
    if privileged {
        return json!([{"allow": true, "access": "rwm"}]);
    }
    let c = |major: i64, minor: Option<i64>, access: &str| json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": access});
    json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "access": "m"},
        {"allow": true, "type": "b", "access": "m"},
        c(1, Some(3), "rwm"),  // null
        c(1, Some(5), "rwm"),  // zero
        c(1, Some(7), "rwm"),  // full
        c(1, Some(8), "rwm"),  // random
        c(1, Some(9), "rwm"),  // urandom
        c(5, Some(0), "rwm"),  // tty
        c(5, Some(1), "rwm"),  // console
        c(5, Some(2), "rwm"),  // ptmx
        c(136, None, "rwm"),   // pts
        c(10, Some(200), "rwm"), // tun
    ])
}

/// The cgroup resources section, with Docker's cross-checks.
fn resources(r: &Resources, privileged: bool, swap_ok: bool) -> Result<Value, SpecError> {
    let mut out = json!({ "devices": device_rules(privileged) });
    let mut mem = serde_json::Map::new();
    if let Some(limit) = r.memory {
        mem.insert("limit".into(), json!(limit));
    }
    if let Some(res) = r.memory_reservation {
        if let Some(limit) = r.memory {
            if res > limit {
                return Err(SpecError::MemoryReservation {
                    reservation: res,
                    memory: limit,
                });
            }
        }
        mem.insert("reservation".into(), json!(res));
    }
    if let Some(swap) = r.memory_swap {
        match r.memory {
            Some(limit) if swap == -1 || swap >= limit => {
                if swap_ok {
                    mem.insert("swap".into(), json!(swap));
                } else {
                    tracing::warn!(
                        "this kernel does not support swap limits (no memory.memsw.limit_in_bytes / memory.swap.max): --memory-swap is not applied"
                    );
                }
            }
            Some(memory) => return Err(SpecError::MemorySwap { memory, swap }),
            None => return Err(SpecError::SwapWithoutMemory),
        }
    } else if let (Some(limit), true) = (r.memory, swap_ok) {
        // Docker's default: as much swap as memory (memory + swap = 2x).
        mem.insert("swap".into(), json!(limit.saturating_mul(2)));
    }
    if !mem.is_empty() {
        out["memory"] = Value::Object(mem);
    }
    let mut cpu = serde_json::Map::new();
    if let Some(cpus) = r.cpus {
        let period: u64 = 100_000;
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!((cpus * period as f64).round() as i64));
    }
    if let Some(shares) = r.cpu_shares {
        cpu.insert("shares".into(), json!(shares));
    }
    if let Some(set) = &r.cpuset_cpus {
        cpu.insert("cpus".into(), json!(set));
    }
    if !cpu.is_empty() {
        out["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = r.pids_limit {
        out["pids"] = json!({ "limit": if p <= 0 { -1 } else { p } });
    }
    Ok(out)
}

fn namespaces(opts: &RunOptions) -> Vec<Value> {
    let mut ns = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if !opts.cgroupns_host {
        ns.push(json!({"type": "cgroup"}));
    }
    match &opts.network {
        NetworkMode::None => ns.push(json!({"type": "network"})),
        NetworkMode::Host => {}
        NetworkMode::Path(p) => ns.push(json!({"type": "network", "path": p})),
    }
    ns
}

/// Builds the whole spec. `args` and `env` come from [`command_line`] and
/// [`environment`] (the caller computes them first to validate early).
pub fn build_spec(
    image: &ImageConfiguration,
    opts: &RunOptions,
    ctx: &SpecContext,
) -> Result<Spec, SpecError> {
    let args = command_line(image, opts)?;
    let hostname = hostname(opts, &ctx.default_hostname)?;
    let env = environment(image, opts, &hostname, &ctx.user.home)?;
    check_exec_size(&args, &env)?;
    let cwd = opts
        .workdir
        .clone()
        .or_else(|| {
            image
                .config()
                .as_ref()
                .and_then(|c| c.working_dir().clone())
        })
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    if !cwd.starts_with('/') {
        return Err(SpecError::Workdir { dir: cwd });
    }
    let mut sorted: Vec<Capability> = ctx.caps.iter().copied().collect();
    sorted.sort_by_key(|c| c.index());
    let cap_names: Vec<String> = sorted.iter().map(|c| c.to_string()).collect();
    let mut rlimits = Vec::new();
    for u in &opts.ulimits {
        if let Some((_, current)) = ctx.hard_limits.iter().find(|(r, _)| *r == u.resource) {
            if u.hard > *current {
                return Err(SpecError::Ulimit {
                    resource: u.resource,
                    current: *current,
                });
            }
        }
        rlimits.push(json!({"type": u.resource, "soft": u.soft, "hard": u.hard}));
    }
    let mut process = json!({
        "terminal": opts.tty,
        "user": {
            "uid": ctx.user.uid,
            "gid": ctx.user.gid,
            "additionalGids": ctx.user.additional_gids,
        },
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {
            "bounding": cap_names,
            "effective": cap_names,
            "permitted": cap_names,
        },
    });
    // Only when set: libcontainer 0.7 loads the seccomp filter after
    // dropping capabilities whenever the field is present (even `false`),
    // and without no_new_privs the kernel then refuses the filter.
    if opts.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if !rlimits.is_empty() {
        process["rlimits"] = json!(rlimits);
    }
    let mut linux = json!({
        "namespaces": namespaces(opts),
        "cgroupsPath": ctx.cgroups_path,
        "resources": resources(&opts.resources, opts.privileged, ctx.swap_limit_supported)?,
        "rootfsPropagation": "private",
    });
    if opts.privileged && !ctx.host_devices.is_empty() {
        linux["devices"] = ctx
            .host_devices
            .iter()
            .map(|d| {
                json!({"path": d.path, "type": d.kind.to_string(), "major": d.major,
                       "minor": d.minor, "fileMode": d.mode, "uid": d.uid, "gid": d.gid})
            })
            .collect();
    }
    if !opts.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        let profile = match &opts.seccomp {
            SeccompProfile::Default => Some(None),
            SeccompProfile::Unconfined => None,
            SeccompProfile::File(p) => Some(Some(p.as_path())),
        };
        if let Some(path) = profile {
            let (path, text) = seccomp::load_profile(path)?;
            linux["seccomp"] = seccomp::resolve(&path, &text, &ctx.caps, &ctx.target)?;
        }
    }
    let mut annotations = serde_json::Map::new();
    let image_labels = image
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default();
    for (k, v) in image_labels {
        annotations.insert(k, json!(v));
    }
    for (k, v) in &opts.labels {
        annotations.insert(k.clone(), json!(v));
    }
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": { "path": ctx.rootfs, "readonly": opts.read_only },
        "hostname": hostname,
        "mounts": mounts(opts, ctx)?,
        "linux": linux,
        "annotations": annotations,
    });
    serde_json::from_value(spec).map_err(SpecError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Ulimit;
    use oci_spec::image::{ConfigBuilder, ImageConfigurationBuilder};

    fn image(
        entrypoint: Option<&[&str]>,
        cmd: Option<&[&str]>,
        env: &[&str],
    ) -> ImageConfiguration {
        let mut cfg = ConfigBuilder::default();
        if let Some(e) = entrypoint {
            cfg = cfg.entrypoint(e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        }
        if let Some(c) = cmd {
            cfg = cfg.cmd(c.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        }
        cfg = cfg
            .env(env.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .working_dir("/srv".to_owned());
        ImageConfigurationBuilder::default()
            .config(cfg.build().unwrap())
            .build()
            .unwrap()
    }

    fn ctx() -> SpecContext {
        SpecContext {
            id: "0123456789abcdef".into(),
            rootfs: "/r/rootfs".into(),
            etc_dir: "/r/etc".into(),
            user: ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: "/root".into(),
            },
            caps: crate::caps::DOCKER_DEFAULT_CAPS.into_iter().collect(),
            target: Target {
                arch: "amd64",
                scmp_arch: "SCMP_ARCH_X86_64",
                kernel: (6, 1),
            },
            cgroups_path: "/rstack/0123456789abcdef".into(),
            hard_limits: vec![("RLIMIT_NOFILE", 4096)],
            default_hostname: "0123456789ab".into(),
            swap_limit_supported: true,
            cgroup_view: CgroupView::Namespaced,
            host_devices: Vec::new(),
        }
    }

    #[test]
    fn privileged_gets_the_hosts_devices() {
        let devs = host_devices(std::path::Path::new("/dev"));
        let null = devs
            .iter()
            .find(|d| d.path == "/dev/null")
            .expect("/dev/null");
        assert_eq!((null.kind, null.major, null.minor), ('c', 1, 3));
        assert!(devs.iter().all(|d| !d.path.starts_with("/dev/pts/")));
        assert!(devs.iter().all(|d| d.path != "/dev/console"));
        let img = image(None, Some(&["sh"]), &[]);
        let mut c = ctx();
        c.host_devices = devs.clone();
        let privileged = RunOptions {
            privileged: true,
            ..RunOptions::default()
        };
        let v = serde_json::to_value(build_spec(&img, &privileged, &c).unwrap()).unwrap();
        let listed = v["linux"]["devices"].as_array().unwrap();
        assert_eq!(listed.len(), devs.len());
        let v =
            serde_json::to_value(build_spec(&img, &RunOptions::default(), &c).unwrap()).unwrap();
        assert!(v["linux"]["devices"].is_null(), "only --privileged");
    }

    #[test]
    fn a_huge_image_env_merges_in_one_pass_and_is_refused_when_too_big() {
        let many: Vec<String> = (0..100_000).map(|i| format!("V{i}=x")).collect();
        let mut img = image(None, Some(&["sh"]), &[]);
        let mut config = img.config().clone().unwrap_or_default();
        config.set_env(Some(many));
        img.set_config(Some(config));
        let o = RunOptions {
            env: vec!["V5=y".into()],
            ..RunOptions::default()
        };
        let env = environment(&img, &o, "h", "/root").unwrap();
        assert_eq!(env.len(), 100_000 + 3, "PATH, HOSTNAME, HOME");
        assert!(env.contains(&"V5=y".to_owned()));
        // 100k entries are ~900 KB: accepted; 300k are too many for execve
        assert!(check_exec_size(&["sh".into()], &env).is_ok());
        let big: Vec<String> = (0..300_000).map(|i| format!("VAR{i}=xxx")).collect();
        let err = check_exec_size(&["sh".into()], &big)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than the 2097152 bytes"), "{err}");
        let long = vec![format!("LONG={}", "x".repeat(200_000))];
        let err = check_exec_size(&["sh".into()], &long)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the longest is LONG"), "{err}");
    }

    #[test]
    fn cgroups_are_the_containers_own_and_read_only() {
        let img = image(None, Some(&["sh"]), &[]);
        let mut c = ctx();
        let mounts = |opts: &RunOptions, c: &SpecContext| -> Vec<Value> {
            let spec = build_spec(&img, opts, c).unwrap();
            let v = serde_json::to_value(&spec).unwrap();
            v["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| {
                    m["destination"]
                        .as_str()
                        .unwrap()
                        .starts_with("/sys/fs/cgroup")
                })
                .cloned()
                .collect()
        };
        let opts = RunOptions::default();
        let v2 = mounts(&opts, &c);
        assert_eq!(v2.len(), 1);
        assert_eq!(v2[0]["type"], "cgroup");
        assert!(v2[0]["options"].as_array().unwrap().contains(&json!("ro")));
        c.cgroup_view = CgroupView::Binds(vec![
            (
                "memory".into(),
                PathBuf::from("/sys/fs/cgroup/memory/rstack/x"),
            ),
            ("pids".into(), PathBuf::from("/sys/fs/cgroup/pids/rstack/x")),
        ]);
        let v1 = mounts(&opts, &c);
        assert_eq!(v1[0]["type"], "tmpfs");
        assert_eq!(v1[1]["destination"], "/sys/fs/cgroup/memory");
        assert_eq!(v1[1]["source"], "/sys/fs/cgroup/memory/rstack/x");
        assert!(v1[1]["options"].as_array().unwrap().contains(&json!("ro")));
        assert_eq!(v1.len(), 3, "no systemd, no unified, no host root: {v1:?}");
        // --privileged: the hierarchies, writable, as Docker does
        let privileged = RunOptions {
            privileged: true,
            ..RunOptions::default()
        };
        let p = mounts(&privileged, &c);
        assert_eq!(p.len(), 1);
        assert!(p[0]["options"].as_array().unwrap().contains(&json!("rw")));
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn entrypoint_and_cmd_rules() {
        let img = image(Some(&["/ep"]), Some(&["a", "b"]), &[]);
        let mut o = RunOptions::default();
        assert_eq!(command_line(&img, &o).unwrap(), v(&["/ep", "a", "b"]));
        o.command = v(&["x"]);
        assert_eq!(command_line(&img, &o).unwrap(), v(&["/ep", "x"]));
        o.entrypoint = Some(v(&["/other"]));
        assert_eq!(command_line(&img, &o).unwrap(), v(&["/other", "x"]));
        o.command.clear();
        // --entrypoint drops the image's CMD
        assert_eq!(command_line(&img, &o).unwrap(), v(&["/other"]));
        o.entrypoint = Some(vec![]);
        assert!(matches!(command_line(&img, &o), Err(SpecError::NoCommand)));
        let img = image(None, Some(&["sh"]), &[]);
        assert_eq!(
            command_line(&img, &RunOptions::default()).unwrap(),
            v(&["sh"])
        );
        let img = image(None, None, &[]);
        assert!(command_line(&img, &RunOptions::default()).is_err());
    }

    #[test]
    fn env_merge() {
        let img = image(None, Some(&["sh"]), &["PATH=/img", "A=1", "B=2"]);
        let o = RunOptions {
            env: v(&["B=3", "C=4"]),
            tty: true,
            ..Default::default()
        };
        let env = environment(&img, &o, "h", "/root").unwrap();
        assert_eq!(
            env,
            v(&[
                "PATH=/img",
                "HOSTNAME=h",
                "TERM=xterm",
                "A=1",
                "B=3",
                "C=4",
                "HOME=/root"
            ])
        );
        let img = image(None, Some(&["sh"]), &[]);
        let env = environment(&img, &RunOptions::default(), "h", "/home/u").unwrap();
        assert_eq!(env[0], format!("PATH={DEFAULT_PATH}"));
        assert!(env.contains(&"HOME=/home/u".to_owned()));
    }

    #[test]
    fn full_spec_has_docker_defaults() {
        let img = image(None, Some(&["sh"]), &[]);
        let o = RunOptions {
            mounts: vec![
                MountSpec::Bind {
                    source: "/h".into(),
                    target: "/c".into(),
                    read_only: true,
                },
                MountSpec::Tmpfs {
                    target: "/t".into(),
                    options: v(&["exec", "size=1m"]),
                },
            ],
            resources: Resources {
                memory: Some(32 << 20),
                cpus: Some(0.5),
                pids_limit: Some(20),
                ..Default::default()
            },
            read_only: true,
            ..Default::default()
        };
        let spec = build_spec(&img, &o, &ctx()).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.cwd().to_str(), Some("/srv"));
        assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
        assert_eq!(
            p.capabilities()
                .as_ref()
                .unwrap()
                .bounding()
                .as_ref()
                .unwrap()
                .len(),
            14
        );
        assert!(spec.root().as_ref().unwrap().readonly().unwrap());
        let linux = spec.linux().as_ref().unwrap();
        assert!(
            linux
                .masked_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/kcore".to_owned())
        );
        assert!(linux.seccomp().is_some());
        let res = linux.resources().as_ref().unwrap();
        assert_eq!(res.memory().as_ref().unwrap().limit(), Some(32 << 20));
        assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));
        assert_eq!(res.pids().as_ref().unwrap().limit(), 20);
        let mounts = spec.mounts().as_ref().unwrap();
        let c = mounts
            .iter()
            .find(|m| m.destination().to_str() == Some("/c"))
            .unwrap();
        assert!(c.options().as_ref().unwrap().contains(&"ro".to_owned()));
        let t = mounts
            .iter()
            .find(|m| m.destination().to_str() == Some("/t"))
            .unwrap();
        assert_eq!(
            t.options().as_ref().unwrap(),
            &v(&["nosuid", "nodev", "exec", "size=1m"])
        );
        let shm = mounts
            .iter()
            .find(|m| m.destination().to_str() == Some("/dev/shm"))
            .unwrap();
        assert!(
            shm.options()
                .as_ref()
                .unwrap()
                .contains(&format!("size={}", 64 << 20))
        );
        let ns = linux.namespaces().as_ref().unwrap();
        assert_eq!(ns.len(), 6);
    }

    #[test]
    fn privileged_and_unconfined() {
        let img = image(None, Some(&["sh"]), &[]);
        let o = RunOptions {
            privileged: true,
            network: NetworkMode::Host,
            ..Default::default()
        };
        let spec = build_spec(&img, &o, &ctx()).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        assert!(linux.masked_paths().is_none());
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 5);
        let o = RunOptions {
            seccomp: SeccompProfile::Unconfined,
            network: NetworkMode::Path("/run/netns/x".into()),
            ..Default::default()
        };
        let spec = build_spec(&img, &o, &ctx()).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        let net = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(net.path().as_ref().unwrap().to_str(), Some("/run/netns/x"));
    }

    #[test]
    fn bad_inputs() {
        let img = image(None, Some(&["sh"]), &[]);
        let bad = |o: RunOptions| build_spec(&img, &o, &ctx()).unwrap_err().to_string();
        assert!(
            bad(RunOptions {
                workdir: Some("rel".into()),
                ..Default::default()
            })
            .contains("'rel'")
        );
        assert!(
            bad(RunOptions {
                resources: Resources {
                    memory_swap: Some(1 << 20),
                    ..Default::default()
                },
                ..Default::default()
            })
            .contains("--memory-swap")
        );
        assert!(
            bad(RunOptions {
                ulimits: vec![Ulimit {
                    resource: "RLIMIT_NOFILE",
                    soft: 1,
                    hard: 1 << 20
                }],
                ..Default::default()
            })
            .contains("RLIMIT_NOFILE")
        );
        assert!(
            bad(RunOptions {
                hostname: Some("bad host".into()),
                ..Default::default()
            })
            .contains("hostname")
        );
        assert!(
            bad(RunOptions {
                mounts: vec![MountSpec::Tmpfs {
                    target: "/".into(),
                    options: vec![]
                }],
                ..Default::default()
            })
            .contains("mount target")
        );
    }
}
