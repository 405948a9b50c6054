//! Where the container's cgroup lives, what to clean up, and how to tell an
//! OOM kill.
//!
//! cgroups group processes for resource limits. On cgroup v2 there is one
//! tree; on v1 and "hybrid" hosts (v1 controllers plus an empty cgroup2
//! mount) every controller has its own tree and libcgroups' v1 manager
//! creates the same path in each. A daemonless runtime nests its containers
//! under the caller's own cgroup (`<own>/rstack/<id>` on v1; next to it on
//! v2, see [`default_parent`]), so they count
//! against whatever limits the caller lives under and need no delegation.
//! libcgroups removes only the leaf; the parents we created (`rstack/`, and
//! on v1 the caller's path in controllers where the caller sits at the root)
//! are recorded before creation and removed afterwards when empty.
//!
//! OOM kills: v2 counts them in `memory.events` (`oom_kill N`); v1 in
//! `memory.oom_control` (`oom_kill N`, kernel >= 4.13), else a non-zero
//! `memory.failcnt` with a SIGKILL exit.

use std::path::{Path, PathBuf};

/// How the host's cgroups are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Pure cgroup v2.
    Unified,
    /// cgroup v1 controllers (with or without an empty cgroup2 mount).
    Legacy,
}

/// A cgroup hierarchy mounted on this host.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    /// `cgroup2`, or the v1 controllers (e.g. `cpu,cpuacct`).
    pub controllers: Vec<String>,
}

/// The cgroup of one container and the parents its creation will add.
#[derive(Debug, Clone)]
pub struct CgroupPlan {
    pub layout: Layout,
    /// Absolute path inside each hierarchy (e.g. `/x/rstack/<id>`): the spec's `cgroupsPath`.
    pub path: String,
    /// Directories (in every hierarchy) that do not exist yet, deepest last.
    pub missing_dirs: Vec<PathBuf>,
    /// With the default parent: the dirs between the leaf and the caller's
    /// own cgroup in each hierarchy (e.g. `rstack/`), deepest first. They
    /// exist only for rstack's containers, so the last container out removes
    /// them even if another one created them.
    pub shared_parents: Vec<PathBuf>,
    hierarchies: Vec<Hierarchy>,
}

/// A host-wide exclusive lock (flock on the first hierarchy's root dir)
/// held while rstack creates container cgroups or removes empty parents,
/// so that one process never removes a parent another is creating under.
#[derive(Debug)]
pub struct CgroupLock {
    _flock: Option<rstack_sys::lock::LockGuard>,
}

/// Takes the [`CgroupLock`] (a no-op lock when cgroups are not mounted).
pub fn lock() -> CgroupLock {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let flock = hierarchies(&mountinfo).first().and_then(|h| {
        rstack_sys::lock::lock_existing(&h.mount_point, rstack_sys::lock::Mode::Exclusive).ok()
    });
    CgroupLock { _flock: flock }
}

/// Starts, on a thread, the wait the kernel makes the first cgroup
/// migration after a quiet spell pay, so that it runs alongside the rest of
/// the container's set-up instead of in front of libcgroups' first write.
///
/// Every write of a pid to a `cgroup.procs` file takes the kernel's global
/// `cgroup_threadgroup_rwsem` for writing; when no migration happened in
/// the last grace period, taking it waits for a full RCU grace period
/// (`rcu_sync_enter`: 7-12 ms measured on the 2-core test VM), and the next
/// migrations within about a grace period are cheap (~0.1 ms). libcgroups
/// writes the container's first process into each hierarchy; a v2 host's
/// `clone3(CLONE_INTO_CGROUP)` avoids the lock, but libcontainer forks with
/// plain `clone` and v1 hierarchies have no such flag. The thread writes
/// this process's own pid to the `cgroup.procs` of the cgroup it already
/// is in (cgroup2's if mounted, else the first v1 hierarchy's): a
/// migration that moves nothing. Join the handle when the container is up.
pub(crate) fn prime_attach_lock() -> Option<std::thread::JoinHandle<()>> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let file = own_procs_file(&mountinfo, &own)?;
    std::thread::Builder::new()
        .name("cgroup-prime".into())
        .spawn(move || {
            // Best effort: a failure only means no head start.
            let _ = std::fs::write(&file, std::process::id().to_string());
        })
        .ok()
}

/// The `cgroup.procs` of the caller's own cgroup, in cgroup2 if mounted,
/// else in the first v1 hierarchy.
fn own_procs_file(mountinfo: &str, proc_self_cgroup: &str) -> Option<PathBuf> {
    let all = hierarchies(mountinfo);
    let h = all
        .iter()
        .find(|h| h.controllers == ["cgroup2"])
        .or_else(|| all.iter().find(|h| !h.controllers.is_empty()))?;
    let own = own_in(proc_self_cgroup, &h.controllers)?;
    Some(
        h.mount_point
            .join(own.trim_start_matches('/'))
            .join("cgroup.procs"),
    )
}

