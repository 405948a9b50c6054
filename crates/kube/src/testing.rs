//! Test helpers: projects loaded from YAML text, and a fake file system.

use std::collections::BTreeMap;
use std::path::Path;

use rstack_compose::Project;

use crate::{FileKind, HostFiles};

/// The directory the test projects live in (never touched).
pub const DIR: &str = "/fake/demo";

/// The project `yaml` describes, named `demo`, in [`DIR`], with `TLS=s3cret`
/// in the environment.
pub fn project(yaml: &str) -> Project {
    let env = [("TLS".to_owned(), "s3cret".to_owned())]
        .into_iter()
        .collect();
    let mut o = rstack_compose::Options::new(DIR, env);
    o.files = vec!["-".into()];
    o.stdin = Some(yaml.to_owned());
    o.project_name = Some("demo".into());
    rstack_compose::load(&o).unwrap_or_else(|e| panic!("{e}"))
}

/// Files and directories under [`DIR`], in memory.
#[derive(Debug, Default)]
pub struct Fake {
    files: BTreeMap<String, (Vec<u8>, u32)>,
    dirs: Vec<String>,
}

impl Fake {
    /// The absolute path of `rel`.
    pub fn path(&self, rel: &str) -> String {
        format!("{DIR}/{rel}")
    }

    pub fn file(mut self, rel: &str, content: &[u8]) -> Fake {
        self.files.insert(self.path(rel), (content.to_vec(), 0o644));
        self
    }

    pub fn mode(mut self, rel: &str, mode: u32) -> Fake {
        let p = self.path(rel);
        if let Some(f) = self.files.get_mut(&p) {
            f.1 = mode;
        }
        self
    }

    pub fn dir(mut self, rel: &str) -> Fake {
        let p = self.path(rel);
        self.dirs.push(p);
        self
    }
}

impl HostFiles for Fake {
    fn kind(&self, path: &Path) -> FileKind {
        let p = path.to_string_lossy();
        if self.files.contains_key(p.as_ref()) {
            FileKind::File
        } else if self.dirs.iter().any(|d| *d == p) {
            FileKind::Directory
        } else {
            FileKind::Missing
        }
    }

    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.files
            .get(path.to_string_lossy().as_ref())
            .map(|f| f.0.clone())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn mode(&self, path: &Path) -> u32 {
        self.files
            .get(path.to_string_lossy().as_ref())
            .map(|f| f.1)
            .unwrap_or(0o644)
    }
}
