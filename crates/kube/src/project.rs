//! The whole project: Kubernetes names for the services, which services
//! are Jobs, every service mapped, then the objects they share (Secrets
//! and ConfigMaps of top-level secrets and configs, claims, policies, the
//! Job waiter's RBAC), the report of the top-level objects, and the
//! objects in apply order, each (kind, name) once.

use indexmap::IndexMap;
use rstack_compose::Project;
use rstack_compose::model::{DependencyCondition, FileObject};
use serde::Serialize;

use crate::extension::{self, is_storage_quantity};
use crate::files::Shared;
use crate::names;
use crate::objects::{KIND_ORDER, Object, Scope};
use crate::report::{Entry, Keys};
use crate::storage::{self, Claims};
use crate::waits::{self, Peers};
use crate::workload::{self, Cx};
use crate::{Error, HostFiles, ImageFacts, Options, Output, policies};

/// See [`crate::generate`].
pub fn generate(
    project: &Project,
    opts: &Options,
    facts: &IndexMap<String, ImageFacts>,
    files: &dyn HostFiles,
) -> Result<Output, Error> {
    check_options(opts)?;
    let scope = Scope::new(&project.name, opts.namespace.as_deref());
    let peers = peers(project, facts)?;
    let cx = Cx {
        project,
        opts,
        facts,
        files,
        scope: &scope,
        peers: &peers,
    };
    let mut objects = vec![scope.namespace_object()];
    let mut report = Vec::new();
    let (mut shared, mut claims) = (Shared::default(), Claims::default());
    let mut nets = Vec::new();
    let mut job_waits = false;
    let mut unknown = Vec::new();
    for (name, svc) in &project.services {
        let out = workload::service(&cx, name, svc, &mut shared, &mut claims)?;
        objects.extend(out.objects);
        report.extend(out.report);
        nets.push(out.net);
        job_waits |= out.waits_for_jobs;
        if out.image_unknown {
            unknown.push(format!("{name} ({})", project.image_name(name)));
        }
    }
    if !unknown.is_empty() {
        report.push(Entry {
            path: "images".into(),
            kind: crate::Kind::Note,
            message: format!(
                "not in the local image store, so runAsNonRoot is left out (pull them to decide it from their USER): {}",
                unknown.join(", ")
            ),
        });
    }
    objects.extend(shared.objects);
    report.extend(shared.report);
    let env = storage::Env {
        project,
        opts,
        scope: &scope,
        files,
    };
    objects.extend(storage::claim_objects(&env, &claims, &mut report)?);
    objects.extend(policies::policies(&scope, &nets));
    if job_waits {
        objects.extend(waits::job_waiter_rbac(&scope));
    }
    report.extend(top_level_report(project));
    let objects = ordered(objects)?;
    Ok(Output { objects, report })
}

fn check_options(opts: &Options) -> Result<(), Error> {
    if let Some(ns) = &opts.namespace
        && names::dns_label(ns, names::LABEL_MAX) != *ns
    {
        return Err(Error::Option {
            flag: "--namespace",
            value: ns.clone(),
            message: "a namespace is a DNS label: lowercase letters, digits and '-', at most 63"
                .into(),
        });
    }
    if !is_storage_quantity(&opts.pvc_size) {
        return Err(Error::Option {
            flag: "--pvc-size",
            value: opts.pvc_size.clone(),
            message: "not a storage size (like 512Mi, 5Gi, 1Ti)".into(),
        });
    }
    Ok(())
}

/// The Kubernetes names, Jobs, first ports and networks of the services;
/// two services with one Kubernetes name are an error.
fn peers(project: &Project, facts: &IndexMap<String, ImageFacts>) -> Result<Peers, Error> {
    let mut peers = Peers::default();
    for (name, svc) in &project.services {
        let kname = names::dns_label(name, names::LABEL_MAX);
        if let Some((other, _)) = peers.knames.iter().find(|(_, k)| **k == kname) {
            return Err(Error::Collision {
                kind: "Deployment".into(),
                name: kname,
                first: format!("services.{other}"),
                second: format!("services.{name}"),
            });
        }
        peers.knames.insert(name.clone(), kname);
        let ports = workload::service_ports(svc, facts.get(name), &mut Keys::default());
        peers
            .first_port
            .insert(name.clone(), ports.first().map(|p| p.port));
        let nets = svc
            .network_mode
            .is_none()
            .then(|| svc.networks.keys().cloned().collect());
        peers.networks.insert(name.clone(), nets);
        for (dep, d) in &svc.depends_on {
            if d.condition() == DependencyCondition::CompletedSuccessfully
                && !peers.jobs.contains(dep)
            {
                peers.jobs.push(dep.clone());
            }
        }
        // reached by name: what it waits to start or is healthy, and links
        // (a Job, waited for through the API, needs no Service)
        let started = svc
            .depends_on
            .iter()
            .filter(|(_, d)| d.condition() != DependencyCondition::CompletedSuccessfully)
            .map(|(n, _)| n);
        for dep in started.chain(svc.links.iter()) {
            let dep = dep.split(':').next().unwrap_or(dep).to_owned();
            if !peers.named.contains(&dep) {
                peers.named.push(dep);
            }
        }
    }
    Ok(peers)
}

