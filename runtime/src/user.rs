//! `-u`/USER resolution against the image's own /etc/passwd and /etc/group,
//! as Docker does (moby's `user.GetExecUser`): names are looked up in the
//! container's files, never the host's; a numeric uid need not exist; the
//! supplementary groups are those listing the user name as a member.

use std::path::{Path, PathBuf};

/// A user that cannot be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("unable to find user {user}: no matching entries in passwd file")]
    NoUser { user: String },
    #[error("unable to find group {group}: no matching entries in group file")]
    NoGroup { group: String },
    #[error("invalid user specification '{spec}'")]
    Syntax { spec: String },
}

/// The uid/gid/groups/home a process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 6 || line.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 || line.starts_with('#') {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// Resolves a group name or number against `group`.
pub fn resolve_group(spec: &str, group: &str) -> Result<u32, UserError> {
    if let Some((_, gid, _)) = group_entries(group).find(|(n, _, _)| *n == spec) {
        return Ok(gid);
    }
    spec.parse().map_err(|_| UserError::NoGroup {
        group: spec.to_owned(),
    })
}

/// Resolves `user` (`name`, `uid`, `name:group`, `uid:gid`; empty = root)
/// plus `--group-add` entries against the container's passwd and group files.
pub fn resolve_user(
    spec: &str,
    group_add: &[String],
    passwd: &str,
    group: &str,
) -> Result<ResolvedUser, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if group_part == Some("") || (user_part.is_empty() && group_part.is_some()) {
        return Err(UserError::Syntax {
            spec: spec.to_owned(),
        });
    }
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = passwd_entries(passwd)
        .find(|e| e.name == user_part)
        .or_else(|| {
            let uid: u32 = user_part.parse().ok()?;
            passwd_entries(passwd).find(|e| e.uid == uid)
        });
    let (uid, mut gid, name, home) = match entry {
        Some(e) => (e.uid, e.gid, Some(e.name), e.home.to_owned()),
        None => {
            let uid: u32 = user_part.parse().map_err(|_| UserError::NoUser {
                user: user_part.to_owned(),
            })?;
            (uid, 0, None, "/".to_owned())
        }
    };
    if let Some(g) = group_part {
        gid = resolve_group(g, group)?;
    }
    let mut additional_gids = Vec::new();
    // Docker adds the groups naming the user only when no group was given.
    if let (Some(name), None) = (name, group_part) {
        for (_, g, members) in group_entries(group) {
            if members.contains(&name) && g != gid && !additional_gids.contains(&g) {
                additional_gids.push(g);
            }
        }
    }
    for g in group_add {
        let g = resolve_group(g, group)?;
        if !additional_gids.contains(&g) {
            additional_gids.push(g);
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// The content of a file as the merged overlay would show it, read from
/// the layer dirs (top first) before anything is mounted, so a bad `-u`
/// fails before any state exists. Stops at an overlay whiteout or opaque
/// directory, as overlayfs would.
pub fn read_from_layers(layers: &[PathBuf], rel: &str) -> Option<String> {
    let rel_path = Path::new(rel);
    for layer in layers.iter().rev() {
        let path = layer.join(rel_path);
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            use std::os::unix::fs::FileTypeExt;
            if meta.file_type().is_char_device() {
                return None; // whiteout (0:0 char device)
            }
            return std::fs::read_to_string(&path).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\ndaemon:x:1:\nwheel:x:10:app,other\n\
        audio:x:29:app\napp:x:1000:\nstaff:x:50:\n";

    fn r(spec: &str) -> Result<ResolvedUser, UserError> {
        resolve_user(spec, &[], PASSWD, GROUP)
    }

    #[test]
    fn names_and_numbers() {
        let u = r("app").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, [10, 29]);
        assert_eq!(u.home, "/home/app");
        let u = r("1000").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
        let u = r("4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        let u = r("").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn explicit_groups() {
        let u = r("app:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert!(u.additional_gids.is_empty());
        let u = r("1234:4321").unwrap();
        assert_eq!((u.uid, u.gid), (1234, 4321));
        let u = resolve_user("daemon", &["wheel".into(), "7".into()], PASSWD, GROUP).unwrap();
        assert_eq!(u.additional_gids, [10, 7]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            r("nobody").unwrap_err().to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert!(matches!(r("app:nogroup"), Err(UserError::NoGroup { .. })));
        assert!(matches!(r("app:"), Err(UserError::Syntax { .. })));
        assert!(matches!(r(":1"), Err(UserError::Syntax { .. })));
    }

    #[test]
    fn layers_top_wins() {
        let dir = tempfile::tempdir().unwrap();
        let low = dir.path().join("low");
        let up = dir.path().join("up");
        std::fs::create_dir_all(low.join("etc")).unwrap();
        std::fs::create_dir_all(up.join("etc")).unwrap();
        std::fs::write(low.join("etc/passwd"), "low").unwrap();
        assert_eq!(
            read_from_layers(&[low.clone(), up.clone()], "etc/passwd").as_deref(),
            Some("low")
        );
        std::fs::write(up.join("etc/passwd"), "up").unwrap();
        assert_eq!(
            read_from_layers(&[low, up], "etc/passwd").as_deref(),
            Some("up")
        );
    }
}
