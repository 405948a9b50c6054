//! One service → its Deployment (or Job), Services, HorizontalPodAutoscaler,
//! ConfigMaps and what its pod needs, and the report of its keys.
//!
//! A service that others wait for with `service_completed_successfully`
//! is a one-shot task: a Job (`restart: on-failure[:N]` → `restartPolicy:
//! OnFailure` and `backoffLimit: N`, else `Never` and no retry). Every
//! other service is a Deployment with `replicas` from `scale` or
//! `deploy.replicas` (left out when an HPA owns it), and the Recreate
//! strategy when it mounts a claim that one node at a time can use (a
//! rolling update would wait forever for the old pod's volume). A
//! Deployment restarts its containers whatever `restart` says.

use rstack_compose::Project;
use rstack_compose::model::Service;
use serde_json::{Map, Value, json};

use crate::container::{self, Made};
use crate::extension;
use crate::files::{self, Shared};
use crate::objects::{Object, PodParts, Scope, Svc, obj};
use crate::policies::NetInfo;
use crate::report::{Entry, Keys};
use crate::security;
use crate::services;
use crate::storage::{self, Claims};
use crate::waits::{self, Peers};
use crate::{Error, HostFiles, ImageFacts, Options, pod, probes};

/// What every service's mapping reads.
pub struct Cx<'a> {
    pub project: &'a Project,
    pub opts: &'a Options,
    pub facts: &'a indexmap::IndexMap<String, ImageFacts>,
    pub files: &'a dyn HostFiles,
    pub scope: &'a Scope,
    pub peers: &'a Peers,
}

/// The objects and report of one service.
pub struct ServiceOut {
    pub objects: Vec<Object>,
    pub report: Vec<Entry>,
    pub net: NetInfo,
    pub waits_for_jobs: bool,
    /// Its image is not in the store (so `runAsNonRoot` is undecided).
    pub image_unknown: bool,
}

/// The container ports of a service: its `ports` and `expose`, else its
/// image's EXPOSE (noted).
pub fn service_ports(
    svc: &Service,
    facts: Option<&ImageFacts>,
    keys: &mut Keys,
) -> Vec<container::ContainerPort> {
    let ports = container::container_ports(svc, keys);
    if !ports.is_empty() {
        return ports;
    }
    let from_image = facts
        .map(|f| container::from_expose(&f.exposed))
        .unwrap_or_default();
    if !from_image.is_empty() {
        let list: Vec<String> = from_image
            .iter()
            .map(|p| format!("{}/{}", p.port, p.protocol.to_ascii_lowercase()))
            .collect();
        keys.note(
            "ports",
            format!(
                "none in Compose: its Service takes the image's EXPOSE ({})",
                list.join(", ")
            ),
        );
    }
    from_image
}