/// The objects in [`KIND_ORDER`], each (kind, name) once.
fn ordered(mut objects: Vec<Object>) -> Result<Vec<Object>, Error> {
    objects.sort_by_key(|o| {
        KIND_ORDER
            .iter()
            .position(|k| *k == o.kind)
            .unwrap_or(KIND_ORDER.len())
    });
    for (i, o) in objects.iter().enumerate() {
        if let Some(first) = objects[..i]
            .iter()
            .find(|p| p.kind == o.kind && p.name == o.name)
        {
            return Err(Error::Collision {
                kind: o.kind.clone(),
                name: o.name.clone(),
                first: first.origin.clone(),
                second: o.origin.clone(),
            });
        }
    }
    Ok(objects)
}

/// The keys of the top-level networks, volumes, secrets and configs the
/// services use that have no place in the manifests.
fn top_level_report(project: &Project) -> Vec<Entry> {
    let mut out = Vec::new();
    let used = |pick: &dyn Fn(&rstack_compose::model::Service) -> Vec<String>| -> Vec<String> {
        project.services.values().flat_map(pick).collect()
    };
    let nets = used(&|s| s.networks.keys().cloned().collect());
    let vols = used(&|s| {
        s.volumes
            .iter()
            .filter(|v| v.kind == "volume")
            .filter_map(|v| v.source.clone())
            .collect()
    });
    let secrets = used(&|s| s.secrets.iter().map(|m| m.source.clone()).collect());
    let configs = used(&|s| s.configs.iter().map(|m| m.source.clone()).collect());
    for (name, n) in project.networks.iter().filter(|(k, _)| nets.contains(k)) {
        out.extend(report_of(
            &format!("networks.{name}"),
            n,
            &["name", "external", "internal"],
        ));
    }
    for (name, v) in project.volumes.iter().filter(|(k, _)| vols.contains(k)) {
        out.extend(report_of(
            &format!("volumes.{name}"),
            v,
            &["name", "external", "labels", extension::KEY],
        ));
    }
    let file_keys = ["name", "file", "environment", "content", "external"];
    let files = |map: &IndexMap<String, FileObject>, kind: &str, picked: &[String]| -> Vec<Entry> {
        map.iter()
            .filter(|(k, _)| picked.contains(k))
            .flat_map(|(name, o)| report_of(&format!("{kind}.{name}"), o, &file_keys))
            .collect()
    };
    out.extend(files(&project.secrets, "secrets", &secrets));
    out.extend(files(&project.configs, "configs", &configs));
    out
}

fn report_of<T: Serialize>(prefix: &str, value: &T, carried: &[&str]) -> Vec<Entry> {
    let mut keys = Keys::default();
    for k in carried {
        keys.used(*k);
    }
    keys.report(prefix, &serde_json::to_value(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fake, project};

    #[test]
    fn services_with_one_kubernetes_name_collide() {
        let p = project("services:\n  my_app:\n    image: x\n  my-app:\n    image: x\n");
        let err =
            generate(&p, &Options::default(), &IndexMap::new(), &Fake::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "services.my_app and services.my-app both become Deployment \"my-app\" in Kubernetes: rename one"
        );
    }

    #[test]
    fn bad_flags_are_errors() {
        let p = project("services:\n  a:\n    image: x\n");
        let opts = Options {
            namespace: Some("Prod_1".into()),
            ..Options::default()
        };
        let err = generate(&p, &opts, &IndexMap::new(), &Fake::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("invalid --namespace \"Prod_1\""), "{err}");
        let opts = Options {
            pvc_size: "lots".into(),
            ..Options::default()
        };
        assert!(generate(&p, &opts, &IndexMap::new(), &Fake::default()).is_err());
    }

    #[test]
    fn objects_come_in_apply_order_and_renamed_services_are_noted() {
        let p = project(
            "services:\n  web_ui:\n    image: x\n    ports: [\"80:80\"]\n    environment: {A: b}\n    volumes: [data:/d]\n    logging: {driver: syslog}\nvolumes:\n  data: {driver: local}\n",
        );
        let out = generate(&p, &Options::default(), &IndexMap::new(), &Fake::default()).unwrap();
        let kinds: Vec<(&str, &str)> = out
            .objects
            .iter()
            .map(|o| (o.kind.as_str(), o.name.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("Namespace", "demo"),
                ("ConfigMap", "web-ui-env"),
                ("PersistentVolumeClaim", "data"),
                ("Service", "web-ui"),
                ("Deployment", "web-ui"),
                ("NetworkPolicy", "default-deny-ingress"),
                ("NetworkPolicy", "network-default"),
                ("NetworkPolicy", "web-ui-published"),
            ]
        );
        let report: Vec<String> = out.report.iter().map(|e| e.to_string()).collect();
        assert!(report.contains(&"services.web_ui: note: named web-ui in Kubernetes (a DNS name): other services reach it as web-ui".to_owned()), "{report:#?}");
        assert!(
            report
                .iter()
                .any(|r| r.starts_with("services.web_ui.logging: not carried over")),
            "{report:#?}"
        );
        assert!(
            report
                .iter()
                .any(|r| r.starts_with("volumes.data.driver: not carried over")),
            "{report:#?}"
        );
    }
}
