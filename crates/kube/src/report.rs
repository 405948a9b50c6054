//! What could not be carried over, key by key.
//!
//! Each mapping marks the Compose keys it used ([`Keys::used`]) and names
//! the ones it refused with a reason ([`Keys::drop`]). At the end the
//! service is serialised as the loader gives it and every key that is
//! neither used nor already reported is reported too, with the reason of
//! the [`REASONS`] table: a Compose key no mapping knows about can never
//! vanish silently. The report names the smallest part that was lost
//! (`ports[1].host_ip`, not `ports`), and a whole key when none of it was
//! used (`ulimits`).

use std::fmt;

use serde_json::Value;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `services.api.ulimits`, `volumes.data.driver`, or a service name
    /// alone for a note about the whole service.
    pub path: String,
    pub kind: Kind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The key has no effect in the manifests.
    Dropped,
    /// The key was carried over with a difference (rounded, narrowed).
    Changed,
    /// Something the user has to know (an image not in the store...).
    Note,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Kind::Dropped => "not carried over",
            Kind::Changed => "changed",
            Kind::Note => "note",
        };
        write!(f, "{}: {what}: {}", self.path, self.message)
    }
}

/// The keys of one Compose object (a service, a volume...) that a mapping
/// used or refused.
#[derive(Debug, Default, Clone)]
pub struct Keys {
    used: Vec<String>,
    dropped: Vec<(String, String)>,
    changed: Vec<(String, String)>,
    notes: Vec<(String, String)>,
}

impl Keys {
    /// `path` (`ports[0]`, `healthcheck.test`) is carried over, with all
    /// that is under it.
    pub fn used(&mut self, path: impl Into<String>) {
        self.used.push(path.into());
    }

    /// `path` is not carried over, for `reason`.
    pub fn drop(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.dropped.push((path.into(), reason.into()));
    }

    /// `path` is carried over with a difference.
    pub fn changed(&mut self, path: impl Into<String>, how: impl Into<String>) {
        let path = path.into();
        self.used.push(path.clone());
        self.changed.push((path, how.into()));
    }

    /// Something to know about `path` that is not a loss.
    pub fn note(&mut self, path: impl Into<String>, text: impl Into<String>) {
        self.notes.push((path.into(), text.into()));
    }

    fn is_used(&self, path: &str) -> bool {
        self.used.iter().any(|u| is_within(path, u))
    }

    /// Whether anything at or under `path` was used or dropped.
    fn touches_under(&self, path: &str) -> bool {
        self.used
            .iter()
            .chain(self.dropped.iter().map(|(p, _)| p))
            .any(|u| is_within(u, path))
    }

    /// The report of an object serialised as `value`, its paths prefixed
    /// with `prefix` (`services.api`).
    pub fn report(&self, prefix: &str, value: &Value) -> Vec<Entry> {
        let mut out = Vec::new();
        for (path, how) in &self.changed {
            out.push(Entry {
                path: join(prefix, path),
                kind: Kind::Changed,
                message: how.clone(),
            });
        }
        for (path, text) in &self.notes {
            out.push(Entry {
                path: join(prefix, path),
                kind: Kind::Note,
                message: text.clone(),
            });
        }
        if let Value::Object(map) = value {
            for (k, v) in map {
                if k.starts_with("x-") {
                    continue; // extensions: the user's own, not Compose keys
                }
                self.walk(prefix, k, v, &mut out);
            }
        }
        out
    }

    fn walk(&self, prefix: &str, path: &str, value: &Value, out: &mut Vec<Entry>) {
        let empty = match value {
            Value::Null => true,
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if self.is_used(path) {
            return;
        }
        if let Some((_, reason)) = self.dropped.iter().find(|(p, _)| p == path) {
            out.push(dropped(prefix, path, reason));
            return;
        }
        if empty {
            return; // nothing to carry
        }
        if !self.touches_under(path) || !is_container(value) {
            let top = path.split(['.', '[']).next().unwrap_or(path);
            out.push(dropped(prefix, path, reason_for(top)));
            return;
        }
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    if !k.starts_with("x-") {
                        self.walk(prefix, &format!("{path}.{k}"), v, out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.walk(prefix, &format!("{path}[{i}]"), v, out);
                }
            }
            _ => {}
        }
    }
}

