//! Reaching a container's filesystem for `cp`, whether it runs or not.
//!
//! A running container is reached through `/proc/<pid>/root` of its init
//! ([`Root::container`]). A stopped container has no process, but it keeps
//! its writable layer (`ProjectPaths::rw_dir`: overlay `upper/` and
//! `work/`) until it is removed, and its image's layers are in the image
//! store: the same overlay the runtime builds at start is mounted again,
//! here, where only this process sees it:
//!
//! - `unshare(CLONE_NEWNS)` gives this process a mount namespace of its
//!   own, and `/` is made private in it (`MS_REC|MS_PRIVATE`) so that no
//!   mount made here propagates to the host's peer group. The mount is
//!   never in the host's mount table, and it cannot outlive the process:
//!   the namespace, and every mount in it, goes when its last task exits.
//!   A mount namespace belongs to a thread (`CLONE_NEWNS` implies
//!   `CLONE_FS`): threads that exist at the unshare stay in the host's, so
//!   it is done while the process is single-threaded (`rstack cp` starts
//!   no threads before; the copy's own threads are spawned after and
//!   inherit the namespace), which is checked rather than assumed.
//! - Copying *from* it: a read-only overlay with the writable layer's
//!   `upper/` as its top lower layer (`lowerdir=upper:top:...:bottom`, no
//!   upperdir: overlayfs reads whiteouts and opaque dirs of any layer), so
//!   nothing of the container changes.
//! - Copying *into* it: the container's own overlay (image layers under
//!   `upperdir=upper,workdir=work`, [`rootfs::mount_overlay`], exactly as
//!   the runtime mounts it at start). Two overlays writing one upper dir
//!   is undefined, so this holds the project lock (which `start`, `up`,
//!   `restart` take) and re-checks, under it, that the container is still
//!   stopped and that the supervisor is not about to restart it (its
//!   restart policy, during the backoff delay: the supervisor restarts
//!   without the lock).
//!
//! The read-only overlay is mounted here rather than in
//! `rstack_runtime::rootfs`, which only mounts a container's writable
//! rootfs: like its `mount_overlay`, when the options do not fit in one
//! page, the layers get short names (`l/0`, `l/1`, ...) in the scratch dir
//! and a forked child whose cwd is that dir mounts with relative paths.
//!
//! A stopped container's volumes, bind mounts and tmpfs are not mounted
//! (its record keeps the names of its volumes, not where they go): a copy
//! from or into them is refused ([`Root::hiding_mounts`], with the targets
//! its Compose service configures now, and the runtime's own mounts)
//! instead of showing or filling the empty mount points.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use nix::mount::{MntFlags, MsFlags};
use rstack_runtime::rootfs::{self, RootfsError};

use rstack_compose::Project;
use rstack_runtime::MountSpec;

use super::{Error, Root};
use crate::lifecycle::{self, Env};
use crate::restart::Policy;
use crate::state::{ContainerRecord, ProjectLock, ProjectPaths, Status};
use crate::supervisor::running_supervisor;

/// Mount data must stay below one page (as in `rstack_runtime::rootfs`).
const MOUNT_DATA_MAX: usize = 4000;

/// Where the runtime mounts something in every container (Docker's
/// default mounts and the per-container `/etc` files; see
/// `rstack_runtime::spec`).
const RUNTIME_MOUNTS: &[&str] = &[
    "/proc",
    "/dev",
    "/sys",
    "/etc/resolv.conf",
    "/etc/hostname",
    "/etc/hosts",
];

/// What the copy does with the container's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A container's filesystem, open for a copy. Dropping it unmounts a
/// stopped container's overlay, then releases the project lock (fields
/// drop in declaration order); [`Opened::close`] does the same and says
/// what failed.
#[derive(Debug)]
pub struct Opened {
    root: Root,
    mount: Option<Mount>,
    _lock: Option<ProjectLock>,
}

