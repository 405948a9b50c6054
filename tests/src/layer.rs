//! Layer tarballs built entry by entry, so a fixture controls owners, modes,
//! mtimes, xattrs (PAX `SCHILY.xattr.*` records), hard links, device nodes,
//! whiteouts (`.wh.NAME`, `.wh..wh..opq`) and — for hostile fixtures — raw
//! names the `tar` crate's path checks would refuse (`../x`, `/abs`).

use std::io::Write;

use tar::{EntryType, Header};

use crate::oci::FIXED_MTIME;

/// Metadata of one entry; [`Meta::default`] is root-owned with the given
/// mode and the fixed fixture mtime.
#[derive(Clone, Debug)]
pub struct Meta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Extended attributes, written as PAX `SCHILY.xattr.<name>` records.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    pub fn mode(mode: u32) -> Meta {
        Meta {
            mode,
            uid: 0,
            gid: 0,
            mtime: FIXED_MTIME,
            xattrs: Vec::new(),
        }
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Meta {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn xattr(mut self, name: &str, value: &[u8]) -> Meta {
        self.xattrs.push((name.to_owned(), value.to_vec()));
        self
    }
}

/// Builds an uncompressed layer tar in memory. Paths are written as given
/// (relative, no leading `./`), parents are not added implicitly.
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
    /// Modes of the regular files written, for their hard links' headers.
    modes: std::collections::HashMap<String, u32>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        LayerBuilder::new()
    }
}

impl LayerBuilder {
    pub fn new() -> LayerBuilder {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Complete);
        LayerBuilder {
            tar,
            modes: std::collections::HashMap::new(),
        }
    }

    pub fn dir(&mut self, path: &str, meta: Meta) -> &mut Self {
        self.entry(path, EntryType::Directory, &meta, None, &[])
    }

    pub fn file(&mut self, path: &str, meta: Meta, data: &[u8]) -> &mut Self {
        self.modes.insert(path.to_owned(), meta.mode);
        self.entry(path, EntryType::Regular, &meta, None, data)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(
            path,
            EntryType::Symlink,
            &Meta::mode(0o777),
            Some(target),
            &[],
        )
    }

    /// A hard link `path` to the earlier entry `target` (a path in the layer).
    /// Its header carries the target's mode, as GNU tar and Docker write
    /// it (Docker's unpacker applies a hard link header's mode to the
    /// inode, so a 0644 link to an executable would make it 0644).
    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mode = self.modes.get(target).copied().unwrap_or(0o644);
        self.entry(path, EntryType::Link, &Meta::mode(mode), Some(target), &[])
    }

    pub fn fifo(&mut self, path: &str, meta: Meta) -> &mut Self {
        self.entry(path, EntryType::Fifo, &meta, None, &[])
    }

    pub fn char_device(&mut self, path: &str, meta: Meta, major: u32, minor: u32) -> &mut Self {
        self.device(path, EntryType::Char, &meta, major, minor)
    }

    /// Deletes `path` from the layers below (`dir/.wh.name`).
    pub fn whiteout(&mut self, path: &str) -> &mut Self {
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (format!("{dir}/"), name),
            None => (String::new(), path),
        };
        self.entry(
            &format!("{dir}.wh.{name}"),
            EntryType::Regular,
            &Meta::mode(0o644),
            None,
            &[],
        )
    }

    /// Hides everything the layers below have in `dir` (`dir/.wh..wh..opq`).
    pub fn opaque(&mut self, dir: &str) -> &mut Self {
        self.entry(
            &format!("{dir}/.wh..wh..opq"),
            EntryType::Regular,
            &Meta::mode(0o644),
            None,
            &[],
        )
    }

    /// An entry with its name (and link name) written byte for byte, with
    /// no path validation: for hostile layers (`../escape`, `/etc/x`).
    pub fn raw(
        &mut self,
        name: &str,
        kind: EntryType,
        link: Option<&str>,
        data: &[u8],
    ) -> &mut Self {
        let mut header = Header::new_gnu();
        let meta = Meta::mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        set_meta(&mut header, kind, &meta, data.len() as u64);
        let old = header.as_old_mut();
        assert!(name.len() < old.name.len(), "raw tar name too long: {name}");
        old.name.fill(0);
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            assert!(
                link.len() < old.linkname.len(),
                "raw tar link name too long: {link}"
            );
            old.linkname.fill(0);
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        self.tar.append(&header, data).expect("tar into memory");
        self
    }

    /// The finished, uncompressed tar.
    pub fn finish(self) -> Vec<u8> {
        self.tar.into_inner().expect("tar into memory")
    }

    fn device(
        &mut self,
        path: &str,
        kind: EntryType,
        meta: &Meta,
        major: u32,
        minor: u32,
    ) -> &mut Self {
        let mut header = Header::new_gnu();
        set_meta(&mut header, kind, meta, 0);
        header
            .set_device_major(major)
            .expect("gnu header has device fields");
        header
            .set_device_minor(minor)
            .expect("gnu header has device fields");
        self.pax_xattrs(path, meta);
        self.tar
            .append_data(&mut header, path, &[][..])
            .expect("tar into memory");
        self
    }

    fn entry(
        &mut self,
        path: &str,
        kind: EntryType,
        meta: &Meta,
        link: Option<&str>,
        data: &[u8],
    ) -> &mut Self {
        let mut header = Header::new_gnu();
        set_meta(&mut header, kind, meta, data.len() as u64);
        self.pax_xattrs(path, meta);
        match link {
            Some(target) => self.tar.append_link(&mut header, path, target),
            None => self.tar.append_data(&mut header, path, data),
        }
        .expect("tar into memory");
        self
    }

    /// A PAX extended header (`x`) before the entry it applies to, holding
    /// its xattrs as `SCHILY.xattr.<name>` records (the form GNU tar, Go's
    /// archive/tar and Docker use).
    fn pax_xattrs(&mut self, path: &str, meta: &Meta) {
        if meta.xattrs.is_empty() {
            return;
        }
        let mut records = Vec::new();
        for (name, value) in &meta.xattrs {
            let mut body = format!(" SCHILY.xattr.{name}=").into_bytes();
            body.extend_from_slice(value);
            body.push(b'\n');
            records.extend_from_slice(&pax_record(&body));
        }
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::XHeader);
        header.set_mode(0o644);
        header.set_mtime(meta.mtime);
        header.set_size(records.len() as u64);
        let short: String = path
            .chars()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        header
            .set_path(format!("PaxHeaders/{}", short.trim_start_matches('/')))
            .expect("pax header name");
        header.set_cksum();
        self.tar
            .append(&header, &records[..])
            .expect("tar into memory");
    }
}

