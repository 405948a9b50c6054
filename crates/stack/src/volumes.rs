//! Named volumes: `ROOT/volumes/<name>/_data`, bind-mounted into the
//! containers. Like Docker, an empty volume is filled on first use with
//! what the image has at the mount point (unless `volume.nocopy`), so a
//! database image's initial files or a web root appear in the volume.
//!
//! The image's view at a path is the union of its layers (overlayfs);
//! it is rebuilt here by copying the layers bottom to top, honouring
//! overlay whiteouts (a 0:0 character device deletes the name below) and
//! opaque dirs (`trusted.overlay.opaque=y` hides everything below).

use crate::io_error::{IoError, io};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A failure preparing a volume.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Creates `data` if missing and, when it is empty, copies the image's
/// content at `target` into it. Returns whether anything was copied.
pub(crate) fn prepare(data: &Path, layers: &[PathBuf], target: &str) -> Result<bool, Error> {
    std::fs::create_dir_all(data).map_err(io("create", data))?;
    let empty = std::fs::read_dir(data)
        .map_err(io("read", data))?
        .next()
        .is_none();
    if !empty {
        return Ok(false);
    }
    let rel = target.trim_start_matches('/');
    let mut copied = false;
    for layer in layers {
        let src = layer.join(rel);
        match std::fs::symlink_metadata(&src) {
            Ok(m) if m.is_dir() => {
                if is_opaque(&src) {
                    clear(data)?;
                }
                copy_dir(&src, data)?;
                copied = true;
            }
            Ok(m) if m.file_type().is_char_device() && m.rdev() == 0 => {
                // the mount point was deleted in this layer
                clear(data)?;
            }
            _ => {}
        }
    }
    Ok(copied)
}

fn is_opaque(dir: &Path) -> bool {
    xattr_get(dir, "trusted.overlay.opaque").is_some_and(|v| v == b"y")
}

fn xattr_get(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = [0u8; 16];
    // SAFETY: valid NUL-terminated strings and a buffer of the length given.
    let rc = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (rc >= 0).then(|| buf[..rc as usize].to_vec())
}

fn clear(dir: &Path) -> Result<(), Error> {
    for e in std::fs::read_dir(dir).map_err(io("read", dir))?.flatten() {
        remove_any(&e.path())?;
    }
    Ok(())
}

/// Removes whatever is at `path` (a tree, a file, a link), if anything.
fn remove_any(path: &Path) -> Result<(), Error> {
    let Ok(old) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let r = if old.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    r.map_err(io("remove", path))?;
    Ok(())
}

/// Copies `src` over `dst` (merging), keeping modes, owners and symlinks.
fn copy_dir(src: &Path, dst: &Path) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(src).map_err(io("stat", src))?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io("chmod", dst))?;
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid())).map_err(io("chown", dst))?;
    for e in std::fs::read_dir(src).map_err(io("read", src))?.flatten() {
        let from = e.path();
        let to = dst.join(e.file_name());
        let m = std::fs::symlink_metadata(&from).map_err(io("stat", &from))?;
        let ft = m.file_type();
        if ft.is_char_device() && m.rdev() == 0 {
            // whiteout: the name is deleted in this layer
            remove_any(&to)?;
            continue;
        }
        if ft.is_dir() {
            match std::fs::symlink_metadata(&to) {
                Ok(old) if !old.is_dir() => std::fs::remove_file(&to).map_err(io("remove", &to))?,
                _ => {}
            }
            if !to.exists() {
                std::fs::create_dir(&to).map_err(io("create", &to))?;
            }
            if is_opaque(&from) {
                clear(&to)?;
            }
            copy_dir(&from, &to)?;
            continue;
        }
        remove_any(&to)?;
        if ft.is_symlink() {
            let t = std::fs::read_link(&from).map_err(io("read", &from))?;
            std::os::unix::fs::symlink(&t, &to).map_err(io("create", &to))?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to).map_err(io("copy", &from))?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(m.mode() & 0o7777))
                .map_err(io("chmod", &to))?;
        } else {
            // devices, fifos, sockets: not copied into volumes
            continue;
        }
        std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid())).map_err(io("chown", &to))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_an_empty_volume_from_the_layers_once() {
        let tmp = tempfile::tempdir().unwrap();
        let l1 = tmp.path().join("l1");
        let l2 = tmp.path().join("l2");
        std::fs::create_dir_all(l1.join("data/sub")).unwrap();
        std::fs::write(l1.join("data/a"), "1").unwrap();
        std::fs::write(l1.join("data/sub/b"), "2").unwrap();
        std::fs::create_dir_all(l2.join("data")).unwrap();
        std::fs::write(l2.join("data/a"), "new").unwrap();
        std::os::unix::fs::symlink("a", l2.join("data/link")).unwrap();
        let vol = tmp.path().join("vol/_data");
        assert!(prepare(&vol, &[l1.clone(), l2.clone()], "/data").unwrap());
        assert_eq!(std::fs::read_to_string(vol.join("a")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(vol.join("sub/b")).unwrap(), "2");
        assert_eq!(
            std::fs::read_link(vol.join("link")).unwrap(),
            Path::new("a")
        );
        // not empty any more: left alone
        std::fs::write(vol.join("a"), "mine").unwrap();
        assert!(!prepare(&vol, &[l1, l2], "/data").unwrap());
        assert_eq!(std::fs::read_to_string(vol.join("a")).unwrap(), "mine");
        // a path the image lacks: an empty volume
        let other = tmp.path().join("v2/_data");
        assert!(!prepare(&other, &[], "/nothing").unwrap());
        assert!(other.is_dir());
    }
}