/// Maps service `name`.
pub fn service(
    cx: &Cx<'_>,
    name: &str,
    svc: &Service,
    shared: &mut Shared,
    claims: &mut Claims,
) -> Result<ServiceOut, Error> {
    let ext = extension::of_service(name, &svc.extensions)?;
    let kname = cx.peers.knames[name].clone();
    let s = Svc {
        name,
        kname: &kname,
        svc,
        ext: &ext,
    };
    let mut keys = Keys::default();
    keys.used("profiles");
    let mut parts = PodParts::default();
    files::environment(&kname, svc, cx.scope, &mut keys, &mut parts);
    files::secrets_and_configs(
        cx.project, svc, cx.scope, cx.files, shared, &mut keys, &mut parts,
    )?;
    let env = storage::Env {
        project: cx.project,
        opts: cx.opts,
        scope: cx.scope,
        files: cx.files,
    };
    storage::volumes(&env, &s, claims, &mut keys, &mut parts)?;
    let sec = security::security(svc, cx.facts.get(name), &mut keys);
    let image_unknown = sec.image_unknown;
    let ports = service_ports(svc, cx.facts.get(name), &mut keys);
    let net = net_info(cx.project, &s, &mut keys);
    let job = cx.peers.jobs.iter().any(|j| j == name);
    let job_restart = job.then(|| job_restart(svc, &mut keys));
    let made = Made {
        image: image_ref(cx, name, svc, &mut keys),
        probes: probes::probes(svc.healthcheck.as_ref(), &mut keys),
        security: sec.container,
        ports: ports.clone(),
    };
    let container = container::container(&s, made, &parts, &mut keys);
    let waits = waits::waits(&s, cx.peers, cx.opts, cx.scope, &mut keys);
    let waits_for_jobs = waits.for_jobs;
    let input = pod::Inputs {
        container,
        waits,
        security: sec.pod,
        fs_group: sec.run_as.filter(|r| r.uid != 0).and_then(|r| r.gid),
        restart_policy: job_restart.map(|(policy, _)| policy),
    };
    let spec = pod::pod_spec(&s, input, &parts, &mut keys);
    let mut objects = std::mem::take(&mut parts.objects);
    let public = services::published(svc, net.internal_only, &mut keys);
    let headless = cx.peers.named.iter().any(|n| n == name);
    objects.extend(services::services(
        &s,
        &ports,
        &public,
        cx.opts.service_type,
        headless,
        cx.scope,
        &mut keys,
    ));
    let template = template(&s, cx.scope, spec, &mut keys);
    let has_cpu = asks_for_cpu(svc);
    if let Some((_, backoff)) = job_restart {
        objects.push(job_object(&s, cx.scope, template, backoff, &mut keys));
    } else {
        objects.push(deployment(
            &s,
            cx.scope,
            template,
            parts.single_node_claim,
            &mut keys,
        ));
    }
    objects.extend(hpa(&s, cx.scope, job, has_cpu, &mut keys));
    let mut net = net;
    net.public = public;
    if kname != name {
        keys.note(
            "",
            format!("named {kname} in Kubernetes (a DNS name): other services reach it as {kname}"),
        );
    }
    let report = keys.report(
        &format!("services.{name}"),
        &serde_json::to_value(svc).unwrap_or_default(),
    );
    Ok(ServiceOut {
        objects,
        report,
        net,
        waits_for_jobs,
        image_unknown,
    })
}

/// Whether the container asks for CPU (an HPA on CPU utilisation needs it).
fn asks_for_cpu(svc: &Service) -> bool {
    let res = svc.deploy.as_ref().and_then(|d| d.resources.as_ref());
    let cpu = |r: Option<&rstack_compose::model::Resource>| {
        r.and_then(|r| r.cpus).is_some_and(|c| c > 0.0)
    };
    cpu(res.and_then(|r| r.limits.as_ref()))
        || cpu(res.and_then(|r| r.reservations.as_ref()))
        || svc.cpus.is_some_and(|c| c > 0.0)
}

/// The networks of a service, for its policies.
fn net_info(project: &Project, s: &Svc<'_>, keys: &mut Keys) -> NetInfo {
    let networks: Vec<String> = s.svc.networks.keys().cloned().collect();
    for n in &networks {
        if project
            .networks
            .get(n)
            .is_some_and(|x| x.external == Some(true))
        {
            keys.note(
                format!("networks.{n}"),
                "an external network: in the cluster only this project's pods are on it",
            );
        }
    }
    NetInfo {
        kname: s.kname.to_owned(),
        internal_only: !networks.is_empty()
            && networks.iter().all(|n| {
                project
                    .networks
                    .get(n)
                    .is_some_and(|x| x.internal == Some(true))
            }),
        no_network: s.svc.network_mode.as_deref() == Some("none"),
        networks,
        public: Vec::new(),
    }
}

