//! Docker's `local` volume driver options: a named volume declared with
//! `driver_opts: {type, o, device}` is not a plain directory but a mount
//! (`type: none, o: bind, device: /srv/data` binds a host directory,
//! `type: tmpfs` a memory file system, `type: nfs, o: addr=...` a share).
//!
//! As Docker does, the options are kept with the volume
//! (`ROOT/volumes/<name>/opts.json`, shown by `volume inspect`) and the
//! file system is mounted on the volume's `_data` when a container first
//! needs it; every container then binds `_data` as for any volume. The
//! mount is recorded (`ROOT/volumes/<name>/mounted`) before it is made and
//! undone by `down`, `volume rm` and `volume prune`, which never delete
//! through it: the bound directory's files belong to the user.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::io_error::{IoError, io};
use nix::mount::{MntFlags, MsFlags};

/// A failure with a volume's driver options or its mount.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("volume {volume}: invalid option key {key:?} for the local driver (type, o, device)")]
    UnknownKey { volume: String, key: String },
    #[error("volume {volume}: driver_opts needs `{missing}` with `{given}`")]
    Missing {
        volume: String,
        missing: &'static str,
        given: &'static str,
    },
    #[error("volume {volume}: driver {driver:?} is not supported (only \"local\")")]
    Driver { volume: String, driver: String },
    #[error("volume {volume}: failed to mount local volume: {what}")]
    Mount {
        volume: String,
        /// `mount <device>:<target> (type <kind>, options <o>)`
        what: String,
        #[source]
        source: nix::Error,
    },
    #[error("volume {volume}: cannot unmount {}", target.display())]
    Unmount {
        volume: String,
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("volume {volume}: {} is still a mount point: not removing it", path.display())]
    StillMounted { volume: String, path: PathBuf },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("cannot read the options of volume {}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// What `mount(2)` gets for a volume: Docker's `type`, `o` and `device`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOpts {
    pub kind: String,
    pub options: String,
    pub device: String,
}

/// Checks a volume's `driver` and `driver_opts` as Docker's local driver
/// does, and returns the mount they ask for (none for a plain volume).
pub fn validate(
    volume: &str,
    driver: Option<&str>,
    opts: &BTreeMap<String, String>,
) -> Result<Option<MountOpts>, Error> {
    if let Some(d) = driver.filter(|d| !d.is_empty() && *d != "local") {
        return Err(Error::Driver {
            volume: volume.into(),
            driver: d.into(),
        });
    }
    if let Some(k) = opts
        .keys()
        .find(|k| !matches!(k.as_str(), "type" | "o" | "device"))
    {
        return Err(Error::UnknownKey {
            volume: volume.into(),
            key: k.clone(),
        });
    }
    let get = |k: &str| opts.get(k).filter(|v| !v.is_empty()).cloned();
    match (get("type"), get("device")) {
        (None, None) if get("o").is_none() => Ok(None),
        (Some(kind), Some(device)) => Ok(Some(MountOpts {
            kind,
            options: get("o").unwrap_or_default(),
            device,
        })),
        (Some(_), None) => Err(Error::Missing {
            volume: volume.into(),
            missing: "device",
            given: "type",
        }),
        (None, _) => Err(Error::Missing {
            volume: volume.into(),
            missing: "type",
            given: if get("device").is_some() {
                "device"
            } else {
                "o"
            },
        }),
    }
}

/// Splits `o` into mount flags and file-system data, as Docker's
/// `mount.Mount` does (`bind,ro,size=64m` → `MS_BIND|MS_RDONLY`,
/// `size=64m`). Hand-written: libcontainer's parser is private to it and
/// works on OCI spec mounts.
pub(crate) fn split_options(o: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        let (set, clear) = match opt {
            "defaults" | "rw" | "async" | "nomand" | "atime" | "diratime" | "norelatime"
            | "nostrictatime" | "suid" | "dev" | "exec" => (MsFlags::empty(), flag_cleared(opt)),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            _ => {
                data.push(opt);
                continue;
            }
        };
        flags = (flags | set) & !clear;
    }
    (flags, data.join(","))
}

