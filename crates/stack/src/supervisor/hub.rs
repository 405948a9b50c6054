//! The supervisor's shared state: what it knows of each container
//! ([`Live`]) in one [`Hub`] behind a mutex, with a condition variable that
//! every change notifies (starters, runners, probers and requests wait on
//! it — no polling delay), and the handles every thread shares ([`Inner`]).
//! The lock is held only for short critical sections: nothing blocks
//! (waits for a process, a probe, a socket) while holding it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rstack_compose::Project;
use rstack_images::LocalImage;

use super::log_pump::Pumps;
use super::{Event, Reporter};
use crate::error_chain::chain;
use crate::prepare::Env;
use crate::process::Pidfd;
use crate::state::{ContainerRecord, ProjectPaths};

/// A container the supervisor looks after.
#[derive(Debug)]
pub(super) struct Live {
    pub(super) rec: ContainerRecord,
    pub(super) pidfd: Option<Arc<Pidfd>>,
    /// Bumped on each exit: probers of an older run stop.
    pub(super) generation: u64,
    /// Its runner thread is alive.
    pub(super) active: bool,
    /// Create failed or exited where a dependant needed it up.
    pub(super) failed: Option<String>,
    /// A stop was asked: no restart, runner ends after teardown.
    pub(super) stop_requested: bool,
    pub(super) stop_signal: i32,
    pub(super) stop_timeout: Duration,
}

impl Live {
    /// Its process runs (created or adopted, not yet exited).
    pub(super) fn running(&self) -> bool {
        self.pidfd.is_some()
    }

    /// A container not running yet, stopped with `stop_signal` and
    /// killed `stop_timeout` later.
    pub(super) fn new(rec: ContainerRecord, stop_signal: i32, stop_timeout: Duration) -> Live {
        Live {
            rec,
            pidfd: None,
            generation: 0,
            active: false,
            failed: None,
            stop_requested: false,
            stop_signal,
            stop_timeout,
        }
    }

    /// A container known from its record alone (for unit tests).
    #[cfg(test)]
    pub(super) fn of(rec: ContainerRecord) -> Live {
        Live::new(rec, libc::SIGTERM, Duration::from_secs(10))
    }
}

#[derive(Debug, Default)]
pub(super) struct Hub {
    /// The project is being stopped or taken down: nothing starts any
    /// more, and every wait (dependencies, backoff, start) gives up.
    pub(super) shutting: bool,
    /// A second Ctrl-C: stops do not wait for the grace period.
    pub(super) kill_now: bool,
    pub(super) ctrs: BTreeMap<String, Live>,
    /// Services whose starter gave up (dependency failed).
    pub(super) blocked: HashMap<String, String>,
    /// Services whose containers were all launched.
    pub(super) launched: HashMap<String, bool>,
}

/// The hub and the condition variable its changes are announced on.
#[derive(Debug, Default)]
pub(super) struct Shared {
    hub: Mutex<Hub>,
    cv: Condvar,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes every waiter: the hub changed.
    pub(super) fn notify(&self) {
        self.cv.notify_all();
    }

    pub(super) fn wait<'a>(&self, g: MutexGuard<'a, Hub>) -> MutexGuard<'a, Hub> {
        self.cv.wait(g).unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn wait_timeout<'a>(
        &self,
        g: MutexGuard<'a, Hub>,
        d: Duration,
    ) -> MutexGuard<'a, Hub> {
        self.cv
            .wait_timeout(g, d)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0)
    }

    /// From now on nothing starts, and pending waits give up (`down`,
    /// Ctrl-C): set before the containers are stopped so a `start` or
    /// `restart` in flight cannot bring one back meanwhile.
    pub(super) fn begin_shutdown(&self) {
        self.lock().shutting = true;
        self.notify();
    }
}

pub(super) struct Inner {
    pub(super) env: Env,
    pub(super) pp: ProjectPaths,
    pub(super) project: Project,
    pub(super) plan: rstack_compose::Plan,
    pub(super) images: HashMap<String, LocalImage>,
    pub(super) reporter: Reporter,
    pub(super) shared: Shared,
    pub(super) rt: tokio::runtime::Runtime,
    pub(super) resolver: rstack_netns::Resolver,
    pub(super) creator: crate::creator::Creator,
    /// Raw-to-json log state, shared by the pump thread and the runners
    /// (which drain a container's output before recording its exit).
    pub(super) pumps: Mutex<Pumps>,
    pub(super) pump_kick: super::log_pump::Kick,
}

