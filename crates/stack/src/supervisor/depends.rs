//! Starting services in dependency order: one starter thread per service
//! waits on the hub's condition variable until each of its `depends_on`
//! conditions holds (decided by [`super::conditions`]), then launches a
//! runner per container. An optional dependency (`required: false`) that
//! fails is reported and skipped; a required one blocks the service.

use std::sync::Arc;

use rstack_compose::model::DependencyCondition;
use rstack_compose::plan::Wait;

use super::conditions::{self, Dependency, Replica, Verdict};
use super::hub::{Hub, Inner};
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
    inner.cv.notify_all();
}

/// Waits until each of `waits` holds (an optional dependency that cannot
/// is reported and skipped). `Ok(false)`: the project is shutting down;
/// `Err`: why a required dependency can never hold.
pub(super) fn await_dependencies(inner: &Inner, svc: &str, waits: &[Wait]) -> Result<bool, String> {
    for w in waits {
        if !inner.project.services.contains_key(&w.dependency) {
            if w.required {
                return Err(format!(
                    "service {svc} depends on undefined service {}",
                    w.dependency
                ));
            }
            continue;
        }
        let mut hub = inner.hub();
        loop {
            if hub.shutting {
                return Ok(false);
            }
            match condition(&hub, inner, &w.dependency, w.condition) {
                Verdict::Met => break,
                Verdict::Failed(reason) => {
                    drop(hub);
                    if w.required {
                        return Err(reason);
                    }
                    inner.warn(reason);
                    break;
                }
                Verdict::Pending => hub = inner.wait(hub),
            }
        }
    }
    Ok(true)
}

/// Whether dependency `dep` meets `cond` in the hub's current state.
fn condition(hub: &Hub, inner: &Inner, dep: &str, cond: DependencyCondition) -> Verdict {
    let svc = inner.project.services.get(dep);
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
    inner.cv.notify_all();
}
