//! `save` and `load`: images as tar archives, for hosts with no registry.
//!
//! `save` writes an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`, image-spec `image-layout.md`) plus Docker's
//! `manifest.json`, as `docker save` does since Docker 25, so the archive
//! is readable by `skopeo copy oci-archive:` and by `docker load`. Blobs are
//! the ones pulled, so the image id (config digest) survives a round trip
//! (`archive/save.rs`).
//!
//! `load` reads OCI layout archives and `docker save` archives (both the
//! current layout and the legacy `<id>/layer.tar` one). Every blob is
//! verified against its digest; an entry whose path leaves the archive root
//! is rejected.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::Error;
use crate::layer::{self, LayerSpec};
use crate::manifest::{self, Descriptor, Document};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{LocalImage, Store, hex_of};
use crate::store_write::NewImage;

mod save;

const STDIN: &str = "<stdin>";

/// An image read by `load`, with the names the archive gave it.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub image: LocalImage,
    pub names: Vec<Reference>,
}

impl Store {
    /// Loads every image of a tar archive file.
    pub fn load(&self, path: &Path) -> Result<Vec<LoadedImage>, Error> {
        let file = File::open(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        self.load_archive(BufReader::with_capacity(1 << 20, file), path)
    }

    /// Loads every image of a tar archive read from `reader`.
    pub fn load_from(&self, reader: impl Read) -> Result<Vec<LoadedImage>, Error> {
        self.load_archive(reader, Path::new(STDIN))
    }

    fn load_archive(&self, reader: impl Read, path: &Path) -> Result<Vec<LoadedImage>, Error> {
        let _lock = self.store_lock(false)?;
        self.clean_tmp();
        let staging = tempfile::Builder::new()
            .prefix(&format!("load-{}-", std::process::id()))
            .tempdir_in(self.tmp_dir())
            .map_err(|source| Error::NotWritable {
                path: self.tmp_dir(),
                source,
            })?;
        let files = extract(reader, staging.path(), path)?;
        let archive = Archive {
            files,
            path: path.to_owned(),
        };
        let loaded = if archive.has("index.json") {
            self.load_oci(&archive)?
        } else if archive.has("manifest.json") {
            self.load_docker(&archive)?
        } else {
            return Err(archive
                .err("neither index.json (OCI layout) nor manifest.json (docker save) found"));
        };
        let mut out = Vec::new();
        let index = self.read_index()?;
        for (id, names) in loaded {
            if let Some(rec) = index.images.get(&id) {
                out.push(LoadedImage {
                    image: self.local_image(rec, names.first().cloned())?,
                    names,
                });
            }
        }
        Ok(out)
    }

    fn load_oci(&self, archive: &Archive) -> Result<Vec<(String, Vec<Reference>)>, Error> {
        let index: manifest::Index = serde_json::from_slice(&archive.read("index.json")?)
            .map_err(|e| archive.err(&format!("index.json: {e}")))?;
        let mut ids = Vec::new();
        for desc in &index.manifests {
            let annotations = desc.annotations.clone().unwrap_or_default();
            let name = annotations
                .get("io.containerd.image.name")
                .or_else(|| {
                    annotations
                        .get("org.opencontainers.image.ref.name")
                        .filter(|n| n.contains('/') || n.contains(':'))
                })
                .and_then(|n| Reference::parse(n).ok());
            let data = archive.blob(&desc.digest)?;
            let (mdigest, mdata) = match manifest::parse(&data)
                .map_err(|e| archive.err(&format!("{}: {e}", desc.digest)))?
            {
                Document::Manifest(_) => (desc.digest.clone(), data),
                Document::Index(inner) => {
                    let host = Platform::host();
                    let pick = inner
                        .manifests
                        .iter()
                        .find(|d| {
                            d.platform.as_ref().is_some_and(|p| {
                                host.matches(&p.os, &p.architecture, p.variant.as_deref())
                            })
                        })
                        .ok_or_else(|| {
                            archive.err(&format!("no manifest for {host} in {}", desc.digest))
                        })?;
                    (pick.digest.clone(), archive.blob(&pick.digest)?)
                }
            };
            let Ok(Document::Manifest(m)) = manifest::parse(&mdata) else {
                return Err(archive.err(&format!("{mdigest} is not an image manifest")));
            };
            manifest::check_image(&m).map_err(|e| archive.err(&e))?;
            let config = archive.blob(&m.config.digest)?;
            let layers: Vec<(Descriptor, PathBuf)> = m
                .layers
                .iter()
                .map(|l| archive.blob_path(&l.digest).map(|p| (l.clone(), p)))
                .collect::<Result<_, _>>()?;
            let names: Vec<Reference> = name.iter().cloned().collect();
            let id = self.import_image(
                archive,
                &config,
                &m.config.digest,
                &mdigest,
                &mdata,
                &layers,
                name,
            )?;
            ids.push((id, names));
        }
        Ok(ids)
    }

    fn load_docker(&self, archive: &Archive) -> Result<Vec<(String, Vec<Reference>)>, Error> {
        #[derive(serde::Deserialize)]
        struct Entry {
            #[serde(rename = "Config")]
            config: String,
            #[serde(rename = "RepoTags", default)]
            repo_tags: Option<Vec<String>>,
            #[serde(rename = "Layers")]
            layers: Vec<String>,
        }
        let entries: Vec<Entry> = serde_json::from_slice(&archive.read("manifest.json")?)
            .map_err(|e| archive.err(&format!("manifest.json: {e}")))?;
        let mut ids = Vec::new();
        for entry in entries {
            let config = archive.read(&entry.config)?;
            let config_digest = crate::digest::sha256_digest(&config);
            let mut layers = Vec::new();
            for l in &entry.layers {
                let path = archive.path_of(l)?;
                let (digest, size, media_type) = describe_file(&path)?;
                layers.push((
                    Descriptor {
                        media_type,
                        digest,
                        size,
                        platform: None,
                        annotations: None,
                    },
                    path,
                ));
            }
            let mjson = json!({
                "schemaVersion": 2,
                "mediaType": manifest::OCI_MANIFEST,
                "config": { "mediaType": manifest::OCI_CONFIG, "digest": config_digest, "size": config.len() },
                "layers": layers.iter().map(|(d, _)| json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size})).collect::<Vec<_>>(),
            });
            let mdata = serde_json::to_vec(&mjson).expect("json");
            let mdigest = crate::digest::sha256_digest(&mdata);
            let tags: Vec<Reference> = entry
                .repo_tags
                .unwrap_or_default()
                .iter()
                .filter_map(|t| Reference::parse(t).ok())
                .collect();
            let first = tags.first().cloned();
            let id = self.import_image(
                archive,
                &config,
                &config_digest,
                &mdigest,
                &mdata,
                &layers,
                first,
            )?;
            if tags.len() > 1 {
                self.update_index(|index| {
                    if let Some(rec) = index.images.get_mut(&id) {
                        for t in &tags[1..] {
                            if !rec.repo_tags.contains(&t.to_string()) {
                                rec.repo_tags.push(t.to_string());
                            }
                        }
                    }
                    Ok(())
                })?;
            }
            ids.push((id, tags));
        }
        Ok(ids)
    }

    #[allow(clippy::too_many_arguments)]
    fn import_image(
        &self,
        archive: &Archive,
        config: &[u8],
        config_digest: &str,
        manifest_digest: &str,
        manifest_data: &[u8],
        layers: &[(Descriptor, PathBuf)],
        name: Option<Reference>,
    ) -> Result<String, Error> {
        let parsed: oci_spec::image::ImageConfiguration =
            serde_json::from_slice(config).map_err(|e| Error::BadConfig {
                digest: config_digest.to_owned(),
                reason: e.to_string(),
            })?;
        let diff_ids: Vec<String> = parsed.rootfs().diff_ids().to_vec();
        if diff_ids.len() != layers.len()
            || diff_ids
                .iter()
                .any(|d| !crate::reference::is_sha256_digest(d))
        {
            return Err(archive.err(&format!(
                "config {config_digest} does not match its {} layers",
                layers.len()
            )));
        }
        for ((desc, path), diff_id) in layers.iter().zip(&diff_ids) {
            if self.has_layer(diff_id, &desc.digest) {
                layer::ensure_link(self, diff_id)?;
                continue;
            }
            let lock = self.layer_lock(diff_id)?;
            if self.has_layer(diff_id, &desc.digest) {
                layer::ensure_link(self, diff_id)?;
                continue;
            }
            let file = File::open(path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            let spec = LayerSpec {
                blob_digest: desc.digest.clone(),
                media_type: desc.media_type.clone(),
                blob_size: Some(desc.size),
                diff_id: diff_id.clone(),
            };
            let layer = layer::import(
                self,
                &spec,
                BufReader::with_capacity(1 << 20, file),
                &|_| {},
                layer::BlobSink::Copy,
            )?;
            layer::commit(self, vec![layer])?;
            drop(lock);
        }
        self.add_image(NewImage {
            config_digest,
            config,
            manifest_digest,
            manifest: manifest_data,
            repo_tags: name
                .iter()
                .filter(|r| r.tag().is_some() && r.digest().is_none())
                .map(|r| r.to_string())
                .collect(),
            repo_digests: vec![],
            diff_ids,
        })?;
        Ok(config_digest.to_owned())
    }
}