impl Inner {
    pub(super) fn hub(&self) -> MutexGuard<'_, Hub> {
        self.shared.lock()
    }

    pub(super) fn notify(&self) {
        self.shared.notify();
    }

    pub(super) fn wait<'a>(&self, g: MutexGuard<'a, Hub>) -> MutexGuard<'a, Hub> {
        self.shared.wait(g)
    }

    pub(super) fn wait_timeout<'a>(
        &self,
        g: MutexGuard<'a, Hub>,
        d: Duration,
    ) -> MutexGuard<'a, Hub> {
        self.shared.wait_timeout(g, d)
    }

    pub(super) fn begin_shutdown(&self) {
        self.shared.begin_shutdown();
        self.pump_kick.kick();
    }

    pub(super) fn report(&self, name: &str, action: &str) {
        (self.reporter)(Event::Resource {
            kind: "Container",
            name: name.to_owned(),
            action: action.to_owned(),
        });
    }

    pub(super) fn warn(&self, message: String) {
        (self.reporter)(Event::Warning(message));
    }

    /// Changes a container under the lock, saves its record, wakes waiters.
    pub(super) fn update(&self, name: &str, f: impl FnOnce(&mut Live)) {
        self.update_as(name, f, true)
    }

    /// [`Self::update`] of what no thread waits on, saved without fsync
    /// and waking no one: a probe's result that leaves the health status as
    /// it was (every few seconds per container; the next one rewrites it).
    pub(super) fn update_quietly(&self, name: &str, f: impl FnOnce(&mut Live)) {
        self.update_as(name, f, false)
    }

    fn update_as(&self, name: &str, f: impl FnOnce(&mut Live), durable: bool) {
        let mut hub = self.hub();
        if let Some(live) = hub.ctrs.get_mut(name) {
            f(live);
            let saved = if durable {
                self.pp.save_container(&live.rec)
            } else {
                self.pp.save_container_unsynced(&live.rec)
            };
            if let Err(e) = saved {
                tracing::warn!(error = %chain(&e), "cannot save a container record");
            }
        }
        drop(hub);
        if durable {
            self.notify();
        }
    }

    /// A container as the supervisor first knows it (not running yet).
    pub(super) fn new_live(&self, rec: ContainerRecord) -> Live {
        let svc = self.project.services.get(&rec.service);
        let stop_timeout = svc
            .and_then(|s| s.stop_grace_period)
            .map(|d| d.as_std())
            .unwrap_or(Duration::from_secs(10));
        let stop_signal = self.stop_signal_of(&rec.service);
        Live::new(rec, stop_signal, stop_timeout)
    }

    /// The service's `stop_signal`, else its image's `StopSignal`, else SIGTERM.
    pub(super) fn stop_signal_of(&self, service: &str) -> i32 {
        let from_service = self
            .project
            .services
            .get(service)
            .and_then(|s| s.stop_signal.clone());
        let from_image = self.images.get(service).and_then(|i| {
            i.config
                .config()
                .as_ref()
                .and_then(|c| c.stop_signal().clone())
        });
        from_service
            .or(from_image)
            .and_then(|s| rstack_runtime::container::parse_signal(&s).ok())
            .map(|s| s as i32)
            .unwrap_or(libc::SIGTERM)
    }

    /// The services a request names (the CLI checked them against its own
    /// model; one this supervisor does not know has no container), or all.
    pub(super) fn services_or_all(&self, services: &[String]) -> Result<Vec<String>, String> {
        Ok(if services.is_empty() {
            self.project.services.keys().cloned().collect()
        } else {
            services.to_vec()
        })
    }

    /// Forgets a container: its record, logs and kept data.
    pub(super) fn forget(&self, name: &str) -> Result<(), crate::state::Error> {
        let r = self.pp.remove_container(name);
        let _ = std::fs::remove_dir_all(self.pp.log_dir(name));
        self.pp.remove_container_data(name);
        r
    }
}
