//! The build cache's entries in the store: `ROOT/build/cache/<key>.json`
//! -> the layer a build step made.
//!
//! The store owns the files (so `system df` and `system prune` can see
//! and remove them, [`crate::usage`]); rstack-builder makes the keys.
//! An entry is only used while its layer is still in the store
//! (`rmi`/`prune` may remove it). Entries are written atomically; a crash
//! leaves at most a missing entry.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::store::Store;

/// One cached step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// The layer the step produced.
    pub diff_id: String,
    /// When it was made (RFC 3339), for `history`.
    pub created: String,
}

/// The directory of the entries.
pub(crate) fn dir(store: &Store) -> PathBuf {
    store.root().join("build/cache")
}

/// The cached layer of `key`, if its layer is still stored.
pub fn get(store: &Store, key: &str) -> Option<Entry> {
    let data = std::fs::read(dir(store).join(format!("{key}.json"))).ok()?;
    let entry: Entry = serde_json::from_slice(&data).ok()?;
    store.has_layer_dir(&entry.diff_id).then_some(entry)
}

/// Records that `key` produced `entry`.
pub fn put(store: &Store, key: &str, entry: &Entry) -> Result<(), crate::Error> {
    let d = dir(store);
    crate::fsutil::create_dir_all(&d)?;
    let data = serde_json::to_vec(entry).expect("cache entry serialises");
    crate::fsutil::write_atomic(&d.join(format!("{key}.json")), &data)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_need_their_layer() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let e = Entry {
            diff_id: format!("sha256:{}", "a".repeat(64)),
            created: "now".into(),
        };
        put(&store, "k", &e).unwrap();
        assert_eq!(get(&store, "k"), None, "layer not in the store");
        assert_eq!(get(&store, "missing"), None);
    }
}
