//! The reconcile plan, decided from the recorded containers and the
//! project alone: which containers a service wants (`scale` /
//! `deploy.replicas`, none for 0, as docker compose), and what to do with
//! each container found when a supervisor starts — adopt it (running, its
//! config unchanged), leave it stopped, create it again, remove it (a
//! replica beyond the scale, an orphan with `--remove-orphans`) — and which
//! wanted containers are new. [`super::reconcile`] carries the plan out.

use std::collections::BTreeMap;

use rstack_compose::Project;
use rstack_compose::model::Service;

use super::UpOptions;
use crate::state::{ContainerRecord, Status};

/// How many containers a service wants: `scale`, else `deploy.replicas`,
/// else 1; 0 (or less) is none at all.
pub(crate) fn replica_count(svc: &Service) -> u32 {
    svc.replicas().clamp(0, i64::from(u32::MAX)) as u32
}

/// The numbers of a service's containers (`1..=replicas`, empty for 0).
pub fn replica_numbers(svc: &Service) -> std::ops::RangeInclusive<u32> {
    1..=replica_count(svc)
}

/// What becomes of a container found in the state dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Choice {
    /// A one-off container: `rstack run` owns it.
    Skip,
    /// Running and still what the project wants (or not asked for, or
    /// `--no-recreate`): its runner takes it over.
    Adopt,
    /// Not running and its service not asked for: left stopped, still
    /// known (a user stop is remembered, whatever the restart policy).
    KeepStopped,
    /// Wanted and asked for, but not running or changed: created again,
    /// after stopping it when it runs. `fresh`: a new container (new
    /// writable layer); otherwise docker's same container started again.
    Recreate { stop: bool, fresh: bool },
    /// A replica beyond its service's scale, an orphan with
    /// `--remove-orphans`, or a dead orphan: stopped when it runs, removed.
    Remove { stop: bool },
    /// A running orphan without `--remove-orphans`: left alone, warned of.
    WarnOrphan,
}

/// What the choices depend on besides the container itself.
#[derive(Debug, Clone, Copy)]
pub(super) struct Context<'a> {
    pub(super) project: &'a Project,
    pub(super) opts: &'a UpOptions,
    /// The services `up` starts.
    pub(super) selected: &'a [String],
    /// Selected services restarted along with a recreated dependency
    /// (see [`restarted_dependants`]).
    pub(super) restart_too: &'a [String],
}

/// The re-adoption choice for `old` (found running when `live`), given
/// the container the project wants under its name, if any.
pub(super) fn choose(
    old: &ContainerRecord,
    live: bool,
    wanted: Option<&ContainerRecord>,
    cx: &Context<'_>,
) -> Choice {
    if old.oneoff {
        return Choice::Skip;
    }
    let selected = cx.selected.contains(&old.service);
    let Some(new) = wanted else {
        let surplus = cx.project.services.contains_key(&old.service);
        return if surplus || cx.opts.remove_orphans || !live {
            Choice::Remove { stop: live }
        } else {
            Choice::WarnOrphan
        };
    };
    if !selected && !live {
        return Choice::KeepStopped;
    }
    let changed = cx.opts.force_recreate || old.config_hash != new.config_hash;
    let keep = live
        && (!selected
            || cx.opts.no_recreate
            || (!changed && !cx.restart_too.contains(&old.service)));
    if keep {
        Choice::Adopt
    } else {
        // `--no-recreate`: a stopped container is started as it is
        // (docker compose's RecreateNever), never made anew
        Choice::Recreate {
            stop: live,
            fresh: changed && !cx.opts.no_recreate,
        }
    }
}

/// The whole plan: a choice per found container (in `found`'s order) and
/// the wanted containers of selected services that were never recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) choices: Vec<Choice>,
    pub(super) create: Vec<String>,
}

/// Plans a supervisor's start: `found` are the records with whether each
/// still runs, `wanted` the containers the project wants, by name.
pub(super) fn plan(
    found: &[(&ContainerRecord, bool)],
    wanted: &BTreeMap<String, ContainerRecord>,
    cx: &Context<'_>,
) -> Plan {
    let choices = found
        .iter()
        .map(|(rec, live)| choose(rec, *live, wanted.get(&rec.name), cx))
        .collect();
    let recorded = |name: &str| found.iter().any(|(r, _)| !r.oneoff && r.name == name);
    let create = wanted
        .values()
        .filter(|w| cx.selected.contains(&w.service) && !recorded(&w.name))
        .map(|w| w.name.clone())
        .collect();
    Plan { choices, create }
}

