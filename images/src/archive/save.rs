//! `save`: images as an OCI image layout tar (with Docker's
//! `manifest.json`), written from the stored blobs byte for byte.

use std::collections::BTreeSet;
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
        let images = self.images_to_save(names)?;
        let mut layout = Layout::default();
        for (image, name) in &images {
            self.add_to_layout(&mut layout, image, name.as_ref())?;
        }
        self.write_layout(&layout, out)
    }

    /// The images `names` stand for, each with the name it is saved under.
    fn images_to_save(
        &self,
        names: &[String],
    ) -> Result<Vec<(LocalImage, Option<Reference>)>, Error> {
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
        Ok(images)
    }

    /// Adds an image's blobs, its OCI index entry and its Docker
    /// `manifest.json` entry.
    fn add_to_layout(
        &self,
        layout: &mut Layout,
        image: &LocalImage,
        name: Option<&Reference>,
    ) -> Result<(), Error> {
        let mdata = self.read_blob(&image.record.manifest_digest)?;
        let m = match manifest::parse(&mdata) {
            Ok(Document::Manifest(m)) => m,
            _ => {
                return Err(Error::Archive {
                    path: PathBuf::from(OUTPUT),
                    reason: format!(
                        "stored manifest {} is unreadable",
                        image.record.manifest_digest
                    ),
                });
            }
        };
        layout.blobs.insert(image.record.manifest_digest.clone());
        layout.blobs.insert(image.id.clone());
        for l in &m.layers {
            layout.blobs.insert(l.digest.clone());
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
        layout.index_entries.push(entry);
        layout.docker_manifest.push(json!({
            "Config": format!("blobs/sha256/{}", hex_of(&image.id)),
            "RepoTags": name.iter().map(|r| r.familiar()).collect::<Vec<_>>(),
            "Layers": m.layers.iter().map(|l| format!("blobs/sha256/{}", hex_of(&l.digest))).collect::<Vec<_>>(),
        }));
        Ok(())
    }

    /// Writes the layout as a tar: `oci-layout`, the blobs, `index.json`
    /// and `manifest.json`.
    fn write_layout(&self, layout: &Layout, out: impl Write) -> Result<(), Error> {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_INDEX,
            "manifests": layout.index_entries,
        });
        let mut tar = tar::Builder::new(out);
        add_file(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut dir = tar::Header::new_ustar();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        for d in ["blobs/", "blobs/sha256/"] {
            tar.append_data(&mut dir.clone(), d, io::empty())
                .map_err(write_err)?;
        }
        for digest in &layout.blobs {
            self.add_blob(&mut tar, digest)?;
        }
        add_file(
            &mut tar,
            "index.json",
            &serde_json::to_vec(&index).expect("json"),
        )?;
        add_file(
            &mut tar,
            "manifest.json",
            &serde_json::to_vec(&layout.docker_manifest).expect("json"),
        )?;
        tar.into_inner()
            .map_err(write_err)?
            .flush()
            .map_err(write_err)?;
        Ok(())
    }

    /// Adds the stored blob `digest` as `blobs/sha256/HEX`.
    fn add_blob<W: Write>(&self, tar: &mut tar::Builder<W>, digest: &str) -> Result<(), Error> {
        let path = self.blob_path(digest);
        let read_err = |source| Error::Read {
            path: path.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(read_err)?;
        let len = file.metadata().map_err(read_err)?.len();
        tar.append_data(
            &mut file_header(len),
            format!("blobs/sha256/{}", hex_of(digest)),
            &mut file,
        )
        .map_err(write_err)
    }
}

/// What `save` writes besides the blobs' content.
#[derive(Default)]
struct Layout {
    /// The blobs to include, each once, in digest order.
    blobs: BTreeSet<String>,
    /// `index.json`'s manifests.
    index_entries: Vec<serde_json::Value>,
    /// Docker's `manifest.json`.
    docker_manifest: Vec<serde_json::Value>,
}

/// What errors call the archive `save_to` writes (it may be any writer).
const OUTPUT: &str = "<output>";

fn write_err(source: io::Error) -> Error {
    Error::Write {
        path: PathBuf::from(OUTPUT),
        source,
    }
}

/// The header of a regular file in the archive: mode 0644, mtime 0.
fn file_header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn add_file<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> Result<(), Error> {
    tar.append_data(&mut file_header(data.len() as u64), name, data)
        .map_err(write_err)
}