/// Removes cgroup dir `dir` if it is empty; one already gone, or still
/// in use by other containers (`EBUSY`/`ENOTEMPTY`), is left alone.
pub(crate) fn remove_dir_if_unused(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir(dir) {
        Err(e)
            if !matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::EBUSY | libc::ENOTEMPTY)
            ) =>
        {
            Err(e)
        }
        _ => Ok(()),
    }
}

/// The caller's cgroup in the hierarchy with these controllers.
fn own_in(proc_self_cgroup: &str, controllers: &[String]) -> Option<String> {
    proc_self_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let _id = f.next()?;
        let ctrls = f.next()?;
        let path = f.next()?;
        let matches = if controllers == ["cgroup2"] {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| controllers.iter().any(|h| h == c))
        };
        matches.then(|| path.to_owned())
    })
}

/// Ancestors of `leaf` (absolute cgroup path), deepest first, that are not
/// the caller's own cgroup `own` nor one of its ancestors.
pub fn chain_to_own(leaf: &str, own: &str) -> Vec<String> {
    let own = own.trim_end_matches('/');
    let is_own_or_above = |p: &str| p.is_empty() || own == p || own.starts_with(&format!("{p}/"));
    let mut out = Vec::new();
    let mut cur = leaf.trim_end_matches('/');
    while let Some((parent, _)) = cur.rsplit_once('/') {
        if is_own_or_above(parent) {
            break;
        }
        out.push(parent.to_owned());
        cur = parent;
    }
    out
}

/// File in the container dir listing the cgroup dirs its creation added.
pub(crate) const CGROUP_RECORD: &str = "cgroup-dirs.json";

/// The cgroup dirs recorded at creation in `container_dir` (empty if none).
pub(crate) fn recorded_cgroup_dirs(container_dir: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read(container_dir.join(CGROUP_RECORD))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Reads the cgroup mounts from `mountinfo` text.
pub fn hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split_whitespace();
        let fstype = r.next().unwrap_or("");
        let _source = r.next();
        let super_opts = r.next().unwrap_or("");
        let Some(mount_point) = left.split_whitespace().nth(4) else {
            continue;
        };
        let controllers: Vec<String> = match fstype {
            "cgroup2" => vec!["cgroup2".to_owned()],
            "cgroup" => super_opts
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent"))
                .map(str::to_owned)
                .collect(),
            _ => continue,
        };
        out.push(Hierarchy {
            mount_point: PathBuf::from(mount_point.replace("\\040", " ")),
            controllers,
        });
    }
    out
}

/// The caller's own cgroup path: on v2 the `0::` entry; on v1 the memory
/// controller's (where limits bite), else the first named controller's.
pub fn own_cgroup(proc_self_cgroup: &str, layout: Layout) -> String {
    let entries: Vec<(&str, &str)> = proc_self_cgroup
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let _id = f.next()?;
            Some((f.next()?, f.next()?))
        })
        .collect();
    let pick = match layout {
        Layout::Unified => entries.iter().find(|(c, _)| c.is_empty()),
        Layout::Legacy => entries
            .iter()
            .find(|(c, _)| c.split(',').any(|x| x == "memory"))
            .or_else(|| entries.iter().find(|(c, _)| !c.is_empty())),
    };
    pick.map(|(_, p)| p.to_string())
        .unwrap_or_else(|| "/".to_owned())
}

/// Where containers go by default, given the caller's own cgroup.
///
/// v1: `<own>/rstack` — each v1 hierarchy accepts processes at any level.
/// v2: the "no internal processes" rule forbids enabling controllers for
/// children of a cgroup that holds processes (ours does), so the
/// containers go next to the caller: `<parent of own>/rstack` (`/rstack`
/// when the caller sits at the root).
pub fn default_parent(own: &str, layout: Layout) -> String {
    let own = own.trim_end_matches('/');
    match layout {
        Layout::Legacy => format!("{own}/rstack"),
        Layout::Unified => match own.rsplit_once('/') {
            Some((parent, _)) if !parent.is_empty() => format!("{parent}/rstack"),
            _ => "/rstack".to_owned(),
        },
    }
}

/// Detects the layout of the host (v2 if /sys/fs/cgroup is cgroup2).
pub fn detect_layout() -> Layout {
    match libcgroups::common::get_cgroup_setup() {
        Ok(libcgroups::common::CgroupSetup::Unified) => Layout::Unified,
        _ => Layout::Legacy,
    }
}

