//! A running container's cgroup, read and written from outside: pause
//! (the freezer: `freezer.state` on cgroup v1, `cgroup.freeze` on v2) and
//! the figures `stats` shows (memory, CPU time, pids). The directories
//! are the ones recorded when the container was created.
//!
//! Written here rather than through libcgroups' managers: a v1 manager
//! joins one cgroup path under every controller's mount, but rstack records
//! one leaf per hierarchy (they differ when the caller's cgroup differs per
//! hierarchy, as on this hybrid host); its v1 freeze polls up to 1000 times
//! and may thaw on failure, which `pause` must not do; and the stack crate
//! would take libcgroups as a dependency for two file writes.

use std::path::{Path, PathBuf};

/// A failure touching a container's cgroup.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {name}: no freezer cgroup (neither cgroup v1 freezer nor cgroup v2)")]
    NoFreezer { name: String },
    #[error("container {name}: no cgroup file {file} (controller not available)")]
    NoController { name: String, file: &'static str },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn freezer(leaves: &[PathBuf]) -> Option<(PathBuf, &'static str, &'static str, &'static str)> {
    for l in leaves {
        if l.join("freezer.state").exists() {
            return Some((l.join("freezer.state"), "FROZEN", "THAWED", "FROZEN"));
        }
        if l.join("cgroup.freeze").exists() {
            return Some((l.join("cgroup.freeze"), "1", "0", "1"));
        }
    }
    None
}

/// Freezes (`pause`) or thaws every process of the container.
pub fn set_paused(name: &str, leaves: &[PathBuf], paused: bool) -> Result<(), Error> {
    let (file, freeze, thaw, _) = freezer(leaves).ok_or_else(|| Error::NoFreezer {
        name: name.to_owned(),
    })?;
    std::fs::write(&file, if paused { freeze } else { thaw }).map_err(|source| Error::Write {
        path: file.clone(),
        source,
    })
}

/// Whether the container is frozen.
pub(crate) fn is_paused(leaves: &[PathBuf]) -> bool {
    FreezerState::find(leaves).is_some_and(|f| f.is_paused())
}

/// A container's freezer state file, found once: a prober asks before
/// every probe, and finding it stats each leaf's files.
#[derive(Debug)]
pub(crate) struct FreezerState {
    file: PathBuf,
    frozen: &'static str,
}

impl FreezerState {
    pub(crate) fn find(leaves: &[PathBuf]) -> Option<FreezerState> {
        freezer(leaves).map(|(file, _, _, frozen)| FreezerState { file, frozen })
    }

    /// Whether the container is frozen now.
    pub(crate) fn is_paused(&self) -> bool {
        std::fs::read_to_string(&self.file).is_ok_and(|s| s.trim() == self.frozen)
    }
}

/// New limits for a running container (`container update`); `None`
/// leaves one as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Bytes; `-1` none.
    pub memory: Option<i64>,
    /// Memory + swap in bytes; `-1` unlimited.
    pub memory_swap: Option<i64>,
    /// CPUs (quota over a 100 ms period).
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    /// `-1` or `0`: unlimited.
    pub pids: Option<i64>,
}

/// The files and values that set `l`, in writing order, for cgroup v2
/// (`v2`) or v1. On v1 memory+swap is written first when both are given
/// (it must never be below the memory limit).
pub fn limit_writes(v2: bool, l: &Limits) -> Vec<(&'static str, String)> {
    let max = |v: i64, unlimited: &str| {
        if v < 0 {
            unlimited.to_owned()
        } else {
            v.to_string()
        }
    };
    let mut w = Vec::new();
    if v2 {
        if let Some(m) = l.memory {
            w.push(("memory.max", max(m, "max")));
        }
        if let (Some(s), m) = (l.memory_swap, l.memory) {
            // v2 limits swap alone: memory+swap minus memory
            let swap = if s < 0 { -1 } else { s - m.unwrap_or(0).max(0) };
            w.push(("memory.swap.max", max(swap, "max")));
        }
        if let Some(c) = l.cpus {
            w.push(("cpu.max", format!("{} 100000", (c * 100_000.0) as i64)));
        }
        if let Some(sh) = l.cpu_shares {
            // runc's conversion of shares (2..262144) to weight (1..10000)
            let weight = 1 + ((sh.clamp(2, 262_144) - 2) * 9999) / 262_142;
            w.push(("cpu.weight", weight.to_string()));
        }
        if let Some(p) = l.pids {
            w.push((
                "pids.max",
                if p <= 0 { "max".into() } else { p.to_string() },
            ));
        }
    } else {
        if let Some(s) = l.memory_swap {
            w.push(("memory.memsw.limit_in_bytes", max(s, "-1")));
        }
        if let Some(m) = l.memory {
            w.push(("memory.limit_in_bytes", max(m, "-1")));
        }
        if let Some(c) = l.cpus {
            w.push(("cpu.cfs_period_us", "100000".into()));
            w.push(("cpu.cfs_quota_us", ((c * 100_000.0) as i64).to_string()));
        }
        if let Some(sh) = l.cpu_shares {
            w.push(("cpu.shares", sh.to_string()));
        }
        if let Some(p) = l.pids {
            w.push((
                "pids.max",
                if p <= 0 { "max".into() } else { p.to_string() },
            ));
        }
    }
    w
}

