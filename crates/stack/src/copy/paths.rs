//! Docker's path semantics for `cp`, as pure string functions.
//!
//! `docker cp` decides where an archive is extracted, and under which
//! name its top entry lands, only from the spelling of the two paths and
//! whether they exist (moby `pkg/archive/copy.go`: `SplitPathDirEntry`,
//! `PreserveTrailingDotOrSeparator`, `PrepareArchiveCopy`). A trailing
//! `/` asserts a directory, a trailing `/.` means "the contents of".
//! The helpers mirror Go's `path/filepath` (`Clean`, `Dir`, `Base`), which
//! differ from `std::path` in how they treat `.`, `..` and trailing slashes.

use super::Error;

/// Go's `filepath.Clean`: lexical, `..` at the root is dropped.
pub(crate) fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|p| *p != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Dir`: everything before the last `/`, cleaned.
pub(crate) fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(&path[..=i]),
        None => ".".into(),
    }
}

/// Go's `filepath.Base`: the last element, trailing slashes ignored.
pub(crate) fn base(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    match trimmed.rfind('/') {
        Some(i) => trimmed[i + 1..].to_owned(),
        None => trimmed.to_owned(),
    }
}

/// The path names "the contents of" a directory (`dir/.`).
pub(crate) fn specifies_current_dir(path: &str) -> bool {
    base(path) == "."
}

pub(crate) fn has_trailing_separator(path: &str) -> bool {
    path.ends_with('/')
}

/// The path can only name a directory (`dir/` or `dir/.`).
pub(crate) fn asserts_directory(path: &str) -> bool {
    has_trailing_separator(path) || specifies_current_dir(path)
}

/// moby's `SplitPathDirEntry`: the parent directory and the entry in it,
/// keeping `.` as the entry of `dir/.`.
pub(crate) fn split_path_dir_entry(path: &str) -> (String, String) {
    let mut cleaned = clean(path);
    if specifies_current_dir(path) {
        cleaned.push_str("/.");
    }
    (dir(&cleaned), base(&cleaned))
}

/// moby's `PreserveTrailingDotOrSeparator`: puts back the `/.` or `/`
/// that cleaning `original` removed.
pub(crate) fn preserve_trailing_dot_or_separator(cleaned: &str, original: &str) -> String {
    let mut out = cleaned.to_owned();
    if !specifies_current_dir(&out) && specifies_current_dir(original) {
        if !has_trailing_separator(&out) {
            out.push('/');
        }
        out.push('.');
    }
    if !has_trailing_separator(&out) && has_trailing_separator(original) {
        out.push('/');
    }
    out
}

/// A container path as the daemon sees it: relative to the container's
/// `/`, cleaned, its trailing `/` or `/.` kept.
pub(crate) fn container_abs(path: &str) -> String {
    preserve_trailing_dot_or_separator(&clean(&format!("/{path}")), path)
}

/// A local path made absolute against `cwd`, its trailing `/` or `/.` kept
/// (compose's `resolveLocalPath`).
pub fn host_abs(path: &str, cwd: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{cwd}/{path}")
    };
    preserve_trailing_dot_or_separator(&clean(&joined), path)
}

/// The name the source's top entry has in the archive: its base name, `.`
/// for `dir/.` and for the root itself (whose contents are copied).
pub(crate) fn archive_name(src: &str) -> String {
    let (_, b) = split_path_dir_entry(src);
    if b == "/" { ".".into() } else { b }
}

/// What is known of the destination before copying (moby's `CopyInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DestInfo {
    /// The destination, symlinks of its last element already followed.
    pub path: String,
    pub exists: bool,
    pub is_dir: bool,
}

/// Where an archive is extracted and the name its top entry gets there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    pub dir: String,
    pub name: String,
}

