//! A container's seccomp filter compiled once into kernel BPF, for
//! processes started by [`crate::direct_exec`].
//!
//! libcontainer compiles a filter and loads it into the calling process in
//! one step (`initialize_seccomp`), with libseccomp allocating all the way.
//! A direct exec forks from the multi-threaded supervisor, where the child
//! may only make system calls (no allocation), so the filter is compiled
//! beforehand with libseccomp (the same translation of the OCI section as
//! libcontainer's) into plain BPF instructions that the child hands to
//! `seccomp(2)`. Compiled filters are cached per profile (like crun): the
//! docker default profile takes a few milliseconds to compile and every
//! container of a project usually shares it.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

/// A filter that cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("cannot compile the container's seccomp filter: {what}")]
    Compile { what: String },
    #[error(
        "the container's seccomp filter uses SCMP_ACT_NOTIFY, which processes started next to it do not support"
    )]
    Notify,
}

/// A compiled filter: the instructions and the `seccomp(2)` flags.
#[derive(Debug)]
pub struct Bpf {
    pub(crate) code: Vec<libc::sock_filter>,
    pub(crate) flags: libc::c_ulong,
}

type Cache = Mutex<HashMap<String, Arc<Bpf>>>;

/// Compiles `seccomp` (or returns the cached compilation of an equal one).
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Arc<Bpf>, BpfError> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = serde_json::to_string(seccomp).map_err(|e| BpfError::Compile {
        what: e.to_string(),
    })?;
    let cache = CACHE.get_or_init(Cache::default);
    if let Some(b) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(b.clone());
    }
    let bpf = Arc::new(compile_uncached(seccomp)?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, bpf.clone());
    Ok(bpf)
}

fn err(what: impl std::fmt::Display) -> BpfError {
    BpfError::Compile {
        what: what.to_string(),
    }
}

fn compile_uncached(seccomp: &LinuxSeccomp) -> Result<Bpf, BpfError> {
    let default = action(seccomp.default_action(), seccomp.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(err)?;
    // a binary tree of syscall numbers instead of libseccomp's linear list:
    // on load the kernel runs the filter once for every syscall number (its
    // action cache, under the signal lock) and a probe loads it each time;
    // docker's profile loads in ~0.27 ms instead of ~0.75 ms here
    ctx.set_ctl_optimize(2).map_err(err)?;
    let mut flags: libc::c_ulong = 0;
    for flag in seccomp.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // one thread: nothing to synchronise; a killable wait only
            // matters for notify filters, refused above
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync
            | LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        };
    }
    for arch in seccomp.architectures().iter().flatten() {
        let name = serde_json::to_value(arch).map_err(err)?;
        let parsed = name
            .as_str()
            .and_then(|s| s.parse::<ScmpArch>().ok())
            .ok_or_else(|| err(format!("unknown architecture {name}")))?;
        ctx.add_arch(parsed).map_err(err)?;
    }
    for rule in seccomp.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue; // redundant, and libseccomp refuses it
        }
        let cmps: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| ScmpArgCompare::new(a.index() as u32, op(a.op(), a.value_two()), a.value()))
            .collect();
        let mut indexes: Vec<u32> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| a.index() as u32)
            .collect();
        indexes.sort_unstable();
        let duplicate_index = indexes.windows(2).any(|w| w[0] == w[1]);
        for name in rule.names() {
            // a name this kernel/libseccomp does not know: skipped, as runc
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            if cmps.is_empty() {
                ctx.add_rule(act, sc).map_err(err)?;
            } else if duplicate_index {
                // libseccomp compares each argument once per rule: one
                // rule per comparison, as runc and libcontainer do
                for c in &cmps {
                    ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                        .map_err(err)?;
                }
            } else {
                ctx.add_rule_conditional(act, sc, &cmps).map_err(err)?;
            }
        }
    }
    Ok(Bpf {
        code: export(&ctx)?,
        flags,
    })
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, BpfError> {
    let errno = errno.map_or(libc::EPERM, |e| e as i32);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(u16::try_from(errno).map_err(err)?),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => return Err(BpfError::Notify),
    })
}

fn op(o: LinuxSeccompOperator, value_two: Option<u64>) -> ScmpCompareOp {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value_two.unwrap_or(0)),
    }
}

/// The filter's BPF, through a memfd (`seccomp_export_bpf` writes to an fd;
/// the in-memory variant needs libseccomp 2.6, newer than Debian 12's).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, BpfError> {
    // SAFETY: memfd_create with a NUL-terminated name; returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"rstack-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh fd nothing else owns.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&f).map_err(err)?;
    f.rewind().map_err(err)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(err)?;
    Ok(instructions(&bytes))
}

/// Decodes `struct sock_filter`s (u16 code, u8 jt, u8 jf, u32 k; native
/// byte order) from their bytes.
fn instructions(bytes: &[u8]) -> Vec<libc::sock_filter> {
    bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn compiles_the_default_profile_once() {
        let caps = crate::caps::DOCKER_DEFAULT_CAPS.into_iter().collect();
        let v = crate::seccomp::resolve(
            std::path::Path::new("<default>"),
            crate::seccomp::DEFAULT_PROFILE,
            &caps,
            &crate::seccomp::Target::host(),
        )
        .unwrap();
        let resolved: LinuxSeccomp = serde_json::from_value(v).unwrap();
        let a = compile(&resolved).unwrap();
        let b = compile(&resolved).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the second compile is the cached one");
        assert!(a.code.len() > 50, "{} instructions", a.code.len());
        // ends with a return (BPF_RET)
        assert_eq!(a.code.last().unwrap().code & 0x07, 0x06);
    }

    #[test]
    fn decodes_instructions_in_native_order() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0x15u16.to_ne_bytes());
        bytes.extend_from_slice(&[1, 2]);
        bytes.extend_from_slice(&7u32.to_ne_bytes());
        let i = instructions(&bytes);
        assert_eq!((i[0].code, i[0].jt, i[0].jf, i[0].k), (0x15, 1, 2, 7));
    }

    #[test]
    fn refuses_notify_and_maps_flags() {
        let n = profile(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#);
        assert!(matches!(compile(&n), Err(BpfError::Notify)));
        let l = profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
        );
        assert_eq!(compile(&l).unwrap().flags, libc::SECCOMP_FILTER_FLAG_LOG);
    }
}
