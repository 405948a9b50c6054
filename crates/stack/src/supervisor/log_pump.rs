//! The log pump: one thread moving every container's raw output files
//! (`O_APPEND`, written by the container directly, so output survives a
//! supervisor crash) into its rotated json-file log, saving the offsets
//! consumed. Runners drain a container's output through the same state
//! before recording its exit, so its last lines are logged first.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};

use super::hub::Inner;
use crate::error_chain::chain;
use crate::logs::{JsonLog, RawTail, Rotation};
use crate::state::Stream;

/// Each container's json log and its stdout and stderr tails.
pub(super) type Pumps = HashMap<String, (JsonLog, [RawTail; 2])>;

/// Starts the pump thread.
pub(super) fn spawn(inner: &Arc<Inner>) {
    let i = inner.clone();
    std::thread::spawn(move || log_pump(i));
}

/// Tells the pump thread that the supervisor is shutting down.
pub(super) struct Kick(Option<EventFd>);

impl Kick {
    pub(super) fn new() -> Kick {
        Kick(EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).ok())
    }

    /// Wakes the pump: it closes its inotify fd now, while the containers
    /// stop, since closing one waits for an SRCU grace period (7-15 ms
    /// here) that would otherwise delay the supervisor's exit and `down`.
    pub(super) fn kick(&self) {
        if let Some(e) = &self.0 {
            let _ = e.write(1);
        }
    }
}

/// Moves the containers' raw output into their json logs, forever.
fn log_pump(inner: Arc<Inner>) {
    let mut wake = Wake::new();
    let mut trimmed: Option<Instant> = None;
    loop {
        if wake.is_some() && inner.hub().shutting {
            wake = None; // see Kick::kick
        }
        // watches first: output written after them wakes the wait below
        if let Some(w) = wake.as_mut() {
            w.watch(&inner);
        }
        let busy = pump_shared(&inner, false);
        if busy {
            continue;
        }
        let quiet = match wake.as_mut() {
            Some(w) => w.wait(&inner.pump_kick),
            None => {
                std::thread::sleep(POLL);
                false
            }
        };
        // a quiet second: hand the heap's free pages back (what bursts of
        // work freed, which glibc keeps), at most once a minute
        if quiet && trimmed.is_none_or(|t| t.elapsed() >= TRIM_EVERY) {
            rstack_sys::mem::trim_heap();
            trimmed = Some(Instant::now());
        }
    }
}

/// How often an idle supervisor returns its free heap pages.
const TRIM_EVERY: Duration = Duration::from_secs(60);

/// How often the pump looks without inotify.
const POLL: Duration = Duration::from_millis(50);
/// How long an idle pump sleeps when inotify tells it of new output.
const IDLE: Duration = Duration::from_secs(1);

/// Wakes the idle pump when a raw output file is written (a watch on each
/// container's log dir) or a container's log dir is made (a watch on their
/// parent), instead of a look every 50 ms: an idle stack of ten costs the
/// supervisor ~1 wake-up a second, not 20 with 20 `fstat`s each.
struct Wake {
    fd: Inotify,
    /// The watch on the containers' log dirs' parent, once it exists.
    logs: Option<WatchDescriptor>,
    watched: HashMap<String, WatchDescriptor>,
}

impl Wake {
    /// None (the pump polls) when inotify is not available.
    fn new() -> Option<Wake> {
        let fd = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
        Some(Wake {
            fd,
            logs: None,
            watched: HashMap::new(),
        })
    }

    /// Watches the log dir of every container the hub has, drops the
    /// watches of those gone.
    fn watch(&mut self, inner: &Inner) {
        if self.logs.is_none() {
            // made with the first container's raw files
            let logs = inner.pp.logs_dir();
            self.logs = self.fd.add_watch(&logs, AddWatchFlags::IN_CREATE).ok();
        }
        let names: Vec<String> = inner.hub().ctrs.keys().cloned().collect();
        self.watched.retain(|name, wd| {
            let keep = names.contains(name);
            if !keep {
                let _ = self.fd.rm_watch(*wd);
            }
            keep
        });
        for name in names {
            if self.watched.contains_key(&name) {
                continue;
            }
            let flags = AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CREATE;
            // a dir not made yet: its IN_CREATE in logs/ wakes the pump
            if let Ok(wd) = self.fd.add_watch(&inner.pp.log_dir(&name), flags) {
                self.watched.insert(name, wd);
            }
        }
    }

    /// Forgets the watches the kernel dropped (their dir was removed), so
    /// that [`Self::watch`] watches a dir made again under the same name.
    fn forget_removed(&mut self, events: &[InotifyEvent]) {
        for e in events {
            if e.mask.contains(AddWatchFlags::IN_IGNORED) {
                self.watched.retain(|_, wd| *wd != e.wd);
                if self.logs == Some(e.wd) {
                    self.logs = None;
                }
            }
        }
    }

