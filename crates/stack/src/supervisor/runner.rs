//! One container's life, on a runner thread of its own: create it (or take
//! over an adopted one), start its prober, wait for its exit, tear it down,
//! record the exit, and apply the restart policy with Docker's backoff
//! ([`crate::restart`]). The runner ends when the container is stopped,
//! the project shuts down, or the policy says no.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rstack_netns::Attachment;
use rstack_netns::dns::ServeHandle;
use rstack_runtime::Container;

use super::hub::Inner;
use super::log_pump::pump_shared;
use crate::error_chain::chain;
use crate::health::{Check, Tracker};
use crate::lifecycle::{self, Launcher};
use crate::process::Pidfd;
use crate::restart::{Backoff, Exit, Policy};
use crate::state::{Status, now_rfc3339};

/// Starts the runner of container `name` (`adopted`: it runs already).
pub(super) fn spawn(inner: &Arc<Inner>, name: String, adopted: Option<Pidfd>) {
    let i = inner.clone();
    std::thread::spawn(move || runner(i, name, adopted));
}

/// One run of the container: what the runner holds until it exits.
struct Run {
    pidfd: Arc<Pidfd>,
    /// Created in this process (never in the supervisor, which uses the
    /// creator; kept for the shape of [`lifecycle::Started`]).
    container: Option<Container>,
    attachments: Vec<Attachment>,
    dns: Option<ServeHandle>,
}

/// One container's life: create (or adopt), wait, tear down, restart.
fn runner(inner: Arc<Inner>, name: String, mut adopted: Option<Pidfd>) {
    let (svc_name, mut generation) = {
        let mut hub = inner.hub();
        let Some(l) = hub.ctrs.get_mut(&name) else {
            return;
        };
        l.active = true;
        (l.rec.service.clone(), l.generation)
    };
    let svc = &inner.project.services[&svc_name];
    let policy = Policy::of_service(&svc_name, svc).unwrap_or_default();
    let check = Check::of_service(&svc_name, svc.healthcheck.as_ref())
        .ok()
        .flatten();
    let mut backoff = Backoff::default();
    loop {
        let began = Instant::now();
        let run = match adopted.take() {
            Some(p) => adopt(&inner, &name, p),
            None => match launch(&inner, &name, &svc_name, check.as_ref()) {
                Some(run) => run,
                None => return,
            },
        };
        if let Some(c) = &check {
            super::prober::spawn(&inner, name.clone(), generation, c.clone());
        }
        let (code, oom) = wait_exit(&inner, &name, run);
        // its last lines are in the json log before its exit is recorded
        pump_shared(&inner, false);
        let mut rec = inner.hub().ctrs.get(&name).map(|l| l.rec.clone());
        if let Some(r) = rec.as_mut() {
            for e in lifecycle::remove_leftover(&inner.env, r) {
                inner.warn(e);
            }
        }
        generation += 1;
        let Some(exit) = record_exit(&inner, &name, generation, code, oom) else {
            return;
        };
        (inner.reporter)(super::Event::Exited {
            name: name.clone(),
            code,
        });
        if !policy.restart_after(&exit) {
            break;
        }
        if !sleep_backoff(&inner, &name, backoff.delay(began.elapsed())) {
            return;
        }
        inner.update(&name, |l| {
            l.rec.restart_count += 1;
            l.rec.status = Status::Restarting;
        });
    }
    inner.update(&name, |l| l.active = false);
}

/// Takes over a container found running: its DNS server again, its pidfd.
fn adopt(inner: &Inner, name: &str, p: Pidfd) -> Run {
    let p = Arc::new(p);
    let netns = inner.hub().ctrs.get(name).and_then(|l| l.rec.netns.clone());
    let mut dns = None;
    if let Some(path) = netns {
        let _guard = inner.rt.enter();
        match inner.resolver.serve(name, &path) {
            Ok(d) => dns = Some(d),
            Err(e) => inner.warn(format!("container {name}: cannot serve DNS: {}", chain(&e))),
        }
    }
    let p2 = p.clone();
    inner.update(name, move |l| l.pidfd = Some(p2));
    Run {
        pidfd: p,
        container: None,
        attachments: Vec::new(),
        dns,
    }
}