fn is_container(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

/// Whether `path` is `base` or lies under it (`base.x`, `base[0]`).
fn is_within(path: &str, base: &str) -> bool {
    path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

fn join(prefix: &str, path: &str) -> String {
    if path.is_empty() {
        prefix.to_owned()
    } else if prefix.is_empty() {
        path.to_owned()
    } else {
        format!("{prefix}.{path}")
    }
}

fn dropped(prefix: &str, path: &str, reason: &str) -> Entry {
    Entry {
        path: join(prefix, path),
        kind: Kind::Dropped,
        message: reason.to_owned(),
    }
}

/// Why a Compose key has no place in the manifests, by top-level key.
pub const REASONS: &[(&str, &str)] = &[
    (
        "ulimits",
        "Kubernetes has no per-container ulimits (set them in the nodes' container runtime)",
    ),
    (
        "logging",
        "logs are collected by the cluster's node agents, not per workload",
    ),
    (
        "container_name",
        "pods get generated names; other workloads reach it by its Service name",
    ),
    ("links", "workloads reach each other by Service name"),
    (
        "external_links",
        "workloads reach each other by Service name",
    ),
    ("devices", "Kubernetes gives devices through device plugins"),
    (
        "device_cgroup_rules",
        "Kubernetes gives devices through device plugins",
    ),
    (
        "gpus",
        "Kubernetes gives GPUs through device plugins (resources.limits)",
    ),
    ("cgroup_parent", "the kubelet places pods in cgroups"),
    ("cgroup", "the kubelet places pods in cgroups"),
    ("cpu_shares", "the kubelet derives CPU shares from requests"),
    ("cpu_quota", "use deploy.resources.limits.cpus"),
    ("cpu_period", "the kubelet sets the CFS period"),
    ("cpu_count", "Windows only"),
    ("cpu_percent", "Windows only"),
    ("cpu_rt_period", "no real-time CPU setting in Kubernetes"),
    ("cpu_rt_runtime", "no real-time CPU setting in Kubernetes"),
    ("cpuset", "CPU pinning is the kubelet's CPU manager policy"),
    ("blkio_config", "no block I/O limits in Kubernetes"),
    ("mem_swappiness", "swap is a node setting in Kubernetes"),
    ("memswap_limit", "swap is a node setting in Kubernetes"),
    (
        "oom_kill_disable",
        "the kubelet sets OOM behaviour from the QoS class",
    ),
    (
        "oom_score_adj",
        "the kubelet sets OOM scores from the QoS class",
    ),
    (
        "pids_limit",
        "the pid limit is a node setting (kubelet podPidsLimit)",
    ),
    (
        "storage_opt",
        "no per-container storage options in Kubernetes",
    ),
    (
        "stop_signal",
        "Kubernetes sends SIGTERM (the image's STOPSIGNAL where the runtime honours it)",
    ),
    (
        "init",
        "Kubernetes has no init process option (use an init in the image)",
    ),
    ("isolation", "Windows only"),
    ("credential_spec", "Windows only"),
    (
        "mac_address",
        "pods get their addresses from the cluster network",
    ),
    ("domainname", "pods get their domain from the cluster DNS"),
    ("runtime", "use a RuntimeClass"),
    (
        "userns_mode",
        "user namespaces are a pod setting (hostUsers) the kubelet must support",
    ),
    ("uts", "no UTS namespace option in Kubernetes"),
    ("volumes_from", "pods share volumes only within a pod"),
    ("attach", "logs are read with kubectl logs"),
    ("develop", "watch rules are for local development"),
    ("models", "AI models are not Kubernetes objects"),
    ("provider", "provider services are run by Compose itself"),
    (
        "use_api_socket",
        "there is no Docker API socket in a cluster",
    ),
    ("label_file", "labels are read into labels"),
    ("pull_refresh_after", "the kubelet pulls by imagePullPolicy"),
    (
        "post_start",
        "hooks run as a different user or with privileges",
    ),
    (
        "pre_stop",
        "hooks run as a different user or with privileges",
    ),
    (
        "pre_start",
        "Kubernetes has no pre-start hook (use an initContainer)",
    ),
    ("driver", "storage and networks are provided by the cluster"),
    (
        "driver_opts",
        "storage and networks are provided by the cluster",
    ),
    ("ipam", "addresses come from the cluster network"),
    (
        "enable_ipv4",
        "address families come from the cluster network",
    ),
    (
        "enable_ipv6",
        "address families come from the cluster network",
    ),
    ("attachable", "pods do not attach to networks"),
    ("labels", "kept as annotations where the object has them"),
    ("template_driver", "no templating of Secrets or ConfigMaps"),
];

/// The reason for a key of the [`REASONS`] table, or a general one.
pub fn reason_for(key: &str) -> &'static str {
    REASONS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, r)| *r)
        .unwrap_or("no Kubernetes equivalent")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| e.path.clone()).collect()
    }

    #[test]
    fn unused_keys_are_reported_whole() {
        let v = json!({"image": "x", "ulimits": {"nofile": {"soft": 1, "hard": 2}}, "x-mine": 1});
        let mut k = Keys::default();
        k.used("image");
        let r = k.report("services.api", &v);
        assert_eq!(paths(&r), ["services.api.ulimits"]);
        assert_eq!(r[0].kind, Kind::Dropped);
        assert!(r[0].message.contains("ulimits"), "{}", r[0]);
    }

    #[test]
    fn the_smallest_lost_part_is_named() {
        let v = json!({"ports": [{"target": 80, "host_ip": "10.0.0.1"}, {"target": 81}]});
        let mut k = Keys::default();
        k.used("ports[0].target");
        k.used("ports[1]");
        let r = k.report("services.web", &v);
        assert_eq!(paths(&r), ["services.web.ports[0].host_ip"]);
    }

    #[test]
    fn explicit_drops_keep_their_reason_and_changes_are_listed() {
        let v = json!({"security_opt": ["no-new-privileges:true", "seccomp:/x.json"],
                       "healthcheck": {"interval": "500ms"}});
        let mut k = Keys::default();
        k.used("security_opt[0]");
        k.drop("security_opt[1]", "a node-local profile");
        k.changed("healthcheck.interval", "500ms rounded up to 1s");
        let r = k.report("services.a", &v);
        assert_eq!(
            r.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            [
                "services.a.healthcheck.interval: changed: 500ms rounded up to 1s",
                "services.a.security_opt[1]: not carried over: a node-local profile",
            ]
        );
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(is_within("ports[0].x", "ports[0]"));
        assert!(is_within("ports", "ports"));
        assert!(!is_within("ports10", "ports1"));
        assert!(!is_within("ports[10]", "ports[1]"));
    }
}
