//! `user`, `cap_add`/`cap_drop`, `read_only`, `privileged`, `security_opt`,
//! `group_add` and `sysctls` → the container's and the pod's
//! `securityContext`.
//!
//! Docker confines every container with its default seccomp profile;
//! Kubernetes does so only when asked, so the container gets
//! `seccompProfile: RuntimeDefault` unless Compose says `seccomp:unconfined`
//! (or `privileged`, where Docker drops the profile too). `runAsNonRoot`
//! is set when the user the container runs as is known not to be root:
//! from a numeric `user:`, or from the image's USER resolved in its own
//! /etc/passwd (what the caller found in the image store). A user name
//! alone cannot be checked by the kubelet, so the resolved uid goes into
//! `runAsUser` with it.

use rstack_compose::model::Service;
use serde_json::{Map, Value, json};

use crate::ImageFacts;
use crate::RunAs;
use crate::report::Keys;

/// The container's and the pod's security settings.
#[derive(Debug, Default, PartialEq)]
pub struct Security {
    pub container: Map<String, Value>,
    pub pod: Map<String, Value>,
    /// The numeric user, when known (for `fsGroup` of volumes).
    pub run_as: Option<RunAs>,
    /// The image is not in the store, so `runAsNonRoot` could not be decided.
    pub image_unknown: bool,
}

/// `uid[:gid]` when both are numbers.
fn numeric_user(spec: &str) -> Option<RunAs> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    Some(RunAs {
        uid: u.parse().ok()?,
        gid: match g {
            Some(g) => Some(g.parse().ok()?),
            None => None,
        },
    })
}

/// Who the container runs as, and whether `runAsUser` must say it.
fn run_as(svc: &Service, facts: Option<&ImageFacts>, keys: &mut Keys) -> Option<(RunAs, bool)> {
    if let Some(user) = &svc.user {
        if let Some(r) = numeric_user(user) {
            keys.used("user");
            return Some((r, true));
        }
        return match facts.and_then(|f| f.run_as) {
            Some(r) => {
                keys.used("user");
                Some((r, true))
            }
            None => {
                keys.drop(
                    "user",
                    "a user name: Kubernetes wants numbers, and the image is not in the store (or has no such user) to look it up",
                );
                None
            }
        };
    }
    let f = facts?;
    let user = f.user.trim();
    if user.is_empty() {
        return None; // root, Docker's default
    }
    match f.run_as {
        Some(r) => Some((r, numeric_user(user).is_none())),
        None => {
            keys.note(
                "image",
                format!(
                    "the image's USER {user:?} is not in its /etc/passwd: runAsNonRoot left out"
                ),
            );
            None
        }
    }
}

/// The security settings of `svc`.
pub fn security(svc: &Service, facts: Option<&ImageFacts>, keys: &mut Keys) -> Security {
    let mut c = Map::new();
    let mut pod = Map::new();
    let who = run_as(svc, facts, keys);
    if let Some((r, explicit)) = who {
        if explicit {
            c.insert("runAsUser".into(), json!(r.uid));
            if let Some(g) = r.gid {
                c.insert("runAsGroup".into(), json!(g));
            }
        }
        if r.uid != 0 {
            c.insert("runAsNonRoot".into(), json!(true));
        }
    }
    capabilities(svc, keys, &mut c);
    if svc.read_only == Some(true) {
        c.insert("readOnlyRootFilesystem".into(), json!(true));
    }
    keys.used("read_only");
    let privileged = svc.privileged == Some(true);
    if privileged {
        c.insert("privileged".into(), json!(true));
    }
    keys.used("privileged");
    let unconfined = security_opts(svc, keys, &mut c);
    if !privileged && !unconfined {
        c.insert("seccompProfile".into(), json!({"type": "RuntimeDefault"}));
    }
    pod_settings(svc, keys, &mut pod);
    Security {
        container: c,
        pod,
        run_as: who.map(|(r, _)| r),
        image_unknown: facts.is_none() && svc.user.is_none(),
    }
}

