//! Unpack tests: real layers and hostile tarballs built in memory.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::*;

/// Appends an entry with a raw name (bypassing the tar crate's own path
/// checks, as an attacker would).
fn raw(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
    mode: u32,
) {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn tarball(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    f(&mut b);
    b.into_inner().unwrap()
}

/// A temp dir holding an empty layer dir `diff` (the unpack destination);
/// the temp dir also holds what tests place "outside" the layer.
fn layer_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("diff");
    fs::create_dir(&dest).unwrap();
    (tmp, dest)
}

/// An empty regular file entry (as whiteouts and markers are written).
fn empty(b: &mut tar::Builder<Vec<u8>>, name: &str) {
    raw(b, name, tar::EntryType::Regular, "", b"", 0o644);
}

fn run(data: &[u8], dest: &Path) -> Result<Stats, Error> {
    unpack(data, dest, &Options::default())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn regular_layer_keeps_types_modes_and_mtimes() {
    let (_tmp, dest) = layer_dir();
    let data = tarball(|b| {
        use tar::EntryType as T;
        raw(b, "bin/", T::Directory, "", b"", 0o755);
        raw(b, "bin/tool", T::Regular, "", b"#!/bin/sh\n", 0o4755);
        raw(b, "bin/alias", T::Link, "bin/tool", b"", 0o755);
        raw(b, "bin/sym", T::Symlink, "/bin/tool", b"", 0o777);
        raw(b, "etc/ro/", T::Directory, "", b"", 0o555);
        raw(b, "etc/ro/file", T::Regular, "", b"x", 0o444);
        raw(b, "run/fifo", T::Fifo, "", b"", 0o600);
        raw(b, "./", T::Directory, "", b"", 0o755);
    });
    let stats = run(&data, &dest).unwrap();
    assert_eq!(stats.bytes, 11);
    let tool = fs::metadata(dest.join("bin/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(tool.mtime(), 1_600_000_000);
    assert_eq!(tool.nlink(), 2);
    assert_eq!(
        fs::metadata(dest.join("bin/alias")).unwrap().ino(),
        tool.ino()
    );
    assert_eq!(
        fs::read_link(dest.join("bin/sym")).unwrap(),
        Path::new("/bin/tool")
    );
    let ro = fs::metadata(dest.join("etc/ro")).unwrap();
    assert_eq!(ro.permissions().mode() & 0o7777, 0o555);
    assert_eq!(ro.mtime(), 1_600_000_000);
    assert_eq!(fs::read(dest.join("etc/ro/file")).unwrap(), b"x");
    assert!(
        fs::symlink_metadata(dest.join("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    // Implicit parent created with 0755.
    assert_eq!(
        fs::metadata(dest.join("run")).unwrap().permissions().mode() & 0o777,
        0o755
    );
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let (_tmp, dest) = layer_dir();
    let data = tarball(|b| {
        empty(b, "etc/.wh.passwd");
        empty(b, "var/.wh..wh..plnk");
    });
    match run(&data, &dest) {
        Ok(_) => {
            let st = fs::symlink_metadata(dest.join("etc/passwd")).unwrap();
            assert!(st.file_type().is_char_device());
            assert_eq!(st.rdev(), 0);
            assert!(!dest.join("etc/.wh.passwd").exists());
            assert!(!dest.join("var/.wh..wh..plnk").exists());
        }
        // Unprivileged whiteout creation is not allowed on every kernel.
        Err(e) => assert!(!is_root(), "{e}"),
    }
}

#[test]
fn opaque_directories_get_the_overlay_xattr() {
    let (_tmp, dest) = layer_dir();
    let data = tarball(|b| {
        raw(b, "data/", tar::EntryType::Directory, "", b"", 0o755);
        empty(b, "data/.wh..wh..opq");
        raw(b, "data/new", tar::EntryType::Regular, "", b"n", 0o644);
    });
    let result = run(&data, &dest);
    if is_root() {
        result.unwrap();
        let v = xattr::get(dest.join("data"), OPAQUE_XATTR).unwrap();
        assert_eq!(v.as_deref(), Some(&b"y"[..]));
        assert!(!dest.join("data/.wh..wh..opq").exists());
        assert_eq!(fs::read(dest.join("data/new")).unwrap(), b"n");
    } else {
        let msg = result.unwrap_err().to_string();
        assert!(msg.contains("data/.wh..wh..opq"), "{msg}");
    }
}

#[test]
fn dotdot_entries_are_rejected() {
    let (tmp, dest) = layer_dir();
    let data = tarball(|b| {
        raw(
            b,
            "a/../../evil",
            tar::EntryType::Regular,
            "",
            b"bad",
            0o644,
        )
    });
    let err = run(&data, &dest).unwrap_err();
    assert!(matches!(err, Error::PathTraversal { .. }), "{err}");
    assert!(err.to_string().contains("a/../../evil"));
    assert!(!tmp.path().join("evil").exists());
}

#[test]
fn absolute_paths_are_contained() {
    let (tmp, dest) = layer_dir();
    let outside = tmp.path().join("abs-target");
    let name = format!("{}", outside.display());
    let data = tarball(|b| raw(b, &name, tar::EntryType::Regular, "", b"in", 0o644));
    run(&data, &dest).unwrap();
    assert!(!outside.exists());
    let inside = dest.join(name.trim_start_matches('/'));
    assert_eq!(fs::read(inside).unwrap(), b"in");
}

#[test]
fn writes_through_symlinked_parents_stay_inside() {
    let (tmp, dest) = layer_dir();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let abs = outside.display().to_string();
    let data = tarball(|b| {
        raw(b, "escape", tar::EntryType::Symlink, &abs, b"", 0o777);
        raw(
            b,
            "rel",
            tar::EntryType::Symlink,
            "../../../../../../",
            b"",
            0o777,
        );
        raw(b, "rel/evil", tar::EntryType::Regular, "", b"bad", 0o644);
        raw(b, "escape/evil", tar::EntryType::Regular, "", b"bad", 0o644);
    });
    // Either contained or refused; never outside.
    let _ = run(&data, &dest);
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert!(!tmp.path().join("evil").exists());
    // "rel" resolves to the layer root itself.
    assert_eq!(fs::read(dest.join("evil")).unwrap(), b"bad");
}

#[test]
fn final_symlink_is_replaced_not_followed() {
    let (tmp, dest) = layer_dir();
    let victim = tmp.path().join("victim");
    fs::write(&victim, b"safe").unwrap();
    let abs = victim.display().to_string();
    let data = tarball(|b| {
        raw(b, "f", tar::EntryType::Symlink, &abs, b"", 0o777);
        raw(b, "f", tar::EntryType::Regular, "", b"overwrite", 0o644);
    });
    run(&data, &dest).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"safe");
    assert_eq!(fs::read(dest.join("f")).unwrap(), b"overwrite");
}

#[test]
fn hardlinks_to_outside_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    fs::write(&victim, b"secret").unwrap();
    for (target, setup_symlink) in [
        ("../victim", false),
        (victim.to_str().unwrap(), false),
        ("out/victim", true),
    ] {
        let dest = tmp.path().join(format!("diff-{}", target.len()));
        fs::create_dir(&dest).unwrap();
        let parent = tmp.path().display().to_string();
        let data = tarball(|b| {
            if setup_symlink {
                raw(b, "out", tar::EntryType::Symlink, &parent, b"", 0o777);
            }
            raw(b, "link", tar::EntryType::Link, target, b"", 0o644);
        });
        let err = run(&data, &dest).unwrap_err();
        assert!(matches!(err, Error::BadHardlink { .. }), "{target}: {err}");
        assert!(!dest.join("link").exists());
        assert_eq!(fs::metadata(&victim).unwrap().nlink(), 1);
    }
}

#[test]
fn image_supplied_overlay_xattrs_are_dropped() {
    let (_tmp, dest) = layer_dir();
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
        ("SCHILY.xattr.user.note", &b"kept"[..]),
    ])
    .unwrap();
    raw(&mut b, "file", tar::EntryType::Regular, "", b"x", 0o644);
    let data = b.into_inner().unwrap();
    run(&data, &dest).unwrap();
    assert_eq!(
        xattr::get(dest.join("file"), "trusted.overlay.redirect").unwrap(),
        None
    );
    // user.* xattrs need filesystem support (tmpfs < 6.6 has none).
    if let Ok(Some(v)) = xattr::get(dest.join("file"), "user.note") {
        assert_eq!(v, b"kept");
    }
}

#[test]
fn later_entries_replace_earlier_ones_of_another_kind() {
    let (tmp, dest) = layer_dir();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let abs = outside.display().to_string();
    let data = tarball(|b| {
        use tar::EntryType as T;
        raw(b, "d", T::Symlink, &abs, b"", 0o777);
        raw(b, "d/", T::Directory, "", b"", 0o755);
        raw(b, "d/f", T::Regular, "", b"in", 0o644);
        raw(b, "x/", T::Directory, "", b"", 0o755);
        raw(b, "x/old", T::Regular, "", b"", 0o644);
        raw(b, "x", T::Regular, "", b"file now", 0o644);
    });
    run(&data, &dest).unwrap();
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert!(fs::symlink_metadata(dest.join("d")).unwrap().is_dir());
    assert_eq!(fs::read(dest.join("d/f")).unwrap(), b"in");
    assert_eq!(fs::read(dest.join("x")).unwrap(), b"file now");
}

#[test]
fn whiteouts_of_dot_and_dotdot_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["sub/.wh..", "sub/.wh...", ".wh..."] {
        let dest = tmp.path().join(format!("diff{}", name.len()));
        fs::create_dir(&dest).unwrap();
        let data = tarball(|b| {
            raw(b, "sub/", tar::EntryType::Directory, "", b"", 0o755);
            raw(b, "sub/keep", tar::EntryType::Regular, "", b"k", 0o644);
            raw(b, name, tar::EntryType::Regular, "", b"", 0o644);
        });
        let err = run(&data, &dest).unwrap_err();
        assert!(matches!(err, Error::PathTraversal { .. }), "{name}: {err}");
        assert_eq!(fs::read(dest.join("sub/keep")).unwrap(), b"k");
    }
    assert!(tmp.path().exists());
}
