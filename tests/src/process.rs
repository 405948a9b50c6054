//! Background processes (registries) that must never outlive the test run.
//!
//! Each daemon gets `PR_SET_PDEATHSIG(SIGKILL)`, so the kernel kills it when
//! its parent dies — even when the test binary is killed and no destructor
//! runs. The "parent" of that rule is the *thread* that forked it, so every
//! daemon is forked from one keeper thread that lives until the process
//! exits; a libtest-mimic worker thread that finishes early cannot take a
//! registry shared by other tests down with it.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

type SpawnRequest = (Command, Sender<io::Result<Child>>);

fn keeper() -> &'static Mutex<Sender<SpawnRequest>> {
    static KEEPER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    KEEPER.get_or_init(|| {
        let (tx, rx) = channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("rstack-e2e-keeper".to_owned())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // The sender lives in a static, so the loop only ends at exit;
                // park anyway so the thread (the daemons' parent) never ends.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the keeper thread");
        Mutex::new(tx)
    })
}

/// A process that is killed (SIGKILL) and reaped when this value is dropped
/// or [`Daemon::stop`] is called, and by the kernel when the test process
/// dies.
#[derive(Debug)]
pub(crate) struct Daemon {
    child: Mutex<Option<Child>>,
    pid: u32,
}

impl Daemon {
    /// Spawns `cmd` from the keeper thread with a parent-death signal.
    pub(crate) fn spawn(mut cmd: Command) -> io::Result<Daemon> {
        // SAFETY: the closure runs between fork and exec and only makes the
        // async-signal-safe prctl(2) syscall.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(io::Error::from)
            });
        }
        let (tx, rx) = channel();
        keeper()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send((cmd, tx))
            .map_err(|_| io::Error::other("keeper thread is gone"))?;
        let child = rx
            .recv()
            .map_err(|_| io::Error::other("keeper thread is gone"))??;
        Ok(Daemon {
            pid: child.id(),
            child: Mutex::new(Some(child)),
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// `Some(status)` if the process has already exited.
    pub(crate) fn exited(&self) -> Option<std::process::ExitStatus> {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Kills (SIGKILL) and reaps the process; idempotent.
    pub(crate) fn stop(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = guard.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