/// The image the cluster pulls: the one `--push` pushed, `--image-registry`
/// before a built image's name, or the service's image.
fn image_ref(cx: &Cx<'_>, name: &str, svc: &Service, keys: &mut Keys) -> String {
    let image = cx.project.image_name(name);
    if svc.build.is_none() {
        return image;
    }
    if let Some(pushed) = cx.opts.pushed.get(name) {
        keys.used("build");
        return pushed.clone();
    }
    match &cx.opts.image_registry {
        Some(reg) => {
            let r = format!("{}/{image}", reg.trim_end_matches('/'));
            keys.changed(
                "build",
                format!("not built here: the cluster pulls {r}, which must be pushed there"),
            );
            r
        }
        None => {
            keys.drop(
                "build",
                format!("the cluster does not build: {image} must be pullable by it (--push REG builds and pushes it)"),
            );
            image
        }
    }
}

/// The pod template.
fn template(s: &Svc<'_>, scope: &Scope, spec: Map<String, Value>, keys: &mut Keys) -> Value {
    let meta = obj([
        (
            "labels",
            Value::Object(pod::template_labels(s, scope.selector(s.kname), keys)),
        ),
        ("annotations", Value::Object(pod::annotations(s, keys))),
    ]);
    json!({"metadata": meta, "spec": spec})
}

/// The workload's own annotations: `deploy.labels` and the pod's.
fn workload_annotations(s: &Svc<'_>, keys: &mut Keys) -> Map<String, Value> {
    let mut m = pod::annotations(s, keys);
    if let Some(d) = &s.svc.deploy {
        m.extend(crate::objects::string_map(&d.labels));
        keys.used("deploy.labels");
    }
    m
}

fn deployment(
    s: &Svc<'_>,
    scope: &Scope,
    template: Value,
    recreate: bool,
    keys: &mut Keys,
) -> Object {
    let svc = s.svc;
    keys.used("scale");
    keys.used("deploy.replicas");
    match svc.deploy.as_ref().and_then(|d| d.mode.as_deref()) {
        None | Some("replicated") => keys.used("deploy.mode"),
        Some(m) => keys.drop(
            "deploy.mode",
            format!("{m}: this makes a Deployment of `replicas` pods"),
        ),
    }
    match svc.deploy.as_ref().and_then(|d| d.endpoint_mode.as_deref()) {
        None | Some("vip") => keys.used("deploy.endpoint_mode"),
        Some(_) => keys.drop("deploy.endpoint_mode", "the Service has a virtual IP"),
    }
    deployment_restart(svc, keys);
    let replicas = if s.ext.hpa.is_some() {
        None
    } else {
        Some(svc.replicas().max(0))
    };
    let spec = obj([
        ("replicas", json!(replicas)),
        ("selector", json!({"matchLabels": scope.selector(s.kname)})),
        (
            "strategy",
            if recreate {
                json!({"type": "Recreate"})
            } else {
                Value::Null
            },
        ),
        ("template", template),
    ]);
    scope.annotated(
        "apps/v1",
        "Deployment",
        s.kname,
        &format!("services.{}", s.name),
        scope.selector(s.kname),
        workload_annotations(s, keys),
        obj([("spec", Value::Object(spec))]),
    )
}

/// `restart` and `deploy.restart_policy` of a Deployment: it always
/// restarts, so anything else is reported.
fn deployment_restart(svc: &Service, keys: &mut Keys) {
    match svc.restart.as_deref() {
        None | Some("always" | "unless-stopped") => keys.used("restart"),
        Some(r) => keys.changed(
            "restart",
            format!("{r}: a Deployment restarts its containers always"),
        ),
    }
    let rp = svc.deploy.as_ref().and_then(|d| d.restart_policy.as_ref());
    match rp.and_then(|r| r.condition.as_deref()) {
        None | Some("any") => keys.used("deploy.restart_policy.condition"),
        Some(c) => keys.changed(
            "deploy.restart_policy.condition",
            format!("{c}: a Deployment restarts its containers always"),
        ),
    }
    for k in ["delay", "max_attempts", "window"] {
        keys.drop(
            format!("deploy.restart_policy.{k}"),
            "the kubelet's back-off decides when to restart",
        );
    }
}

