//! `/proc/<pid>/stat`: a process's state, parent and start time; and
//! [`pidfd_open`], a handle on a process that pid reuse cannot fool.
//!
//! The start time (clock ticks since boot) tells a reused pid from the
//! process that was recorded; the state tells a zombie (exited, not yet
//! reaped) from a live process. The line is `pid (comm) state ppid ...` and
//! `comm` may itself hold spaces and parentheses, so the fields are counted
//! after the *last* `)`; the procfs crate's parser does exactly that.

use std::path::{Path, PathBuf};

use procfs::FromRead;

/// A failure reading or parsing a stat file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: procfs::ProcError,
    },
    #[error("malformed /proc stat line {line:?}")]
    Malformed { line: String },
}

/// The fields of `/proc/<pid>/stat` rstack uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// The command name, without the parentheses (lossy UTF-8).
    pub comm: String,
    /// `R`, `S`, `D`, `Z`, `T`, ...
    pub state: char,
    pub ppid: i32,
    /// Field 22: when the process started, in clock ticks since boot.
    pub start_time: u64,
}

impl Stat {
    /// Exited but not reaped by its parent yet.
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }
}

/// Reads `/proc/<pid>/stat`.
pub fn stat(pid: i32) -> Result<Stat, Error> {
    stat_in(Path::new("/proc"), pid)
}

/// Reads `<proc_root>/<pid>/stat` (a parameter so tests can use a fake).
pub fn stat_in(proc_root: &Path, pid: i32) -> Result<Stat, Error> {
    let path = proc_root.join(pid.to_string()).join("stat");
    let data = std::fs::read(&path).map_err(|e| Error::Read {
        path: path.clone(),
        source: e.into(),
    })?;
    parse_stat(&data).map_err(|e| match e {
        Error::Read { source, .. } => Error::Read { path, source },
        other => other,
    })
}

/// A pidfd for `pid` (`pidfd_open(2)`, Linux >= 5.3): readable by `poll`
/// once the process has exited; usable with `pidfd_send_signal` and `setns`.
pub fn pidfd_open(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(rc as i32) })
}

/// Whether `pid` is a zombie; false when it cannot be read (gone).
pub fn is_zombie(pid: i32) -> bool {
    stat(pid).is_ok_and(|s| s.is_zombie())
}

/// Parses the content of a stat file.
pub fn parse_stat(data: &[u8]) -> Result<Stat, Error> {
    let text = String::from_utf8_lossy(data);
    let line = text.trim();
    let malformed = || Error::Malformed {
        line: line.to_owned(),
    };
    // procfs slices around the parentheses without checking that there is
    // a pid before `(` and a state after `) `: check first, it would panic.
    let open = line.find('(').ok_or_else(malformed)?;
    let close = line.rfind(')').ok_or_else(malformed)?;
    if open < 2 || close < open || line.len() < close + 3 {
        return Err(malformed());
    }
    let st = procfs::process::Stat::from_read(line.as_bytes()).map_err(|source| Error::Read {
        path: PathBuf::from("<stat>"),
        source,
    })?;
    Ok(Stat {
        pid: st.pid,
        comm: st.comm,
        state: st.state,
        ppid: st.ppid,
        start_time: st.starttime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line (52 fields) with `comm` replaced.
    fn line(comm: &str, state: char, start: u64) -> String {
        format!(
            "4242 ({comm}) {state} 1 4242 4242 0 -1 4194560 1123 0 0 0 3 1 0 0 20 0 1 0 {start} \
             9347072 1024 18446744073709551615 94000000000000 94000000100000 140000000000000 0 0 0 \
             0 0 0 0 0 0 17 1 0 0 0 0 0 94000000200000 94000000210000 94000001000000 \
             140000000001000 140000000001100 140000000001100 140000000002000 0\n"
        )
    }

    #[test]
    fn fields_after_an_odd_comm() {
        let st = parse_stat(line("a) b (c) S 9", 'Z', 987654).as_bytes()).unwrap();
        assert_eq!(st.pid, 4242);
        assert_eq!(st.comm, "a) b (c) S 9");
        assert_eq!(st.state, 'Z');
        assert!(st.is_zombie());
        assert_eq!(st.ppid, 1);
        assert_eq!(st.start_time, 987654);
        let st = parse_stat(line("youki:[1:INTER]", 'S', 5).as_bytes()).unwrap();
        assert_eq!(st.comm, "youki:[1:INTER]");
        assert!(!st.is_zombie());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "garbage",
            "(a) S 1",
            "1 (a)",
            "1 (a) ",
            "1 )a( S",
            "1 (a) S x 2",
        ] {
            assert!(parse_stat(bad.as_bytes()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn own_process_and_fake_root() {
        let me = std::process::id() as i32;
        let st = stat(me).unwrap();
        assert_eq!(st.pid, me);
        assert_eq!(st.ppid, nix::unistd::getppid().as_raw());
        assert!(!is_zombie(me));

        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("4242")).unwrap();
        std::fs::write(root.path().join("4242/stat"), line("x", 'R', 77)).unwrap();
        assert_eq!(stat_in(root.path(), 4242).unwrap().start_time, 77);
        let e = stat_in(root.path(), 1).unwrap_err();
        assert!(matches!(&e, Error::Read { path, .. } if path.ends_with("1/stat")));
    }
}
