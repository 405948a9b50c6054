//! What a command must not leave behind: mounts in the caller's mount
//! namespace under a directory, and files in a directory that should end
//! empty (the sandbox's `TMPDIR`). Later areas add their own kinds (network
//! links, netns files, cgroups) here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Mount points at or under `dir` in the calling thread's mount namespace
/// (`/proc/thread-self/mountinfo`: `/proc/self` is the main thread's, which
/// differs inside [`crate::mountns::in_private_mount_ns`]), deepest first
/// (the order to unmount them in).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    mounts.dedup();
    mounts
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(v) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches (`MNT_DETACH`) every mount under `dir`, deepest first. Used
/// before removing a sandbox so `remove_dir_all` never walks into a mount.
pub fn detach_mounts_under(dir: &Path) {
    for mount in mounts_under(dir) {
        let _ = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Every path under `dir` (not following symlinks), relative to `dir`.
pub fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    walk(dir, &mut |p| {
        if let Ok(rel) = p.strip_prefix(dir) {
            out.insert(rel.to_owned());
        }
    });
    out
}

/// Calls `f` with every path under `dir` (not `dir` itself), depth first,
/// without following symlinks.
pub fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        f(&path);
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&path, f);
        }
    }
}

/// Regular files under `dir` whose SHA-256 is one of `digests`
/// (`sha256:<hex>` or bare hex) or whose name contains one of their hex
/// forms: how a test proves a rejected blob is not in a store.
pub fn files_matching_digests(dir: &Path, digests: &[&str]) -> Vec<PathBuf> {
    let hexes: Vec<&str> = digests
        .iter()
        .map(|d| d.strip_prefix("sha256:").unwrap_or(d))
        .collect();
    let mut found = Vec::new();
    walk(dir, &mut |p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if hexes.iter().any(|h| name.contains(h)) {
            found.push(p.to_owned());
            return;
        }
        if let Ok(meta) = std::fs::symlink_metadata(p)
            && meta.is_file()
            && let Ok(data) = std::fs::read(p)
            && hexes.contains(&crate::sha256_hex(&data).as_str())
        {
            found.push(p.to_owned());
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/end\04"), r"/end\04");
    }

    #[test]
    fn digest_matches_by_content_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let hex = crate::sha256_hex(b"blob");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/x"), b"blob").unwrap();
        std::fs::write(dir.path().join(format!("{hex}.partial")), b"other").unwrap();
        std::fs::write(dir.path().join("y"), b"other").unwrap();
        let found = files_matching_digests(dir.path(), &[&format!("sha256:{hex}")]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(tree(dir.path()).len(), 4);
    }
}