    /// Sleeps until a raw file or log dir changes, at most [`IDLE`] ([`POLL`]
    /// while there is no log dir to watch yet); the pump's own json log
    /// writes do not wake it. True when nothing changed for [`IDLE`].
    fn wait(&mut self, kick: &Kick) -> bool {
        let idle = if self.logs.is_some() { IDLE } else { POLL };
        let deadline = Instant::now() + idle;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            if ms == 0 {
                return self.logs.is_some();
            }
            let mut fds = vec![PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            if let Some(k) = &kick.0 {
                fds.push(PollFd::new(k.as_fd(), PollFlags::POLLIN));
            }
            if poll(&mut fds, PollTimeout::from(ms)).is_err() {
                std::thread::sleep(POLL);
                return false;
            }
            if fds
                .get(1)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
            {
                return false;
            }
            let events = self.fd.read_events().unwrap_or_default();
            self.forget_removed(&events);
            let raw = |e: &InotifyEvent| {
                e.mask.contains(AddWatchFlags::IN_ISDIR)
                    || e.name
                        .as_ref()
                        .is_none_or(|n| n.to_string_lossy().ends_with(".raw"))
            };
            if events.iter().any(raw) {
                return false;
            }
        }
    }
}

/// One pass over every container's output; true if anything was moved.
/// `flush`: a last partial line is written too.
pub(super) fn pump_shared(inner: &Inner, flush: bool) -> bool {
    let mut pumps = inner.pumps.lock().unwrap_or_else(|p| p.into_inner());
    let names: Vec<(String, String)> = inner
        .hub()
        .ctrs
        .values()
        .map(|l| (l.rec.name.clone(), l.rec.service.clone()))
        .collect();
    let mut busy = false;
    for (name, svc) in names {
        let dir = inner.pp.log_dir(&name);
        if !pumps.contains_key(&name) {
            let Some(pump) = open(inner, &name, &svc) else {
                continue;
            };
            pumps.insert(name.clone(), pump);
        }
        let Some((log, tails)) = pumps.get_mut(&name) else {
            continue;
        };
        let mut moved = false;
        for t in tails.iter_mut() {
            match t.pump(log, flush) {
                Ok(m) => moved |= m,
                Err(e) => tracing::debug!(error = %chain(&e), "log pump"),
            }
        }
        if moved {
            crate::logs::save_offsets(&dir, [tails[0].offset, tails[1].offset]);
            busy = true;
        }
    }
    busy
}

/// A container's json log (its service's rotation) and raw tails from the
/// saved offsets.
fn open(inner: &Inner, name: &str, svc: &str) -> Option<(JsonLog, [RawTail; 2])> {
    let logging = inner
        .project
        .services
        .get(svc)
        .and_then(|s| s.logging.as_ref());
    let rot = Rotation::of_service(svc, logging).unwrap_or_default();
    let log = JsonLog::open(&inner.pp.json_log(name), rot).ok()?;
    let off = crate::logs::load_offsets(&inner.pp.log_dir(name));
    let tail = |stream, offset| RawTail::new(&inner.pp.raw_log(name, stream), stream, offset);
    Some((
        log,
        [tail(Stream::Stdout, off[0]), tail(Stream::Stderr, off[1])],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watching(dir: &std::path::Path) -> Wake {
        let mut w = Wake::new().unwrap();
        let flags = AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CREATE;
        let wd = w.fd.add_watch(dir, flags).unwrap();
        w.watched.insert("c1".to_owned(), wd);
        w
    }

    #[test]
    fn raw_output_wakes_the_pump_and_its_own_writes_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = watching(tmp.path());
        w.logs = w.watched.get("c1").copied(); // idle waits last IDLE
        let kick = Kick::new();
        std::fs::write(tmp.path().join("c1-json.log"), "{}\n").unwrap();
        std::fs::write(tmp.path().join("offsets"), "0 0").unwrap();
        assert!(w.wait(&kick), "only the pump's files changed: quiet");
        std::fs::write(tmp.path().join("stdout.raw"), "hello\n").unwrap();
        assert!(!w.wait(&kick), "new output wakes it");
        kick.kick();
        assert!(!w.wait(&kick), "a kick wakes it");
    }

    #[test]
    fn a_removed_log_dir_is_watched_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c1");
        std::fs::create_dir(&dir).unwrap();
        let mut w = watching(&dir);
        std::fs::remove_dir(&dir).unwrap();
        assert!(!w.wait(&Kick::new()), "the removal wakes the pump");
        assert!(w.watched.is_empty(), "and its watch is forgotten");
    }
}