/// A Job's `restartPolicy` and `backoffLimit` from `restart`.
fn job_restart(svc: &Service, keys: &mut Keys) -> (&'static str, u64) {
    let r = svc.restart.as_deref().unwrap_or("no");
    keys.used("restart");
    keys.used("deploy.replicas");
    keys.used("scale");
    if let Some(rest) = r.strip_prefix("on-failure") {
        let n = rest
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .unwrap_or(6);
        return ("OnFailure", n);
    }
    if r != "no" {
        keys.changed(
            "restart",
            format!("{r}: a one-shot Job is retried only on failure"),
        );
    }
    ("Never", 0)
}

fn job_object(
    s: &Svc<'_>,
    scope: &Scope,
    template: Value,
    backoff: u64,
    keys: &mut Keys,
) -> Object {
    let spec = obj([("backoffLimit", json!(backoff)), ("template", template)]);
    scope.annotated(
        "batch/v1",
        "Job",
        s.kname,
        &format!("services.{}", s.name),
        scope.selector(s.kname),
        workload_annotations(s, keys),
        obj([("spec", Value::Object(spec))]),
    )
}

/// The HorizontalPodAutoscaler of `x-kubernetes.hpa`.
fn hpa(s: &Svc<'_>, scope: &Scope, job: bool, has_cpu: bool, keys: &mut Keys) -> Option<Object> {
    let h = s.ext.hpa.as_ref()?;
    if job {
        keys.note("x-kubernetes.hpa", "left out: a one-shot Job is not scaled");
        return None;
    }
    if !has_cpu {
        keys.note(
            "x-kubernetes.hpa",
            "CPU utilisation is measured against the CPU request: give the service deploy.resources.reservations.cpus (or limits.cpus)",
        );
    }
    let spec = obj([
        (
            "scaleTargetRef",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": s.kname}),
        ),
        ("minReplicas", json!(h.min_replicas)),
        ("maxReplicas", json!(h.max_replicas)),
        (
            "metrics",
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": h.target_cpu}}}]),
        ),
    ]);
    Some(scope.object(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        s.kname,
        &format!("services.{}", s.name),
        scope.selector(s.kname),
        obj([("spec", Value::Object(spec))]),
    ))
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;
    use serde_json::json;

    use crate::testing::{Fake, project};
    use crate::{Options, Output, generate};

    fn run(yaml: &str, opts: &Options) -> Output {
        generate(&project(yaml), opts, &IndexMap::new(), &Fake::default()).unwrap()
    }

    fn object<'a>(out: &'a Output, kind: &str, name: &str) -> &'a serde_json::Value {
        &out.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .value
    }

    fn report(out: &Output) -> Vec<String> {
        out.report.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn a_one_shot_dependency_is_a_job_its_dependants_wait_for() {
        let out = run(
            "services:\n  app:\n    image: x\n    depends_on:\n      migrate: {condition: service_completed_successfully}\n  migrate:\n    image: x\n    restart: on-failure:3\n",
            &Options::default(),
        );
        let job = object(&out, "Job", "migrate");
        assert_eq!(job["apiVersion"], "batch/v1");
        assert_eq!(job["spec"]["backoffLimit"], 3);
        assert_eq!(
            job["spec"]["template"]["spec"]["restartPolicy"],
            "OnFailure"
        );
        assert!(
            job["spec"].get("selector").is_none(),
            "the Job controller picks its own"
        );
        let app = &object(&out, "Deployment", "app")["spec"]["template"]["spec"];
        assert_eq!(app["serviceAccountName"], "job-waiter");
        assert_eq!(app["automountServiceAccountToken"], true);
        assert_eq!(app["initContainers"][0]["name"], "wait-for-migrate");
        for kind in ["ServiceAccount", "Role", "RoleBinding"] {
            object(&out, kind, "job-waiter");
        }
        assert!(
            !out.objects.iter().any(|o| o.kind == "Service"),
            "no Service for a Job waited for through the API"
        );
        let plain = run(
            "services:\n  once:\n    image: x\n  app:\n    image: x\n    depends_on:\n      once: {condition: service_completed_successfully}\n",
            &Options::default(),
        );
        let job = object(&plain, "Job", "once");
        assert_eq!(
            (
                job["spec"]["backoffLimit"].clone(),
                job["spec"]["template"]["spec"]["restartPolicy"].clone()
            ),
            (json!(0), json!("Never"))
        );
    }

    #[test]
    fn replicas_strategy_and_autoscaler() {
        let out = run(
            "services:\n  web:\n    image: x\n    deploy: {replicas: 3}\n  db:\n    image: x\n    scale: 1\n    volumes: [\"data:/d\"]\n  api:\n    image: x\n    deploy: {replicas: 2}\n    x-kubernetes: {hpa: {min_replicas: 2, max_replicas: 5}}\nvolumes:\n  data: {}\n",
            &Options::default(),
        );
        assert_eq!(object(&out, "Deployment", "web")["spec"]["replicas"], 3);
        assert!(
            object(&out, "Deployment", "web")["spec"]
                .get("strategy")
                .is_none()
        );
        let db = object(&out, "Deployment", "db");
        assert_eq!(
            db["spec"]["strategy"],
            json!({"type": "Recreate"}),
            "a ReadWriteOnce claim"
        );
        let api = object(&out, "Deployment", "api");
        assert!(
            api["spec"].get("replicas").is_none(),
            "the HPA owns the count"
        );
        let hpa = object(&out, "HorizontalPodAutoscaler", "api");
        assert_eq!(
            hpa["spec"]["scaleTargetRef"],
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"})
        );
        assert_eq!(
            hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert!(
            report(&out).iter().any(|r| r.starts_with("services.api.x-kubernetes.hpa: note: CPU utilisation is measured against the CPU request")),
            "{:?}",
            report(&out)
        );
    }

    #[test]
    fn images_of_build_services() {
        let yaml = "services:\n  web:\n    build: .\n";
        let out = run(yaml, &Options::default());
        let image = &object(&out, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]
            ["image"];
        assert_eq!(image, "demo-web");
        assert!(report(&out).iter().any(|r| r.starts_with(
            "services.web.build: not carried over: the cluster does not build: demo-web"
        )));
        let opts = Options {
            image_registry: Some("registry.example:5000/".into()),
            ..Options::default()
        };
        let out = run(yaml, &opts);
        let image = &object(&out, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]
            ["image"];
        assert_eq!(image, "registry.example:5000/demo-web");
        let mut pushed = IndexMap::new();
        pushed.insert("web".to_owned(), "r/demo-web@sha256:abc".to_owned());
        let out = run(
            yaml,
            &Options {
                pushed,
                ..Options::default()
            },
        );
        let image = &object(&out, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]
            ["image"];
        assert_eq!(image, "r/demo-web@sha256:abc");
        assert!(
            !report(&out).iter().any(|r| r.contains("build")),
            "{:?}",
            report(&out)
        );
    }

    #[test]
    fn restart_policies_a_deployment_cannot_keep_are_reported() {
        let out = run(
            "services:\n  web:\n    image: x\n    restart: \"no\"\n",
            &Options::default(),
        );
        assert!(
            report(&out).contains(
                &"services.web.restart: changed: no: a Deployment restarts its containers always"
                    .to_owned()
            ),
            "{:?}",
            report(&out)
        );
    }

    #[test]
    fn every_unknown_key_is_reported_with_its_path() {
        let out = run(
            "services:\n  web:\n    image: x\n    container_name: web1\n    ulimits: {nofile: 1024}\n    logging: {driver: syslog}\n    devices: [\"/dev/fuse:/dev/fuse\"]\n    cpu_shares: 512\n    mac_address: 02:42:ac:11:00:02\n",
            &Options::default(),
        );
        let paths: Vec<&str> = out
            .report
            .iter()
            .filter(|e| e.kind == crate::Kind::Dropped)
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "services.web.cpu_shares",
                "services.web.container_name",
                "services.web.devices",
                "services.web.logging",
                "services.web.mac_address",
                "services.web.ulimits"
            ]
        );
    }
}