/// Applies `l` to a running container's cgroup.
pub fn set_limits(name: &str, leaves: &[PathBuf], l: &Limits) -> Result<(), Error> {
    let v2 = find(leaves, "cgroup.controllers").is_some()
        && find(leaves, "memory.limit_in_bytes").is_none();
    for (file, value) in limit_writes(v2, l) {
        let path = find(leaves, file).ok_or_else(|| Error::NoController {
            name: name.to_owned(),
            file,
        })?;
        std::fs::write(&path, &value).map_err(|source| Error::Write { path, source })?;
    }
    Ok(())
}

/// What `stats` prints for one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub memory: Option<u64>,
    pub memory_limit: Option<u64>,
    /// CPU time used, nanoseconds.
    pub cpu_ns: Option<u64>,
    pub pids: Option<u64>,
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn find(leaves: &[PathBuf], file: &str) -> Option<PathBuf> {
    leaves.iter().map(|l| l.join(file)).find(|p| p.exists())
}

/// Reads the container's usage from its cgroup files (v1 or v2).
pub fn usage(leaves: &[PathBuf]) -> Usage {
    let mut u = Usage::default();
    if let Some(p) = find(leaves, "memory.current") {
        u.memory = read_u64(&p);
        u.memory_limit = find(leaves, "memory.max").and_then(|p| read_u64(&p));
    } else if let Some(p) = find(leaves, "memory.usage_in_bytes") {
        u.memory = read_u64(&p);
        u.memory_limit = find(leaves, "memory.limit_in_bytes")
            .and_then(|p| read_u64(&p))
            .filter(|l| *l < (1 << 62));
    }
    if let Some(p) = find(leaves, "cpuacct.usage") {
        u.cpu_ns = read_u64(&p);
    } else if let Some(p) = find(leaves, "cpu.stat") {
        u.cpu_ns = std::fs::read_to_string(p).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse::<u64>().ok())
                .map(|us| us * 1000)
        });
    }
    u.pids = find(leaves, "pids.current").and_then(|p| read_u64(&p));
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_files_per_version() {
        let l = Limits {
            memory: Some(64 << 20),
            memory_swap: Some(128 << 20),
            cpus: Some(0.5),
            cpu_shares: Some(1024),
            pids: Some(0),
        };
        assert_eq!(
            limit_writes(false, &l),
            [
                ("memory.memsw.limit_in_bytes", "134217728".to_owned()),
                ("memory.limit_in_bytes", "67108864".into()),
                ("cpu.cfs_period_us", "100000".into()),
                ("cpu.cfs_quota_us", "50000".into()),
                ("cpu.shares", "1024".into()),
                ("pids.max", "max".into()),
            ]
        );
        assert_eq!(
            limit_writes(true, &l),
            [
                ("memory.max", "67108864".to_owned()),
                ("memory.swap.max", "67108864".into()),
                ("cpu.max", "50000 100000".into()),
                ("cpu.weight", "39".into()),
                ("pids.max", "max".into()),
            ]
        );
        let unlimited = Limits {
            memory: Some(-1),
            ..Limits::default()
        };
        assert_eq!(
            limit_writes(true, &unlimited),
            [("memory.max", "max".to_owned())]
        );
        assert!(limit_writes(false, &Limits::default()).is_empty());
    }

    #[test]
    fn v1_and_v2_files() {
        let tmp = tempfile::tempdir().unwrap();
        let v1 = tmp.path().join("memory");
        let fz = tmp.path().join("freezer");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::create_dir_all(&fz).unwrap();
        std::fs::write(v1.join("memory.usage_in_bytes"), "4096\n").unwrap();
        std::fs::write(v1.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(fz.join("freezer.state"), "THAWED\n").unwrap();
        let leaves = vec![v1.clone(), fz.clone()];
        let u = usage(&leaves);
        assert_eq!(u.memory, Some(4096));
        assert_eq!(u.memory_limit, None);
        assert!(!is_paused(&leaves));
        set_paused("c", &leaves, true).unwrap();
        assert!(is_paused(&leaves));
        let v2 = tmp.path().join("unified");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("cpu.stat"), "usage_usec 1500\nuser_usec 1\n").unwrap();
        std::fs::write(v2.join("cgroup.freeze"), "0\n").unwrap();
        let u = usage(std::slice::from_ref(&v2));
        assert_eq!(u.cpu_ns, Some(1_500_000));
        let e = set_paused("web-1", &[tmp.path().join("none")], true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("web-1"), "{e}");
    }
}
