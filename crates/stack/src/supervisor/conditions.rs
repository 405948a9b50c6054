//! `depends_on` conditions, decided from the dependency's state alone:
//! `service_started` (every container created and started — or already
//! exited), `service_healthy` (every container running and healthy; a
//! dependency without a healthcheck can never be), and
//! `service_completed_successfully` (every container exited 0). A
//! dependency scaled to 0 is not waited for, as with docker compose.
//! `required: false` is the caller's business: a failed optional
//! dependency is reported and skipped.

use rstack_compose::model::DependencyCondition;

use crate::state::{ContainerRecord, Health, Status};

/// Where a dependency stands with respect to a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Not yet: wait for the next state change.
    Pending,
    Met,
    /// It can never be met (why, as docker compose words it).
    Failed(String),
}

/// One container of the dependency.
#[derive(Debug, Clone, Copy)]
pub(super) struct Replica<'a> {
    pub(super) rec: &'a ContainerRecord,
    /// Its process runs (created or adopted, not yet exited).
    pub(super) running: bool,
    /// A runner looks after it (it may be created or restarted).
    pub(super) active: bool,
    /// Why it could not be created or started.
    pub(super) failed: Option<&'a str>,
}

/// What a dependant sees of one dependency.
#[derive(Debug, Clone)]
pub(super) struct Dependency<'a> {
    pub(super) name: &'a str,
    /// Containers the project wants of it (`scale`, `deploy.replicas`).
    pub(super) wanted: u32,
    /// Its own starter gave up (its dependencies failed), and why.
    pub(super) blocked: Option<&'a str>,
    /// Its starter has launched its containers.
    pub(super) launched: bool,
    pub(super) has_healthcheck: bool,
    pub(super) replicas: Vec<Replica<'a>>,
}

/// Whether `dep` meets `cond`.
pub(super) fn verdict(dep: &Dependency<'_>, cond: DependencyCondition) -> Verdict {
    if dep.wanted == 0 {
        // compose: "don't wait for the dependency which configured to
        // have 0 containers running"
        return Verdict::Met;
    }
    if let Some(reason) = dep.blocked {
        return Verdict::Failed(reason.to_owned());
    }
    // adopted containers of a service not selected count as launched
    if dep.replicas.is_empty() || (!dep.launched && dep.replicas.iter().any(|r| !r.running)) {
        return Verdict::Pending;
    }
    for r in &dep.replicas {
        if let Some(f) = r.failed {
            return Verdict::Failed(format!("dependency failed to start: {f}"));
        }
        let v = match cond {
            DependencyCondition::Started => started(r),
            DependencyCondition::Healthy => healthy(r, dep.has_healthcheck),
            DependencyCondition::CompletedSuccessfully => completed(r, dep.name),
        };
        if v != Verdict::Met {
            return v;
        }
    }
    Verdict::Met
}

fn started(r: &Replica<'_>) -> Verdict {
    match r.rec.status {
        Status::Running | Status::Exited | Status::Restarting => Verdict::Met,
        _ => Verdict::Pending,
    }
}

fn healthy(r: &Replica<'_>, has_healthcheck: bool) -> Verdict {
    let rec = r.rec;
    if !has_healthcheck {
        return Verdict::Failed(format!(
            "dependency failed to start: container {} has no healthcheck configured",
            rec.name
        ));
    }
    match rec.health.as_ref().map(|h| h.status) {
        Some(Health::Healthy) if rec.status == Status::Running => Verdict::Met,
        Some(Health::Unhealthy) => Verdict::Failed(format!(
            "dependency failed to start: container {} is unhealthy",
            rec.name
        )),
        _ if rec.status == Status::Exited && !r.running && !r.active => Verdict::Failed(format!(
            "dependency failed to start: container {} exited ({})",
            rec.name,
            code_text(rec.exit_code)
        )),
        _ => Verdict::Pending,
    }
}

fn completed(r: &Replica<'_>, service: &str) -> Verdict {
    if r.rec.status != Status::Exited || r.running {
        return Verdict::Pending;
    }
    if r.rec.exit_code != Some(0) {
        return Verdict::Failed(format!(
            "service {service} didn't complete successfully: exit {}",
            code_text(r.rec.exit_code)
        ));
    }
    Verdict::Met
}