fn capabilities(svc: &Service, keys: &mut Keys, c: &mut Map<String, Value>) {
    let name = |s: &String| {
        let up = s.to_ascii_uppercase();
        up.strip_prefix("CAP_").unwrap_or(&up).to_owned()
    };
    let add: Vec<String> = svc.cap_add.iter().map(name).collect();
    let drop: Vec<String> = svc.cap_drop.iter().map(name).collect();
    keys.used("cap_add");
    keys.used("cap_drop");
    let mut caps = Map::new();
    if !add.is_empty() {
        caps.insert("add".into(), json!(add));
    }
    if !drop.is_empty() {
        caps.insert("drop".into(), json!(drop));
    }
    if !caps.is_empty() {
        c.insert("capabilities".into(), Value::Object(caps));
    }
}

/// `security_opt`; true when seccomp is `unconfined`.
fn security_opts(svc: &Service, keys: &mut Keys, c: &mut Map<String, Value>) -> bool {
    let mut unconfined = false;
    let mut selinux = Map::new();
    for (i, opt) in svc.security_opt.iter().enumerate() {
        let path = format!("security_opt[{i}]");
        let (key, value) = match opt.find([':', '=']) {
            Some(at) => (&opt[..at], &opt[at + 1..]),
            None => (opt.as_str(), ""),
        };
        match (key, value) {
            ("no-new-privileges", "" | "true") => {
                c.insert("allowPrivilegeEscalation".into(), json!(false));
                keys.used(path);
            }
            ("no-new-privileges", "false") => keys.used(path),
            ("seccomp", "unconfined") => {
                c.insert("seccompProfile".into(), json!({"type": "Unconfined"}));
                unconfined = true;
                keys.used(path);
            }
            ("apparmor", "unconfined") => {
                c.insert("appArmorProfile".into(), json!({"type": "Unconfined"}));
                keys.used(path);
            }
            ("apparmor", name) if !name.is_empty() => {
                c.insert(
                    "appArmorProfile".into(),
                    json!({"type": "Localhost", "localhostProfile": name}),
                );
                keys.used(path);
            }
            ("label", l) if ["user:", "role:", "type:", "level:"].iter().any(|p| l.starts_with(p)) => {
                let (field, v) = l.split_once(':').unwrap_or((l, ""));
                selinux.insert(field.into(), json!(v));
                keys.used(path);
            }
            ("seccomp", _) => keys.drop(
                path,
                "a seccomp profile file: install it on the nodes and use a Localhost seccompProfile",
            ),
            _ => keys.drop(path, "no securityContext equivalent"),
        }
    }
    if !selinux.is_empty() {
        c.insert("seLinuxOptions".into(), Value::Object(selinux));
    }
    unconfined
}

