//! The service's container: image, `entrypoint` → `command`, `command` →
//! `args`, `working_dir`, ports, `deploy.resources` → requests and limits,
//! `post_start`/`pre_stop` → lifecycle hooks, `tty`/`stdin_open`, and what
//! the other modules made (probes, security, mounts, `envFrom`).

use rstack_compose::model::{Hook, Service};
use serde_json::{Map, Value, json};

use crate::names::{cpu_quantity, memory_quantity, port_name};
use crate::objects::{PodParts, Svc, obj};
use crate::probes::Probes;
use crate::report::Keys;

/// A port the container listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPort {
    pub port: u32,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    pub name: String,
    pub app_protocol: Option<String>,
}

/// The ports of `ports` (their targets) and `expose`, without repeats.
pub fn container_ports(svc: &Service, keys: &mut Keys) -> Vec<ContainerPort> {
    let mut out: Vec<ContainerPort> = Vec::new();
    let mut add = |port: u32, proto: &str, name: Option<&str>, app: Option<&String>| {
        let protocol = proto.to_ascii_uppercase();
        if !out.iter().any(|p| p.port == port && p.protocol == protocol) {
            out.push(ContainerPort {
                port,
                name: port_name(name, proto, port),
                protocol,
                app_protocol: app.cloned(),
            });
        }
    };
    for p in &svc.ports {
        add(
            p.target,
            p.protocol.as_deref().unwrap_or("tcp"),
            p.name.as_deref(),
            p.app_protocol.as_ref(),
        );
    }
    for (i, e) in svc.expose.iter().enumerate() {
        match parse_expose(e) {
            Some((start, end, proto)) => {
                for port in start..=end {
                    add(port, &proto, None, None);
                }
                keys.used(format!("expose[{i}]"));
            }
            None => keys.drop(format!("expose[{i}]"), "not a port or port range"),
        }
    }
    out
}

/// The ports of EXPOSE-style entries (`80/tcp`, `53/udp`), the ones that
/// parse.
pub fn from_expose(list: &[String]) -> Vec<ContainerPort> {
    let mut out: Vec<ContainerPort> = Vec::new();
    for (start, end, proto) in list.iter().filter_map(|e| parse_expose(e)) {
        for port in start..=end {
            let protocol = proto.to_ascii_uppercase();
            if !out.iter().any(|p| p.port == port && p.protocol == protocol) {
                out.push(ContainerPort {
                    port,
                    name: port_name(None, &proto, port),
                    protocol,
                    app_protocol: None,
                });
            }
        }
    }
    out
}

/// `3000`, `3000-3005`, `53/udp`.
fn parse_expose(e: &str) -> Option<(u32, u32, String)> {
    let (ports, proto) = match e.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (e, "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return None;
    }
    let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
    let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a >= 1 && a <= b && b <= 65535).then_some((a, b, proto))
}

/// `resources` from `deploy.resources` (and the legacy `cpus`, `mem_limit`,
/// `mem_reservation`): limits and reservations → limits and requests.
pub fn resources(svc: &Service, keys: &mut Keys) -> Map<String, Value> {
    let res = svc.deploy.as_ref().and_then(|d| d.resources.as_ref());
    let limits = res.and_then(|r| r.limits.as_ref());
    let reservations = res.and_then(|r| r.reservations.as_ref());
    let mut out = Map::new();
    for (field, r, cpus, memory) in [
        ("limits", limits, svc.cpus, svc.mem_limit),
        ("requests", reservations, None, svc.mem_reservation),
    ] {
        let compose = if field == "limits" {
            "limits"
        } else {
            "reservations"
        };
        let base = format!("deploy.resources.{compose}");
        let mut m = Map::new();
        if let Some(c) = r.and_then(|r| r.cpus).or(cpus).and_then(cpu_quantity) {
            m.insert("cpu".into(), json!(c));
        }
        if let Some(b) = r.and_then(|r| r.memory).or(memory).filter(|b| b.0 > 0) {
            m.insert("memory".into(), json!(memory_quantity(b.0)));
        }
        for k in ["cpus", "memory"] {
            keys.used(format!("{base}.{k}"));
        }
        keys.drop(
            format!("{base}.pids"),
            "the pid limit is a node setting (kubelet podPidsLimit)",
        );
        keys.drop(
            format!("{base}.devices"),
            "Kubernetes gives GPUs and devices through device plugins",
        );
        if !m.is_empty() {
            out.insert(field.into(), Value::Object(m));
        }
    }
    for k in ["cpus", "mem_limit", "mem_reservation"] {
        keys.used(k);
    }
    out
}

