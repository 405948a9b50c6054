//! seccomp: a BPF filter the kernel runs on every system call of the
//! container. Profiles use Docker's JSON format (rules with `includes` /
//! `excludes` by architecture, capability and kernel version); this module
//! resolves such a profile for one container (its capability set, this
//! machine's architecture and kernel) into the plain OCI `linux.seccomp`
//! section that the executor compiles with libseccomp.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use caps::Capability;
use serde::Deserialize;
use serde_json::{Value, json};

/// The default profile, written as data (see its `comment` field for the source).
pub const DEFAULT_PROFILE: &str = include_str!("../data/seccomp-default.json");

/// A profile that cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("cannot read seccomp profile {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid seccomp profile {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("seccomp profile {path} has no architecture entry for {arch}")]
    NoArch { path: PathBuf, arch: &'static str },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    name: Option<String>,
    action: String,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<Value>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    caps: Vec<String>,
    min_kernel: Option<String>,
}

/// This machine, as the profile's filters see it.
#[derive(Debug, Clone)]
pub struct Target {
    /// Docker's (Go) arch name: `amd64`, `arm64`, ...
    pub arch: &'static str,
    /// libseccomp's name: `SCMP_ARCH_X86_64`, ...
    pub scmp_arch: &'static str,
    /// Kernel (major, minor).
    pub kernel: (u32, u32),
    /// Whether the kernel runs x32 system calls (x86_64 only; most
    /// distribution kernels do not: `CONFIG_X86_X32_ABI` unset, or off
    /// unless booted with `syscall.x32=y`).
    pub x32_abi: bool,
}

impl Target {
    /// The running machine.
    pub fn host() -> Target {
        let (arch, scmp_arch) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
            "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
            "x86" => ("x86", "SCMP_ARCH_X86"),
            "arm" => ("arm", "SCMP_ARCH_ARM"),
            "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
            "s390x" => ("s390x", "SCMP_ARCH_S390X"),
            "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
            other => (other, "SCMP_ARCH_NATIVE"),
        };
        let kernel = nix::sys::utsname::uname()
            .ok()
            .and_then(|u| parse_kernel(&u.release().to_string_lossy()))
            .unwrap_or((0, 0));
        Target {
            arch,
            scmp_arch,
            kernel,
            x32_abi: kernel_runs_x32(),
        }
    }
}