fn set_meta(header: &mut Header, kind: EntryType, meta: &Meta, size: u64) {
    header.set_entry_type(kind);
    header.set_mode(meta.mode);
    header.set_uid(meta.uid);
    header.set_gid(meta.gid);
    header.set_mtime(meta.mtime);
    header.set_size(size);
}

/// One PAX record `"<len> key=value\n"`, where `<len>` counts the whole
/// record including its own digits. `body` is `" key=value\n"`.
fn pax_record(body: &[u8]) -> Vec<u8> {
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len += 1;
    }
    let mut out = len.to_string().into_bytes();
    out.extend_from_slice(body);
    out
}

/// Gzip-compressed `tar` at `level` (0-9), e.g. for the benchmark's choice
/// of level; fixtures use [`crate::oci::Compression::compress`].
pub fn gzip(tar: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(level));
    enc.write_all(tar).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let r = pax_record(b" SCHILY.xattr.user.a=b\n");
        let s = String::from_utf8(r.clone()).unwrap();
        let (len, _) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), r.len());
    }

    #[test]
    fn xattrs_whiteouts_and_raw_names_read_back() {
        let mut b = LayerBuilder::new();
        b.dir("etc", Meta::mode(0o755))
            .file(
                "etc/x",
                Meta::mode(0o4755).owner(1000, 1000).xattr("user.k", b"v"),
                b"data",
            )
            .whiteout("etc/gone")
            .opaque("etc")
            .hardlink("etc/y", "etc/x")
            .raw("../escape", EntryType::Regular, None, b"evil");
        let tar = b.finish();
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            if path == "etc/x" {
                assert_eq!(entry.header().mode().unwrap(), 0o4755);
                assert_eq!(entry.header().uid().unwrap(), 1000);
                let pax: Vec<_> = entry
                    .pax_extensions()
                    .unwrap()
                    .unwrap()
                    .map(|e| {
                        let e = e.unwrap();
                        (e.key().unwrap().to_owned(), e.value_bytes().to_vec())
                    })
                    .collect();
                assert_eq!(pax, vec![("SCHILY.xattr.user.k".to_owned(), b"v".to_vec())]);
            }
            seen.push(path);
        }
        assert_eq!(
            seen,
            [
                "etc",
                "etc/x",
                "etc/.wh.gone",
                "etc/.wh..wh..opq",
                "etc/y",
                "../escape"
            ]
        );
    }
}
