//! The log pump: one thread moving every container's raw output files
//! (`O_APPEND`, written by the container directly, so output survives a
//! supervisor crash) into its rotated json-file log, saving the offsets
//! consumed. Runners drain a container's output through the same state
//! before recording its exit, so its last lines are logged first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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

/// Moves the containers' raw output into their json logs, forever.
fn log_pump(inner: Arc<Inner>) {
    loop {
        let busy = pump_shared(&inner, false);
        if !busy {
            std::thread::sleep(Duration::from_millis(50));
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