impl CgroupPlan {
    /// Plans `<parent>/<id>`; `parent` defaults to `<caller's cgroup>/rstack`.
    pub fn new(parent: Option<&str>, id: &str) -> CgroupPlan {
        let layout = detect_layout();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let all = hierarchies(&mountinfo);
        let hierarchies: Vec<Hierarchy> = all
            .into_iter()
            .filter(|h| match layout {
                Layout::Unified => h.controllers == ["cgroup2"],
                Layout::Legacy => {
                    h.controllers != ["cgroup2"]
                        && !h.controllers.iter().any(|c| c.starts_with("name="))
                }
            })
            .collect();
        let default = parent.is_none();
        let parent = parent
            .map(str::to_owned)
            .unwrap_or_else(|| default_parent(&own_cgroup(&own, layout), layout));
        let path = format!("{}/{id}", parent.trim_end_matches('/'));
        let mut shared_parents = Vec::new();
        if default {
            for h in &hierarchies {
                let own_here = own_in(&own, &h.controllers).unwrap_or_else(|| "/".to_owned());
                for p in chain_to_own(&path, &own_here) {
                    shared_parents.push(h.mount_point.join(p.trim_start_matches('/')));
                }
            }
        }
        let mut missing_dirs = Vec::new();
        for h in &hierarchies {
            let mut dir = h.mount_point.clone();
            for comp in path.split('/').filter(|c| !c.is_empty()) {
                dir.push(comp);
                if !dir.exists() {
                    missing_dirs.push(dir.clone());
                }
            }
        }
        CgroupPlan {
            layout,
            path,
            missing_dirs,
            shared_parents,
            hierarchies,
        }
    }

