//! The user's commands on a running project, as the control loop hands
//! them over (`stop`, `start`, `restart`, `kill`, `rm`; `down` and Ctrl-C
//! through [`stop_all`]). Each runs on a thread of its own, so a `restart`
//! waiting for a healthcheck does not hold up a `kill` or a `down`; they
//! meet only in the hub's short critical sections. Once the project shuts
//! down ([`Inner::begin_shutdown`]) nothing starts any more and the waits
//! of commands in flight give up.

use std::sync::Arc;
use std::time::Duration;

use rstack_compose::plan::Wait;

use super::depends::await_dependencies;
use super::hub::Inner;
use super::log_pump::pump_shared;
use crate::control::{Request, Response};
use crate::process::Pidfd;
use crate::state::Status;

/// What an interrupted `start` or `restart` answers.
const SHUTTING: &str = "the project is being stopped";

/// Answers one request; `down` and `detach` end the control loop and are
/// its own business.
pub(super) fn answer(inner: &Arc<Inner>, req: Request) -> Response {
    match req {
        Request::Ping => Response::default(),
        Request::Stop { services, timeout } => stop_services(inner, &services, timeout, true),
        Request::Rm { services } => rm_services(inner, &services),
        Request::Kill { services, signal } => kill_services(inner, &services, signal),
        Request::Start { services } => start_services(inner, &services),
        Request::Restart { services, timeout } => restart_services(inner, &services, timeout),
        Request::Down { .. } | Request::Detach => refused("handled by the control loop".into()),
    }
}

fn refused(error: String) -> Response {
    Response {
        lines: Vec::new(),
        error: Some(error),
    }
}

/// Stops everything in stop order (layers in parallel) once nothing may
/// start any more; with `remove`, deletes the records and logs too.
/// Returns the lines to print.
pub(super) fn stop_all(inner: &Inner, timeout: Option<u64>, remove: bool) -> Vec<String> {
    inner.begin_shutdown();
    let mut lines = stop_services(inner, &[], timeout, false).lines;
    pump_shared(inner, true);
    if remove {
        lines.clear();
        let names: Vec<String> = inner.hub().ctrs.keys().cloned().collect();
        for n in names {
            let _ = inner.forget(&n);
            lines.push(format!("Container {n}  Removed"));
        }
    }
    lines
}

