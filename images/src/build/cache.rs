//! The build cache: `ROOT/build/cache/<key>.json` -> the layer a step made.
//!
//! A key is the sha256 of the parent step's key, the instruction, the
//! state it runs in (ENV, USER, WORKDIR, SHELL and the build args in
//! scope) and, for COPY/ADD, a hash of the copied files' names, modes
//! and contents. Keys chain, so a changed step invalidates every step
//! after it and nothing before. An entry is only used while its layer is
//! still in the store (`rmi`/`prune` may remove it). Entries are written
//! atomically; a crash leaves at most a missing entry.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::Store;

/// One cached step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// The layer the step produced.
    pub diff_id: String,
    /// When it was made (RFC 3339), for `history`.
    pub created: String,
}

/// Builds a key from its parts (each length-prefixed, so parts cannot
/// run into each other).
#[derive(Clone)]
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub fn new(parent: &str) -> KeyBuilder {
        let mut k = KeyBuilder(Sha256::new());
        k.part("parent", parent.as_bytes());
        k
    }

    pub fn part(&mut self, name: &str, value: &[u8]) -> &mut Self {
        for p in [name.as_bytes(), value] {
            self.0.update((p.len() as u64).to_le_bytes());
            self.0.update(p);
        }
        self
    }

    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

fn dir(store: &Store) -> PathBuf {
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
    fn keys_chain_and_separate_parts() {
        let a = {
            let mut k = KeyBuilder::new("p");
            k.part("inst", b"RUN a");
            k.finish()
        };
        let same = {
            let mut k = KeyBuilder::new("p");
            k.part("inst", b"RUN a");
            k.finish()
        };
        let other_parent = {
            let mut k = KeyBuilder::new("q");
            k.part("inst", b"RUN a");
            k.finish()
        };
        let shifted = {
            let mut k = KeyBuilder::new("p");
            k.part("inst", b"RUN ");
            k.part("a", b"");
            k.finish()
        };
        assert_eq!(a, same);
        assert_ne!(a, other_parent);
        assert_ne!(a, shifted);
        assert_eq!(a.len(), 64);
    }

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