fn code_text(code: Option<i32>) -> String {
    code.map_or("unknown".into(), |c| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::HealthRecord;
    use DependencyCondition::{CompletedSuccessfully, Healthy, Started};

    fn rec(status: Status, health: Option<Health>, code: Option<i32>) -> ContainerRecord {
        let mut r = ContainerRecord::new("p-db-1", "db", 1);
        r.status = status;
        r.exit_code = code;
        r.health = health.map(|status| HealthRecord {
            status,
            failing_streak: 0,
            log: Vec::new(),
        });
        r
    }

    fn replica(rec: &ContainerRecord) -> Replica<'_> {
        Replica {
            rec,
            running: rec.status == Status::Running,
            active: rec.status != Status::Exited,
            failed: None,
        }
    }

    fn dep<'a>(replicas: Vec<Replica<'a>>) -> Dependency<'a> {
        Dependency {
            name: "db",
            wanted: replicas.len() as u32,
            blocked: None,
            launched: true,
            has_healthcheck: true,
            replicas,
        }
    }

    #[test]
    fn started_waits_for_every_replica() {
        let up = rec(Status::Running, None, None);
        let creating = rec(Status::Creating, None, None);
        let exited = rec(Status::Exited, None, Some(1));
        assert_eq!(verdict(&dep(vec![replica(&up)]), Started), Verdict::Met);
        // an exited container was started: service_started holds
        assert_eq!(verdict(&dep(vec![replica(&exited)]), Started), Verdict::Met);
        let both = dep(vec![replica(&up), replica(&creating)]);
        assert_eq!(verdict(&both, Started), Verdict::Pending);
    }

    #[test]
    fn nothing_launched_yet_is_pending() {
        let creating = rec(Status::Creating, None, None);
        let mut d = dep(vec![replica(&creating)]);
        d.launched = false;
        assert_eq!(verdict(&d, Started), Verdict::Pending);
        // no container at all (yet)
        let mut d = dep(vec![]);
        d.wanted = 1;
        assert_eq!(verdict(&d, Started), Verdict::Pending);
        // adopted and running, its service not selected: counts as launched
        let up = rec(Status::Running, None, None);
        let mut d = dep(vec![replica(&up)]);
        d.launched = false;
        assert_eq!(verdict(&d, Started), Verdict::Met);
    }

    #[test]
    fn healthy_needs_a_check_and_a_healthy_running_container() {
        let starting = rec(Status::Running, Some(Health::Starting), None);
        let healthy = rec(Status::Running, Some(Health::Healthy), None);
        let sick = rec(Status::Running, Some(Health::Unhealthy), None);
        assert_eq!(
            verdict(&dep(vec![replica(&starting)]), Healthy),
            Verdict::Pending
        );
        assert_eq!(
            verdict(&dep(vec![replica(&healthy)]), Healthy),
            Verdict::Met
        );
        let Verdict::Failed(why) = verdict(&dep(vec![replica(&sick)]), Healthy) else {
            panic!("unhealthy must fail")
        };
        assert!(why.contains("is unhealthy"), "{why}");
        let mut no_check = dep(vec![replica(&healthy)]);
        no_check.has_healthcheck = false;
        let Verdict::Failed(why) = verdict(&no_check, Healthy) else {
            panic!("no healthcheck must fail")
        };
        assert!(why.contains("no healthcheck configured"), "{why}");
    }

    #[test]
    fn healthy_fails_once_the_container_exited_for_good() {
        let gone = rec(Status::Exited, Some(Health::Starting), Some(2));
        let r = replica(&gone);
        let Verdict::Failed(why) = verdict(&dep(vec![r]), Healthy) else {
            panic!("an exited dependency must fail")
        };
        assert!(why.contains("exited (2)"), "{why}");
        // its runner may still restart it: wait
        let restarting = Replica { active: true, ..r };
        assert_eq!(verdict(&dep(vec![restarting]), Healthy), Verdict::Pending);
    }

    #[test]
    fn completed_successfully_needs_exit_zero() {
        let running = rec(Status::Running, None, None);
        let ok = rec(Status::Exited, None, Some(0));
        let bad = rec(Status::Exited, None, Some(3));
        assert_eq!(
            verdict(&dep(vec![replica(&running)]), CompletedSuccessfully),
            Verdict::Pending
        );
        assert_eq!(
            verdict(&dep(vec![replica(&ok)]), CompletedSuccessfully),
            Verdict::Met
        );
        assert_eq!(
            verdict(&dep(vec![replica(&bad)]), CompletedSuccessfully),
            Verdict::Failed("service db didn't complete successfully: exit 3".into())
        );
    }

    #[test]
    fn failures_and_blocked_dependencies_fail() {
        let creating = rec(Status::Exited, None, Some(125));
        let failed = Replica {
            failed: Some("container p-db-1: no such image"),
            ..replica(&creating)
        };
        assert_eq!(
            verdict(&dep(vec![failed]), Started),
            Verdict::Failed("dependency failed to start: container p-db-1: no such image".into())
        );
        let mut blocked = dep(vec![]);
        blocked.wanted = 1;
        blocked.blocked = Some("service db depends on undefined service x");
        assert_eq!(
            verdict(&blocked, Healthy),
            Verdict::Failed("service db depends on undefined service x".into())
        );
    }

    #[test]
    fn scaled_to_zero_is_not_waited_for() {
        let mut d = dep(vec![]);
        d.has_healthcheck = false;
        for cond in [Started, Healthy, CompletedSuccessfully] {
            assert_eq!(verdict(&d, cond), Verdict::Met, "{cond:?}");
        }
    }
}