/// `restart`: stops the services, then starts them again in dependency
/// order, each once the restarted dependencies it declared with
/// `restart: true` meet their condition — what `docker compose restart`
/// waits for (so a dependant does not come back before its database).
fn restart_services(inner: &Arc<Inner>, services: &[String], timeout: Option<u64>) -> Response {
    let mut r = stop_services(inner, services, timeout, false);
    if r.error.is_some() {
        return r;
    }
    let selected = match inner.services_or_all(services) {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    for svc in inner.plan.start_order() {
        if !selected.contains(&svc) {
            continue;
        }
        let waits: Vec<Wait> = inner
            .plan
            .waits
            .get(&svc)
            .into_iter()
            .flatten()
            .filter(|w| w.restart && selected.contains(&w.dependency))
            .cloned()
            .collect();
        match await_dependencies(inner, &svc, &waits) {
            Ok(true) => {}
            Ok(false) => {
                r.error = Some(SHUTTING.into());
                break;
            }
            Err(reason) => {
                r.error = Some(reason);
                break;
            }
        }
        let started = start_services(inner, std::slice::from_ref(&svc));
        r.lines.extend(started.lines);
        if started.error.is_some() {
            r.error = started.error;
            break;
        }
    }
    r
}

/// Stops one container and waits for its runner to tear it down.
fn stop_one(inner: &Inner, name: &str, timeout: Option<u64>, user: bool) -> bool {
    let (pidfd, signal, grace) = {
        let mut hub = inner.hub();
        let Some(l) = hub.ctrs.get_mut(name) else {
            return false;
        };
        l.stop_requested = true;
        if user {
            l.rec.user_stopped = true;
        }
        let _ = inner.pp.save_container(&l.rec);
        (
            l.pidfd.clone(),
            l.stop_signal,
            timeout.map(Duration::from_secs).unwrap_or(l.stop_timeout),
        )
    };
    inner.notify();
    let Some(p) = pidfd else {
        // not running; wait for a runner in backoff (or creating it) to notice
        let mut hub = inner.hub();
        while hub.ctrs.get(name).is_some_and(|l| l.active && !l.running()) {
            hub = inner.wait_timeout(hub, Duration::from_millis(100));
            if hub.ctrs.get(name).is_some_and(|l| l.running()) {
                drop(hub);
                return stop_one(inner, name, timeout, user);
            }
        }
        return false;
    };
    inner.report(name, "Stopping");
    signal_until_exit(inner, name, &p, signal, grace);
    let mut hub = inner.hub();
    while hub.ctrs.get(name).is_some_and(|l| l.active) {
        hub = inner.wait_timeout(hub, Duration::from_millis(200));
    }
    drop(hub);
    inner.report(name, "Stopped");
    true
}

/// The stop signal (a paused container thawed first), SIGKILL after the
/// grace period or on a second Ctrl-C; returns once it exited.
fn signal_until_exit(inner: &Inner, name: &str, p: &Pidfd, signal: i32, grace: Duration) {
    let leaves = inner
        .hub()
        .ctrs
        .get(name)
        .map(|l| l.rec.cgroup_leaves.clone())
        .unwrap_or_default();
    if crate::cgroups::is_paused(&leaves) {
        // a frozen process gets no signal: thaw it first
        let _ = crate::cgroups::set_paused(name, &leaves, false);
    }
    if !p.stop(signal, grace, || inner.hub().kill_now) {
        while !p.wait_exit(Duration::from_secs(3600)) {}
    }
}

/// Stops the services' containers, dependants first (each layer in
/// parallel). `user`: remembered, no restart policy brings them back.
fn stop_services(inner: &Inner, services: &[String], timeout: Option<u64>, user: bool) -> Response {
    let services = match inner.services_or_all(services) {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    let mut lines = Vec::new();
    for layer in inner.plan.stop_layers() {
        let names: Vec<String> = {
            let hub = inner.hub();
            hub.ctrs
                .values()
                .filter(|l| layer.contains(&l.rec.service) && services.contains(&l.rec.service))
                .map(|l| l.rec.name.clone())
                .collect()
        };
        let stopped: Vec<(String, bool)> = std::thread::scope(|s| {
            let hs: Vec<_> = names
                .iter()
                .map(|n| s.spawn(move || (n.clone(), stop_one(inner, n, timeout, user))))
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (n, _) in stopped {
            lines.push(format!("Container {n}  Stopped"));
        }
    }
    Response { lines, error: None }
}

/// Sends `signal` to the services' running containers; what dies of it
/// meets its restart policy like any other exit.
fn kill_services(inner: &Inner, services: &[String], signal: i32) -> Response {
    let services = match inner.services_or_all(services) {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    let targets: Vec<(String, Arc<Pidfd>)> = inner
        .hub()
        .ctrs
        .values()
        .filter(|l| services.contains(&l.rec.service))
        .filter_map(|l| Some((l.rec.name.clone(), l.pidfd.clone()?)))
        .collect();
    let mut lines = Vec::new();
    for (n, p) in targets {
        let _ = p.signal(signal);
        lines.push(format!("Container {n}  Killed"));
    }
    Response { lines, error: None }
}

/// Starts the services' stopped containers and waits until they run (or
/// fail); refused once the project shuts down.
fn start_services(inner: &Arc<Inner>, services: &[String]) -> Response {
    let services = match inner.services_or_all(services) {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    let names: Vec<String> = {
        let mut hub = inner.hub();
        // a container whose exit was just recorded: its runner is still
        // finishing (tear-down, restart decision); give it a moment, or
        // the start would find it busy and do nothing
        let settle = std::time::Instant::now() + Duration::from_secs(2);
        while std::time::Instant::now() < settle
            && hub.ctrs.values().any(|l| {
                services.contains(&l.rec.service) && l.active && l.rec.status == Status::Exited
            })
        {
            hub = inner.wait_timeout(hub, Duration::from_millis(50));
        }
        if hub.shutting {
            return refused(SHUTTING.into());
        }
        hub.ctrs
            .values_mut()
            .filter(|l| services.contains(&l.rec.service) && !l.active)
            .map(|l| {
                l.stop_requested = false;
                l.failed = None;
                l.rec.user_stopped = false;
                l.rec.status = Status::Creating;
                // a stale `healthy` must not satisfy a dependant
                l.rec.health = None;
                l.active = true;
                let _ = inner.pp.save_container(&l.rec);
                l.rec.name.clone()
            })
            .collect()
    };
    inner.notify();
    let mut lines = Vec::new();
    for n in names {
        super::runner::spawn(inner, n.clone(), None);
        lines.push(format!("Container {n}  Started"));
    }
    // wait until they run (or fail, or the project shuts down)
    let mut hub = inner.hub();
    while !hub.shutting
        && hub.ctrs.values().any(|l| {
            services.contains(&l.rec.service)
                && l.active
                && !l.running()
                && l.failed.is_none()
                && l.rec.status != Status::Exited
        })
    {
        hub = inner.wait_timeout(hub, Duration::from_millis(200));
    }
    let error = hub.shutting.then(|| SHUTTING.to_owned());
    Response { lines, error }
}

/// Forgets the stopped containers of `services` (all when empty).
fn rm_services(inner: &Inner, services: &[String]) -> Response {
    let services = match inner.services_or_all(services) {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    let mut hub = inner.hub();
    let names: Vec<String> = hub
        .ctrs
        .values()
        .filter(|l| services.contains(&l.rec.service) && !l.active && !l.running())
        .map(|l| l.rec.name.clone())
        .collect();
    let mut lines = Vec::new();
    for n in names {
        hub.ctrs.remove(&n);
        let _ = inner.forget(&n);
        lines.push(format!("Container {n}  Removed"));
    }
    Response { lines, error: None }
}
