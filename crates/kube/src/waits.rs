//! `depends_on` → init containers, since Kubernetes starts every pod at
//! once.
//!
//! `service_started` and `service_healthy`: an init container waits until
//! the dependency's Service accepts a TCP connection on its first port. A
//! Service routes only to pods that are ready, and the readiness probe is
//! the dependency's healthcheck, so the wait ends when Compose's
//! condition would hold (for `service_started` of a service with a
//! healthcheck, a little later). A dependency with no ports has no Service
//! to wait for: reported.
//!
//! `service_completed_successfully`: the dependency is a Job, and an init
//! container with `kubectl` waits for its `complete` condition; the pod
//! runs under the ServiceAccount `job-waiter`, which may only read Jobs
//! (the Role and RoleBinding come with it).
//!
//! The init containers run as nobody, without privileges, from small
//! images (`--wait-image`, `--kubectl-image`).

use indexmap::IndexMap;
use rstack_compose::model::DependencyCondition;
use serde_json::{Map, Value, json};

use crate::Options;
use crate::names;
use crate::objects::{Object, Scope, Svc, obj};
use crate::report::Keys;

/// The ServiceAccount of pods that wait for Jobs.
pub const WAITER: &str = "job-waiter";

/// What the waits need to know of every generated service.
#[derive(Debug, Default)]
pub struct Peers {
    /// Compose name → Kubernetes name.
    pub knames: IndexMap<String, String>,
    /// Services that run as Jobs.
    pub jobs: Vec<String>,
    /// The first port of each service's Service, if it has one.
    pub first_port: IndexMap<String, Option<u32>>,
    /// Each service's networks (`None` with `network_mode`).
    pub networks: IndexMap<String, Option<Vec<String>>>,
    /// Services another one names in `depends_on` or `links`: they get a
    /// Service even without ports (a headless one).
    pub named: Vec<String>,
}

/// The init containers of a service, and whether it waits for a Job.
#[derive(Debug, Default, PartialEq)]
pub struct Waits {
    pub init: Vec<Value>,
    pub for_jobs: bool,
}

