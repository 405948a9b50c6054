//! Writing build layers: gzip-compressed tar diffs in the OCI layer format.
//!
//! A RUN step's changes are the overlayfs upper dir of its container: new
//! and changed files as they are, deletions as character devices 0/0
//! (written as `.wh.NAME` files) and directories whose lower contents are
//! hidden as the `trusted.overlay.opaque` xattr (written as the directory
//! plus `.wh..wh..opq`), the inverse of what `unpack` does. COPY/ADD
//! layers are written entry by entry by the builder through [`LayerWriter`].
//! Both digests are computed while writing: the diff-id (uncompressed tar)
//! and the blob digest (gzip stream).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use rstack_images::unpack::OPAQUE_XATTR;

/// Hashes and counts what is written through it.
struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type Inner = HashWriter<flate2::write::GzEncoder<HashWriter<io::BufWriter<File>>>>;

/// A layer being written to a file.
pub struct LayerWriter {
    tar: tar::Builder<Inner>,
    path: PathBuf,
    /// inode -> first path written, for hard links.
    links: HashMap<(u64, u64), String>,
}

/// A finished layer blob.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    pub path: PathBuf,
    pub diff_id: String,
    pub blob_digest: String,
    pub blob_size: u64,
}

/// Overrides applied to copied entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attrs {
    pub owner: Option<(u32, u32)>,
    pub mode: Option<u32>,
}

impl LayerWriter {
    pub fn create(path: &Path) -> io::Result<LayerWriter> {
        let file = File::create(path)?;
        let compressed = HashWriter {
            inner: io::BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            count: 0,
        };
        let gz = flate2::write::GzEncoder::new(compressed, flate2::Compression::fast());
        let mut tar = tar::Builder::new(HashWriter {
            inner: gz,
            hasher: Sha256::new(),
            count: 0,
        });
        tar.follow_symlinks(false);
        tar.mode(tar::HeaderMode::Complete);
        Ok(LayerWriter {
            tar,
            path: path.to_owned(),
            links: HashMap::new(),
        })
    }

    /// Appends the file system object at `real` as `name` (relative path
    /// in the image), with `attrs` applied.
    pub fn append(&mut self, real: &Path, name: &str, attrs: Attrs) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(real)?;
        let mut header = tar::Header::new_ustar();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        if let Some((uid, gid)) = attrs.owner {
            header.set_uid(uid.into());
            header.set_gid(gid.into());
            header.set_username("")?;
            header.set_groupname("")?;
        }
        if let Some(mode) = attrs.mode {
            header.set_mode(mode);
        }
        let ft = meta.file_type();
        let xattrs = copy_xattrs(real);
        if !xattrs.is_empty() {
            let pax: Vec<(String, Vec<u8>)> = xattrs
                .into_iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
                .collect();
            self.tar
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        if ft.is_file() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(target) = self.links.get(&key) {
                header.set_entry_type(tar::EntryType::Link);
                header.set_size(0);
                let target = target.clone();
                return self.tar.append_link(&mut header, name, target);
            }
            self.links.insert(key, name.to_owned());
        }
        if ft.is_dir() {
            header.set_size(0);
            let dir_name = format!("{}/", name.trim_end_matches('/'));
            self.tar.append_data(&mut header, dir_name, io::empty())
        } else if ft.is_symlink() {
            let target = std::fs::read_link(real)?;
            header.set_size(0);
            self.tar.append_link(&mut header, name, target)
        } else if ft.is_file() {
            let f = File::open(real)?;
            self.tar.append_data(&mut header, name, f)
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            header.set_size(0);
            self.tar.append_data(&mut header, name, io::empty())
        } else {
            // Sockets cannot be in a layer; docker skips them too.
            Ok(())
        }
    }

    /// Appends a regular file with the given content.
    pub fn append_bytes(
        &mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        owner: (u32, u32),
    ) -> io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_uid(owner.0.into());
        header.set_gid(owner.1.into());
        header.set_mtime(now());
        self.tar.append_data(&mut header, name, data)
    }

    /// Appends a directory entry with the given attributes.
    pub fn append_dir(
        &mut self,
        name: &str,
        mode: u32,
        owner: (u32, u32),
        mtime: u64,
    ) -> io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(mode);
        header.set_uid(owner.0.into());
        header.set_gid(owner.1.into());
        header.set_mtime(mtime);
        self.tar.append_data(
            &mut header,
            format!("{}/", name.trim_end_matches('/')),
            io::empty(),
        )
    }

    /// Appends one entry read from another tar archive (ADD of a local
    /// archive), renamed to `name`.
    pub fn append_entry<R: io::Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> io::Result<()> {
        let mut header = entry.header().clone();
        match header.entry_type() {
            tar::EntryType::Link | tar::EntryType::Symlink => {
                let target = entry.link_name()?.unwrap_or_default().into_owned();
                header.set_size(0);
                self.tar.append_link(&mut header, name, target)
            }
            _ => self.tar.append_data(&mut header, name, entry),
        }
    }

    /// Writes the tar end marker, finishes the gzip stream, flushes.
    pub fn finish(self) -> io::Result<LayerBlob> {
        let inner = self.tar.into_inner()?;
        let diff_id = format!("sha256:{}", hex::encode(inner.hasher.finalize()));
        let mut compressed = inner.inner.finish()?;
        compressed.flush()?;
        let blob_digest = format!("sha256:{}", hex::encode(compressed.hasher.finalize()));
        Ok(LayerBlob {
            path: self.path,
            diff_id,
            blob_digest,
            blob_size: compressed.count,
        })
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// xattrs worth keeping in a layer (overlayfs' own are not).
fn copy_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    names
        .filter_map(|n| n.into_string().ok())
        .filter(|n| !n.starts_with("trusted.overlay.") && !n.starts_with("system."))
        .filter_map(|n| Some((n.clone(), xattr::get(path, &n).ok()??)))
        .collect()
}