    fn dir_of(&self, controller: &str) -> Option<PathBuf> {
        self.hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.mount_point.join(self.path.trim_start_matches('/')))
    }

    /// The directory holding the memory controller's files.
    pub fn memory_dir(&self) -> Option<PathBuf> {
        match self.layout {
            Layout::Unified => self.dir_of("cgroup2"),
            Layout::Legacy => self.dir_of("memory"),
        }
    }

    /// The directory holding the cpu controller's files.
    pub fn cpu_dir(&self) -> Option<PathBuf> {
        match self.layout {
            Layout::Unified => self.dir_of("cgroup2"),
            Layout::Legacy => self.dir_of("cpu"),
        }
    }

    /// The directory holding the pids controller's files.
    pub fn pids_dir(&self) -> Option<PathBuf> {
        match self.layout {
            Layout::Unified => self.dir_of("cgroup2"),
            Layout::Legacy => self.dir_of("pids"),
        }
    }

    /// Whether swap can be limited here: the nearest existing ancestor of
    /// the container's memory cgroup has the swap limit file.
    pub fn swap_supported(&self) -> bool {
        let file = match self.layout {
            Layout::Unified => "memory.swap.max",
            Layout::Legacy => "memory.memsw.limit_in_bytes",
        };
        let Some(mut dir) = self.memory_dir() else {
            return false;
        };
        while !dir.exists() {
            if !dir.pop() {
                return false;
            }
        }
        dir.join(file).exists()
    }

    /// Which controllers this host has for the limits asked, to fail
    /// clearly rather than silently drop one.
    pub fn missing_controller(&self, controller: &str) -> bool {
        match self.layout {
            Layout::Unified => {
                let root = self.hierarchies.first().map(|h| h.mount_point.clone());
                let ctrls = root
                    .map(|r| {
                        std::fs::read_to_string(r.join("cgroup.controllers")).unwrap_or_default()
                    })
                    .unwrap_or_default();
                !ctrls.split_whitespace().any(|c| c == controller)
            }
            Layout::Legacy => self.dir_of(controller).is_none(),
        }
    }

    /// Whether the container was OOM-killed (read before the cgroup goes).
    pub fn oom_killed(&self) -> bool {
        let Some(dir) = self.memory_dir() else {
            return false;
        };
        let counter = |file: &str, key: &str| -> Option<u64> {
            std::fs::read_to_string(dir.join(file))
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        };
        match self.layout {
            Layout::Unified => counter("memory.events", "oom_kill ").is_some_and(|n| n > 0),
            Layout::Legacy => match counter("memory.oom_control", "oom_kill ") {
                Some(n) => n > 0,
                None => std::fs::read_to_string(dir.join("memory.failcnt"))
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0),
            },
        }
    }

    /// Removes the directories this plan created and the shared parents
    /// (deepest first), under [`lock`]. Dirs still in use by other
    /// containers (`EBUSY`/`ENOTEMPTY`) are left alone.
    pub fn remove_created(&self) -> Vec<(PathBuf, std::io::Error)> {
        let _lock = lock();
        let mut errors = Vec::new();
        let mut dirs: Vec<&PathBuf> = self.missing_dirs.iter().rev().collect();
        dirs.extend(self.shared_parents.iter());
        // deepest first across both lists
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        dirs.dedup();
        for dir in dirs {
            if let Err(e) = remove_dir_if_unused(dir) {
                errors.push((dir.clone(), e));
            }
        }
        errors
    }

    /// What the container sees at `/sys/fs/cgroup` (see
    /// [`crate::spec::CgroupView`]): on v1 its own directory of each
    /// controller hierarchy, under the hierarchy's name and, for
    /// co-mounted controllers (`cpu,cpuacct`), under each controller's.
    pub fn container_view(&self) -> crate::spec::CgroupView {
        match self.layout {
            Layout::Unified => crate::spec::CgroupView::Namespaced,
            Layout::Legacy => {
                let mut binds: Vec<(String, PathBuf)> = Vec::new();
                for h in &self.hierarchies {
                    let dir = h.mount_point.join(self.path.trim_start_matches('/'));
                    let mut names: Vec<String> = h
                        .mount_point
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .into_iter()
                        .collect();
                    names.extend(h.controllers.iter().cloned());
                    for name in names {
                        if !binds.iter().any(|(n, _)| *n == name) {
                            binds.push((name, dir.clone()));
                        }
                    }
                }
                crate::spec::CgroupView::Binds(binds)
            }
        }
    }

    /// Every directory of this container's cgroup (one per hierarchy).
    pub fn leaf_dirs(&self) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|h| h.mount_point.join(self.path.trim_start_matches('/')))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const MOUNTINFO: &str = "\
25 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 29 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
31 29 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
32 29 0:28 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
33 29 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn parses_hierarchies() {
        let h = hierarchies(MOUNTINFO);
        assert_eq!(h.len(), 4);
        assert_eq!(h[0].mount_point, Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(h[0].controllers, ["cpu"]);
        assert_eq!(h[3].controllers, ["cgroup2"]);
    }

    #[test]
    fn chains_stop_at_the_callers_cgroup() {
        assert_eq!(chain_to_own("/a/b/rstack/id", "/a/b"), ["/a/b/rstack"]);
        assert_eq!(
            chain_to_own("/a/b/rstack/id", "/"),
            ["/a/b/rstack", "/a/b", "/a"]
        );
        assert_eq!(chain_to_own("/u/rstack/id", "/u/s.scope"), ["/u/rstack"]);
        assert_eq!(chain_to_own("/rstack/id", "/"), ["/rstack"]);
        let text = "4:memory:/p/x\n1:cpu,cpuacct:/\n0::/\n";
        assert_eq!(own_in(text, &["memory".into()]).as_deref(), Some("/p/x"));
        assert_eq!(own_in(text, &["cpuacct".into()]).as_deref(), Some("/"));
        assert_eq!(own_in(text, &["cgroup2".into()]).as_deref(), Some("/"));
    }

    #[test]
    fn default_parents() {
        assert_eq!(
            default_parent("/process_api/abc", Layout::Legacy),
            "/process_api/abc/rstack"
        );
        assert_eq!(default_parent("/", Layout::Legacy), "/rstack");
        assert_eq!(default_parent("/", Layout::Unified), "/rstack");
        assert_eq!(
            default_parent("/user.slice/s.scope", Layout::Unified),
            "/user.slice/rstack"
        );
        assert_eq!(default_parent("/init.scope", Layout::Unified), "/rstack");
    }

    #[test]
    fn the_primer_moves_the_caller_where_it_is() {
        let own = "4:memory:/p/x\n1:cpu:/q\n0::/u/s.scope\n";
        assert_eq!(
            own_procs_file(MOUNTINFO, own).as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified/u/s.scope/cgroup.procs"))
        );
        let v1_only: String = MOUNTINFO
            .lines()
            .take(3)
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            own_procs_file(&v1_only, own).as_deref(),
            Some(Path::new("/sys/fs/cgroup/cpu/q/cgroup.procs"))
        );
        assert_eq!(own_procs_file("", own), None);
    }

    #[test]
    fn own_cgroup_prefers_memory_on_v1() {
        let text = "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";
        assert_eq!(own_cgroup(text, Layout::Legacy), "/process_api/abc");
        assert_eq!(
            own_cgroup("0::/user.slice/x.scope\n", Layout::Unified),
            "/user.slice/x.scope"
        );
        assert_eq!(own_cgroup("", Layout::Unified), "/");
    }
}
