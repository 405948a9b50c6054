//! The container's root filesystem: an overlayfs whose lower layers are the
//! image's unpacked layer dirs (read-only, shared by every container of the
//! image) and whose upper/work dirs belong to this container alone.
//!
//! The overlay mount options travel in one page (4 KiB) of mount data, so
//! 100+ long layer paths do not fit. Like Docker's overlay2 driver, we then
//! name each layer by a short symlink (`l/0`, `l/1`, ...) in the container
//! dir and mount from a forked child whose cwd is that dir, with relative
//! lowerdirs. The fork keeps the chdir out of this (multi-threaded) process.
//!
//! Also here: the per-container /etc/hostname, /etc/hosts and
//! /etc/resolv.conf, which are bind-mounted over the image's files.
//!
//! Container dir layout (`<containers root>/<id>/`):
//! `upper/`, `work/` (overlay), `rootfs/` (the merged mount point),
//! `l/` (layer links, only with long layer lists), `etc/` (hosts, hostname,
//! resolv.conf), `config.json` (the OCI bundle's spec).

use std::ffi::CString;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::options::DnsConfig;

/// Mount data must stay below one page.
const MOUNT_DATA_MAX: usize = 4000;

/// A rootfs step that failed.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("layer directory {path} does not exist")]
    MissingLayer { path: PathBuf },
    #[error("the image has no layers")]
    NoLayers,
    #[error("cannot create {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot mount the overlay rootfs at {target} ({layers} layers)")]
    Mount {
        target: PathBuf,
        layers: usize,
        #[source]
        source: nix::Error,
    },
    #[error("cannot unmount {target}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot remove {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn mkdir(path: &Path) -> Result<(), RootfsError> {
    std::fs::create_dir_all(path).map_err(|source| RootfsError::CreateDir {
        path: path.to_owned(),
        source,
    })
}

