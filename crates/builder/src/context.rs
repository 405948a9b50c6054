//! Sources of COPY/ADD: the build context (through `.dockerignore`) or
//! another stage's / image's root filesystem (`--from`), resolved to the
//! list of entries a step writes, hashed for the cache.

use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ignore::{Matcher, has_wildcards, match_segment};
use super::mergedfs::MergedFs;

/// A source file system object.
#[derive(Debug, Clone)]
pub struct Entry {
    pub real: PathBuf,
    pub meta: Metadata,
}

/// Where COPY/ADD read from.
pub trait SourceFs {
    /// `rel` is relative to the source root, `/`-separated.
    fn lookup(&self, rel: &str) -> Option<Entry>;
    /// Entries of a directory, sorted by name.
    fn children(&self, rel: &str) -> Vec<(String, Entry)>;
}

/// The build context directory, minus ignored files.
pub struct ContextFs {
    pub root: PathBuf,
    pub ignore: Matcher,
}

impl ContextFs {
    fn visible(&self, rel: &str, meta: &Metadata) -> bool {
        rel.is_empty()
            || !self.ignore.is_ignored(rel)
            || (meta.is_dir() && self.ignore.has_exclusions())
    }
}

impl ContextFs {
    /// The host path of `rel`: symlinks among its parent directories are
    /// followed but kept inside the context, like `openat2`'s
    /// `RESOLVE_IN_ROOT` (a link to `/etc` in the context means
    /// `CONTEXT/etc`, never the host's); the last component is not
    /// followed (a symlink is copied as a symlink).
    fn real_path(&self, rel: &str) -> Option<PathBuf> {
        let mut todo: std::collections::VecDeque<String> =
            rel.split('/').map(str::to_owned).collect();
        let mut cur: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = todo.pop_front() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    cur.pop();
                    continue;
                }
                _ => {}
            }
            if todo.iter().all(|p| p.is_empty() || p == ".") {
                cur.push(part);
                break;
            }
            let mut path = self.root.clone();
            path.extend(&cur);
            path.push(&part);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    let target = std::fs::read_link(&path).ok()?;
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        cur.clear();
                    }
                    for (i, t) in target.split('/').enumerate() {
                        todo.insert(i, t.to_owned());
                    }
                }
                _ => cur.push(part),
            }
        }
        let mut path = self.root.clone();
        path.extend(&cur);
        Some(path)
    }
}

impl SourceFs for ContextFs {
    fn lookup(&self, rel: &str) -> Option<Entry> {
        let real = self.real_path(rel)?;
        let meta = std::fs::symlink_metadata(&real).ok()?;
        self.visible(rel, &meta).then_some(Entry { real, meta })
    }

    fn children(&self, rel: &str) -> Vec<(String, Entry)> {
        let Some(dir) = self.real_path(rel) else {
            return Vec::new();
        };
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out: Vec<(String, Entry)> = rd
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let child = join(rel, &name);
                let meta = std::fs::symlink_metadata(e.path()).ok()?;
                self.visible(&child, &meta).then(|| {
                    (
                        name,
                        Entry {
                            real: e.path(),
                            meta,
                        },
                    )
                })
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl SourceFs for MergedFs {
    fn lookup(&self, rel: &str) -> Option<Entry> {
        let f = MergedFs::lookup(self, rel)?;
        Some(Entry {
            real: f.real,
            meta: f.meta,
        })
    }

    fn children(&self, rel: &str) -> Vec<(String, Entry)> {
        let Some(dir) = MergedFs::lookup(self, rel) else {
            return Vec::new();
        };
        self.read_dir(&dir)
            .into_iter()
            .filter_map(|(name, real)| {
                let meta = std::fs::symlink_metadata(&real).ok()?;
                Some((name, Entry { real, meta }))
            })
            .collect()
    }
}

pub fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_owned()
    } else {
        format!("{a}/{b}")
    }
}

