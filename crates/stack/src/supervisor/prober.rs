//! Healthchecks of running containers: one prober thread per container run
//! (its `generation`) with a healthcheck, sleeping as the health tracker's
//! cadence says ([`crate::health`]), asking the creator to run each probe
//! ([`super::probe`], started directly from this thread) and recording the result
//! in the container's record, which dependants waiting on
//! `service_healthy` see at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hub::Inner;
use crate::health::{Check, Tracker};
use crate::state::Health;

/// Starts the prober of run `generation` of container `name`.
pub(super) fn spawn(inner: &Arc<Inner>, name: String, generation: u64, check: Check) {
    let i = inner.clone();
    std::thread::spawn(move || prober(i, name, generation, check));
}

/// Runs a container's healthcheck until the container's run `generation` ends.
fn prober(inner: Arc<Inner>, name: String, generation: u64, check: Check) {
    let (mut tracker, started, id) = {
        let hub = inner.hub();
        let Some(l) = hub.ctrs.get(&name) else { return };
        let tracker = match &l.rec.health {
            Some(h) => Tracker::resume(check.clone(), h),
            None => Tracker::new(check.clone()),
        };
        let started = l
            .rec
            .started_at
            .as_deref()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .unwrap_or_else(jiff::Timestamp::now);
        (tracker, started, l.rec.id.clone())
    };
    let Some(id) = id else { return };
    let freezer = {
        let hub = inner.hub();
        let leaves = hub.ctrs.get(&name).map(|l| l.rec.cgroup_leaves.as_slice());
        crate::cgroups::FreezerState::find(leaves.unwrap_or_default())
    };
    let mut probe = super::probe::Prober::default();
    let uptime = || {
        let d = jiff::Timestamp::now().duration_since(started);
        Duration::try_from(d).unwrap_or_default()
    };
    loop {
        if !sleep(&inner, &name, generation, tracker.next_delay(uptime())) {
            return;
        }
        if freezer.as_ref().is_some_and(|f| f.is_paused()) {
            // a frozen container cannot answer; docker skips probes too
            continue;
        }
        let result = probe.run(&inner.env.runtime, &id, &check);
        let changed = tracker.record(result, uptime());
        let still = inner
            .hub()
            .ctrs
            .get(&name)
            .is_some_and(|l| l.generation == generation);
        if !still {
            return;
        }
        // reported before the state changes: a dependant woken by the
        // change prints its `Starting` after this line, as docker compose
        if changed {
            let action = match tracker.status() {
                Health::Healthy => "Healthy",
                Health::Unhealthy => "Unhealthy",
                Health::Starting => "Starting",
            };
            inner.report(&name, action);
        }
        let rec = tracker.to_record();
        // a change of status wakes those waiting on it (`service_healthy`,
        // `--wait`) and is saved durably; a result that only adds to the
        // log is rewritten by the next probe
        if changed {
            inner.update(&name, |l| l.rec.health = Some(rec));
        } else {
            inner.update_quietly(&name, |l| l.rec.health = Some(rec));
        }
    }
}

/// Sleeps `delay`; false when the run is over (exited, stopped, shutdown).
fn sleep(inner: &Inner, name: &str, generation: u64, delay: Duration) -> bool {
    let deadline = Instant::now() + delay;
    let mut hub = inner.hub();
    loop {
        let gone = hub
            .ctrs
            .get(name)
            .is_none_or(|l| l.generation != generation || l.stop_requested);
        if hub.shutting || gone {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        hub = inner.wait_timeout(hub, left);
    }
}