/// moby's `PrepareArchiveCopy`: a file into an existing directory goes
/// inside it; onto an existing file it replaces it; to a new path it takes
/// that name; a directory never replaces a file; a new path spelled as a
/// directory (`new/`) must exist unless the source is a directory.
pub(crate) fn place(src: &str, src_is_dir: bool, dst: &DestInfo) -> Result<Placement, Error> {
    let (dst_dir, dst_base) = split_path_dir_entry(&dst.path);
    if dst.exists && dst.is_dir {
        return Ok(Placement {
            dir: dst.path.clone(),
            name: archive_name(src),
        });
    }
    if dst.exists && src_is_dir {
        return Err(Error::CannotCopyDir);
    }
    if !dst.exists && !src_is_dir && asserts_directory(&dst.path) {
        return Err(Error::DirNotExists);
    }
    Ok(Placement {
        dir: dst_dir,
        name: dst_base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_clean_dir_base() {
        assert_eq!(clean(""), ".");
        assert_eq!(clean("/"), "/");
        assert_eq!(clean("//a//b/./c/.."), "/a/b");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean("../x/"), "../x");
        assert_eq!(clean("a/../.."), "..");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("/a"), "/");
        assert_eq!(dir("a"), ".");
        assert_eq!(dir("/a/b/"), "/a/b");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/"), "/");
        assert_eq!(base("a/."), ".");
        assert_eq!(base(""), ".");
    }

    #[test]
    fn split_keeps_dot_entry() {
        assert_eq!(
            split_path_dir_entry("/data/."),
            ("/data".to_owned(), ".".to_owned())
        );
        assert_eq!(
            split_path_dir_entry("/data/"),
            ("/".to_owned(), "data".to_owned())
        );
        assert_eq!(
            split_path_dir_entry("/a/b"),
            ("/a".to_owned(), "b".to_owned())
        );
        assert_eq!(split_path_dir_entry("/"), ("/".to_owned(), "/".to_owned()));
        assert!(asserts_directory("/x/"));
        assert!(asserts_directory("/x/."));
        assert!(!asserts_directory("/x"));
    }

    #[test]
    fn absolute_paths_keep_trailing_markers() {
        assert_eq!(container_abs("tmp/x"), "/tmp/x");
        assert_eq!(container_abs("tmp/x/"), "/tmp/x/");
        assert_eq!(container_abs("/data/."), "/data/.");
        assert_eq!(container_abs("../../etc/passwd"), "/etc/passwd");
        assert_eq!(container_abs("/"), "/");
        assert_eq!(container_abs("."), "/.");
        assert_eq!(host_abs("f", "/work"), "/work/f");
        assert_eq!(host_abs("./d/.", "/work"), "/work/d/.");
        assert_eq!(host_abs("d/", "/work"), "/work/d/");
        assert_eq!(host_abs("/abs/../x", "/work"), "/x");
    }

    fn exists(path: &str, is_dir: bool) -> DestInfo {
        DestInfo {
            path: path.into(),
            exists: true,
            is_dir,
        }
    }

    fn missing(path: &str) -> DestInfo {
        DestInfo {
            path: path.into(),
            exists: false,
            is_dir: false,
        }
    }

    fn placed(dir: &str, name: &str) -> Placement {
        Placement {
            dir: dir.into(),
            name: name.into(),
        }
    }

    #[test]
    fn file_source() {
        // into an existing directory: keeps its name
        assert_eq!(
            place("/h/f.txt", false, &exists("/tmp", true)).unwrap(),
            placed("/tmp", "f.txt")
        );
        // onto an existing file: replaces it
        assert_eq!(
            place("/h/f.txt", false, &exists("/etc/x.conf", false)).unwrap(),
            placed("/etc", "x.conf")
        );
        // to a new path: takes that name
        assert_eq!(
            place("/h/f.txt", false, &missing("/tmp/new")).unwrap(),
            placed("/tmp", "new")
        );
        // to a new path spelled as a directory: docker's "no such directory"
        for dst in ["/tmp/new/", "/tmp/new/."] {
            let e = place("/h/f.txt", false, &missing(dst)).unwrap_err();
            assert_eq!(e.to_string(), "no such directory");
        }
    }

    #[test]
    fn directory_source() {
        // into an existing directory: the directory itself goes inside
        assert_eq!(
            place("/h/site", true, &exists("/srv", true)).unwrap(),
            placed("/srv", "site")
        );
        // `dir/.`: its contents go inside
        assert_eq!(
            place("/h/site/.", true, &exists("/srv", true)).unwrap(),
            placed("/srv", ".")
        );
        // to a new path: created with that name
        assert_eq!(
            place("/h/site", true, &missing("/srv/www")).unwrap(),
            placed("/srv", "www")
        );
        assert_eq!(
            place("/h/site/.", true, &missing("/srv/www/")).unwrap(),
            placed("/srv", "www")
        );
        // never onto a file
        let e = place("/h/site", true, &exists("/etc/hosts", false)).unwrap_err();
        assert_eq!(e.to_string(), "cannot copy directory");
        // the root's contents, not a dir named "/"
        assert_eq!(
            place("/", true, &exists("/out", true)).unwrap(),
            placed("/out", ".")
        );
    }
}
