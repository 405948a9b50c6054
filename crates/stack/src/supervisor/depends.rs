//! Starting services in dependency order: one starter thread per service
//! waits on the hub's condition variable until each of its `depends_on`
//! conditions holds (decided by [`super::conditions`]), then launches a
//! runner per container. An optional dependency (`required: false`) that
//! fails is reported and skipped; a required one blocks the service.

use std::sync::Arc;

use rstack_compose::Project;
use rstack_compose::model::DependencyCondition;
use rstack_compose::plan::Wait;

use super::conditions::{self, Dependency, Replica, Verdict};
use super::hub::{Hub, Inner, Shared};
use super::plan::replica_count;
use crate::health::Check;

/// Waits for a service's dependencies, then launches its containers.
pub(super) fn starter(inner: Arc<Inner>, svc: String, no_deps: bool) {
    let waits = if no_deps {
        Vec::new()
    } else {
        inner.plan.waits.get(&svc).cloned().unwrap_or_default()
    };
    match await_dependencies(&inner, &svc, &waits) {
        Ok(true) => {}
        Ok(false) => return,
        Err(reason) => {
            block(&inner, &svc, reason);
            return;
        }
    }
    let names: Vec<String> = {
        let mut hub = inner.hub();
        if hub.shutting {
            return;
        }
        let names: Vec<String> = hub
            .ctrs
            .values_mut()
            .filter(|l| l.rec.service == svc && !l.active && !l.running())
            .map(|l| {
                l.active = true;
                l.rec.name.clone()
            })
            .collect();
        hub.launched.insert(svc, true);
        names
    };
    for name in names {
        super::runner::spawn(&inner, name, None);
    }
    inner.notify();
}

/// Waits until each of `waits` holds (an optional dependency that cannot
/// is reported and skipped). `Ok(false)`: the project is shutting down;
/// `Err`: why a required dependency can never hold.
pub(super) fn await_dependencies(inner: &Inner, svc: &str, waits: &[Wait]) -> Result<bool, String> {
    wait_for(
        &inner.shared,
        &inner.project,
        &|m| inner.warn(m),
        svc,
        waits,
    )
}

/// [`await_dependencies`] on the hub alone.
fn wait_for(
    shared: &Shared,
    project: &Project,
    warn: &dyn Fn(String),
    svc: &str,
    waits: &[Wait],
) -> Result<bool, String> {
    for w in waits {
        if !project.services.contains_key(&w.dependency) {
            if w.required {
                return Err(format!(
                    "service {svc} depends on undefined service {}",
                    w.dependency
                ));
            }
            continue;
        }
        let mut hub = shared.lock();
        loop {
            if hub.shutting {
                return Ok(false);
            }
            match condition(&hub, project, &w.dependency, w.condition) {
                Verdict::Met => break,
                Verdict::Failed(reason) => {
                    drop(hub);
                    if w.required {
                        return Err(reason);
                    }
                    warn(reason);
                    break;
                }
                Verdict::Pending => hub = shared.wait(hub),
            }
        }
    }
    Ok(true)
}

/// Whether dependency `dep` meets `cond` in the hub's current state.
fn condition(hub: &Hub, project: &Project, dep: &str, cond: DependencyCondition) -> Verdict {
    let svc = project.services.get(dep);
    let has_healthcheck = svc
        .and_then(|s| {
            Check::of_service(dep, s.healthcheck.as_ref())
                .ok()
                .flatten()
        })
        .is_some();
    let replicas = hub
        .ctrs
        .values()
        .filter(|l| l.rec.service == dep)
        .map(|l| Replica {
            rec: &l.rec,
            running: l.running(),
            active: l.active,
            failed: l.failed.as_deref(),
        })
        .collect();
    let view = Dependency {
        name: dep,
        wanted: svc.map_or(0, replica_count),
        blocked: hub.blocked.get(dep).map(String::as_str),
        launched: hub.launched.get(dep).copied().unwrap_or(false),
        has_healthcheck,
        replicas,
    };
    conditions::verdict(&view, cond)
}

