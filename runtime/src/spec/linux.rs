//! The `linux` section: namespaces, cgroup resources with Docker's
//! cross-checks, device rules, masked and read-only paths, seccomp.

use serde_json::{Value, json};

use super::context::SpecContext;
use super::error::SpecError;
use crate::options::{NetworkMode, Resources, RunOptions, SeccompProfile};
use crate::seccomp;

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

/// The `linux` section: namespaces, cgroup path and resources, the host's
/// devices for `--privileged`, else masked and read-only paths and seccomp.
pub(super) fn linux_section(opts: &RunOptions, ctx: &SpecContext) -> Result<Value, SpecError> {
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
    Ok(linux)
}
