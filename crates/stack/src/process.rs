//! Processes we did not necessarily start: a pidfd (a file descriptor that
//! names one process, immune to pid reuse) opened from a recorded pid whose
//! /proc start time still matches, signalled with `pidfd_send_signal`,
//! waited on with `poll` (readable once the process has exited), and — on
//! Linux >= 6.15 — asked for its exit status with `PIDFD_GET_INFO` /
//! `PIDFD_INFO_EXIT` even when it was not our child.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

/// A failure about a process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {what} process {pid}")]
    Sys {
        what: &'static str,
        pid: i32,
        #[source]
        source: std::io::Error,
    },
}

/// Field 22 (starttime, clock ticks since boot) of /proc/<pid>/stat.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    rstack_sys::proc::stat(pid).ok().map(|s| s.start_time)
}

/// How long a process gets to exit after SIGKILL in [`Pidfd::stop`].
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(10);

/// How often [`Pidfd::stop`] asks whether to kill at once.
const KILL_POLL: Duration = Duration::from_millis(100);

/// A process held by a pidfd.
#[derive(Debug)]
pub struct Pidfd {
    pid: i32,
    fd: OwnedFd,
}

impl AsFd for Pidfd {
    /// Readable (`poll`) once the process has exited.
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Pidfd {
    /// Opens `pid` if it still is the process started at `start_time` and
    /// has not exited. `None` when it is gone, a zombie nobody reaped yet,
    /// or the pid now names another process.
    pub(crate) fn open_verified(pid: i32, start: u64) -> Option<Pidfd> {
        let fd = Pidfd::open(pid).ok()?;
        // Checked after opening: the pidfd pins the process we verified.
        (start_time(pid) == Some(start) && !fd.exited()).then_some(fd)
    }

    /// Opens a pidfd for `pid`.
    pub(crate) fn open(pid: i32) -> Result<Pidfd, Error> {
        let fd = rstack_sys::proc::pidfd_open(pid).map_err(|source| Error::Sys {
            what: "open a pidfd for",
            pid,
            source,
        })?;
        Ok(Pidfd { pid, fd })
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `signal`; a process that already exited is not an error.
    pub(crate) fn signal(&self, signal: i32) -> Result<(), Error> {
        // SAFETY: pidfd_send_signal(fd, sig, NULL info, 0 flags).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ESRCH) {
                return Ok(());
            }
            return Err(Error::Sys {
                what: "signal",
                pid: self.pid,
                source: e,
            });
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit; true if it did.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(n) if n > 0 => return true,
                Ok(_) => return false,
                Err(nix::Error::EINTR) => continue,
                Err(_) => return false,
            }
        }
    }

    /// Asks the process to stop: `signal`, up to `grace` for it to exit
    /// (cut short once `kill_now` says so), then SIGKILL and up to
    /// [`KILL_WAIT`] more. True if it exited.
    pub fn stop(&self, signal: i32, grace: Duration, kill_now: impl Fn() -> bool) -> bool {
        let _ = self.signal(signal);
        let deadline = std::time::Instant::now() + grace;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || kill_now() {
                break;
            }
            if self.wait_exit(left.min(KILL_POLL)) {
                return true;
            }
        }
        if self.exited() {
            return true;
        }
        let _ = self.signal(libc::SIGKILL);
        self.wait_exit(KILL_WAIT)
    }

    /// Whether the process has exited (zombies included).
    pub(crate) fn exited(&self) -> bool {
        self.wait_exit(Duration::ZERO)
    }

    /// The exit status (Docker's code: the code or 128+signal) of an exited
    /// process, through PIDFD_GET_INFO (Linux >= 6.15). `None` when the
    /// kernel cannot tell (older kernel, or not yet reaped by its parent).
    pub(crate) fn exit_code(&self) -> Option<i32> {
        #[repr(C)]
        #[derive(Default)]
        struct PidfdInfo {
            mask: u64,
            cgroupid: u64,
            ids: [u32; 11],
            exit_code: i32,
            coredump_mask: u32,
            spare: u32,
        }
        const PIDFD_INFO_EXIT: u64 = 1 << 3;
        // _IOWR(0xFF, 11, struct pidfd_info) with the 64-byte first version
        // (exit_code is its last field).
        const PIDFD_GET_INFO: libc::c_ulong = (3 << 30) | (64 << 16) | (0xFF << 8) | 11;
        let mut info = PidfdInfo {
            mask: PIDFD_INFO_EXIT,
            ..Default::default()
        };
        // SAFETY: the ioctl writes at most 64 bytes (the size encoded in the
        // request) into `info`, which is 72 bytes and lives across the call.
        let rc = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                PIDFD_GET_INFO,
                &mut info as *mut PidfdInfo,
            )
        };
        if rc < 0 || info.mask & PIDFD_INFO_EXIT == 0 {
            return None;
        }
        Some(docker_code(info.exit_code))
    }
}

/// A wait status as Docker reports it: the exit code, or 128 + signal.
pub(crate) fn docker_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_kills_what_ignores_the_signal() {
        let child = std::process::Command::new("sh")
            .args(["-c", "trap '' TERM; exec sleep 30"])
            .spawn()
            .unwrap();
        let fd = Pidfd::open(child.id() as i32).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let t = std::time::Instant::now();
        assert!(fd.stop(libc::SIGTERM, Duration::from_secs(30), || true));
        assert!(t.elapsed() < Duration::from_secs(5));
        let mut child = child;
        let _ = child.wait();
    }

    #[test]
    fn stop_returns_once_the_signal_worked() {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let fd = Pidfd::open(child.id() as i32).unwrap();
        assert!(fd.stop(libc::SIGTERM, Duration::from_secs(30), || false));
        let mut child = child;
        assert_eq!(child.wait().unwrap().code(), None);
    }

    #[test]
    fn own_process_is_verified_and_reuse_is_refused() {
        let me = std::process::id() as i32;
        let st = start_time(me).unwrap();
        assert!(Pidfd::open_verified(me, st).is_some());
        assert!(Pidfd::open_verified(me, st + 1).is_none());
    }

    #[test]
    fn waits_for_a_child_and_reads_its_code() {
        let child = std::process::Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap();
        let fd = Pidfd::open(child.id() as i32).unwrap();
        assert!(fd.wait_exit(Duration::from_secs(10)));
        let mut child = child;
        assert_eq!(child.wait().unwrap().code(), Some(3));
        // Linux >= 6.15 keeps the exit status for pidfd holders.
        if let Some(code) = fd.exit_code() {
            assert_eq!(code, 3);
        }
        assert_eq!(docker_code(9), 128 + 9);
        assert_eq!(docker_code(3 << 8), 3);
    }
}
