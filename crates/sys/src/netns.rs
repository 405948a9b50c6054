//! Running code inside another network namespace.
//!
//! A network namespace is a per-*thread* property: `setns(CLONE_NEWNET)`
//! moves only the calling thread. So the work runs on a short-lived thread
//! of its own that enters the namespace and ends with the work; no thread
//! of the caller ever changes namespace. Sockets opened there stay in that
//! namespace after the thread is gone.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};

/// A failure getting onto a thread in the namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open network namespace {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot enter network namespace {path}")]
    Enter {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot start the {thread} thread")]
    Spawn {
        thread: String,
        #[source]
        source: io::Error,
    },
    #[error("the {thread} thread panicked")]
    Panicked { thread: String },
}

/// Runs `f` on a new thread named `thread`, inside the network namespace
/// at `netns` (a `/proc/<pid>/ns/net` or pinned file), or in the caller's
/// current one when `None`; waits for it and returns its result.
pub fn run_in<T, F>(netns: Option<&Path>, thread: &str, f: F) -> Result<T, Error>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let ns = match netns {
        Some(path) => {
            let file = File::open(path).map_err(|source| Error::Open {
                path: path.to_owned(),
                source,
            })?;
            Some((path, file))
        }
        None => None,
    };
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name(thread.to_owned())
            .spawn_scoped(scope, move || {
                if let Some((path, file)) = &ns {
                    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| {
                        Error::Enter {
                            path: path.to_path_buf(),
                            source,
                        }
                    })?;
                }
                Ok(f())
            })
            .map_err(|source| Error::Spawn {
                thread: thread.to_owned(),
                source,
            })?;
        worker.join().map_err(|_| Error::Panicked {
            thread: thread.to_owned(),
        })?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_a_named_thread_and_returns() {
        let name = run_in(None, "probe", || {
            std::thread::current().name().map(str::to_owned)
        })
        .unwrap();
        assert_eq!(name.as_deref(), Some("probe"));
    }

    #[test]
    fn missing_namespace_and_panics_are_errors() {
        let e = run_in(Some(Path::new("/nonexistent/ns")), "t", || ()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot open network namespace /nonexistent/ns"
        );
        let e = run_in(None, "t", || panic!("boom")).unwrap_err();
        assert!(matches!(e, Error::Panicked { .. }), "{e:?}");
    }

    #[test]
    fn entering_a_namespace() {
        // Our own namespace: allowed with CAP_SYS_ADMIN, else EPERM. Either
        // way the caller's thread stays where it was.
        let own = Path::new("/proc/thread-self/ns/net");
        let before = std::fs::read_link(own).unwrap();
        match run_in(Some(Path::new("/proc/self/ns/net")), "t", || 7) {
            Ok(v) => assert_eq!(v, 7),
            Err(Error::Enter { source, .. }) => assert_eq!(source, nix::Error::EPERM),
            Err(e) => panic!("{e:?}"),
        }
        assert_eq!(std::fs::read_link(own).unwrap(), before);
    }
}
