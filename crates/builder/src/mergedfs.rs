//! A read-only view of an image's root filesystem merged from its unpacked
//! layer dirs, in userspace, following overlayfs' rules: upper layers hide
//! lower ones, a character device 0/0 is a whiteout (the name is deleted),
//! the `trusted.overlay.opaque=y` xattr hides lower contents of a
//! directory. The build reads through it (COPY --from, /etc/passwd for
//! --chown, parent directories of COPY destinations) without mounting.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rstack_images::unpack::OPAQUE_XATTR;

/// Layer dirs, bottom to top.
#[derive(Debug, Clone)]
pub struct MergedFs {
    layers: Vec<PathBuf>,
}

/// A path found in the merged view.
#[derive(Debug, Clone)]
pub struct Found {
    /// The real file in the top-most layer that has it.
    pub real: PathBuf,
    pub meta: Metadata,
    /// For directories: the layers' copies that merge, top first.
    dirs: Vec<PathBuf>,
}

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    matches!(xattr::get(p, OPAQUE_XATTR), Ok(Some(v)) if v == b"y")
}

impl MergedFs {
    pub fn new(layers: Vec<PathBuf>) -> MergedFs {
        MergedFs { layers }
    }

    /// Looks up `rel` (relative, `/`-separated; symlinks in the middle of
    /// the path are not followed).
    pub fn lookup(&self, rel: &str) -> Option<Found> {
        let parts: Vec<&str> = rel
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        // Candidate directories for the current prefix, top layer first.
        let mut dirs: Vec<PathBuf> = self.layers.iter().rev().cloned().collect();
        if dirs.is_empty() {
            return None;
        }
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let mut next = Vec::new();
            for d in &dirs {
                let p = d.join(part);
                let Ok(m) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                if is_whiteout(&m) {
                    break;
                }
                if m.is_dir() {
                    let opaque = is_opaque(&p);
                    next.push(p);
                    if opaque {
                        break;
                    }
                } else {
                    if next.is_empty() && last {
                        return Some(Found {
                            real: p,
                            meta: m,
                            dirs: Vec::new(),
                        });
                    }
                    break;
                }
            }
            if next.is_empty() {
                return None;
            }
            dirs = next;
        }
        let real = dirs[0].clone();
        let meta = std::fs::symlink_metadata(&real).ok()?;
        Some(Found { real, meta, dirs })
    }

    /// The entries of a directory found by [`MergedFs::lookup`]: name ->
    /// its real path in the top-most layer that has it.
    pub fn read_dir(&self, dir: &Found) -> BTreeMap<String, PathBuf> {
        let mut out = BTreeMap::new();
        let mut hidden = std::collections::BTreeSet::new();
        for d in &dir.dirs {
            let Ok(entries) = std::fs::read_dir(d) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if out.contains_key(&name) || hidden.contains(&name) {
                    continue;
                }
                match e.metadata() {
                    Ok(m) if is_whiteout(&m) => {
                        hidden.insert(name);
                    }
                    Ok(_) => {
                        out.insert(name, e.path());
                    }
                    Err(_) => {}
                }
            }
            if is_opaque(d) {
                break;
            }
        }
        out
    }

    /// Reads a small file (e.g. /etc/passwd).
    pub fn read(&self, rel: &str) -> Option<Vec<u8>> {
        let f = self.lookup(rel)?;
        if !f.meta.is_file() {
            return None;
        }
        std::fs::read(&f.real).ok()
    }

    /// Resolves a `--chown` / USER spec to numeric ids using the image's
    /// /etc/passwd and /etc/group. A user without a group takes the
    /// user's primary group (or its own id when numeric and unknown).
    pub fn resolve_owner(&self, spec: &str) -> Result<(u32, u32), String> {
        let passwd =
            String::from_utf8_lossy(&self.read("etc/passwd").unwrap_or_default()).into_owned();
        let group =
            String::from_utf8_lossy(&self.read("etc/group").unwrap_or_default()).into_owned();
        let (u, g) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let user_entry = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && (f[0] == u || (f[2] == u && u.parse::<u32>().is_ok())));
        let uid = match u.parse::<u32>() {
            Ok(n) => n,
            Err(_) => user_entry
                .as_ref()
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    format!("unable to find user {u}: no matching entries in passwd file")
                })?,
        };
        let gid = match g {
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => group
                    .lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|f| f.len() > 2 && f[0] == g)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| {
                        format!("unable to find group {g}: no matching entries in group file")
                    })?,
            },
            None => user_entry
                .as_ref()
                .and_then(|f| f[3].parse().ok())
                .unwrap_or(uid),
        };
        Ok((uid, gid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_layers_hide_lower_ones() {
        let t = tempfile::tempdir().unwrap();
        let low = t.path().join("low");
        let up = t.path().join("up");
        std::fs::create_dir_all(low.join("etc/sub")).unwrap();
        std::fs::write(low.join("etc/a"), "low-a").unwrap();
        std::fs::write(low.join("etc/b"), "low-b").unwrap();
        std::fs::write(
            low.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(low.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        std::fs::create_dir_all(up.join("etc")).unwrap();
        std::fs::write(up.join("etc/a"), "up-a").unwrap();
        let fs = MergedFs::new(vec![low.clone(), up.clone()]);
        assert_eq!(fs.read("etc/a").unwrap(), b"up-a");
        assert_eq!(fs.read("etc/b").unwrap(), b"low-b");
        let etc = fs.lookup("etc").unwrap();
        let names: Vec<String> = fs.read_dir(&etc).into_keys().collect();
        assert_eq!(names, vec!["a", "b", "group", "passwd", "sub"]);
        assert!(fs.lookup("etc/nope").is_none());
        assert_eq!(fs.resolve_owner("app").unwrap(), (1000, 1001));
        assert_eq!(fs.resolve_owner("app:staff").unwrap(), (1000, 50));
        assert_eq!(fs.resolve_owner("42").unwrap(), (42, 42));
        assert_eq!(fs.resolve_owner("42:7").unwrap(), (42, 7));
        assert!(fs.resolve_owner("ghost").is_err());
    }
}