/// Digest, size and media type (from the magic bytes) of a layer file.
fn describe_file(path: &Path) -> Result<(String, u64, String), Error> {
    let rerr = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(rerr)?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(rerr)?;
    let media_type = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        manifest::OCI_LAYER_GZIP
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        manifest::OCI_LAYER_ZSTD
    } else {
        manifest::OCI_LAYER_TAR
    };
    let file = File::open(path).map_err(rerr)?;
    let (digest, size) = crate::digest::HashingReader::new(BufReader::with_capacity(1 << 20, file))
        .finish()
        .map_err(rerr)?;
    Ok((digest, size, media_type.to_owned()))
}

/// The extracted archive: member name -> file in the staging dir.
struct Archive {
    files: BTreeMap<String, PathBuf>,
    path: PathBuf,
}

impl Archive {
    fn err(&self, reason: &str) -> Error {
        Error::Archive {
            path: self.path.clone(),
            reason: reason.to_owned(),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    fn path_of(&self, name: &str) -> Result<PathBuf, Error> {
        let key = normalize(name).ok_or_else(|| self.err(&format!("bad member name {name:?}")))?;
        self.files
            .get(&key)
            .cloned()
            .ok_or_else(|| self.err(&format!("missing member {name}")))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, Error> {
        let path = self.path_of(name)?;
        std::fs::read(&path).map_err(|source| Error::Read { path, source })
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, Error> {
        if !crate::reference::is_sha256_digest(digest) {
            return Err(self.err(&format!("bad digest {digest:?}")));
        }
        self.path_of(&format!("blobs/sha256/{}", hex_of(digest)))
    }

    /// A small blob, verified.
    fn blob(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let data = self.read(&format!("blobs/sha256/{}", hex_of(digest)))?;
        let actual = crate::digest::sha256_digest(&data);
        if actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("archive blob {digest}"),
                expected: digest.to_owned(),
                actual,
            });
        }
        Ok(data)
    }
}

/// `./a//b/../c` -> `a/c`; `None` when the name leaves the root.
fn normalize(name: &str) -> Option<String> {
    let mut parts = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Writes the regular members of the archive into `dir` (flat file names,
/// so no member can place anything outside it); symlinks between members
/// (legacy docker archives) are resolved by name.
fn extract(
    reader: impl Read,
    dir: &Path,
    archive: &Path,
) -> Result<BTreeMap<String, PathBuf>, Error> {
    let err = |reason: String| Error::Archive {
        path: archive.to_owned(),
        reason,
    };
    let mut files = BTreeMap::new();
    let mut links = Vec::new();
    let mut tar = tar::Archive::new(reader);
    let entries = tar
        .entries()
        .map_err(|e| err(format!("not a tar archive: {e}")))?;
    for (n, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| err(format!("bad tar entry: {e}")))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        let name = normalize(&raw)
            .ok_or_else(|| err(format!("member {raw:?} leaves the archive root")))?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let dest = dir.join(format!("m{n}"));
                let mut out = File::create(&dest).map_err(|source| Error::Write {
                    path: dest.clone(),
                    source,
                })?;
                io::copy(&mut entry, &mut out)
                    .map_err(|e| err(format!("reading member {name}: {e}")))?;
                files.insert(name, dest);
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let base = if kind == tar::EntryType::Symlink {
                    name.rsplit_once('/')
                        .map(|(d, _)| format!("{d}/"))
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                let resolved = normalize(&format!("{base}{target}"))
                    .ok_or_else(|| err(format!("link {raw:?} leaves the archive root")))?;
                links.push((name, resolved));
            }
            _ => {}
        }
    }
    for (name, target) in links {
        if let Some(path) = files.get(&target).cloned() {
            files.insert(name, path);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::digest::sha256_digest;

    /// An OCI layout archive with one gzip layer holding `file`, named `name`.
    fn oci_archive(name: &str, content: &[u8]) -> (Vec<u8>, String) {
        let mut layer = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        layer.append_data(&mut h, "file", content).unwrap();
        let raw = layer.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let gz = gz.finish().unwrap();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
            "config": {"Cmd": ["/file"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&raw)]},
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": manifest::OCI_CONFIG, "digest": sha256_digest(&config), "size": config.len()},
            "layers": [{"mediaType": manifest::OCI_LAYER_GZIP, "digest": sha256_digest(&gz), "size": gz.len()}],
        }))
        .unwrap();
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": manifest::OCI_MANIFEST, "digest": sha256_digest(&manifest), "size": manifest.len(),
                "annotations": {"io.containerd.image.name": name}}],
        }))
        .unwrap();
        let mut out = tar::Builder::new(Vec::new());
        let mut add = |path: String, data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            out.append_data(&mut h, path, data).unwrap();
        };
        add("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#);
        add("index.json".into(), &index);
        for blob in [&config, &manifest, &gz] {
            add(
                format!("blobs/sha256/{}", hex_of(&sha256_digest(blob))),
                blob,
            );
        }
        (out.into_inner().unwrap(), sha256_digest(&config))
    }

    #[test]
    fn load_lookup_save_remove_load_prune() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("root")).unwrap();
        let (archive, id) = oci_archive("example.com/app:1", b"hello");
        let loaded = store.load_from(&archive[..]).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].image.id, id);
        assert_eq!(loaded[0].names[0].to_string(), "example.com/app:1");

        let image = store.lookup("example.com/app:1").unwrap().unwrap();
        assert_eq!(image.id, id);
        assert_eq!(
            std::fs::read(image.layer_dirs[0].join("file")).unwrap(),
            b"hello"
        );
        let link = store.link_dir().join(&image.layer_links[0]);
        assert_eq!(std::fs::read(link.join("file")).unwrap(), b"hello");
        assert_eq!(store.lookup(&id[7..19]).unwrap().unwrap().id, id);
        assert!(store.lookup("example.com/app:2").unwrap().is_none());

        let saved = tmp.path().join("saved.tar");
        store
            .save(&["example.com/app:1".to_owned()], &saved)
            .unwrap();
        let removed = store.remove("example.com/app:1", false).unwrap();
        assert_eq!(removed.deleted_images, vec![id.clone()]);
        assert_eq!(removed.deleted_layers.len(), 1);
        assert!(store.lookup("example.com/app:1").unwrap().is_none());
        assert_eq!(std::fs::read_dir(store.layers_dir()).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(store.blob_dir()).unwrap().count(), 0);

        let again = store.load(&saved).unwrap();
        assert_eq!(again[0].image.id, id);
        assert!(matches!(
            store.remove("nothere", false),
            Err(Error::ImageNotFound { .. })
        ));
        let pruned = store.prune(true).unwrap();
        assert_eq!(pruned.deleted_images, vec![id]);
        assert!(store.list().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(store.link_dir()).unwrap().count(), 0);
    }

    #[test]
    fn tag_then_untag_keeps_the_image_until_its_last_name() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("root")).unwrap();
        let (archive, id) = oci_archive("example.com/app:1", b"x");
        store.load_from(&archive[..]).unwrap();
        let tagged = store.tag(&id[7..19], "other").unwrap();
        assert_eq!(tagged.id, id);
        assert_eq!(store.lookup("other:latest").unwrap().unwrap().id, id);
        assert!(matches!(
            store.remove(&id, false),
            Err(Error::MultipleTags { .. })
        ));
        let removed = store.remove("example.com/app:1", false).unwrap();
        assert!(removed.deleted_images.is_empty());
        assert_eq!(store.list().unwrap().len(), 1);
        let removed = store.remove("other", false).unwrap();
        assert_eq!(removed.deleted_images, vec![id]);
        assert!(matches!(
            store.tag("nothere", "x"),
            Err(Error::ImageNotFound { .. })
        ));
    }

    #[test]
    fn unreferenced_layers_of_an_earlier_boot_are_unpacked_again() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("root")).unwrap();
        let (archive, _) = oci_archive("example.com/app:1", b"data");
        let image = store.load_from(&archive[..]).unwrap().remove(0).image;
        let diff_id = image.record.layers[0].clone();
        let meta_path = store.layer_meta_path(&diff_id);
        let mut meta = store.layer_meta(&diff_id).unwrap();
        meta.boot_id = "an-earlier-boot".into();
        std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
        // Referenced by the index: synced before that write, so trusted.
        assert!(store.layer_is_trusted(&diff_id));
        store
            .update_index(|index| {
                index.images.clear();
                Ok(())
            })
            .unwrap();
        assert!(!store.layer_is_trusted(&diff_id));
        // A power cut may have emptied its files: the next load redoes it.
        std::fs::write(image.layer_dirs[0].join("file"), b"").unwrap();
        let again = store.load_from(&archive[..]).unwrap().remove(0).image;
        assert_eq!(
            std::fs::read(again.layer_dirs[0].join("file")).unwrap(),
            b"data"
        );
        assert_eq!(
            store.layer_meta(&diff_id).unwrap().boot_id,
            crate::store::boot_id()
        );
    }

    #[test]
    fn bad_archives_are_rejected_and_leave_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("root")).unwrap();
        let (mut archive, _) = oci_archive("example.com/app:1", b"hello");
        // Flip a byte inside the gzip layer blob (the last member).
        let pos = archive.len() - 1024 - 512 - 20;
        archive[pos] ^= 0xff;
        assert!(store.load_from(&archive[..]).is_err());
        assert!(store.list().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(store.layers_dir()).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);

        let err = store.load_from(&b"not a tar"[..]).unwrap_err();
        assert!(err.to_string().contains("<stdin>"), "{err}");
        let mut evil = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..13].copy_from_slice(b"../index.json");
        h.set_size(2);
        h.set_cksum();
        evil.append(&h, &b"{}"[..]).unwrap();
        let err = store
            .load_from(&evil.into_inner().unwrap()[..])
            .unwrap_err();
        assert!(err.to_string().contains("leaves the archive root"), "{err}");
    }
}
