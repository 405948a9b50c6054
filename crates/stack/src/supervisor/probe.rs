//! One healthcheck probe: the check's command started in the container by
//! [`rstack_runtime::direct_exec`] (same namespaces, cgroup, user,
//! capabilities, seccomp filter as its processes; no helper process, no
//! state file) straight from the prober's thread, its output read as it
//! comes (docker's first 4 KiB kept), its process group killed when it
//! outlives the check's timeout.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use rstack_runtime::direct_exec::Target;

use crate::health::Check;
use crate::process::Pidfd;
use crate::state::{ProbeResult, now_rfc3339};

/// Docker's cap on a probe's recorded output (moby `maxOutputLen`).
const MAX_OUTPUT: usize = 4096;

/// A container's probe target, prepared on first use and kept for the
/// container's run (its init and config do not change within it).
#[derive(Debug, Default)]
pub(super) struct Prober {
    target: Option<Target>,
}

impl Prober {
    /// Runs the probe in container `id`; never fails: a probe that cannot
    /// run is an unhealthy result with the reason as output (like docker).
    pub(super) fn run(
        &mut self,
        paths: &rstack_runtime::Paths,
        id: &str,
        check: &Check,
    ) -> ProbeResult {
        let start = now_rfc3339();
        let (exit_code, output) = match self.exec(paths, id, check) {
            Ok(r) => r,
            Err(msg) => {
                // prepared again next time (the container may have restarted)
                self.target = None;
                (-1, msg)
            }
        };
        ProbeResult {
            start,
            end: now_rfc3339(),
            exit_code,
            output,
        }
    }

    fn exec(
        &mut self,
        paths: &rstack_runtime::Paths,
        id: &str,
        check: &Check,
    ) -> Result<(i32, String), String> {
        let target = match self.target.take() {
            Some(t) => t,
            None => Target::prepare(paths, id).map_err(|e| crate::error_chain::chain(&e))?,
        };
        let target = self.target.insert(target);
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let w2 = w.try_clone().map_err(|e| format!("pipe: {e}"))?;
        let mut child = target
            .spawn(&check.argv, w, w2)
            .map_err(|e| crate::error_chain::chain(&e))?;
        let pid = child.id() as i32;
        // our child, not reaped before `wait` below: the pid is its own
        let pidfd = Pidfd::open(pid).map_err(|e| crate::error_chain::chain(&e))?;
        let (out, timed_out) = collect(&r, &pidfd, Instant::now() + check.timeout);
        if timed_out {
            // the probe and what it started in its process group
            // SAFETY: kill(2) of a process group we created (our child leads it).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let status = child
            .wait()
            .map_err(|e| format!("wait for the probe: {e}"))?;
        if timed_out {
            return Ok((
                -1,
                format!(
                    "Health check exceeded timeout ({:?})",
                    Duration::from_millis(check.timeout.as_millis() as u64)
                ),
            ));
        }
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1);
        Ok((code, String::from_utf8_lossy(&out).into_owned()))
    }
}

/// Reads the probe's output until it exits and the pipe is drained (a
/// process it left behind may keep the pipe open: not waited for) or
/// `deadline` passes; the first [`MAX_OUTPUT`] bytes and whether the
/// deadline passed first.
fn collect(r: &OwnedFd, pidfd: &Pidfd, deadline: Instant) -> (Vec<u8>, bool) {
    let _ = nix::fcntl::fcntl(
        r.as_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut out = Vec::new();
    let mut open = true;
    loop {
        if open {
            open = drain(r, &mut out);
        }
        if pidfd.exited() {
            // what it wrote before exiting is in the pipe already
            if open {
                drain(r, &mut out);
            }
            return (out, false);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, true);
        }
        // woken by output or by the exit (the pidfd turns readable)
        let mut fds = [
            libc::pollfd {
                fd: pidfd.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if open { r.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: poll on two pollfds we own for at most `ms`.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    }
}

/// Reads what is available; false at EOF.
fn drain(r: &OwnedFd, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(r.as_fd(), &mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                let keep = n.min(MAX_OUTPUT.saturating_sub(out.len()));
                out.extend_from_slice(&buf[..keep]);
            }
            Err(nix::Error::EINTR) => continue,
            Err(_) => return true,
        }
    }
}
