//! Small process-level pieces around libcontainer: its error text mapped
//! to Docker's exit codes, reaping the helper processes it can leave as
//! zombies, bringing up `lo` in a new network namespace, and the console
//! socket over which a `-t` process's pty master arrives.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

use crate::error::ContainerError;
use crate::paths::Paths;
use crate::workload;

/// Turns libcontainer's create error into ours, recognising the workload's
/// "command not found" messages (they travel as text through its channel).
pub(crate) fn executor_error(what: &'static str, source: impl std::error::Error) -> ContainerError {
    executor_error_text(what, rstack_sys::chain::chain(&source))
}

/// [`executor_error`] from the error's text (as the build helper sends it).
pub(crate) fn executor_error_text(what: &'static str, text: String) -> ContainerError {
    if let Some(start) = text.find("exec: \"") {
        let msg = &text[start..];
        let end = msg
            .find(workload::NOT_FOUND)
            .map(|i| i + workload::NOT_FOUND.len())
            .or_else(|| {
                msg.find(workload::NOT_EXECUTABLE)
                    .map(|i| i + workload::NOT_EXECUTABLE.len())
            })
            .or_else(|| msg.find("no such file or directory").map(|i| i + 25));
        if let Some(end) = end {
            let message = msg[..end].to_owned();
            return if message.ends_with(workload::NOT_EXECUTABLE) {
                ContainerError::CommandNotExecutable { message }
            } else {
                ContainerError::CommandNotFound { message }
            };
        }
    }
    ContainerError::Executor {
        what,
        message: text,
    }
}

/// Reaps libcontainer's helper processes left as zombies by a failed
/// build: on some failures it returns without waiting for its
/// intermediate and init processes, whose zombies (in the container's pid
/// namespace) would then keep the namespace's PID 1 from ever being
/// reaped. Only zombie children of ours named `youki:[...]` are touched.
pub(crate) fn reap_executor_zombies() {
    let me = nix::unistd::getpid().as_raw();
    let candidates = own_children().unwrap_or_else(all_pids);
    for pid in candidates {
        let Ok(stat) = rstack_sys::proc::stat(pid) else {
            continue;
        };
        if stat.is_zombie() && stat.ppid == me && stat.comm.starts_with("youki:[") {
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// The children of this process's threads, zombies included
/// (`/proc/self/task/*/children`, CONFIG_PROC_CHILDREN): a few reads
/// instead of three syscalls for every process on the host.
fn own_children() -> Option<Vec<i32>> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).ok()?;
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    Some(out)
}

/// Every pid on the host (for kernels without the `children` files).
fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect()
}

/// Brings `lo` up in the (new, empty) network namespace of `pid`, as
/// Docker and runc do for `--network none`: libcontainer leaves it down, and
/// then even 127.0.0.1 is unreachable. Done from a short-lived thread,
/// since setns(CLONE_NEWNET) only moves the calling thread.
pub(crate) fn loopback_up(pid: Pid) -> Result<(), ContainerError> {
    use rstack_sys::netns;
    let ns_path = std::path::PathBuf::from(format!("/proc/{}/ns/net", pid.as_raw()));
    netns::run_in(Some(&ns_path), "rstack-lo-up", set_lo_up).map_err(|e| match e {
        netns::Error::Open { path, source } => ContainerError::Io {
            what: "open",
            path,
            source,
        },
        netns::Error::Enter { source, .. } => ContainerError::Sys {
            what: "enter the container's network namespace",
            source,
        },
        netns::Error::Spawn { .. } | netns::Error::Panicked { .. } => ContainerError::Sys {
            what: "bring lo up",
            source: nix::Error::EIO,
        },
    })?
}

/// Sets `IFF_UP` on `lo` of the calling thread's network namespace.
fn set_lo_up() -> Result<(), ContainerError> {
    let sys = ContainerError::sys;
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(sys("open a socket in the container's network namespace"))?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills `req` for the named interface on a valid socket.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(ContainerError::Sys {
            what: "read the flags of lo",
            source: nix::Error::last(),
        });
    }
    // SAFETY: the flags member is the one SIOCGIFFLAGS just set.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `req`; the socket is valid.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(ContainerError::Sys {
            what: "bring lo up",
            source: nix::Error::last(),
        });
    }
    Ok(())
}

/// Binds the console socket `<run root>/tty/<stem>.sock`, to which
/// libcontainer sends the pty master of a `-t` process.
pub(crate) fn bind_console(
    paths: &Paths,
    stem: &str,
) -> Result<(UnixListener, PathBuf), ContainerError> {
    let dir = paths.tty_dir();
    std::fs::create_dir_all(&dir).map_err(ContainerError::io("create", &dir))?;
    let sock = dir.join(format!("{stem}.sock"));
    let listener = UnixListener::bind(&sock).map_err(ContainerError::io("bind", &sock))?;
    Ok((listener, sock))
}

/// Receives the pty master that libcontainer's init sent over the console socket.
pub(crate) fn receive_pty(listener: &UnixListener) -> Result<OwnedFd, ContainerError> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let sys = ContainerError::sys;
    let (stream, _) = listener.accept().map_err(|e| ContainerError::Sys {
        what: "accept the console socket",
        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(sys("receive the pty"))?;
    for c in msg.cmsgs().map_err(sys("receive the pty"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this fd in our table for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(ContainerError::Sys {
        what: "receive the pty",
        source: nix::Error::EBADMSG,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_children_lists_a_zombie_child() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Exited but not waited for: a zombie, still our child.
        for _ in 0..200 {
            if rstack_sys::proc::stat(pid).is_ok_and(|s| s.is_zombie()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let children = own_children().expect("/proc/self/task/*/children");
        assert!(children.contains(&pid), "{pid} not in {children:?}");
        assert!(all_pids().contains(&pid));
        child.wait().unwrap();
        assert!(!own_children().unwrap().contains(&pid));
    }
}