/// Whether an x32 system call reaches a handler. Docker's profile filters
/// x32 calls as a sub-architecture of x86_64; on a kernel without the x32
/// ABI every one of them fails with ENOSYS before any filter could matter,
/// and leaving that third of the filter out makes its compilation, which
/// libcontainer does in every container's init, ~3x cheaper (12.6 -> 6.8 ms
/// for docker's profile here). Without it in the filter, an x32 call is
/// refused by the filter's architecture check instead of by the kernel.
#[cfg(target_arch = "x86_64")]
fn kernel_runs_x32() -> bool {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(|| {
        // Under a seccomp filter (rstack itself in a container) the probe
        // could be killed by a filter without x32: assume x32 runs.
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let filtered = status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .is_none_or(|v| v.trim() != "0");
        if filtered {
            return true;
        }
        const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;
        // SAFETY: getpid through the x32 entry point: no arguments, no
        // memory touched; it returns a pid or fails with ENOSYS.
        let r = unsafe { libc::syscall(X32_SYSCALL_BIT | libc::SYS_getpid) };
        !(r == -1 && nix::errno::Errno::last() == nix::errno::Errno::ENOSYS)
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn kernel_runs_x32() -> bool {
    false
}

fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Loads the profile text of `path` (`None` = the built-in default).
pub fn load_profile(path: Option<&Path>) -> Result<(PathBuf, String), SeccompError> {
    match path {
        None => Ok((PathBuf::from("<default>"), DEFAULT_PROFILE.to_owned())),
        Some(p) => std::fs::read_to_string(p)
            .map(|s| (p.to_owned(), s))
            .map_err(|source| SeccompError::Read {
                path: p.to_owned(),
                source,
            }),
    }
}

/// Resolves a Docker-format profile into an OCI `linux.seccomp` value for a
/// container holding `caps`.
pub fn resolve(
    path: &Path,
    text: &str,
    caps: &HashSet<Capability>,
    target: &Target,
) -> Result<Value, SeccompError> {
    let profile: Profile = serde_json::from_str(text).map_err(|source| SeccompError::Parse {
        path: path.to_owned(),
        source,
    })?;
    let cap_names: BTreeSet<String> = caps.iter().map(|c| c.to_string()).collect();
    let mut architectures = profile.architectures.clone();
    if architectures.is_empty() && !profile.arch_map.is_empty() {
        let entry = profile
            .arch_map
            .iter()
            .find(|a| a.architecture == target.scmp_arch)
            .ok_or(SeccompError::NoArch {
                path: path.to_owned(),
                arch: target.scmp_arch,
            })?;
        architectures.push(entry.architecture.clone());
        architectures.extend(
            entry
                .sub_architectures
                .iter()
                .flatten()
                .filter(|a| target.x32_abi || a.as_str() != "SCMP_ARCH_X32")
                .cloned(),
        );
    }
    let mut syscalls = Vec::new();
    for rule in &profile.syscalls {
        let inc = &rule.includes;
        let exc = &rule.excludes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == target.arch) {
            continue;
        }
        if !inc.caps.iter().all(|c| cap_names.contains(c)) {
            continue;
        }
        if let Some(min) = inc.min_kernel.as_deref().and_then(parse_kernel) {
            if target.kernel < min {
                continue;
            }
        }
        if exc.arches.iter().any(|a| a == target.arch) {
            continue;
        }
        if exc.caps.iter().any(|c| cap_names.contains(c)) {
            continue;
        }
        let mut names = rule.names.clone();
        names.extend(rule.name.clone());
        let mut out = json!({ "names": names, "action": rule.action });
        if let Some(e) = rule.errno_ret {
            out["errnoRet"] = json!(e);
        }
        if !rule.args.is_empty() {
            out["args"] = json!(rule.args);
        }
        syscalls.push(out);
    }
    let mut out = json!({
        "defaultAction": profile.default_action,
        "architectures": architectures,
        "syscalls": syscalls,
    });
    if let Some(e) = profile.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            arch: "amd64",
            scmp_arch: "SCMP_ARCH_X86_64",
            kernel: (6, 1),
            x32_abi: true,
        }
    }

    fn names(v: &Value) -> Vec<String> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
            .flat_map(|r| r["names"].as_array().unwrap().clone())
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn default_profile_for_default_caps() {
        let caps = crate::caps::DOCKER_DEFAULT_CAPS.into_iter().collect();
        let v = resolve(Path::new("d"), DEFAULT_PROFILE, &caps, &target()).unwrap();
        let allowed = names(&v);
        assert!(allowed.contains(&"read".to_owned()));
        assert!(allowed.contains(&"arch_prctl".to_owned()));
        assert!(allowed.contains(&"chroot".to_owned())); // CAP_SYS_CHROOT is default
        for denied in [
            "unshare",
            "mount",
            "keyctl",
            "add_key",
            "setns",
            "reboot",
            "s390_runtime_instr",
        ] {
            assert!(!allowed.contains(&denied.to_owned()), "{denied} allowed");
        }
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        assert_eq!(
            v["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        // clone3 answers ENOSYS without CAP_SYS_ADMIN so libc falls back to clone.
        let text = v.to_string();
        assert!(text.contains("\"errnoRet\":38"));
        // A valid OCI section.
        let _: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).unwrap();
    }

    #[test]
    fn sys_admin_unlocks_mount_and_drops_clone_filter() {
        let mut caps: HashSet<Capability> = crate::caps::DOCKER_DEFAULT_CAPS.into_iter().collect();
        caps.insert(Capability::CAP_SYS_ADMIN);
        let v = resolve(Path::new("d"), DEFAULT_PROFILE, &caps, &target()).unwrap();
        let allowed = names(&v);
        assert!(allowed.contains(&"mount".to_owned()));
        assert!(allowed.contains(&"unshare".to_owned()));
        assert!(!v.to_string().contains("\"errnoRet\":38"));
    }

    #[test]
    fn x32_is_left_out_where_the_kernel_has_no_x32_abi() {
        let caps = HashSet::new();
        let no_x32 = Target {
            x32_abi: false,
            ..target()
        };
        let v = resolve(Path::new("d"), DEFAULT_PROFILE, &caps, &no_x32).unwrap();
        assert_eq!(
            v["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        );
        // The probe answers on this machine without being killed.
        let _ = Target::host();
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel("6.18.44-fc-v509"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        let old = Target {
            kernel: (4, 4),
            ..target()
        };
        let caps = HashSet::new();
        let v = resolve(Path::new("d"), DEFAULT_PROFILE, &caps, &old).unwrap();
        assert!(!names(&v).contains(&"ptrace".to_owned()));
    }

    #[test]
    fn bad_profiles_name_the_file() {
        let err = resolve(Path::new("/p.json"), "{", &HashSet::new(), &target()).unwrap_err();
        assert!(err.to_string().contains("/p.json"));
        let err = load_profile(Some(Path::new("/nonexistent.json"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent.json"));
    }
}