/// Paths the runtime creates in every container's upper dir as mount
/// points (`/etc/hosts` bind mounts, `/dev`, `/proc`, ...): never part of
/// a RUN layer unless the step wrote content into them.
fn is_mount_stub(rel: &str, meta: &std::fs::Metadata) -> bool {
    match rel {
        "etc/hosts" | "etc/hostname" | "etc/resolv.conf" => meta.is_file() && meta.len() == 0,
        "proc" | "sys" | "dev" => meta.is_dir(),
        _ => rel.starts_with("dev/") || rel.starts_with("proc/") || rel.starts_with("sys/"),
    }
}

/// Writes the diff of an overlayfs upper dir into `w`, converting
/// whiteouts to the OCI form. Entries come in sorted order so equal
/// upper dirs give equal tars.
pub fn write_upper(w: &mut LayerWriter, upper: &Path) -> io::Result<()> {
    walk(w, upper, "")
}

fn walk(w: &mut LayerWriter, dir: &Path, prefix: &str) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let path = e.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if is_mount_stub(&rel, &meta) {
            // /dev etc. may still hold real content a step wrote (rare);
            // mount points are skipped, their contents are runtime-owned.
            continue;
        }
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            w.append_bytes(&whiteout_name(&rel), b"", 0o644, (0, 0))?;
            continue;
        }
        w.append(&path, &rel, Attrs::default())?;
        if meta.is_dir() {
            if matches!(xattr::get(&path, OPAQUE_XATTR), Ok(Some(v)) if v == b"y") {
                w.append_bytes(&format!("{rel}/.wh..wh..opq"), b"", 0o644, (0, 0))?;
            }
            walk(w, &path, &rel)?;
        }
    }
    Ok(())
}

/// `a/b/name` -> `a/b/.wh.name`.
pub fn whiteout_name(rel: &str) -> String {
    match rel.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.wh.{name}"),
        None => format!(".wh.{rel}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteout_names() {
        assert_eq!(whiteout_name("etc/motd"), "etc/.wh.motd");
        assert_eq!(whiteout_name("motd"), ".wh.motd");
    }

    #[test]
    fn upper_dir_diff_is_a_valid_layer_with_digests() {
        let t = tempfile::tempdir().unwrap();
        let upper = t.path().join("upper");
        std::fs::create_dir_all(upper.join("app/sub")).unwrap();
        std::fs::create_dir_all(upper.join("proc")).unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap();
        std::fs::write(upper.join("app/sub/f"), "hello").unwrap();
        std::fs::hard_link(upper.join("app/sub/f"), upper.join("app/g")).unwrap();
        std::os::unix::fs::symlink("sub/f", upper.join("app/l")).unwrap();
        let blob = t.path().join("layer.tar.gz");
        let mut w = LayerWriter::create(&blob).unwrap();
        write_upper(&mut w, &upper).unwrap();
        let done = w.finish().unwrap();
        let bytes = std::fs::read(&blob).unwrap();
        assert_eq!(done.blob_size, bytes.len() as u64);
        assert_eq!(done.blob_digest, rstack_images::sha256_digest(&bytes));
        let mut raw = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut raw).unwrap();
        assert_eq!(done.diff_id, rstack_images::sha256_digest(&raw));
        let mut archive = tar::Archive::new(&raw[..]);
        let names: Vec<(String, tar::EntryType)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect();
        let names_only: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        // Mount stubs (empty etc/hosts, proc/) are left out.
        assert_eq!(
            names_only,
            vec!["app/", "app/g", "app/l", "app/sub/", "app/sub/f", "etc/"]
        );
        assert_eq!(
            names[4].1,
            tar::EntryType::Link,
            "second name of an inode is a hard link"
        );
        assert_eq!(names[2].1, tar::EntryType::Symlink);
    }
}
