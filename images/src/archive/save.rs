//! `save`: images as an OCI image layout tar (with Docker's
//! `manifest.json`), written from the stored blobs byte for byte.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::Error;
use crate::manifest::{self, Document};
use crate::reference::Reference;
use crate::store::{LocalImage, Store, hex_of};

impl Store {
    /// Saves images to a tar file (written to a temp name, then renamed).
    pub fn save(&self, names: &[String], path: &Path) -> Result<(), Error> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // 0600 like `docker save -o` (the CLI writes a temp file too).
        let mut tmp =
            rstack_sys::fs::AtomicFile::create(path, 0o600).map_err(|e| Error::NotWritable {
                path: dir.to_owned(),
                source: e.into_io(),
            })?;
        {
            let mut out = io::BufWriter::new(&mut tmp);
            self.save_to(names, &mut out)?;
            out.flush().map_err(|source| Error::Write {
                path: path.to_owned(),
                source,
            })?;
        }
        tmp.commit().map_err(crate::fsutil::Error::from)?;
        Ok(())
    }

    /// Writes the archive of `names` to `out`.
    pub fn save_to(&self, names: &[String], out: impl Write) -> Result<(), Error> {
        let archive = PathBuf::from("<output>");
        let mut images: Vec<(LocalImage, Option<Reference>)> = Vec::new();
        for name in names {
            let image = self.lookup(name)?.ok_or_else(|| Error::ImageNotFound {
                reference: name.clone(),
            })?;
            // A tagged name saves that tag; an id saves every tag.
            let by_tag = Reference::parse(name)
                .ok()
                .filter(|r| r.tag().is_some() && image.record.repo_tags.contains(&r.to_string()));
            match by_tag {
                Some(r) => images.push((image, Some(r))),
                None if image.record.repo_tags.is_empty() => images.push((image, None)),
                None => {
                    for t in image.record.repo_tags.clone() {
                        images.push((image.clone(), Reference::parse(&t).ok()));
                    }
                }
            }
        }
        let mut blobs: BTreeMap<String, ()> = BTreeMap::new();
        let mut index_entries = Vec::new();
        let mut docker_manifest: Vec<serde_json::Value> = Vec::new();
        for (image, name) in &images {
            let mdata = self.read_blob(&image.record.manifest_digest)?;
            let m = match manifest::parse(&mdata) {
                Ok(Document::Manifest(m)) => m,
                _ => {
                    return Err(Error::Archive {
                        path: archive,
                        reason: format!(
                            "stored manifest {} is unreadable",
                            image.record.manifest_digest
                        ),
                    });
                }
            };
            blobs.insert(image.record.manifest_digest.clone(), ());
            blobs.insert(image.id.clone(), ());
            for l in &m.layers {
                blobs.insert(l.digest.clone(), ());
            }
            let mut annotations = serde_json::Map::new();
            if let Some(r) = name {
                annotations.insert("io.containerd.image.name".into(), json!(r.to_string()));
                annotations.insert(
                    "org.opencontainers.image.ref.name".into(),
                    json!(r.tag().unwrap_or("latest")),
                );
            }
            let media_type = m
                .media_type
                .clone()
                .unwrap_or_else(|| manifest::OCI_MANIFEST.to_owned());
            let mut entry = json!({
                "mediaType": media_type,
                "digest": image.record.manifest_digest,
                "size": mdata.len(),
            });
            if !annotations.is_empty() {
                entry["annotations"] = serde_json::Value::Object(annotations);
            }
            index_entries.push(entry);
            docker_manifest.push(json!({
                "Config": format!("blobs/sha256/{}", hex_of(&image.id)),
                "RepoTags": name.iter().map(|r| r.familiar()).collect::<Vec<_>>(),
                "Layers": m.layers.iter().map(|l| format!("blobs/sha256/{}", hex_of(&l.digest))).collect::<Vec<_>>(),
            }));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_INDEX,
            "manifests": index_entries,
        });
        let werr = |source| Error::Write {
            path: archive.clone(),
            source,
        };
        let mut tar = tar::Builder::new(out);
        let add = |tar: &mut tar::Builder<_>, name: &str, data: &[u8]| -> Result<(), Error> {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, name, data).map_err(werr)
        };
        add(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut dir = tar::Header::new_ustar();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        for d in ["blobs/", "blobs/sha256/"] {
            tar.append_data(&mut dir.clone(), d, io::empty())
                .map_err(werr)?;
        }
        for digest in blobs.keys() {
            let path = self.blob_path(digest);
            let mut file = File::open(&path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            let len = file
                .metadata()
                .map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?
                .len();
            let mut h = tar::Header::new_ustar();
            h.set_size(len);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(
                &mut h,
                format!("blobs/sha256/{}", hex_of(digest)),
                &mut file,
            )
            .map_err(werr)?;
        }
        add(
            &mut tar,
            "index.json",
            &serde_json::to_vec(&index).expect("json"),
        )?;
        add(
            &mut tar,
            "manifest.json",
            &serde_json::to_vec(&docker_manifest).expect("json"),
        )?;
        tar.into_inner().map_err(werr)?.flush().map_err(werr)?;
        Ok(())
    }
}
