//! `-t`: relays between the user's terminal and the container's pseudo
//! terminal (whose master end libcontainer handed us). The user's terminal
//! goes to raw mode so that keys (Ctrl-C, arrows) reach the container's
//! line discipline untouched; its size follows SIGWINCH.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::JoinHandle;

use anyhow::Context;
use nix::sys::termios::{self, SetArg, Termios};

/// The pty master while a relay runs (for resizes from the signal thread).
static MASTER_FD: AtomicI32 = AtomicI32::new(-1);

/// Copies the user's terminal size to the container's terminal.
fn copy_window_size(master: i32) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO, libc::STDERR_FILENO] {
        // SAFETY: TIOCGWINSZ writes a winsize into our local struct.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 {
            // SAFETY: TIOCSWINSZ reads the struct; `master` is an open pty.
            unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &ws) };
            return;
        }
    }
}

/// Called on SIGWINCH.
pub fn resize_requested() {
    let fd = MASTER_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        copy_window_size(fd);
    }
}

/// The user's terminal is gone: SIGHUP the container terminal's
/// foreground process group, as a kernel hangup would. Returns whether a
/// pty relay was running.
pub fn hangup() -> bool {
    let fd = MASTER_FD.load(Ordering::SeqCst);
    if fd < 0 {
        return false;
    }
    let mut pgrp: libc::pid_t = 0;
    // SAFETY: TIOCGPGRP writes the foreground group (as seen from our pid
    // namespace) into `pgrp`; `fd` is the open pty master.
    if unsafe { libc::ioctl(fd, libc::TIOCGPGRP, &mut pgrp) } == 0 && pgrp > 1 {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgrp),
            nix::sys::signal::Signal::SIGHUP,
        );
    }
    true
}

pub struct Relay {
    output: JoinHandle<()>,
    saved: Option<Termios>,
}

impl Relay {
    /// Starts copying container output to stdout and, with `-i`, stdin to
    /// the container.
    pub fn start(master: OwnedFd, interactive: bool) -> anyhow::Result<Relay> {
        MASTER_FD.store(master.as_raw_fd(), Ordering::SeqCst);
        copy_window_size(master.as_raw_fd());
        let stdin = std::io::stdin();
        let saved = if interactive && stdin.is_terminal() {
            let saved = termios::tcgetattr(&stdin).context("cannot read the terminal settings")?;
            let mut raw = saved.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw)
                .context("cannot set the terminal to raw mode")?;
            Some(saved)
        } else {
            None
        };
        if interactive {
            let input = master.try_clone().context("cannot duplicate the pty")?;
            std::thread::spawn(move || {
                let mut to = std::fs::File::from(input);
                let mut from = std::io::stdin().lock();
                let mut buf = [0u8; 4096];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 || to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
        let output = std::thread::spawn(move || {
            let mut from = std::fs::File::from(master);
            let mut out = std::io::stdout().lock();
            let mut buf = [0u8; 8192];
            // EIO once the container's side is closed.
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = out.flush();
            }
            MASTER_FD.store(-1, Ordering::SeqCst);
        });
        Ok(Relay { output, saved })
    }

    /// Waits for the container's output to drain and restores the terminal.
    pub fn finish(self) {
        let _ = self.output.join();
        MASTER_FD.store(-1, Ordering::SeqCst);
        if let Some(saved) = self.saved {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &saved);
        }
    }
}
