//! The I/O failure the stack's modules share: what was being done, to
//! which path, and the kernel's answer as the source. Each module's error
//! enum wraps it transparently (`Io(#[from] IoError)`), so the message and
//! its cause read as if the module had its own variant.

use std::path::{Path, PathBuf};

/// A failed file system operation on `path`.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {}", path.display())]
pub struct IoError {
    pub what: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// For `map_err`: the I/O error of doing `what` to `path`.
pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> IoError {
    let path = path.to_owned();
    move |source| IoError { what, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_a_module_variant() {
        let e = io("read", Path::new("/x/y"))(std::io::ErrorKind::NotFound.into());
        assert_eq!(e.to_string(), "cannot read /x/y");
        assert!(std::error::Error::source(&e).is_some());
    }
}