fn write(path: &Path, content: &str) -> Result<(), RootfsError> {
    std::fs::write(path, content).map_err(|source| RootfsError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Builds the overlay mount data with absolute paths (top layer first).
fn overlay_data(layers: &[PathBuf], upper: &Path, work: &Path) -> String {
    let mut data = String::from("lowerdir=");
    for (i, layer) in layers.iter().rev().enumerate() {
        if i > 0 {
            data.push(':');
        }
        data.push_str(&layer.to_string_lossy());
    }
    let _ = write!(
        data,
        ",upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    data
}

/// Mounts the overlay rootfs of `container_dir` over `layers` (bottom to
/// top); `volatile` (a throw-away upper layer) skips its syncs, where the
/// kernel has the option (5.10). Returns the merged mount point.
pub fn mount_overlay(
    container_dir: &Path,
    layers: &[PathBuf],
    rw_dir: Option<&Path>,
    volatile: bool,
) -> Result<PathBuf, RootfsError> {
    if layers.is_empty() {
        return Err(RootfsError::NoLayers);
    }
    for layer in layers {
        if !layer.is_dir() {
            return Err(RootfsError::MissingLayer {
                path: layer.clone(),
            });
        }
    }
    let rw = rw_dir.unwrap_or(container_dir);
    let upper = rw.join("upper");
    let work = rw.join("work");
    let target = container_dir.join("rootfs");
    for d in [&upper, &work, &target] {
        mkdir(d)?;
    }
    let data = overlay_data(layers, &upper, &work);
    let mount_err = |source| RootfsError::Mount {
        target: target.clone(),
        layers: layers.len(),
        source,
    };
    if data.len() + ",volatile".len() <= MOUNT_DATA_MAX {
        with_volatile(volatile, &data, |d| {
            nix::mount::mount(
                Some("overlay"),
                &target,
                Some("overlay"),
                MsFlags::empty(),
                Some(d),
            )
        })
        .map_err(mount_err)?;
        return Ok(target);
    }
    // Short names relative to the container dir.
    let links = container_dir.join("l");
    mkdir(&links)?;
    let mut rel = String::from("lowerdir=");
    for (i, layer) in layers.iter().rev().enumerate() {
        let name = format!("{i}");
        let link = links.join(&name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(layer, &link).map_err(|source| RootfsError::Write {
            path: link.clone(),
            source,
        })?;
        if i > 0 {
            rel.push(':');
        }
        let _ = write!(rel, "l/{name}");
    }
    if rw_dir.is_some() {
        let _ = write!(
            rel,
            ",upperdir={},workdir={}",
            upper.display(),
            work.display()
        );
    } else {
        rel.push_str(",upperdir=upper,workdir=work");
    }
    if rel.len() + ",volatile".len() > MOUNT_DATA_MAX {
        return Err(mount_err(nix::Error::E2BIG));
    }
    with_volatile(volatile, &rel, |d| {
        mount_from_dir(container_dir, &target, MsFlags::empty(), d)
    })
    .map_err(mount_err)?;
    Ok(target)
}

/// Mounts overlay `data` through `mount`, with `volatile` first when asked
/// and without it where the kernel does not know the option (EINVAL,
/// before 5.10).
fn with_volatile(
    volatile: bool,
    data: &str,
    mount: impl Fn(&str) -> nix::Result<()>,
) -> nix::Result<()> {
    if volatile {
        match mount(&format!("{data},volatile")) {
            Err(nix::Error::EINVAL) => {}
            done => return done,
        }
    }
    mount(data)
}

/// Creates directory `path` (absolute, inside the container) and its
/// missing parents under `root`, like `mkdir -p` run inside the container:
/// every lookup goes through `openat2(RESOLVE_IN_ROOT)` on the root's fd,
/// so a symlink in the image (`wd -> /../../var/tmp`) resolves inside the
/// rootfs and nothing is ever created on the host (Docker's
/// `FollowSymlinkInScope`).
pub fn mkdir_all_in_root(root: &Path, path: &str) -> std::io::Result<()> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    use rstack_sys::in_root;
    let root_fd = open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    in_root::mkdir_all(
        &root_fd,
        Path::new(path),
        Mode::from_bits_truncate(0o755),
        OFlag::O_PATH,
    )
    .map(drop)
    .map_err(|e| match e {
        in_root::Error::Open { source, .. } | in_root::Error::Create { source, .. } => {
            source.into()
        }
    })
}

/// Mounts an overlay from a forked child whose cwd is `dir`, so that the
/// relative paths in `data` resolve there and our own cwd (which the
/// user's relative host paths are resolved against) never changes. The
/// child shares our mount namespace. (Also used by rstack-stack's `cp`
/// for its read-only view of a stopped container.)
pub fn mount_from_dir(dir: &Path, target: &Path, flags: MsFlags, data: &str) -> nix::Result<()> {
    // Everything the child needs is allocated before fork: only
    // async-signal-safe calls are allowed in the child of a process that
    // may have threads.
    let dir_c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| nix::Error::EINVAL)?;
    let target_c = CString::new(target.as_os_str().as_bytes()).map_err(|_| nix::Error::EINVAL)?;
    let data_c = CString::new(data).map_err(|_| nix::Error::EINVAL)?;
    let fstype = c"overlay";
    // SAFETY: the child only calls chdir, mount and _exit (async-signal-safe
    // raw syscalls) on memory allocated before the fork.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            // SAFETY: plain syscalls on valid NUL-terminated strings; the
            // child never returns into Rust code.
            unsafe {
                if libc::chdir(dir_c.as_ptr()) != 0 {
                    libc::_exit(*libc::__errno_location());
                }
                let rc = libc::mount(
                    fstype.as_ptr(),
                    target_c.as_ptr(),
                    fstype.as_ptr(),
                    flags.bits(),
                    data_c.as_ptr().cast(),
                );
                libc::_exit(if rc == 0 {
                    0
                } else {
                    *libc::__errno_location()
                });
            }
        }
        nix::unistd::ForkResult::Parent { child } => loop {
            match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => return Ok(()),
                Ok(nix::sys::wait::WaitStatus::Exited(_, errno)) => {
                    return Err(nix::Error::from_raw(errno));
                }
                Ok(_) => return Err(nix::Error::ECHILD),
                Err(nix::Error::EINTR) => {}
                Err(e) => return Err(e),
            }
        },
    }
}

/// Unmounts the rootfs once its container is gone. Detached (lazy): the
/// mount leaves the mount table at once and the kernel finishes in the
/// background, which saves the 10-200 ms a synchronous overlay unmount can
/// take on a busy disk; nothing can still use it since every process of the
/// container is dead.
pub fn unmount(target: &Path) -> Result<(), RootfsError> {
    match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(source) => Err(RootfsError::Unmount {
            target: target.to_owned(),
            source,
        }),
    }
}

/// Whether `path` is a mount point (its device differs from its parent's).
pub fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(me), Some(Ok(parent))) = (
        std::fs::metadata(path),
        path.parent().map(std::fs::metadata),
    ) else {
        return false;
    };
    me.dev() != parent.dev() || me.ino() == parent.ino()
}

