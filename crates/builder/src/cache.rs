//! Build cache keys: `ROOT/build/cache/<key>.json` -> the layer a step made.
//!
//! A key is the sha256 of the parent step's key, the instruction, the
//! state it runs in (ENV, USER, WORKDIR, SHELL and the build args in
//! scope) and, for COPY/ADD, a hash of the copied files' names, modes
//! and contents. Keys chain, so a changed step invalidates every step
//! after it and nothing before. The entries themselves are the store's
//! ([`rstack_images::build_cache`]): used only while their layer is still
//! in the store, written atomically.

use sha2::{Digest, Sha256};

pub use rstack_images::build_cache::{Entry, get, put};

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
}