fn flag_cleared(opt: &str) -> MsFlags {
    match opt {
        "rw" => MsFlags::MS_RDONLY,
        "async" => MsFlags::MS_SYNCHRONOUS,
        "nomand" => MsFlags::MS_MANDLOCK,
        "atime" => MsFlags::MS_NOATIME,
        "diratime" => MsFlags::MS_NODIRATIME,
        "norelatime" => MsFlags::MS_RELATIME,
        "nostrictatime" => MsFlags::MS_STRICTATIME,
        "suid" => MsFlags::MS_NOSUID,
        "dev" => MsFlags::MS_NODEV,
        "exec" => MsFlags::MS_NOEXEC,
        _ => MsFlags::empty(),
    }
}

/// The driver options of `project`'s own (not external) volumes, by key,
/// each checked: an error names the first bad volume.
pub(crate) fn declared(
    project: &rstack_compose::Project,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, Error> {
    let mut out = BTreeMap::new();
    for (key, decl) in &project.volumes {
        if decl.external == Some(true) {
            continue;
        }
        let opts: BTreeMap<String, String> = decl.driver_opts.clone().into_iter().collect();
        validate(&project.volume_name(key), decl.driver.as_deref(), &opts)?;
        out.insert(key.clone(), opts);
    }
    Ok(out)
}

fn opts_file(vol_dir: &Path) -> PathBuf {
    vol_dir.join("opts.json")
}

fn marker(vol_dir: &Path) -> PathBuf {
    vol_dir.join("mounted")
}

/// Keeps a new volume's driver options with it (before `_data` exists).
pub fn save(vol_dir: &Path, opts: &BTreeMap<String, String>) -> Result<(), Error> {
    if opts.is_empty() {
        return Ok(());
    }
    let text = serde_json::to_vec_pretty(opts).map_err(|source| Error::Json {
        path: opts_file(vol_dir),
        source,
    })?;
    crate::state::write_atomic(&opts_file(vol_dir), &text)
        .map_err(|e| io("write", &opts_file(vol_dir))(std::io::Error::other(e.to_string())).into())
}

/// The driver options kept with a volume (empty for a plain one).
pub fn load(vol_dir: &Path) -> Result<BTreeMap<String, String>, Error> {
    let path = opts_file(vol_dir);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::Json { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(io("read", &path)(e).into()),
    }
}

/// Whether `path` is a mount point (some mount's root is there).
pub(crate) fn is_mount_point(path: &Path) -> bool {
    let Ok(me) = procfs::process::Process::myself() else {
        return false;
    };
    me.mountinfo()
        .map(|mi| mi.into_iter().any(|m| m.mount_point == path))
        .unwrap_or(false)
}

/// Mounts the volume's file system on its `_data` if its options ask for
/// one and it is not mounted yet. The mount is recorded first.
pub(crate) fn ensure_mounted(volume: &str, vol_dir: &Path) -> Result<(), Error> {
    let opts = load(vol_dir)?;
    let Some(m) = validate(volume, None, &opts)? else {
        return Ok(());
    };
    let data = vol_dir.join("_data");
    std::fs::create_dir_all(&data).map_err(io("create", &data))?;
    if is_mount_point(&data) {
        return Ok(());
    }
    std::fs::write(marker(vol_dir), b"").map_err(io("write", &marker(vol_dir)))?;
    let (flags, fs_data) = split_options(&m.options);
    let fail = |source| Error::Mount {
        volume: volume.into(),
        what: format!(
            "mount {}:{} (type {}, options {:?})",
            m.device,
            data.display(),
            m.kind,
            m.options
        ),
        source,
    };
    let data_opt = (!fs_data.is_empty()).then_some(fs_data.as_str());
    let r = nix::mount::mount(
        Some(m.device.as_str()),
        &data,
        Some(m.kind.as_str()),
        flags,
        data_opt,
    )
    .map_err(fail);
    // a bind mount takes `ro` only by a remount, as Docker's mount.Mount does
    let r = r.and_then(|()| {
        if flags.contains(MsFlags::MS_BIND | MsFlags::MS_RDONLY) {
            nix::mount::mount(
                None::<&str>,
                &data,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(fail)?;
        }
        Ok(())
    });
    if r.is_err() && !is_mount_point(&data) {
        let _ = std::fs::remove_file(marker(vol_dir));
    }
    r
}

/// Undoes [`ensure_mounted`] (nothing for a volume that is not mounted).
pub fn unmount(volume: &str, vol_dir: &Path) -> Result<(), Error> {
    let data = vol_dir.join("_data");
    while is_mount_point(&data) {
        nix::mount::umount2(&data, MntFlags::MNT_DETACH).map_err(|source| Error::Unmount {
            volume: volume.into(),
            target: data.clone(),
            source,
        })?;
    }
    match std::fs::remove_file(marker(vol_dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io("remove", &marker(vol_dir))(e).into())
        }
        _ => Ok(()),
    }
}

/// Removes a volume: its mount first, then its directory, never deleting
/// through a mount that is still there.
pub fn remove(volume: &str, vol_dir: &Path) -> Result<(), Error> {
    unmount(volume, vol_dir)?;
    let data = vol_dir.join("_data");
    if is_mount_point(&data) {
        return Err(Error::StillMounted {
            volume: volume.into(),
            path: data,
        });
    }
    std::fs::remove_dir_all(vol_dir).map_err(|e| io("remove", vol_dir)(e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plain_volume_has_no_mount() {
        assert_eq!(validate("v", None, &opts(&[])).unwrap(), None);
        assert_eq!(validate("v", Some("local"), &opts(&[])).unwrap(), None);
    }

    #[test]
    fn bind_tmpfs_and_nfs_options() {
        let m = validate(
            "v",
            Some("local"),
            &opts(&[("type", "none"), ("o", "bind"), ("device", "/srv")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!((m.kind.as_str(), m.device.as_str()), ("none", "/srv"));
        let t = validate(
            "v",
            None,
            &opts(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.options, "size=1m");
        let n = validate(
            "v",
            None,
            &opts(&[
                ("type", "nfs"),
                ("o", "addr=10.0.0.1,rw"),
                ("device", ":/export"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            split_options(&n.options),
            (MsFlags::empty(), "addr=10.0.0.1".into())
        );
    }

    #[test]
    fn bad_options_are_named() {
        let e = validate("v", None, &opts(&[("typo", "x")])).unwrap_err();
        assert!(e.to_string().contains("\"typo\""), "{e}");
        let e = validate("v", None, &opts(&[("type", "tmpfs")])).unwrap_err();
        assert!(e.to_string().contains("needs `device`"), "{e}");
        let e = validate("v", Some("nfsplugin"), &opts(&[])).unwrap_err();
        assert!(e.to_string().contains("nfsplugin"), "{e}");
    }

    #[test]
    fn options_split_into_flags_and_data() {
        assert_eq!(
            split_options("bind,ro"),
            (MsFlags::MS_BIND | MsFlags::MS_RDONLY, String::new())
        );
        assert_eq!(
            split_options("size=64m,uid=1000,noexec"),
            (MsFlags::MS_NOEXEC, "size=64m,uid=1000".into())
        );
        assert_eq!(split_options("ro,rw"), (MsFlags::empty(), String::new()));
        assert_eq!(
            split_options("rbind"),
            (MsFlags::MS_BIND | MsFlags::MS_REC, String::new())
        );
    }

    #[test]
    fn options_are_kept_with_the_volume() {
        let tmp = tempfile::tempdir().unwrap();
        let o = opts(&[("type", "tmpfs"), ("device", "tmpfs")]);
        save(tmp.path(), &o).unwrap();
        assert_eq!(load(tmp.path()).unwrap(), o);
        assert!(load(&tmp.path().join("none")).unwrap().is_empty());
    }
}
