//! Live view of the network state files for the resolver.
//!
//! Several processes (supervisors of several projects sharing a network)
//! write the files; the resolver re-checks them on every query with one
//! `stat` per file (plus a directory listing when the directory changed or
//! every 200 ms), and re-parses only files whose (inode, mtime, size)
//! changed. Writers replace files by rename, so a changed file always has a
//! new inode: records change live, with no signal and no restart.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::state::NetworkState;

type Stamp = (u64, i64, i64, u64);

#[derive(Default)]
struct Inner {
    dir_mtime: Option<SystemTime>,
    listed_at: Option<Instant>,
    names: Vec<PathBuf>,
    files: HashMap<PathBuf, (Stamp, Arc<NetworkState>)>,
}

/// The cache of network files under `<run_dir>/networks`.
pub struct Records {
    dir: PathBuf,
    inner: Mutex<Inner>,
}

impl Records {
    pub fn new(networks_dir: PathBuf) -> Self {
        Records {
            dir: networks_dir,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The current networks (stale entries are dropped, unreadable or
    /// corrupt files are skipped with a warning).
    pub fn snapshot(&self) -> Vec<Arc<NetworkState>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let dir_mtime = fs::metadata(&self.dir).and_then(|m| m.modified()).ok();
        let stale = inner
            .listed_at
            .is_none_or(|t| t.elapsed() > Duration::from_millis(200));
        if dir_mtime != inner.dir_mtime || stale {
            inner.dir_mtime = dir_mtime;
            inner.listed_at = Some(Instant::now());
            inner.names = fs::read_dir(&self.dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| {
                            p.extension().is_some_and(|x| x == "json")
                                && !p
                                    .file_name()
                                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
        let names = inner.names.clone();
        let mut out = Vec::with_capacity(names.len());
        let mut seen = HashMap::new();
        for path in names {
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            let stamp = (meta.ino(), meta.mtime(), meta.mtime_nsec(), meta.size());
            if let Some((s, n)) = inner.files.get(&path)
                && *s == stamp
            {
                out.push(n.clone());
                seen.insert(path, ());
                continue;
            }
            match fs::read(&path).map(|d| NetworkState::parse(&path, &d)) {
                Ok(Ok(n)) => {
                    let n = Arc::new(n);
                    inner.files.insert(path.clone(), (stamp, n.clone()));
                    out.push(n);
                    seen.insert(path, ());
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "skipping network state"),
                Err(_) => {} // vanished between stat and read
            }
        }
        inner.files.retain(|p, _| seen.contains_key(p));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Paths, sample, sample_endpoint};
    use std::net::Ipv4Addr;

    #[test]
    fn sees_changes_live() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let rec = Records::new(paths.networks_dir());
        assert!(rec.snapshot().is_empty());
        let mut n = sample("web", "10.0.0.0/24");
        n.save(&paths).unwrap();
        assert_eq!(rec.snapshot().len(), 1);
        n.endpoints.insert(
            "a".into(),
            sample_endpoint("a", "a", Ipv4Addr::new(10, 0, 0, 2), &[]),
        );
        n.save(&paths).unwrap();
        assert_eq!(rec.snapshot()[0].endpoints.len(), 1);
        n.endpoints.clear();
        n.save(&paths).unwrap();
        assert_eq!(rec.snapshot()[0].endpoints.len(), 0);
        fs::remove_file(paths.network_file("web")).unwrap();
        assert!(rec.snapshot().is_empty());
    }
}
