//! The services a supervisor supervises beyond the files of the `up` that
//! started it. A project brought up with `-f a.yaml` and then `-f b.yaml`
//! has containers of a.yaml's services still running; docker compose
//! leaves them running (an orphan warning) and still acts on them when a
//! later command names a.yaml. So the supervisor keeps their model (saved
//! in the project's resources) and supervises them as it did, without
//! starting or recreating them; `--remove-orphans` removes them instead.
//!
//! Containers whose names collide (two services with the same
//! `container_name`) are refused here too, as Docker refuses the second
//! container of a name: before anything is created.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use rstack_compose::Project;
use rstack_compose::model::Service;

use crate::state::{ContainerRecord, ProjectPaths};

/// Services of `known` (an earlier model) that `project` does not declare
/// but that still have a recorded container (one-off `run`s aside).
pub fn foreign_services(
    project: &Project,
    known: &IndexMap<String, Service>,
    records: &[ContainerRecord],
) -> Vec<String> {
    known
        .keys()
        .filter(|s| !project.services.contains_key(*s))
        .filter(|s| records.iter().any(|r| !r.oneoff && &r.service == *s))
        .cloned()
        .collect()
}

/// Adds the services of the last model that `project` lacks but whose
/// containers are still there; returns their names.
pub fn keep_foreign_services(
    project: &mut Project,
    pp: &ProjectPaths,
) -> Result<Vec<String>, crate::state::Error> {
    let known = pp.resources()?.services;
    let foreign = foreign_services(project, &known, &pp.containers()?);
    for s in &foreign {
        project.services.insert(s.clone(), known[s].clone());
    }
    Ok(foreign)
}

/// The services `up` starts: those named (with their dependencies unless
/// `no_deps`), else every service but the `foreign` ones.
pub fn selected(
    project: &Project,
    named: &[String],
    no_deps: bool,
    foreign: &[String],
) -> Result<Vec<String>, rstack_compose::plan::Error> {
    let plan = project.plan()?;
    Ok(if named.is_empty() {
        let mut all = plan.start_order();
        all.retain(|s| !foreign.contains(s));
        all
    } else if no_deps {
        named.to_vec()
    } else {
        plan.with_dependencies(named)
    })
}

/// The (container name, service) pairs `project` wants, in model order.
pub fn wanted_names(project: &Project) -> Vec<(String, String)> {
    project
        .services
        .iter()
        .flat_map(|(s, svc)| {
            super::plan::replica_numbers(svc)
                .map(move |n| (project.container_name(s, n), s.clone()))
        })
        .collect()
}

/// Two containers that want one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub name: String,
    /// What holds the name: a container id, or the other service.
    pub holder: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Conflict. The container name \"/{}\" is already in use by {}. You have to remove (or rename) that container to be able to reuse that name.",
            self.name, self.holder
        )
    }
}

/// The first name conflict of `up`: a name a selected service wants that
/// a recorded container of another service holds, or that two selected
/// services want. `wanted` lists every (name, service) pair the model
/// wants, in model order.
pub fn name_conflict(
    wanted: &[(String, String)],
    records: &[ContainerRecord],
    selected: &[String],
) -> Option<Conflict> {
    let mut by_name: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, service) in wanted.iter().filter(|(_, s)| selected.contains(s)) {
        if let Some(other) = by_name.insert(name, service)
            && other != service
        {
            return Some(Conflict {
                name: name.clone(),
                holder: format!("the container of service {other:?}"),
            });
        }
        if let Some(r) = records
            .iter()
            .find(|r| !r.oneoff && &r.name == name && &r.service != service)
        {
            return Some(Conflict {
                name: name.clone(),
                holder: format!(
                    "container \"{}\" of service {:?}",
                    r.id.as_deref().unwrap_or(&r.name),
                    r.service
                ),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(services: &[&str]) -> Project {
        let mut p = Project::default();
        for s in services {
            p.services.insert((*s).into(), Service::default());
        }
        p
    }

    fn rec(name: &str, service: &str) -> ContainerRecord {
        ContainerRecord::new(name, service, 1)
    }

    #[test]
    fn services_of_the_last_model_with_containers_are_kept() {
        let p = project(&["other"]);
        let known: IndexMap<String, Service> = ["simple", "another", "gone", "other"]
            .iter()
            .map(|s| ((*s).into(), Service::default()))
            .collect();
        let mut oneoff = rec("p-gone-run-1", "gone");
        oneoff.oneoff = true;
        let records = [
            rec("p-simple-1", "simple"),
            rec("p-another-1", "another"),
            oneoff,
        ];
        assert_eq!(
            foreign_services(&p, &known, &records),
            ["simple", "another"]
        );
    }

    #[test]
    fn a_shared_container_name_conflicts_only_when_both_would_exist() {
        let wanted = vec![
            ("cc".to_owned(), "a".to_owned()),
            ("cc".to_owned(), "b".to_owned()),
        ];
        let sel = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(name_conflict(&wanted, &[], &sel(&["a"])), None);
        let both = name_conflict(&wanted, &[], &sel(&["a", "b"])).unwrap();
        assert!(
            both.to_string()
                .contains("\"/cc\" is already in use by the container of service \"a\"")
        );
        let mut held = rec("cc", "a");
        held.id = Some("abc123".into());
        let c = name_conflict(&wanted, &[held.clone()], &sel(&["b"])).unwrap();
        assert!(
            c.to_string()
                .contains("container \"abc123\" of service \"a\""),
            "{c}"
        );
        // its own service's container is no conflict
        assert_eq!(name_conflict(&wanted, &[held], &sel(&["a"])), None);
    }
}