/// `post_start` and `pre_stop` → `lifecycle.postStart`/`preStop`: one
/// exec hook each, run as the container's own user.
fn lifecycle(svc: &Service, keys: &mut Keys) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, field, hooks) in [
        ("post_start", "postStart", &svc.post_start),
        ("pre_stop", "preStop", &svc.pre_stop),
    ] {
        for (i, h) in hooks.iter().enumerate() {
            let path = format!("{key}[{i}]");
            let plain = |h: &Hook| {
                h.user.is_none()
                    && h.privileged != Some(true)
                    && h.working_dir.is_none()
                    && h.environment.is_empty()
            };
            match &h.command {
                Some(cmd) if i == 0 && plain(h) && !cmd.is_empty() => {
                    out.insert(field.into(), json!({"exec": {"command": cmd}}));
                    keys.used(path);
                }
                _ if i > 0 => keys.drop(path, "Kubernetes runs one hook of each kind"),
                _ => keys.drop(
                    path,
                    "a hook with its own user, privileges, directory or environment",
                ),
            }
        }
    }
    out
}

/// Kubernetes replaces `$(NAME)` in `command` and `args` with the variable
/// NAME; Compose passes it on as written (a shell's command substitution,
/// most often): `$$(` keeps it literal.
fn escape_references(arg: &str) -> String {
    arg.replace("$(", "$$(")
}

/// `pull_policy` → `imagePullPolicy`.
fn pull_policy(svc: &Service, keys: &mut Keys) -> Option<&'static str> {
    let p = svc.pull_policy.as_deref()?;
    let k = match p {
        "always" => "Always",
        "never" => "Never",
        "missing" | "if_not_present" | "build" => "IfNotPresent",
        _ => {
            keys.drop(
                "pull_policy",
                "the kubelet pulls by imagePullPolicy: Always, IfNotPresent or Never",
            );
            return None;
        }
    };
    keys.used("pull_policy");
    Some(k)
}

/// What the other mappings made for the container.
pub struct Made {
    pub image: String,
    pub probes: Probes,
    pub security: Map<String, Value>,
    pub ports: Vec<ContainerPort>,
}