impl Opened {
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Unmounts (the root's fd closed first) and removes the scratch dir.
    pub fn close(self) -> Result<(), Error> {
        let Opened { root, mount, _lock } = self;
        drop(root);
        match mount {
            Some(mut m) => m.release(),
            None => Ok(()),
        }
    }
}

/// What the Compose file says now of the container's service: where it
/// mounts things (the runtime's own mounts, and its volumes, bind mounts,
/// tmpfs, secrets and configs) and whether the supervisor restarts it.
fn service_view(
    env: &Env,
    pp: &ProjectPaths,
    project: &Project,
    rec: &ContainerRecord,
) -> (Vec<String>, Policy) {
    let mut mounts: Vec<String> = RUNTIME_MOUNTS.iter().map(|m| (*m).to_owned()).collect();
    let Some(svc) = project.services.get(&rec.service) else {
        return (mounts, Policy::No);
    };
    match lifecycle::plan(env, pp, project, &rec.service, &rec.name, rec.number) {
        Ok(plan) => mounts.extend(plan.options.mounts.iter().map(|m| match m {
            MountSpec::Bind { target, .. } | MountSpec::Tmpfs { target, .. } => target.clone(),
        })),
        Err(e) => tracing::warn!(error = %e, container = %rec.name, "cp: the service's mounts"),
    }
    // A bad policy is reported by `up`; here it only means "may restart".
    let policy = Policy::of_service(&rec.service, svc).unwrap_or(Policy::Always);
    (mounts, policy)
}

/// Opens the filesystem of container `rec` of `project` (state in `pp`):
/// through its init while it runs, else its overlay, mounted privately,
/// where its service's mounts are refused.
pub fn open(
    env: &Env,
    pp: &ProjectPaths,
    project: &Project,
    rec: &ContainerRecord,
    access: Access,
) -> Result<Opened, Error> {
    if let Some(root) = running_root(rec)? {
        return Ok(Opened {
            root,
            mount: None,
            _lock: None,
        });
    }
    let (mounts, policy) = service_view(env, pp, project, rec);
    let (rec, lock) = match access {
        Access::Read => (rec.clone(), None),
        Access::Write => {
            let state = |source| Error::State {
                container: rec.name.clone(),
                source,
            };
            let lock = ProjectLock::acquire(pp).map_err(state)?;
            let now = pp
                .container(&rec.name)
                .map_err(state)?
                .ok_or_else(|| Error::Gone {
                    container: rec.name.clone(),
                })?;
            // Started while we waited for the lock.
            if let Some(root) = running_root(&now)? {
                return Ok(Opened {
                    root,
                    mount: None,
                    _lock: None,
                });
            }
            if let Some(status) = busy(&now, policy, running_supervisor(pp).is_some()) {
                return Err(Error::Busy {
                    container: now.name.clone(),
                    status,
                });
            }
            (now, Some(lock))
        }
    };
    let rw = pp.rw_dir(&rec.name);
    if !rw.join("upper").is_dir() || !rw.join("work").is_dir() {
        return Err(Error::NoFilesystem {
            container: rec.name.clone(),
        });
    }
    let image_err = |source: Option<rstack_images::Error>| Error::Image {
        container: rec.name.clone(),
        image: rec.image_id.clone(),
        source: source.map(Box::new),
    };
    let image = rstack_images::Store::open(&env.layout.root)
        .and_then(|s| s.lookup(&rec.image_id))
        .map_err(|e| image_err(Some(e)))?
        .ok_or_else(|| image_err(None))?;
    enter_private_mount_ns(Path::new("/proc/self/task"))?;
    let mount = Mount::new(&rec.name, &image.layer_dirs, &rw, access)?;
    let root = Root::dir(&mount.target, &rec.name)?.hiding_mounts(&mounts);
    Ok(Opened {
        root,
        mount: Some(mount),
        _lock: lock,
    })
}

/// Why a stopped container's writable layer must not be written now, if
/// it must not: the project lock keeps `up`, `start`, `restart` out, but
/// the supervisor creates, removes and restarts containers without it.
fn busy(rec: &ContainerRecord, policy: Policy, supervised: bool) -> Option<&'static str> {
    match rec.status {
        Status::Created => None,
        Status::Exited
            if supervised
                && policy.should_restart(rec.exit_code, rec.restart_count, rec.user_stopped) =>
        {
            Some("about to be restarted by its restart policy")
        }
        Status::Exited => None,
        Status::Creating => Some("being created"),
        Status::Removing => Some("being removed"),
        Status::Restarting => Some("restarting"),
        // recorded running, its process gone: the supervisor has yet to
        // see it exit (and may restart it)
        Status::Running => Some("stopping"),
    }
}