/// Selected services that `up` restarts although their own config is
/// unchanged: those declaring `depends_on: {S: {restart: true}}` on a
/// service S that is being recreated (docker compose restarts them after
/// updating S; here that means creating them afresh).
pub(super) fn restarted_dependants(
    project: &Project,
    opts: &UpOptions,
    selected: &[String],
    records: &[ContainerRecord],
    wanted: &BTreeMap<String, ContainerRecord>,
) -> Vec<String> {
    if opts.no_recreate {
        return Vec::new();
    }
    let mut changed: Vec<String> = Vec::new();
    for old in records
        .iter()
        .filter(|r| !r.oneoff && r.status == Status::Running)
    {
        let Some(new) = wanted.get(&old.name) else {
            continue;
        };
        let recreated = opts.force_recreate || old.config_hash != new.config_hash;
        if recreated && selected.contains(&old.service) && !changed.contains(&old.service) {
            changed.push(old.service.clone());
        }
    }
    if changed.is_empty() {
        return Vec::new();
    }
    project
        .with_restart_dependents(&changed)
        .into_iter()
        .filter(|s| !changed.contains(s) && selected.contains(s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstack_compose::model::{Dependency, Deploy};

    fn project(services: &[(&str, Option<i64>)]) -> Project {
        let mut p = Project {
            name: "p".into(),
            ..Project::default()
        };
        for (name, scale) in services {
            let svc = Service {
                scale: *scale,
                ..Service::default()
            };
            p.services.insert((*name).into(), svc);
        }
        p
    }

    fn rec(name: &str, service: &str, hash: &str, status: Status) -> ContainerRecord {
        let mut r = ContainerRecord::new(name, service, 1);
        r.config_hash = hash.into();
        r.status = status;
        r
    }

    /// What the project wants, all with config hash `h1`.
    fn wanted(p: &Project) -> BTreeMap<String, ContainerRecord> {
        let mut w = BTreeMap::new();
        for (name, svc) in &p.services {
            for n in replica_numbers(svc) {
                let cname = p.container_name(name, n);
                w.insert(cname.clone(), rec(&cname, name, "h1", Status::Creating));
            }
        }
        w
    }

    fn all(p: &Project) -> Vec<String> {
        p.services.keys().cloned().collect()
    }

    #[test]
    fn replicas_follow_scale_and_zero_means_none() {
        let mut svc = Service::default();
        assert_eq!(replica_numbers(&svc).collect::<Vec<_>>(), [1]);
        svc.deploy = Some(Deploy {
            replicas: Some(0),
            ..Deploy::default()
        });
        assert_eq!(replica_numbers(&svc).count(), 0);
        svc.scale = Some(3);
        assert_eq!(replica_numbers(&svc).collect::<Vec<_>>(), [1, 2, 3]);
        svc.scale = Some(0);
        assert_eq!(replica_numbers(&svc).count(), 0);
        svc.scale = Some(-1);
        assert_eq!(replica_count(&svc), 0);
    }

    #[test]
    fn scale_zero_starts_nothing_and_removes_what_runs() {
        let p = project(&[("web", Some(0)), ("db", None)]);
        let w = wanted(&p);
        assert!(w.keys().all(|n| !n.contains("web")), "{w:?}");
        let opts = UpOptions::default();
        let selected = all(&p);
        let cx = Context {
            project: &p,
            opts: &opts,
            selected: &selected,
            restart_too: &[],
        };
        let web1 = rec("p-web-1", "web", "h1", Status::Running);
        let plan = plan(&[(&web1, true)], &w, &cx);
        assert_eq!(plan.choices, [Choice::Remove { stop: true }]);
        assert_eq!(plan.create, ["p-db-1"]);
    }

    #[test]
    fn scaling_up_adopts_and_creates_scaling_down_removes() {
        let p = project(&[("web", Some(2))]);
        let opts = UpOptions::default();
        let selected = all(&p);
        let cx = Context {
            project: &p,
            opts: &opts,
            selected: &selected,
            restart_too: &[],
        };
        let web1 = rec("p-web-1", "web", "h1", Status::Running);
        let up = plan(&[(&web1, true)], &wanted(&p), &cx);
        assert_eq!(up.choices, [Choice::Adopt]);
        assert_eq!(up.create, ["p-web-2"]);

        let p1 = project(&[("web", Some(1))]);
        let cx1 = Context { project: &p1, ..cx };
        let web2 = rec("p-web-2", "web", "h1", Status::Running);
        let down = plan(&[(&web1, true), (&web2, true)], &wanted(&p1), &cx1);
        assert_eq!(down.choices, [Choice::Adopt, Choice::Remove { stop: true }]);
        assert!(down.create.is_empty());
    }

    #[test]
    fn readoption_choices() {
        let p = project(&[("web", None), ("db", None)]);
        let w = wanted(&p);
        let opts = UpOptions::default();
        let web = ["web".to_owned()];
        let cx = Context {
            project: &p,
            opts: &opts,
            selected: &web,
            restart_too: &[],
        };
        let same = rec("p-web-1", "web", "h1", Status::Running);
        let changed = rec("p-web-1", "web", "h0", Status::Running);
        let exited = rec("p-web-1", "web", "h1", Status::Exited);
        // running, unchanged: adopted; gone meanwhile: created again, same container
        assert_eq!(choose(&same, true, w.get("p-web-1"), &cx), Choice::Adopt);
        assert_eq!(
            choose(&same, false, w.get("p-web-1"), &cx),
            Choice::Recreate {
                stop: false,
                fresh: false
            }
        );
        assert_eq!(
            choose(&exited, false, w.get("p-web-1"), &cx),
            Choice::Recreate {
                stop: false,
                fresh: false
            }
        );
        // changed config: a new container, the old one stopped first
        assert_eq!(
            choose(&changed, true, w.get("p-web-1"), &cx),
            Choice::Recreate {
                stop: true,
                fresh: true
            }
        );
        // a service `up` does not name: running ones adopted as they are,
        // stopped ones (a user stop included) stay stopped
        let mut db = rec("p-db-1", "db", "h0", Status::Exited);
        db.user_stopped = true;
        assert_eq!(
            choose(&db, false, w.get("p-db-1"), &cx),
            Choice::KeepStopped
        );
        assert_eq!(choose(&db, true, w.get("p-db-1"), &cx), Choice::Adopt);
        // one-off containers belong to `rstack run`
        let mut run = rec("p-web-run-1a2b", "web", "h1", Status::Running);
        run.oneoff = true;
        assert_eq!(choose(&run, true, None, &cx), Choice::Skip);
    }

    #[test]
    fn recreate_flags() {
        let p = project(&[("web", None)]);
        let w = wanted(&p);
        let web = ["web".to_owned()];
        let same = rec("p-web-1", "web", "h1", Status::Running);
        let changed = rec("p-web-1", "web", "h0", Status::Running);
        let force = UpOptions {
            force_recreate: true,
            ..UpOptions::default()
        };
        let cx = Context {
            project: &p,
            opts: &force,
            selected: &web,
            restart_too: &[],
        };
        assert_eq!(
            choose(&same, true, w.get("p-web-1"), &cx),
            Choice::Recreate {
                stop: true,
                fresh: true
            }
        );
        let keep = UpOptions {
            no_recreate: true,
            ..UpOptions::default()
        };
        let cx = Context { opts: &keep, ..cx };
        assert_eq!(choose(&changed, true, w.get("p-web-1"), &cx), Choice::Adopt);
        // stopped and changed: started as it is (compose's RecreateNever)
        let stopped = rec("p-web-1", "web", "h0", Status::Created);
        assert_eq!(
            choose(&stopped, false, w.get("p-web-1"), &cx),
            Choice::Recreate {
                stop: false,
                fresh: false
            }
        );
        // restarted with a recreated dependency: same container, stopped first
        let plain = UpOptions::default();
        let cx = Context {
            opts: &plain,
            restart_too: &web,
            ..cx
        };
        assert_eq!(
            choose(&same, true, w.get("p-web-1"), &cx),
            Choice::Recreate {
                stop: true,
                fresh: false
            }
        );
    }

    #[test]
    fn orphans() {
        let p = project(&[("web", None)]);
        let opts = UpOptions::default();
        let web = ["web".to_owned()];
        let cx = Context {
            project: &p,
            opts: &opts,
            selected: &web,
            restart_too: &[],
        };
        let old = rec("p-old-1", "old", "h1", Status::Running);
        assert_eq!(choose(&old, true, None, &cx), Choice::WarnOrphan);
        assert_eq!(
            choose(&old, false, None, &cx),
            Choice::Remove { stop: false }
        );
        let rm = UpOptions {
            remove_orphans: true,
            ..UpOptions::default()
        };
        let cx = Context { opts: &rm, ..cx };
        assert_eq!(choose(&old, true, None, &cx), Choice::Remove { stop: true });
    }

    #[test]
    fn dependants_with_restart_true_follow_a_recreated_dependency() {
        let mut p = project(&[("db", None), ("web", None), ("cache", None)]);
        p.services["web"].depends_on.insert(
            "db".into(),
            Dependency {
                restart: Some(true),
                ..Dependency::default()
            },
        );
        p.services["cache"]
            .depends_on
            .insert("db".into(), Dependency::default());
        let w = wanted(&p);
        let selected = all(&p);
        let opts = UpOptions::default();
        let db_changed = rec("p-db-1", "db", "h0", Status::Running);
        let web = rec("p-web-1", "web", "h1", Status::Running);
        let records = [db_changed.clone(), web.clone()];
        assert_eq!(
            restarted_dependants(&p, &opts, &selected, &records, &w),
            ["web"]
        );
        let db_same = rec("p-db-1", "db", "h1", Status::Running);
        let records = [db_same, web];
        assert!(restarted_dependants(&p, &opts, &selected, &records, &w).is_empty());
        let keep = UpOptions {
            no_recreate: true,
            ..UpOptions::default()
        };
        let records = [db_changed];
        assert!(restarted_dependants(&p, &keep, &selected, &records, &w).is_empty());
    }
}
