//! What the store occupies on disk, for `system df`, and the build cache
//! prune of `system prune`.
//!
//! An image's footprint is a set of items: its unpacked layer dirs
//! (`layers/<diff-id>/`) and its blobs (config, manifest and the layer
//! blobs as pulled, kept for `save`). Images share items — a base layer is
//! unpacked once for every image built on it — so totals are taken over
//! the union of the items, each measured once from disk (apparent size of
//! the files, hard links counted once: [`fsutil::disk_usage`]). The bytes
//! an `image prune -a` would free are then the total minus the union of
//! the items of the images that must stay.
//!
//! The build cache (`build/cache/<key>.json`, see [`crate::build_cache`])
//! names the layers its steps produced. A layer that an image also has is
//! *shared*: it is counted with the images, and pruning the cache entry
//! frees only the entry file. A layer only the cache names is the cache's
//! own, as Docker's build cache records are.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::fsutil;
use crate::store::{Removed, Store, hex_of};

/// A failure measuring or pruning the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the image store")]
    Store {
        #[source]
        source: crate::Error,
    },
    #[error("cannot read the build cache {path}")]
    ReadCache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove the build cache entry {path}")]
    RemoveEntry {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove the layers the pruned build cache entries named")]
    CollectLayers {
        #[source]
        source: crate::Error,
    },
}

fn store_err(source: crate::Error) -> Error {
    Error::Store { source }
}

/// One thing on disk that images and cache entries reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    /// `layers/<hex>/` (the unpacked diff and its `layer.json`)
    Layer(String),
    /// `blobs/sha256/<hex>`
    Blob(String),
}

/// The disk usage of one image.
#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub id: String,
    /// Full references (`docker.io/library/busybox:latest`).
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// When it was pulled, loaded or built (RFC 3339).
    pub added: String,
    /// Bytes of all its items.
    pub size: u64,
    /// Bytes of its items that another image has too.
    pub shared_size: u64,
    items: BTreeSet<Item>,
}

/// The disk usage of one build cache entry.
#[derive(Debug, Clone)]
pub struct CacheEntryUsage {
    /// The cache key (file name without `.json`).
    pub key: String,
    pub diff_id: String,
    /// When the step ran (RFC 3339).
    pub created: String,
    /// The entry file, plus its layer when no image has that layer.
    pub size: u64,
    /// Its layer belongs to an image too.
    pub shared: bool,
    /// Its layer is still in the store (the next build can reuse it).
    pub valid: bool,
}

/// What the store holds, measured from disk.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    /// Newest first, like `images`.
    pub images: Vec<ImageUsage>,
    pub build_cache: Vec<CacheEntryUsage>,
    sizes: BTreeMap<Item, u64>,
    /// Items only the build cache names, and the entry files' bytes.
    cache_items: BTreeSet<Item>,
    cache_files: u64,
}

impl DiskUsage {
    /// Bytes of every image, shared items counted once.
    pub fn images_size(&self) -> u64 {
        self.size_of(self.images.iter().flat_map(|i| i.items.iter()))
    }

    /// Bytes of the images with these ids, shared items counted once:
    /// what stays when every other image is removed.
    pub fn images_size_of(&self, ids: &BTreeSet<String>) -> u64 {
        self.size_of(
            self.images
                .iter()
                .filter(|i| ids.contains(&i.id))
                .flat_map(|i| i.items.iter()),
        )
    }

    /// Bytes the build cache owns: its entry files and the layers no
    /// image has (each once, even if several entries name it).
    pub fn build_cache_size(&self) -> u64 {
        self.cache_files + self.size_of(self.cache_items.iter())
    }

    fn size_of<'a>(&self, items: impl Iterator<Item = &'a Item>) -> u64 {
        let unique: BTreeSet<&Item> = items.collect();
        unique
            .into_iter()
            .map(|i| self.sizes.get(i).copied().unwrap_or(0))
            .sum()
    }
}

/// What a build cache prune removed.
#[derive(Debug, Default)]
pub struct CachePruned {
    /// Keys of the removed entries.
    pub deleted: Vec<String>,
    /// Entry files plus the layers and blobs freed with them.
    pub reclaimed_bytes: u64,
}

impl Store {
    fn cache_dir(&self) -> PathBuf {
        crate::build_cache::dir(self)
    }

