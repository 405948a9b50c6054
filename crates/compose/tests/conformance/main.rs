//! Data-driven conformance tests over the compose-go vectors copied into
//! `tests/data` (see `tests/data/README.md` for their origin and licenses).
//! Each set prints its pass count; a case that fails is a test failure,
//! unless it is listed in `KNOWN_GAPS` of its module with a reason (the same
//! list as docs/compose-compatibility.md).

mod dotenv;
mod features;
mod fuzz;
mod interpolation;
mod loader;
mod merge;
mod real_world;
mod syntax;

use std::path::PathBuf;

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

pub fn read_json(rel: &str) -> serde_json::Value {
    let path = data_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON object of strings as an environment map (`HashMap`, `IndexMap`...),
/// in the object's order.
pub fn env_collect<M: FromIterator<(String, String)>>(v: &serde_json::Value) -> M {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

pub fn env_of(v: &serde_json::Value) -> std::collections::HashMap<String, String> {
    env_collect(v)
}

/// Prints the tally of a set and fails with every unexpected failure.
pub fn report(set: &str, total: usize, failures: &[String], known: &[(&str, &str)]) {
    let unexpected: Vec<&String> = failures
        .iter()
        .filter(|f| !known.iter().any(|(name, _)| f.starts_with(name)))
        .collect();
    let passed = total - failures.len();
    println!("conformance {set}: {passed}/{total} passed");
    for f in failures {
        println!("  failed: {f}");
    }
    assert!(
        unexpected.is_empty(),
        "{set}: unexpected failures:\n{unexpected:#?}"
    );
}

/// An error and its causes, joined with `: ` (how the CLI shows them, on one line).
pub use rstack_sys::chain::chain;