/// Records that a service will not start (and why); dependants see it.
fn block(inner: &Inner, svc: &str, reason: String) {
    inner.warn(reason.clone());
    let mut hub = inner.hub();
    hub.blocked.insert(svc.to_owned(), reason);
    hub.launched.insert(svc.to_owned(), true);
    drop(hub);
    inner.notify();
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rstack_compose::model::{Healthcheck, Service};

    use super::*;
    use crate::state::{ContainerRecord, Health, HealthRecord, Status};

    /// `db` with a healthcheck, one container running and `starting`.
    fn setup() -> (Arc<Shared>, Project) {
        let mut project = Project::default();
        let db = Service {
            healthcheck: Some(Healthcheck {
                test: vec!["CMD".into(), "true".into()],
                ..Healthcheck::default()
            }),
            ..Service::default()
        };
        project.services.insert("db".into(), db);
        let shared = Arc::new(Shared::default());
        let mut rec = ContainerRecord::new("p-db-1", "db", 1);
        rec.status = Status::Running;
        rec.health = Some(HealthRecord {
            status: Health::Starting,
            failing_streak: 0,
            log: Vec::new(),
        });
        let mut hub = shared.lock();
        hub.launched.insert("db".into(), true);
        let mut live = super::super::hub::Live::of(rec);
        live.active = true;
        hub.ctrs.insert(live.rec.name.clone(), live);
        drop(hub);
        (shared, project)
    }

    fn healthy_db() -> Vec<Wait> {
        vec![Wait {
            dependency: "db".into(),
            condition: DependencyCondition::Healthy,
            required: true,
            restart: true,
        }]
    }

    /// Waits for `db` healthy on another thread (as a `restart` does).
    fn waiter(
        shared: &Arc<Shared>,
        project: &Project,
    ) -> std::thread::JoinHandle<Result<bool, String>> {
        let (shared, project) = (shared.clone(), project.clone());
        std::thread::spawn(move || wait_for(&shared, &project, &|_| {}, "web", &healthy_db()))
    }

    #[test]
    fn a_shutdown_ends_a_pending_wait_at_once() {
        let (shared, project) = setup();
        let w = waiter(&shared, &project);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!w.is_finished(), "db is not healthy yet");
        let t = Instant::now();
        shared.begin_shutdown();
        assert_eq!(w.join().unwrap(), Ok(false));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }

    #[test]
    fn a_wait_ends_when_the_dependency_becomes_healthy() {
        let (shared, project) = setup();
        let w = waiter(&shared, &project);
        std::thread::sleep(Duration::from_millis(20));
        let mut hub = shared.lock();
        let db = hub.ctrs.get_mut("p-db-1").unwrap();
        db.rec.health.as_mut().unwrap().status = Health::Healthy;
        drop(hub);
        shared.notify();
        assert_eq!(w.join().unwrap(), Ok(true));
    }

    #[test]
    fn undefined_and_optional_dependencies() {
        let (shared, project) = setup();
        let mut waits = healthy_db();
        waits[0].dependency = "nope".into();
        let r = wait_for(&shared, &project, &|_| {}, "web", &waits);
        assert_eq!(
            r,
            Err("service web depends on undefined service nope".into())
        );
        waits[0].required = false;
        assert_eq!(
            wait_for(&shared, &project, &|_| {}, "web", &waits),
            Ok(true)
        );
        // an optional dependency that failed is reported and skipped
        shared
            .lock()
            .blocked
            .insert("db".into(), "db failed".into());
        let warned = std::sync::Mutex::new(Vec::new());
        let mut waits = healthy_db();
        waits[0].required = false;
        let warn = |m: String| warned.lock().unwrap().push(m);
        assert_eq!(wait_for(&shared, &project, &warn, "web", &waits), Ok(true));
        assert_eq!(*warned.lock().unwrap(), ["db failed"]);
    }
}
