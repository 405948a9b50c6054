//! The executor lock. libcontainer changes the process cwd while it binds
//! its notify and console sockets, so concurrent creations from several
//! threads can resolve paths against another's cwd; [`EXECUTOR_LOCK`]
//! serialises every build/start/exec call in this process (and, with the
//! build helper, every helper run: they share the state dirs).

use std::sync::{Mutex, MutexGuard};

/// Serialises libcontainer's cwd-changing calls (see module docs).
pub static EXECUTOR_LOCK: Mutex<()> = Mutex::new(());

/// Takes [`EXECUTOR_LOCK`]; a panic of a former holder does not poison it
/// (the lock guards no data).
pub(crate) fn lock_executor() -> MutexGuard<'static, ()> {
    EXECUTOR_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}