/// Creates and starts the container afresh (same id, name, netns path,
/// volumes, writable layer). `None`: it could not be (recorded as failed),
/// or the project is shutting down; the runner ends.
fn launch(inner: &Inner, name: &str, svc_name: &str, check: Option<&Check>) -> Option<Run> {
    let mut rec = {
        let mut hub = inner.hub();
        let shutting = hub.shutting;
        let l = hub.ctrs.get_mut(name)?;
        if shutting {
            // `down` or Ctrl-C came first: nothing starts any more
            l.active = false;
            if l.rec.status == Status::Creating {
                l.rec.status = Status::Exited;
                let _ = inner.pp.save_container(&l.rec);
            }
            drop(hub);
            inner.notify();
            return None;
        }
        l.rec.clone()
    };
    // rec.id stays: the new runtime container takes it over
    rec.pid = None;
    rec.start_time = None;
    rec.health = None;
    rec.cgroup_dirs.clear();
    rec.log_offsets = [0, 0];
    inner.report(name, "Starting");
    let launcher = Launcher {
        env: &inner.env,
        pp: &inner.pp,
        image: &inner.images[svc_name],
        resolver: Some(&inner.resolver),
        rt: inner.rt.handle(),
        creator: Some(&inner.creator),
    };
    let started = lifecycle::plan(
        &inner.env,
        &inner.pp,
        &inner.project,
        svc_name,
        name,
        rec.number,
    )
    .map_err(lifecycle::Error::from)
    .and_then(|plan| lifecycle::create_and_start(&launcher, &mut rec, &plan, None));
    match started {
        Ok(s) => {
            let p = Arc::new(Pidfd::open(s.pidfd.pid()).unwrap_or(s.pidfd));
            if let Some(c) = check {
                rec.health = Some(Tracker::new(c.clone()).to_record());
            }
            inner.report(name, "Started");
            let p2 = p.clone();
            inner.update(name, move |l| {
                l.rec = rec;
                l.pidfd = Some(p2);
            });
            Some(Run {
                pidfd: p,
                container: s.container,
                attachments: s.attachments,
                dns: s.dns,
            })
        }
        Err(e) => {
            let msg = chain(&e);
            inner.warn(msg.clone());
            inner.update(name, |l| {
                l.rec = rec;
                l.failed = Some(msg);
                l.active = false;
            });
            None
        }
    }
}

/// Waits for the run's exit and tears down what it held; returns Docker's
/// exit code (`None`: unknown) and whether the OOM killer ended it.
fn wait_exit(inner: &Inner, name: &str, run: Run) -> (Option<i32>, bool) {
    let Run {
        pidfd,
        container,
        attachments,
        dns,
    } = run;
    let (code, oom, container) = match container {
        Some(mut c) => match c.wait() {
            Ok(s) => (Some(s.code), s.oom_killed, Some(c)),
            Err(_) => (None, false, Some(c)),
        },
        None => (wait_child_exit(&pidfd), false, None),
    };
    if let Some(d) = dns {
        inner.rt.block_on(d.stop());
    }
    if let Some(c) = container
        && let Err(e) = c.remove()
    {
        inner.warn(format!("container {name}: {}", chain(&e)));
    }
    drop(attachments);
    (code, oom)
}

/// Records the exit under the lock; returns what the restart policy
/// needs (`None`: the container is no longer known).
fn record_exit(
    inner: &Inner,
    name: &str,
    generation: u64,
    code: Option<i32>,
    oom: bool,
) -> Option<Exit> {
    let exit = {
        let mut hub = inner.hub();
        let shutting = hub.shutting;
        let l = hub.ctrs.get_mut(name)?;
        l.generation = generation;
        l.pidfd = None;
        l.rec.status = Status::Exited;
        l.rec.exit_code = code;
        l.rec.exit_unknown = code.is_none();
        l.rec.oom_killed = oom;
        l.rec.finished_at = Some(now_rfc3339());
        l.rec.pid = None;
        l.rec.start_time = None;
        let _ = inner.pp.save_container(&l.rec);
        Exit {
            code,
            restarts: l.rec.restart_count,
            user_stopped: l.rec.user_stopped,
            stop_requested: l.stop_requested,
            shutting,
        }
    };
    inner.notify();
    Some(exit)
}

/// Sleeps `delay` before a restart; false (the runner ends, inactive)
/// when the container is stopped or the project shuts down meanwhile.
fn sleep_backoff(inner: &Inner, name: &str, delay: Duration) -> bool {
    let deadline = Instant::now() + delay;
    let mut hub = inner.hub();
    loop {
        let l = hub.ctrs.get(name);
        if hub.shutting || l.is_none_or(|l| l.stop_requested) {
            drop(hub);
            inner.update(name, |l| l.active = false);
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        hub = inner.wait_timeout(hub, left);
    }
}

/// Waits for a container's init to exit and returns Docker's exit code.
/// Created by the creator's worker, it is re-parented to us (a child
/// subreaper) and reaped here; an adopted one belongs to another parent,
/// and its code comes from PIDFD_GET_INFO when the kernel keeps it.
fn wait_child_exit(pidfd: &Pidfd) -> Option<i32> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    while !pidfd.wait_exit(Duration::from_secs(3600)) {}
    let pid = nix::unistd::Pid::from_raw(pidfd.pid());
    for _ in 0..200 {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => return Some(c),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Some(128 + sig as i32),
            // not (yet) ours: the worker that created it may still be exiting
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(nix::Error::ECHILD) => {
                if let Some(c) = pidfd.exit_code() {
                    return Some(c);
                }
            }
            Err(_) => break,
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    pidfd.exit_code()
}
