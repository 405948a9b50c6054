//! The manifests of the golden tutorial stack (tests/data/golden) against
//! the reviewed files in tests/data/golden/expected: same files, same
//! bytes, same report. `UPDATE_GOLDEN=1 cargo test -p rstack-kube --test
//! golden` rewrites them; review the diff before committing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rstack_kube::{Options, RealFiles, generate, render};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden")
}

/// What `rstack kube generate -o DIR --kustomize` writes for the stack,
/// plus `report.txt` (paths relative to the stack's directory).
fn generated() -> BTreeMap<String, String> {
    let dir = golden_dir();
    // no variables from the test's own environment: only the stack's .env
    let opts = rstack_compose::Options::new(&dir, IndexMap::new());
    let project = rstack_compose::load(&opts).expect("the golden stack loads");
    let out = generate(&project, &Options::default(), &IndexMap::new(), &RealFiles)
        .expect("manifests for the golden stack");
    let mut files: BTreeMap<String, String> = render::files(&out.objects, true)
        .expect("YAML")
        .into_iter()
        .collect();
    let prefix = format!("{}/", dir.display());
    let report: String = out
        .report
        .iter()
        .map(|e| format!("{}\n", e.to_string().replace(&prefix, "./")))
        .collect();
    files.insert("report.txt".into(), report);
    files
}

fn expected(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("tests/data/golden/expected") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.insert(name, std::fs::read_to_string(&path).expect("a golden file"));
    }
    out
}

#[test]
fn the_golden_stack_gives_the_reviewed_manifests() {
    let got = generated();
    let dir = golden_dir().join("expected");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &got {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    let want = expected(&dir);
    let got_names: Vec<&String> = got.keys().collect();
    let want_names: Vec<&String> = want.keys().collect();
    assert_eq!(got_names, want_names, "the set of files differs");
    for (name, text) in &got {
        assert_eq!(
            text, &want[name],
            "{name} differs from tests/data/golden/expected/{name}"
        );
    }
    // the report names what was lost, and only that
    assert_eq!(
        got["report.txt"],
        "services.gateway.ulimits: not carried over: Kubernetes has no per-container ulimits (set them in the nodes' container runtime)\n"
    );
}