/// Cleans a path to relative `/`-separated segments (no `.`, `..` kept
/// inside the root).
pub fn clean_rel(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

/// The entries a source pattern names (wildcards expanded per segment).
pub fn resolve(fs: &dyn SourceFs, src: &str) -> Vec<(String, Entry)> {
    let rel = clean_rel(src);
    if !has_wildcards(&rel) {
        return fs.lookup(&rel).map(|e| (rel, e)).into_iter().collect();
    }
    let mut current = vec![String::new()];
    let segments: Vec<&str> = rel.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        let mut next = Vec::new();
        for base in &current {
            if has_wildcards(seg) {
                for (name, e) in fs.children(base) {
                    if match_segment(seg, &name).unwrap_or(false)
                        && (i + 1 == segments.len() || e.meta.is_dir())
                    {
                        next.push(join(base, &name));
                    }
                }
            } else {
                let p = join(base, seg);
                if fs.lookup(&p).is_some() {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    current
        .into_iter()
        .filter_map(|p| fs.lookup(&p).map(|e| (p, e)))
        .collect()
}

/// One object a COPY writes: its path in the image and where it comes from.
#[derive(Debug, Clone)]
pub struct Item {
    pub dest: String,
    pub entry: Entry,
}

/// All objects under a matched source: a directory's contents (not the
/// directory itself) go under `dest`, depth first, sorted.
pub fn expand(fs: &dyn SourceFs, rel: &str, entry: &Entry, dest: &str, out: &mut Vec<Item>) {
    if entry.meta.is_dir() {
        for (name, child) in fs.children(rel) {
            let child_dest = join(dest, &name);
            out.push(Item {
                dest: child_dest.clone(),
                entry: child.clone(),
            });
            if child.meta.is_dir() {
                expand(fs, &join(rel, &name), &child, &child_dest, out);
            }
        }
    } else {
        out.push(Item {
            dest: dest.to_owned(),
            entry: entry.clone(),
        });
    }
}

/// Hash of what a COPY writes: paths, types, modes, link targets and file
/// contents (owners are not part of it: --chown is in the instruction).
pub fn hash_items(items: &[Item]) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    for it in items {
        let m = &it.entry.meta;
        h.update(it.dest.as_bytes());
        h.update([0]);
        h.update(m.mode().to_le_bytes());
        if m.is_file() {
            h.update(m.len().to_le_bytes());
            let mut f = std::fs::File::open(&it.entry.real)?;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        } else if m.file_type().is_symlink() {
            h.update(
                std::fs::read_link(&it.entry.real)?
                    .as_os_str()
                    .as_encoded_bytes(),
            );
        }
        h.update([1]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Compression of a local archive ADD extracts, by magic bytes; `None`
/// when the file is not an archive (it is then copied as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    Tar,
    Gzip,
    Zstd,
}

pub fn sniff_archive(path: &Path) -> Option<Archive> {
    let mut head = [0u8; 512];
    let mut f = std::fs::File::open(path).ok()?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    let head = &head[..n];
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Archive::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Archive::Zstd)
    } else if n >= 262 && &head[257..262] == b"ustar" {
        Some(Archive::Tar)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(files: &[&str], ignore: &str) -> (tempfile::TempDir, ContextFs) {
        let t = tempfile::tempdir().unwrap();
        for f in files {
            let p = t.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, f.as_bytes()).unwrap();
        }
        let fs = ContextFs {
            root: t.path().to_owned(),
            ignore: Matcher::parse(ignore).unwrap(),
        };
        (t, fs)
    }

    #[test]
    fn ignored_files_never_reach_a_copy() {
        let (_t, fs) = ctx(
            &[
                "app.py",
                "secret.env",
                "src/a.py",
                "src/b.log",
                "node_modules/x/y.js",
            ],
            "*.env\n**/*.log\nnode_modules\n",
        );
        let (_, root) = resolve(&fs, ".").pop().unwrap();
        let mut items = Vec::new();
        expand(&fs, "", &root, "app", &mut items);
        let dests: Vec<&str> = items.iter().map(|i| i.dest.as_str()).collect();
        assert_eq!(dests, vec!["app/app.py", "app/src", "app/src/a.py"]);
        assert!(resolve(&fs, "secret.env").is_empty());
        assert!(resolve(&fs, "/node_modules/x/y.js").is_empty());
    }

    #[test]
    fn wildcards_and_hash() {
        let (t, fs) = ctx(&["a.txt", "b.txt", "c.md", "d/e.txt"], "");
        let names: Vec<String> = resolve(&fs, "*.txt").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["a.txt", "b.txt"]);
        let names: Vec<String> = resolve(&fs, "*/e.txt")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, vec!["d/e.txt"]);
        let items = |fs: &ContextFs| {
            let mut v = Vec::new();
            for (rel, e) in resolve(fs, "*.txt") {
                expand(fs, &rel, &e, &rel, &mut v);
            }
            hash_items(&v).unwrap()
        };
        let h1 = items(&fs);
        assert_eq!(h1, items(&fs));
        std::fs::write(t.path().join("b.txt"), "changed").unwrap();
        assert_ne!(h1, items(&fs));
    }

    #[test]
    fn symlinked_dirs_stay_inside_the_context() {
        let (t, fs) = ctx(&["etc/passwd", "real/f"], "");
        std::fs::write(t.path().join("etc/passwd"), "context passwd").unwrap();
        std::os::unix::fs::symlink("/etc", t.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", t.path().join("real/up")).unwrap();
        std::os::unix::fs::symlink("real", t.path().join("rel")).unwrap();
        let read = |p: &str| std::fs::read_to_string(fs.lookup(p).unwrap().real).unwrap();
        assert_eq!(
            read("abs/passwd"),
            "context passwd",
            "absolute link resolved in the context"
        );
        assert_eq!(
            read("real/up/etc/passwd"),
            "context passwd",
            "`..` stops at the context root"
        );
        assert_eq!(read("rel/f"), "real/f");
        assert!(
            fs.lookup("abs").unwrap().meta.file_type().is_symlink(),
            "last component not followed"
        );
        assert!(fs.lookup("abs/shadow").is_none());
    }

    #[test]
    fn archives_by_magic() {
        let t = tempfile::tempdir().unwrap();
        let plain = t.path().join("f");
        std::fs::write(&plain, "hello").unwrap();
        assert_eq!(sniff_archive(&plain), None);
        let tarred = t.path().join("a.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&tarred).unwrap());
        b.append_path_with_name(&plain, "f").unwrap();
        b.finish().unwrap();
        drop(b);
        assert_eq!(sniff_archive(&tarred), Some(Archive::Tar));
    }
}