/// The /etc/hosts content Docker writes.
pub fn hosts_file(hostname: &str, addresses: &[IpAddr], extra: &[(String, IpAddr)]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra {
        let _ = writeln!(s, "{ip}\t{name}");
    }
    for ip in addresses {
        let _ = writeln!(s, "{ip}\t{hostname}");
    }
    s
}

/// resolv.conf text from an explicit config.
pub fn resolv_conf(dns: &DnsConfig) -> String {
    let mut s = String::new();
    for ns in &dns.nameservers {
        let _ = writeln!(s, "nameserver {ns}");
    }
    if !dns.search.is_empty() {
        let _ = writeln!(s, "search {}", dns.search.join(" "));
    }
    if !dns.options.is_empty() {
        let _ = writeln!(s, "options {}", dns.options.join(" "));
    }
    s
}

/// The host's resolv.conf as a container outside the host netns should see
/// it: loopback nameservers (e.g. systemd-resolved's 127.0.0.53) are
/// unreachable there and dropped, like Docker does. With the host's network
/// the file is kept as is.
pub fn host_resolv_conf(host_text: &str, host_network: bool) -> String {
    if host_network {
        return host_text.to_owned();
    }
    host_text
        .lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver")
                && w.next()
                    .and_then(|ip| ip.parse::<IpAddr>().ok())
                    .is_some_and(|ip| ip.is_loopback()))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Writes `etc/{hostname,hosts,resolv.conf}` of the container dir.
pub fn write_etc_files(
    etc_dir: &Path,
    hostname: &str,
    hosts: &str,
    resolv: &str,
) -> Result<(), RootfsError> {
    mkdir(etc_dir)?;
    write(&etc_dir.join("hostname"), &format!("{hostname}\n"))?;
    write(&etc_dir.join("hosts"), hosts)?;
    write(&etc_dir.join("resolv.conf"), resolv)?;
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn workdir_is_created_inside_the_root_whatever_the_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        let victim = dir.path().join("victim");
        std::fs::create_dir_all(root.join("srv/app")).unwrap();
        // absolute and relative links that climb out of the root
        std::os::unix::fs::symlink("/../../../../victim", root.join("wd")).unwrap();
        std::os::unix::fs::symlink("../../../victim", root.join("rel")).unwrap();
        std::os::unix::fs::symlink("/srv/app", root.join("app")).unwrap();
        mkdir_all_in_root(&root, "/a/b/c").unwrap();
        assert!(root.join("a/b/c").is_dir());
        mkdir_all_in_root(&root, "/app/data").unwrap();
        assert!(
            root.join("srv/app/data").is_dir(),
            "a link inside the root is followed"
        );
        for hostile in ["/wd/created-by-workdir", "/rel/x", "/../../victim/y"] {
            let _ = mkdir_all_in_root(&root, hostile);
            assert!(!victim.exists(), "{hostile} reached the host");
        }
        // `..` above the root stays at the root
        mkdir_all_in_root(&root, "/../../up").unwrap();
        assert!(root.join("up").is_dir());
    }

    use super::*;

    #[test]
    fn overlay_data_is_top_first() {
        let d = overlay_data(
            &["/l/a".into(), "/l/b".into()],
            Path::new("/c/upper"),
            Path::new("/c/work"),
        );
        assert_eq!(d, "lowerdir=/l/b:/l/a,upperdir=/c/upper,workdir=/c/work");
    }

    #[test]
    fn etc_files() {
        let h = hosts_file(
            "web",
            &["10.0.0.2".parse().unwrap()],
            &[("db".into(), "10.0.0.3".parse().unwrap())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.0.0.3\tdb\n10.0.0.2\tweb\n"));
        let r = resolv_conf(&DnsConfig {
            nameservers: vec!["127.0.0.11".parse().unwrap()],
            search: vec!["a".into(), "b".into()],
            options: vec!["ndots:0".into()],
        });
        assert_eq!(r, "nameserver 127.0.0.11\nsearch a b\noptions ndots:0\n");
        let host = "# c\nnameserver 127.0.0.53\nnameserver 1.1.1.1\nsearch x\n";
        assert_eq!(
            host_resolv_conf(host, false),
            "# c\nnameserver 1.1.1.1\nsearch x\n"
        );
        assert_eq!(host_resolv_conf(host, true), host);
    }
}