    /// The cache entries on disk: (key, path, entry, file size).
    fn cache_entries(
        &self,
    ) -> Result<Vec<(String, PathBuf, crate::build_cache::Entry, u64)>, Error> {
        let dir = self.cache_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(Error::ReadCache { path: dir, source }),
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            let Some(key) = e
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|k| !k.starts_with('.'))
                .map(str::to_owned)
            else {
                continue;
            };
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                // removed by a concurrent prune
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(Error::ReadCache { path, source }),
            };
            // An unreadable entry is never used by a build: it counts as
            // an entry with no layer, so a prune removes it.
            let entry = serde_json::from_slice(&data).unwrap_or(crate::build_cache::Entry {
                diff_id: String::new(),
                created: String::new(),
            });
            out.push((key, path, entry, data.len() as u64));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The items of every image, by image id.
    fn image_items(&self) -> Result<Vec<(crate::ImageRecord, BTreeSet<Item>)>, Error> {
        let index = self.read_index().map_err(store_err)?;
        let mut out = Vec::new();
        for r in index.images.values() {
            let mut items = BTreeSet::new();
            items.insert(Item::Blob(hex_of(&r.id).to_owned()));
            items.insert(Item::Blob(hex_of(&r.manifest_digest).to_owned()));
            for l in &r.layers {
                items.insert(Item::Layer(hex_of(l).to_owned()));
            }
            // the layer blobs as pulled (what garbage collection keeps)
            if let Ok(data) = self.read_blob(&r.manifest_digest)
                && let Ok(m) = serde_json::from_slice::<oci_spec::image::ImageManifest>(&data)
            {
                for l in m.layers() {
                    items.insert(Item::Blob(l.digest().digest().to_owned()));
                }
            }
            out.push((r.clone(), items));
        }
        Ok(out)
    }

    fn item_size(&self, item: &Item) -> u64 {
        match item {
            Item::Layer(hex) => fsutil::disk_usage(&self.layers_dir().join(hex)),
            Item::Blob(hex) => std::fs::metadata(self.blob_dir().join(hex))
                .map(|m| m.len())
                .unwrap_or(0),
        }
    }

    /// Measures images and build cache (`system df`). Holds the store
    /// lock shared, so no removal runs meanwhile.
    pub fn disk_usage(&self) -> Result<DiskUsage, Error> {
        let _lock = self.store_lock(false).map_err(store_err)?;
        let images = self.image_items()?;
        let mut usage = DiskUsage::default();
        let mut owners: BTreeMap<Item, usize> = BTreeMap::new();
        for (_, items) in &images {
            for i in items {
                *owners.entry(i.clone()).or_default() += 1;
            }
        }
        for item in owners.keys() {
            usage.sizes.insert(item.clone(), self.item_size(item));
        }
        for (record, items) in images {
            let size = items.iter().map(|i| usage.sizes[i]).sum();
            let shared_size = items
                .iter()
                .filter(|i| owners[*i] > 1)
                .map(|i| usage.sizes[i])
                .sum();
            usage.images.push(ImageUsage {
                id: record.id,
                repo_tags: record.repo_tags,
                repo_digests: record.repo_digests,
                added: record.added,
                size,
                shared_size,
                items,
            });
        }
        usage.images.sort_by(|a, b| b.added.cmp(&a.added));
        for (key, _, entry, file_size) in self.cache_entries()? {
            let valid = !entry.diff_id.is_empty() && self.has_layer_dir(&entry.diff_id);
            let layer = Item::Layer(hex_of(&entry.diff_id).to_owned());
            let shared = valid && owners.contains_key(&layer);
            let mut size = file_size;
            usage.cache_files += file_size;
            if valid && !shared {
                let mut own = vec![layer];
                if let Some(blob) = self.layer_blob(&entry.diff_id) {
                    own.push(Item::Blob(hex_of(&blob.digest).to_owned()));
                }
                for item in own {
                    if owners.contains_key(&item) {
                        continue;
                    }
                    let s = match usage.sizes.get(&item) {
                        Some(s) => *s,
                        None => {
                            let s = self.item_size(&item);
                            usage.sizes.insert(item.clone(), s);
                            s
                        }
                    };
                    size += s;
                    usage.cache_items.insert(item);
                }
            }
            usage.build_cache.push(CacheEntryUsage {
                key,
                diff_id: entry.diff_id,
                created: entry.created,
                size,
                shared,
                valid,
            });
        }
        Ok(usage)
    }

    /// `builder prune`: removes the cache entries whose layer no image
    /// has (and those whose layer is gone), or every entry with `all`,
    /// then the layers and blobs no image references. Holds the store
    /// lock exclusively: builds hold it shared while they run.
    pub fn prune_build_cache(&self, all: bool) -> Result<CachePruned, Error> {
        let _lock = self.store_lock(true).map_err(store_err)?;
        let image_layers: BTreeSet<String> = self
            .image_items()?
            .into_iter()
            .flat_map(|(r, _)| r.layers)
            .map(|l| hex_of(&l).to_owned())
            .collect();
        let mut pruned = CachePruned::default();
        for (key, path, entry, file_size) in self.cache_entries()? {
            let used = !entry.diff_id.is_empty()
                && image_layers.contains(hex_of(&entry.diff_id))
                && self.has_layer_dir(&entry.diff_id);
            if used && !all {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(Error::RemoveEntry { path, source }),
            }
            pruned.reclaimed_bytes += file_size;
            pruned.deleted.push(key);
        }
        let mut removed = Removed::default();
        self.collect_garbage(&mut removed)
            .map_err(|source| Error::CollectLayers { source })?;
        pruned.reclaimed_bytes += removed.reclaimed_bytes;
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build_cache as cache;

    fn entry(diff: &str) -> cache::Entry {
        cache::Entry {
            diff_id: format!("sha256:{}", diff.repeat(64)),
            created: "2024-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn empty_store_uses_nothing() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let u = store.disk_usage().unwrap();
        assert!(u.images.is_empty());
        assert!(u.build_cache.is_empty());
        assert_eq!(u.images_size(), 0);
        assert_eq!(u.build_cache_size(), 0);
    }

    #[test]
    fn dangling_cache_entries_are_counted_and_pruned() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        cache::put(&store, "k1", &entry("a")).unwrap();
        cache::put(&store, "k2", &entry("b")).unwrap();
        let u = store.disk_usage().unwrap();
        assert_eq!(u.build_cache.len(), 2);
        assert!(u.build_cache.iter().all(|e| !e.valid && !e.shared));
        let files: u64 = u.build_cache.iter().map(|e| e.size).sum();
        assert!(files > 0);
        assert_eq!(u.build_cache_size(), files);
        // their layers are gone: unused even without `all`
        let p = store.prune_build_cache(false).unwrap();
        assert_eq!(p.deleted, ["k1", "k2"]);
        assert!(p.reclaimed_bytes >= files);
        assert!(store.disk_usage().unwrap().build_cache.is_empty());
    }
}