/// The root of `rec`'s init if it is alive.
fn running_root(rec: &ContainerRecord) -> Result<Option<Root>, Error> {
    let (Some(pid), Some(start)) = (rec.pid, rec.start_time) else {
        return Ok(None);
    };
    match Root::container(pid, start, &rec.name) {
        Ok(root) => Ok(Some(root)),
        Err(Error::NotRunning { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether this process already made its mount namespace private.
static PRIVATE_NS: AtomicBool = AtomicBool::new(false);

/// Moves this process into a mount namespace of its own, private from
/// `/` down; once. `tasks` is `/proc/self/task` (a parameter for tests).
fn enter_private_mount_ns(tasks: &Path) -> Result<(), Error> {
    if PRIVATE_NS.load(Ordering::SeqCst) {
        return Ok(());
    }
    let threads = count_entries(tasks).map_err(|source| Error::PrivateMounts {
        what: "cannot count this process's threads",
        source,
    })?;
    if threads != 1 {
        return Err(Error::PrivateMounts {
            what: "the process is not single-threaded",
            source: io::Error::other(format!(
                "{threads} threads: a mount namespace is per thread"
            )),
        });
    }
    unshare_private_mounts().map_err(|(what, e)| Error::PrivateMounts {
        what,
        source: e.into(),
    })?;
    PRIVATE_NS.store(true, Ordering::SeqCst);
    Ok(())
}

/// The calling thread gets a mount namespace of its own, `/` and below
/// made private so nothing mounted there propagates to the host. The
/// error says which step failed.
fn unshare_private_mounts() -> Result<(), (&'static str, nix::Error)> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| ("unshare(CLONE_NEWNS)", e))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| ("make / private", e))
}

fn count_entries(dir: &Path) -> io::Result<usize> {
    Ok(std::fs::read_dir(dir)?.count())
}

/// A stopped container's overlay, mounted at `target` = `dir/rootfs`
/// (`dir`: a scratch dir under `$TMPDIR`, `dir/l`: the short layer links
/// when used).
#[derive(Debug)]
struct Mount {
    container: String,
    dir: PathBuf,
    target: PathBuf,
    mounted: bool,
}

/// Scratch dirs made by this process (a process may open several containers).
static SCRATCH: AtomicU32 = AtomicU32::new(0);

impl Mount {
    fn new(container: &str, layers: &[PathBuf], rw: &Path, access: Access) -> Result<Mount, Error> {
        let mount_err = |source| Error::Mount {
            container: container.to_owned(),
            source,
        };
        let dir = scratch_dir().map_err(mount_err)?;
        let mut m = Mount {
            container: container.to_owned(),
            target: dir.join("rootfs"),
            dir,
            mounted: false,
        };
        let mounted = match access {
            Access::Write => rootfs::mount_overlay(&m.dir, layers, Some(rw), false).map(drop),
            Access::Read => mount_read_only(&m.dir, &m.target, &rw.join("upper"), layers),
        };
        match mounted {
            Ok(()) => {
                m.mounted = true;
                Ok(m)
            }
            Err(e) => {
                // Nothing is mounted: the scratch dir only goes.
                let _ = m.release();
                Err(mount_err(e))
            }
        }
    }

    /// Unmounts and removes the scratch dir. Nothing is removed
    /// recursively: a dir that is still a mount point stays.
    fn release(&mut self) -> Result<(), Error> {
        if self.mounted {
            // A plain unmount, not a lazy one: a write's overlay must be
            // gone before the lock is released and the container may start.
            nix::mount::umount2(&self.target, MntFlags::empty()).map_err(|e| Error::Unmount {
                container: self.container.clone(),
                target: self.target.display().to_string(),
                source: e.into(),
            })?;
            self.mounted = false;
        }
        let links = self.dir.join("l");
        if let Ok(entries) = std::fs::read_dir(&links) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
            let _ = std::fs::remove_dir(&links);
        }
        let _ = std::fs::remove_dir(&self.target);
        let _ = std::fs::remove_dir(&self.dir);
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            tracing::warn!(error = %e, "cp: unmount");
        }
    }
}

/// A new empty dir `$TMPDIR/rstack-cp-<pid>-<n>` (mode 0700).
fn scratch_dir() -> Result<PathBuf, RootfsError> {
    use std::os::unix::fs::DirBuilderExt;
    let tmp = std::env::temp_dir();
    loop {
        let n = SCRATCH.fetch_add(1, Ordering::SeqCst);
        let dir = tmp.join(format!("rstack-cp-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            // Left by a killed process that had our pid: take the next.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => {}
            Err(source) => return Err(RootfsError::CreateDir { path: dir, source }),
        }
    }
}

/// The lower dirs of a stopped container's read-only view, top first:
/// its writable layer's upper dir over the image's layers (given bottom
/// to top, as the image store lists them).
fn read_only_lowers(upper: &Path, layers: &[PathBuf]) -> Vec<PathBuf> {
    std::iter::once(upper.to_owned())
        .chain(layers.iter().rev().cloned())
        .collect()
}

/// The overlay mount data of `lowers` (top first): absolute paths when
/// they fit in a page, else `None` and [`linked_data`] is used.
fn direct_data(lowers: &[PathBuf]) -> Option<String> {
    let mut data = String::from("lowerdir=");
    for (i, l) in lowers.iter().enumerate() {
        if i > 0 {
            data.push(':');
        }
        data.push_str(&l.to_string_lossy());
    }
    (data.len() <= MOUNT_DATA_MAX).then_some(data)
}

/// The overlay mount data naming `n` lowers by their links `l/0`..`l/n-1`,
/// relative to the scratch dir.
fn linked_data(n: usize) -> String {
    let mut data = String::from("lowerdir=");
    for i in 0..n {
        if i > 0 {
            data.push(':');
        }
        let _ = write!(data, "l/{i}");
    }
    data
}

/// Mounts the read-only overlay of `upper` over `layers` at `target`.
fn mount_read_only(
    dir: &Path,
    target: &Path,
    upper: &Path,
    layers: &[PathBuf],
) -> Result<(), RootfsError> {
    if layers.is_empty() {
        return Err(RootfsError::NoLayers);
    }
    let lowers = read_only_lowers(upper, layers);
    for l in &lowers {
        if !l.is_dir() {
            return Err(RootfsError::MissingLayer { path: l.clone() });
        }
    }
    std::fs::create_dir(target).map_err(|source| RootfsError::CreateDir {
        path: target.to_owned(),
        source,
    })?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let mount_err = |source| RootfsError::Mount {
        target: target.to_owned(),
        layers: lowers.len(),
        source,
    };
    if let Some(data) = direct_data(&lowers) {
        return nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            flags,
            Some(data.as_str()),
        )
        .map_err(mount_err);
    }
    let links = dir.join("l");
    std::fs::create_dir(&links).map_err(|source| RootfsError::CreateDir {
        path: links.clone(),
        source,
    })?;
    for (i, l) in lowers.iter().enumerate() {
        let link = links.join(i.to_string());
        std::os::unix::fs::symlink(l, &link)
            .map_err(|source| RootfsError::Write { path: link, source })?;
    }
    let data = linked_data(lowers.len());
    if data.len() > MOUNT_DATA_MAX {
        return Err(mount_err(nix::Error::E2BIG));
    }
    rootfs::mount_from_dir(dir, target, flags, &data).map_err(mount_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_view_is_upper_then_top_layer_first() {
        let layers: Vec<PathBuf> = ["/s/bottom", "/s/mid", "/s/top"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let lowers = read_only_lowers(Path::new("/p/rw/web/upper"), &layers);
        assert_eq!(
            direct_data(&lowers).unwrap(),
            "lowerdir=/p/rw/web/upper:/s/top:/s/mid:/s/bottom"
        );
        // an image of one layer still gives the two lowers overlayfs needs
        // without an upperdir
        assert_eq!(read_only_lowers(Path::new("/u"), &layers[..1]).len(), 2);
    }

    #[test]
    fn long_layer_lists_use_short_links() {
        let long: Vec<PathBuf> = (0..200)
            .map(|i| PathBuf::from(format!("/var/lib/rstack/layers/{:064}/diff", i)))
            .collect();
        assert!(direct_data(&long).is_none());
        let data = linked_data(long.len());
        assert!(data.starts_with("lowerdir=l/0:l/1:l/2:"), "{data}");
        assert!(data.ends_with(":l/199"), "{data}");
        assert!(data.len() <= MOUNT_DATA_MAX);
    }

    #[test]
    fn writes_wait_for_a_stop_that_lasts() {
        let mut rec = ContainerRecord::new("p-web-1", "web", 1);
        rec.status = Status::Exited;
        rec.exit_code = Some(1);
        assert_eq!(busy(&rec, Policy::No, true), None);
        // the supervisor may restart it after the backoff delay...
        assert_eq!(
            busy(&rec, Policy::Always, true),
            Some("about to be restarted by its restart policy")
        );
        // ...unless there is none, the user stopped it, or the policy says no
        assert_eq!(busy(&rec, Policy::Always, false), None);
        rec.exit_code = Some(0);
        assert_eq!(busy(&rec, Policy::OnFailure { max: None }, true), None);
        rec.user_stopped = true;
        assert_eq!(busy(&rec, Policy::Always, true), None);
        rec.status = Status::Created;
        assert_eq!(busy(&rec, Policy::Always, true), None);
        for s in [
            Status::Creating,
            Status::Running,
            Status::Restarting,
            Status::Removing,
        ] {
            rec.status = s;
            assert!(busy(&rec, Policy::No, false).is_some(), "{s:?}");
        }
    }

    #[test]
    fn threads_are_counted_from_the_task_dir() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("1")).unwrap();
        assert_eq!(count_entries(t.path()).unwrap(), 1);
        std::fs::create_dir(t.path().join("2")).unwrap();
        // not entered: a second thread is refused before any unshare
        let e = enter_private_mount_ns(t.path()).unwrap_err();
        assert!(e.to_string().contains("not single-threaded"), "{e}");
        assert!(!PRIVATE_NS.load(Ordering::SeqCst));
    }

    #[test]
    fn hidden_mounts_refuse_paths_at_and_under_them() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("data/sub")).unwrap();
        std::fs::create_dir_all(t.path().join("srv")).unwrap();
        std::os::unix::fs::symlink("/data/sub", t.path().join("srv/link")).unwrap();
        let root = Root::dir(t.path(), "c").unwrap().hiding_mounts(&[
            "/data".into(),
            "etc/hosts".into(),
            "/".into(),
        ]);
        assert_eq!(root.hidden_mount("/data", false), Some("/data"));
        assert_eq!(root.hidden_mount("/data/sub/x", false), Some("/data"));
        assert_eq!(root.hidden_mount("/etc/hosts", false), Some("/etc/hosts"));
        assert_eq!(root.hidden_mount("/database", false), None);
        assert_eq!(root.hidden_mount("/srv", false), None);
        // through a symlinked parent; a final link only when followed
        assert_eq!(root.hidden_mount("/srv/link/f", false), Some("/data"));
        assert_eq!(root.hidden_mount("/srv/link", false), None);
        assert_eq!(root.hidden_mount("/srv/link", true), Some("/data"));
        assert_eq!(root.hidden_mount("/srv/link/", false), Some("/data"));
        // `/` itself is never a hidden mount
        assert_eq!(root.hidden_mount("/", false), None);
    }

    /// Mounts a read-only view over 150 long layer paths (the short-link
    /// path) in a private mount namespace of a fresh thread, and reads
    /// through it: whiteouts of the upper dir hide the layers' files.
    #[test]
    #[ignore = "needs root and overlayfs: cargo test -p rstack-stack --lib -- --ignored"]
    fn read_only_overlay_over_many_layers() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("x".repeat(60));
        let layers: Vec<PathBuf> = (0..150)
            .map(|i| {
                let d = deep.join(format!("{i:040}"));
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join(format!("f{i}")), format!("{i}\n")).unwrap();
                d
            })
            .collect();
        std::fs::write(layers[0].join("shared"), "bottom\n").unwrap();
        std::fs::write(layers[149].join("shared"), "top\n").unwrap();
        std::fs::write(layers[0].join("gone"), "x\n").unwrap();
        let upper = t.path().join("upper");
        std::fs::create_dir(&upper).unwrap();
        std::fs::write(upper.join("mine"), "rw\n").unwrap();
        nix::sys::stat::mknod(
            &upper.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        assert!(direct_data(&read_only_lowers(&upper, &layers)).is_none());
        let scratch = t.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        let target = scratch.join("rootfs");
        std::thread::scope(|s| {
            s.spawn(|| {
                unshare_private_mounts().unwrap();
                mount_read_only(&scratch, &target, &upper, &layers).unwrap();
                let read = |p: &str| std::fs::read_to_string(target.join(p)).unwrap();
                assert_eq!(read("shared"), "top\n");
                assert_eq!(read("f0"), "0\n");
                assert_eq!(read("f149"), "149\n");
                assert_eq!(read("mine"), "rw\n");
                assert!(!target.join("gone").exists());
                assert!(std::fs::write(target.join("new"), "x").is_err());
                nix::mount::umount2(&target, MntFlags::empty()).unwrap();
            })
            .join()
            .unwrap();
        });
        // never visible outside the thread's namespace
        assert!(!target.join("mine").exists());
    }
}