/// The container of service `s`.
pub fn container(s: &Svc<'_>, made: Made, parts: &PodParts, keys: &mut Keys) -> Value {
    let svc = s.svc;
    keys.used("image");
    let mut exec = |key: &str, v: &Option<Vec<String>>| -> Value {
        match v {
            Some(c) if !c.is_empty() => {
                keys.used(key);
                json!(c.iter().map(|a| escape_references(a)).collect::<Vec<_>>())
            }
            Some(_) => {
                keys.drop(
                    key,
                    "an empty list: Kubernetes cannot clear the image's own",
                );
                Value::Null
            }
            None => Value::Null,
        }
    };
    let command = exec("entrypoint", &svc.entrypoint);
    let args = exec("command", &svc.command);
    keys.used("working_dir");
    keys.used("tty");
    keys.used("stdin_open");
    let ports: Vec<Value> = made
        .ports
        .iter()
        .map(|p| json!({"name": p.name, "containerPort": p.port, "protocol": p.protocol}))
        .collect();
    let c = obj([
        ("name", json!(s.kname)),
        ("image", json!(made.image)),
        ("imagePullPolicy", json!(pull_policy(svc, keys))),
        ("command", command),
        ("args", args),
        ("workingDir", json!(svc.working_dir)),
        ("envFrom", json!(parts.env_from)),
        ("ports", json!(ports)),
        ("resources", Value::Object(resources(svc, keys))),
        ("startupProbe", json!(made.probes.startup)),
        ("readinessProbe", json!(made.probes.readiness)),
        ("livenessProbe", json!(made.probes.liveness)),
        ("lifecycle", Value::Object(lifecycle(svc, keys))),
        ("securityContext", Value::Object(made.security)),
        ("volumeMounts", json!(parts.mounts)),
        ("tty", json!(svc.tty.filter(|t| *t))),
        ("stdin", json!(svc.stdin_open.filter(|t| *t))),
    ]);
    Value::Object(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extension::ServiceExt;
    use crate::testing::project;

    fn report(svc: &Service, keys: &Keys) -> Vec<String> {
        let mut keys = keys.clone();
        keys.used("image");
        keys.used("networks");
        keys.report("services.s", &serde_json::to_value(svc).unwrap())
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn ports_and_expose_become_container_ports() {
        let p = project(
            "services:\n  s:\n    image: x\n    ports: [\"8080:80\", \"53:53/udp\", {target: 9000, name: admin, app_protocol: http}]\n    expose: [\"80\", \"7000-7001\", \"bad\"]\n",
        );
        let mut keys = Keys::default();
        let ports = container_ports(&p.services["s"], &mut keys);
        let short: Vec<(u32, &str, &str)> = ports
            .iter()
            .map(|p| (p.port, p.protocol.as_str(), p.name.as_str()))
            .collect();
        assert_eq!(
            short,
            [
                (80, "TCP", "tcp-80"),
                (53, "UDP", "udp-53"),
                (9000, "TCP", "admin"),
                (7000, "TCP", "tcp-7000"),
                (7001, "TCP", "tcp-7001")
            ]
        );
        assert_eq!(ports[2].app_protocol.as_deref(), Some("http"));
        let mut used = Keys::default();
        container_ports(&p.services["s"], &mut used);
        used.used("ports");
        assert_eq!(
            report(&p.services["s"], &used),
            ["services.s.expose[2]: not carried over: not a port or port range"]
        );
    }

    #[test]
    fn deploy_resources_become_limits_and_requests() {
        let p = project(
            "services:\n  s:\n    image: x\n    deploy:\n      resources:\n        limits: {cpus: \"0.5\", memory: 64M, pids: 50}\n        reservations: {cpus: \"0.25\", memory: 32M}\n",
        );
        let mut keys = Keys::default();
        let r = resources(&p.services["s"], &mut keys);
        assert_eq!(
            Value::Object(r),
            json!({"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "250m", "memory": "32Mi"}})
        );
        keys.used("image");
        assert_eq!(
            report(&p.services["s"], &keys),
            [
                "services.s.deploy.resources.limits.pids: not carried over: the pid limit is a node setting (kubelet podPidsLimit)"
            ]
        );
        let legacy = project("services:\n  s:\n    image: x\n    mem_limit: 1g\n    cpus: 2\n");
        let r = resources(&legacy.services["s"], &mut Keys::default());
        assert_eq!(
            Value::Object(r),
            json!({"limits": {"cpu": "2", "memory": "1Gi"}})
        );
    }

    #[test]
    fn command_substitutions_stay_literal() {
        assert_eq!(
            escape_references("echo $(date) $HOME"),
            "echo $$(date) $HOME"
        );
    }

    #[test]
    fn the_container_carries_command_hooks_and_parts() {
        let p = project(
            "services:\n  s:\n    image: nginx:1.27\n    entrypoint: [/docker-entrypoint.sh]\n    command: [nginx, -g, daemon off;]\n    working_dir: /srv\n    pull_policy: always\n    tty: true\n    post_start: [{command: [touch, /tmp/up]}]\n    pre_stop: [{command: [nginx, -s, quit], user: root}]\n",
        );
        let svc = &p.services["s"];
        let ext = ServiceExt::default();
        let s = Svc {
            name: "s",
            kname: "s",
            svc,
            ext: &ext,
        };
        let mut keys = Keys::default();
        let made = Made {
            image: "nginx:1.27".into(),
            probes: Probes::default(),
            security: Map::new(),
            ports: Vec::new(),
        };
        let c = container(&s, made, &PodParts::default(), &mut keys);
        assert_eq!(
            c,
            json!({"name": "s", "image": "nginx:1.27", "imagePullPolicy": "Always",
                   "command": ["/docker-entrypoint.sh"], "args": ["nginx", "-g", "daemon off;"],
                   "workingDir": "/srv", "lifecycle": {"postStart": {"exec": {"command": ["touch", "/tmp/up"]}}},
                   "tty": true})
        );
        let r = report(svc, &keys);
        assert_eq!(
            r,
            [
                "services.s.pre_stop[0]: not carried over: a hook with its own user, privileges, directory or environment"
            ]
        );
    }
}