/// An unprivileged, read-only container security context.
fn locked_down() -> Value {
    json!({
        "runAsUser": 65534, "runAsGroup": 65534, "runAsNonRoot": true,
        "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// The init containers for the `depends_on` of `s`.
pub fn waits(s: &Svc<'_>, peers: &Peers, opts: &Options, scope: &Scope, keys: &mut Keys) -> Waits {
    let mut out = Waits::default();
    for (dep, d) in &s.svc.depends_on {
        let path = format!("depends_on.{dep}");
        for k in ["condition", "required"] {
            keys.used(format!("{path}.{k}"));
        }
        if d.restart == Some(true) {
            keys.drop(
                format!("{path}.restart"),
                "Kubernetes does not restart a pod when another one restarts",
            );
        } else {
            keys.used(format!("{path}.restart"));
        }
        let Some(dk) = peers.knames.get(dep) else {
            keys.drop(path, "not one of the generated services");
            continue;
        };
        let name = names::derived("wait-for", dk);
        if d.condition() == DependencyCondition::CompletedSuccessfully {
            out.init.push(Value::Object(obj([
                ("name", json!(name)),
                ("image", json!(opts.kubectl_image)),
                (
                    "command",
                    json!([
                        "kubectl",
                        "wait",
                        "--namespace",
                        scope.namespace,
                        "--for=condition=complete",
                        "--timeout=-1s",
                        format!("job/{dk}")
                    ]),
                ),
                ("securityContext", locked_down()),
            ])));
            out.for_jobs = true;
            continue;
        }
        if let (Some(Some(mine)), Some(Some(theirs))) =
            (peers.networks.get(s.name), peers.networks.get(dep))
            && !mine.iter().any(|n| theirs.contains(n))
        {
            keys.drop(
                path,
                format!("{dep} shares no network with it: the wait could never reach it"),
            );
            continue;
        }
        let script = match peers.first_port.get(dep) {
            Some(Some(port)) => {
                format!("until nc -z -w 2 {dk} {port}; do echo waiting for {dk}; sleep 2; done")
            }
            // a headless Service: its name resolves once a pod is ready
            _ => format!(
                "until nslookup {dk}.{}.svc.{} >/dev/null 2>&1; do echo waiting for {dk}; sleep 2; done",
                scope.namespace, opts.cluster_domain
            ),
        };
        out.init.push(Value::Object(obj([
            ("name", json!(name)),
            ("image", json!(opts.wait_image)),
            ("command", json!(["sh", "-c", script])),
            ("securityContext", locked_down()),
        ])));
    }
    out
}

/// The ServiceAccount, Role and RoleBinding that let pods wait for Jobs.
pub fn job_waiter_rbac(scope: &Scope) -> Vec<Object> {
    let labels = scope.project_labels();
    let origin = "depends_on: service_completed_successfully";
    vec![
        scope.object("v1", "ServiceAccount", WAITER, origin, labels.clone(), Map::new()),
        scope.object(
            "rbac.authorization.k8s.io/v1",
            "Role",
            WAITER,
            origin,
            labels.clone(),
            obj([(
                "rules",
                json!([{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]}]),
            )]),
        ),
        scope.object(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            WAITER,
            origin,
            labels,
            obj([
                ("roleRef", json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": WAITER})),
                ("subjects", json!([{"kind": "ServiceAccount", "name": WAITER, "namespace": scope.namespace}])),
            ]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extension::ServiceExt;
    use crate::testing::project;

    fn peers(p: &rstack_compose::Project) -> Peers {
        let mut peers = Peers::default();
        for (n, s) in &p.services {
            peers.knames.insert(n.clone(), n.replace('_', "-"));
            peers
                .first_port
                .insert(n.clone(), s.ports.first().map(|p| p.target));
            peers
                .networks
                .insert(n.clone(), Some(s.networks.keys().cloned().collect()));
        }
        peers
    }

    #[test]
    fn healthy_and_started_dependencies_wait_for_the_service() {
        let p = project(
            "services:\n  gateway:\n    image: x\n    depends_on:\n      api: {condition: service_healthy, restart: true}\n      cache: {condition: service_started}\n  api:\n    image: x\n    ports: [\"8080\"]\n  cache:\n    image: x\n",
        );
        let scope = Scope::new("demo", None);
        let ext = ServiceExt::default();
        let s = Svc {
            name: "gateway",
            kname: "gateway",
            svc: &p.services["gateway"],
            ext: &ext,
        };
        let mut keys = Keys::default();
        let w = waits(&s, &peers(&p), &Options::default(), &scope, &mut keys);
        assert_eq!(w.init.len(), 2);
        assert_eq!(w.init[0]["name"], "wait-for-api");
        assert_eq!(
            w.init[1]["command"][2],
            "until nslookup cache.demo.svc.cluster.local >/dev/null 2>&1; do echo waiting for cache; sleep 2; done",
            "a dependency without ports is waited for through its headless Service"
        );
        assert_eq!(w.init[0]["image"], "busybox:1.37");
        assert_eq!(
            w.init[0]["command"],
            json!([
                "sh",
                "-c",
                "until nc -z -w 2 api 8080; do echo waiting for api; sleep 2; done"
            ])
        );
        assert_eq!(w.init[0]["securityContext"]["runAsNonRoot"], true);
        assert!(!w.for_jobs);
        let r: Vec<String> = keys
            .report("services.gateway", &json!({"depends_on": serde_json::to_value(&p.services["gateway"].depends_on).unwrap()}))
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            r,
            [
                "services.gateway.depends_on.api.restart: not carried over: Kubernetes does not restart a pod when another one restarts",
            ]
        );
    }

    #[test]
    fn a_completed_dependency_waits_for_its_job() {
        let p = project(
            "services:\n  app:\n    image: x\n    depends_on:\n      migrate: {condition: service_completed_successfully}\n  migrate:\n    image: x\n",
        );
        let scope = Scope::new("demo", None);
        let ext = ServiceExt::default();
        let s = Svc {
            name: "app",
            kname: "app",
            svc: &p.services["app"],
            ext: &ext,
        };
        let w = waits(
            &s,
            &peers(&p),
            &Options::default(),
            &scope,
            &mut Keys::default(),
        );
        assert!(w.for_jobs);
        assert_eq!(
            w.init[0]["command"],
            json!([
                "kubectl",
                "wait",
                "--namespace",
                "demo",
                "--for=condition=complete",
                "--timeout=-1s",
                "job/migrate"
            ])
        );
        let rbac = job_waiter_rbac(&scope);
        let kinds: Vec<&str> = rbac.iter().map(|o| o.kind.as_str()).collect();
        assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding"]);
        assert_eq!(
            rbac[1].value["rules"][0]["verbs"],
            json!(["get", "list", "watch"])
        );
    }

    #[test]
    fn no_wait_across_networks() {
        let p = project(
            "services:\n  a:\n    image: x\n    networks: [front]\n    depends_on: [b]\n  b:\n    image: x\n    networks: [back]\n    expose: [\"80\"]\nnetworks:\n  front: {}\n  back: {}\n",
        );
        let mut peers = peers(&p);
        peers.first_port.insert("b".into(), Some(80));
        let ext = ServiceExt::default();
        let s = Svc {
            name: "a",
            kname: "a",
            svc: &p.services["a"],
            ext: &ext,
        };
        let mut keys = Keys::default();
        let w = waits(
            &s,
            &peers,
            &Options::default(),
            &Scope::new("demo", None),
            &mut keys,
        );
        assert!(w.init.is_empty());
        let r = keys.report("services.a", &json!({"depends_on": {"b": {}}}));
        assert!(r[0].message.contains("shares no network"), "{:?}", r);
    }
}
