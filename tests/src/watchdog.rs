//! A deadline for every trial, so a hung trial fails with a diagnostic
//! instead of eating CI's time.
//!
//! [`crate::trial`] runs each body on a thread of its own and waits for it
//! at most [`trial_deadline`]. While it runs, the body's helpers say what it
//! is waiting for ([`waiting_on`]: each rstack command, each shell command in
//! a test's network namespace) and which sandboxes it made
//! ([`sandbox_created`]). When the deadline passes the trial fails with that:
//! the wait in progress and for how long, and the tail of every supervisor
//! log in its sandboxes. The stuck thread is left behind (a thread cannot be
//! killed); the other trials go on, and the process-level clean-up still runs.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default deadline of one trial; `RSTACK_E2E_TRIAL_DEADLINE` (seconds)
/// overrides it (the TCG VM runs ~7x slower than the host).
const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);

/// The deadline of each trial (see [`DEFAULT_DEADLINE`]).
pub fn trial_deadline() -> Duration {
    std::env::var("RSTACK_E2E_TRIAL_DEADLINE")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(DEFAULT_DEADLINE, Duration::from_secs)
}

/// What a running trial is doing, shared between its thread and the watcher.
#[derive(Debug, Default)]
struct Activity {
    /// Waits in progress, innermost last, with their start.
    waits: Vec<(String, Instant)>,
    /// Sandbox dirs the trial made (their supervisor logs are shown).
    sandboxes: Vec<PathBuf>,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Mutex<Activity>>>> = const { RefCell::new(None) };
}

fn with_current(f: impl FnOnce(&mut Activity)) {
    CURRENT.with(|c| {
        if let Some(a) = c.borrow().as_ref() {
            f(&mut a.lock().unwrap_or_else(|e| e.into_inner()));
        }
    });
}

/// Marks a wait of the current trial until the guard is dropped.
#[must_use = "the wait ends when the guard is dropped"]
pub struct Waiting(());

impl Drop for Waiting {
    fn drop(&mut self) {
        with_current(|a| {
            a.waits.pop();
        });
    }
}

/// Says that the current trial now waits for `what` (a command line, a
/// condition); the guard ends the wait.
pub fn waiting_on(what: impl Into<String>) -> Waiting {
    let what = what.into();
    with_current(|a| a.waits.push((what, Instant::now())));
    Waiting(())
}

/// Records a sandbox dir of the current trial (for its supervisor logs).
pub fn sandbox_created(dir: &Path) {
    with_current(|a| a.sandboxes.push(dir.to_owned()));
}

/// Runs `body` on a thread of its own; `Err` with a diagnostic if it has
/// not finished within `deadline`. A panic of the body is passed on.
pub fn run_with_deadline<F>(name: &str, deadline: Duration, body: F) -> Result<(), String>
where
    F: FnOnce() + Send + 'static,
{
    let activity = Arc::new(Mutex::new(Activity::default()));
    let mine = Arc::clone(&activity);
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(name.chars().take(60).collect())
        .spawn(move || {
            CURRENT.with(|c| *c.borrow_mut() = Some(mine));
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            let _ = tx.send(());
            result
        })
        .map_err(|e| format!("cannot start the trial's thread: {e}"))?;
    match rx.recv_timeout(deadline) {
        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(panic)) | Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            let a = activity.lock().unwrap_or_else(|e| e.into_inner());
            Err(diagnostic(name, deadline, &a))
        }
    }
}

fn diagnostic(name: &str, deadline: Duration, a: &Activity) -> String {
    let mut s = format!(
        "{name}: still running after its deadline of {deadline:?} (RSTACK_E2E_TRIAL_DEADLINE, \
         seconds); its thread is left behind\n"
    );
    if a.waits.is_empty() {
        s.push_str("it was not inside an rstack or shell command: a wait in the test's own code\n");
    }
    for (what, since) in &a.waits {
        let _ = writeln!(s, "waiting for ({}s): {what}", since.elapsed().as_secs());
    }
    for dir in &a.sandboxes {
        for log in supervisor_logs(dir) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            let _ = writeln!(s, "--- {} (last {} lines)", log.display(), tail.len());
            for line in tail.iter().rev() {
                let _ = writeln!(s, "{line}");
            }
        }
    }
    s
}

/// `ROOT/projects/*/supervisor.log` of a sandbox.
fn supervisor_logs(sandbox: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(sandbox.join("root/projects")) else {
        return Vec::new();
    };
    let mut logs: Vec<PathBuf> = dir
        .flatten()
        .map(|e| e.path().join("supervisor.log"))
        .filter(|p| p.is_file())
        .collect();
    logs.sort();
    logs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_body_passes_and_a_panic_is_passed_on() {
        assert_eq!(
            run_with_deadline("ok", Duration::from_secs(5), || {}),
            Ok(())
        );
        let r = std::panic::catch_unwind(|| {
            run_with_deadline("boom", Duration::from_secs(5), || panic!("boom"))
        });
        assert!(r.is_err());
    }

    #[test]
    fn a_hung_body_fails_naming_its_wait_and_supervisor_log() {
        let dir = tempfile::tempdir().unwrap();
        let proj = dir.path().join("root/projects/demo");
        std::fs::create_dir_all(&proj).unwrap();
        std::fs::write(proj.join("supervisor.log"), "line one\nprobe stuck\n").unwrap();
        let sandbox = dir.path().to_owned();
        let err = run_with_deadline("hang", Duration::from_millis(200), move || {
            sandbox_created(&sandbox);
            let _w = waiting_on("rstack up -d --wait");
            std::thread::sleep(Duration::from_secs(3));
        })
        .unwrap_err();
        assert!(err.contains("deadline of 200ms"), "{err}");
        assert!(
            err.contains("waiting for (0s): rstack up -d --wait"),
            "{err}"
        );
        assert!(err.contains("probe stuck"), "{err}");
    }
}