/// `sysctls` and `group_add`, which Kubernetes sets for the whole pod.
fn pod_settings(svc: &Service, keys: &mut Keys, pod: &mut Map<String, Value>) {
    let mut groups = Vec::new();
    for (i, g) in svc.group_add.iter().enumerate() {
        match g.parse::<u32>() {
            Ok(n) => {
                groups.push(n);
                keys.used(format!("group_add[{i}]"));
            }
            Err(_) => keys.drop(
                format!("group_add[{i}]"),
                "a group name: Kubernetes wants group numbers",
            ),
        }
    }
    if !groups.is_empty() {
        pod.insert("supplementalGroups".into(), json!(groups));
    }
    if !svc.sysctls.is_empty() {
        let list: Vec<Value> = svc
            .sysctls
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        pod.insert("sysctls".into(), json!(list));
    }
    keys.used("sysctls");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(yaml: serde_json::Value) -> Service {
        serde_json::from_value(yaml).unwrap()
    }

    fn report(s: &Service, keys: &Keys) -> Vec<String> {
        keys.report("services.s", &serde_json::to_value(s).unwrap())
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn compose_security_keys_become_a_security_context() {
        let s = svc(json!({
            "user": "1000:2000", "cap_add": ["NET_ADMIN"], "cap_drop": ["CAP_ALL"],
            "read_only": true, "security_opt": ["no-new-privileges:true", "label=type:svirt_t"],
            "sysctls": {"net.core.somaxconn": "1024"}, "group_add": ["10", "audio"],
        }));
        let mut keys = Keys::default();
        let sec = security(&s, None, &mut keys);
        assert_eq!(
            Value::Object(sec.container),
            json!({"runAsUser": 1000, "runAsGroup": 2000, "runAsNonRoot": true,
                   "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                   "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                   "seccompProfile": {"type": "RuntimeDefault"},
                   "seLinuxOptions": {"type": "svirt_t"}})
        );
        assert_eq!(
            Value::Object(sec.pod),
            json!({"supplementalGroups": [10],
                   "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]})
        );
        assert_eq!(
            report(&s, &keys),
            [
                "services.s.group_add[1]: not carried over: a group name: Kubernetes wants group numbers"
            ]
        );
    }

    #[test]
    fn run_as_non_root_comes_from_the_image_user() {
        let s = Service::default();
        let mut keys = Keys::default();
        // numeric USER: the kubelet can check it, no runAsUser needed
        let f = ImageFacts {
            user: "65534".into(),
            run_as: Some(RunAs {
                uid: 65534,
                gid: Some(65534),
            }),
            exposed: Vec::new(),
        };
        let sec = security(&s, Some(&f), &mut keys);
        assert_eq!(sec.container.get("runAsNonRoot"), Some(&json!(true)));
        assert_eq!(sec.container.get("runAsUser"), None);
        // a USER name: the resolved uid goes along
        let f = ImageFacts {
            user: "app".into(),
            run_as: Some(RunAs {
                uid: 1000,
                gid: Some(1000),
            }),
            exposed: Vec::new(),
        };
        let sec = security(&s, Some(&f), &mut keys);
        assert_eq!(sec.container.get("runAsUser"), Some(&json!(1000)));
        assert_eq!(sec.container.get("runAsNonRoot"), Some(&json!(true)));
        // root image: nothing claimed
        let f = ImageFacts::default();
        let sec = security(&s, Some(&f), &mut keys);
        assert_eq!(sec.container.get("runAsNonRoot"), None);
        assert!(report(&s, &keys).is_empty());
        // not in the store: the caller is told, to report it
        let sec = security(&s, None, &mut keys);
        assert_eq!(sec.container.get("runAsNonRoot"), None);
        assert!(sec.image_unknown);
    }

    #[test]
    fn root_user_and_unresolvable_names() {
        let mut keys = Keys::default();
        let sec = security(&svc(json!({"user": "0"})), None, &mut keys);
        assert_eq!(sec.container.get("runAsUser"), Some(&json!(0)));
        assert_eq!(sec.container.get("runAsNonRoot"), None);
        let named = svc(json!({"user": "postgres"}));
        let mut keys = Keys::default();
        let sec = security(&named, None, &mut keys);
        assert_eq!(sec.container.get("runAsUser"), None);
        assert!(
            report(&named, &keys)[0].starts_with("services.s.user: not carried over: a user name")
        );
    }

    #[test]
    fn privileged_and_unconfined_drop_the_default_seccomp() {
        let mut keys = Keys::default();
        let p = security(&svc(json!({"privileged": true})), None, &mut keys);
        assert_eq!(p.container.get("privileged"), Some(&json!(true)));
        assert_eq!(p.container.get("seccompProfile"), None);
        let s = svc(
            json!({"security_opt": ["seccomp:unconfined", "apparmor=my-profile", "seccomp:/p.json"]}),
        );
        let mut keys = Keys::default();
        let u = security(&s, None, &mut keys);
        assert_eq!(
            u.container.get("seccompProfile"),
            Some(&json!({"type": "Unconfined"}))
        );
        assert_eq!(
            u.container.get("appArmorProfile"),
            Some(&json!({"type": "Localhost", "localhostProfile": "my-profile"}))
        );
        let r = report(&s, &keys);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(
            r[0].starts_with(
                "services.s.security_opt[2]: not carried over: a seccomp profile file"
            )
        );
    }
}
