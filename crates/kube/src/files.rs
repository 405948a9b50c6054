//! `environment` (with `env_file` and `.env` interpolation already applied
//! by the loader) → a ConfigMap taken in with `envFrom`; `secrets:` →
//! Secrets mounted at `/run/secrets/<name>`; `configs:` and single-file
//! binds → ConfigMaps mounted at their target.
//!
//! Each file is mounted with `subPath`, so it lands at the exact path
//! Compose gives it without hiding the rest of the directory (a subPath
//! mount does not follow later edits of the object: the pod restarts to
//! see them). A top-level secret or config used by several services is
//! one object.

use std::path::Path;

use base64::Engine;
use rstack_compose::Project;
use rstack_compose::model::{FileMount, FileObject, Service};
use serde_json::{Map, Value, json};

use crate::names::{self, data_key};
use crate::objects::{Object, PodParts, Scope, obj};
use crate::report::Keys;
use crate::{Error, HostFiles};

/// The largest object the API server stores (etcd's request limit).
pub const MAX_DATA: usize = 1024 * 1024;

/// The Secrets and ConfigMaps of top-level secrets and configs, each
/// made once for every service that uses it.
#[derive(Debug, Default)]
pub struct Shared {
    made: Vec<(&'static str, String)>,
    pub objects: Vec<Object>,
    /// Notes on the top-level objects (a file that is not here).
    pub report: Vec<crate::Entry>,
}

/// `environment` → ConfigMap `<service>-env` + `envFrom`.
pub fn environment(
    kname: &str,
    svc: &Service,
    scope: &Scope,
    keys: &mut Keys,
    parts: &mut PodParts,
) {
    keys.used("env_file"); // read into `environment` by the loader
    let mut data = Map::new();
    for (k, v) in &svc.environment {
        let path = format!("environment.{k}");
        match v {
            Some(v) if names::is_env_name(k) => {
                data.insert(k.clone(), json!(v));
                keys.used(path);
            }
            Some(_) => keys.drop(path, "not a variable name a ConfigMap can hold"),
            None => keys.drop(
                path,
                "no value, and none in the environment Compose was run with",
            ),
        }
    }
    if data.is_empty() {
        return;
    }
    let name = names::derived(kname, "env");
    parts.env_from.push(json!({"configMapRef": {"name": name}}));
    parts.objects.push(scope.object(
        "v1",
        "ConfigMap",
        &name,
        &format!("services.{kname}.environment"),
        scope.selector(kname),
        obj([("data", Value::Object(data))]),
    ));
}

/// What differs between secrets and configs.
struct Kind {
    key: &'static str,
    object: &'static str,
    default_dir: &'static str,
}

const SECRETS: Kind = Kind {
    key: "secrets",
    object: "Secret",
    default_dir: "/run/secrets",
};
const CONFIGS: Kind = Kind {
    key: "configs",
    object: "ConfigMap",
    default_dir: "",
};

/// `secrets:` and `configs:` of a service.
pub fn secrets_and_configs(
    project: &Project,
    svc: &Service,
    scope: &Scope,
    files: &dyn HostFiles,
    shared: &mut Shared,
    keys: &mut Keys,
    parts: &mut PodParts,
) -> Result<(), Error> {
    for (kind, mounts, objects) in [
        (&SECRETS, &svc.secrets, &project.secrets),
        (&CONFIGS, &svc.configs, &project.configs),
    ] {
        for (i, m) in mounts.iter().enumerate() {
            let path = format!("{}[{i}]", kind.key);
            let Some(o) = objects.get(&m.source) else {
                keys.drop(path, "not defined at the top level");
                continue;
            };
            let Some(object_name) = shared_object(kind, &m.source, o, scope, files, shared)? else {
                keys.drop(
                    path,
                    "neither a file, content nor external: nothing to carry",
                );
                continue;
            };
            mount(kind, &object_name, m, &path, keys, parts);
        }
    }
    Ok(())
}

/// Makes the object of top-level secret/config `key` once; its name, or
/// `None` when there is nothing to make it from.
fn shared_object(
    kind: &Kind,
    key: &str,
    o: &FileObject,
    scope: &Scope,
    files: &dyn HostFiles,
    shared: &mut Shared,
) -> Result<Option<String>, Error> {
    if o.external == Some(true) {
        let name = o.name.as_deref().unwrap_or(key);
        return Ok(Some(names::dns_label(name, 253)));
    }
    let name = names::dns_label(key, 253);
    if shared.made.iter().any(|(k, n)| *k == kind.key && n == key) {
        return Ok(Some(name));
    }
    shared.made.push((kind.key, key.to_owned()));
    let content = match (&o.content, &o.file) {
        (Some(c), _) => c.clone().into_bytes(),
        (None, Some(file)) => match files.read(Path::new(file)) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Kept out of the checkout, as secrets often are: the
                // workloads name the object, the user creates it.
                let how = match kind.object {
                    "Secret" => "secret generic",
                    _ => "configmap",
                };
                shared.report.push(crate::Entry {
                    path: format!("{}.{key}.file", kind.key),
                    kind: crate::Kind::Note,
                    message: format!(
                        "{file} is not here: no {} is generated; create it in the cluster: kubectl create {how} {name} --from-file={}={file} -n {}",
                        kind.object,
                        data_key(key),
                        scope.namespace
                    ),
                });
                return Ok(Some(name));
            }
            Err(source) => {
                return Err(Error::Read {
                    path: file.into(),
                    what: format!("{}.{key}", kind.key),
                    source,
                });
            }
        },
        (None, None) => return Ok(None),
    };
    let body = data_body(kind.object == "Secret", &data_key(key), &content);
    shared.objects.push(scope.object(
        "v1",
        kind.object,
        &name,
        &format!("{}.{key}", kind.key),
        scope.project_labels(),
        body,
    ));
    Ok(Some(name))
}

/// The `data` (or `binaryData`) of a ConfigMap or Secret holding `content`
/// under `key`.
fn data_body(secret: bool, key: &str, content: &[u8]) -> Map<String, Value> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(content);
    if secret {
        return obj([("type", json!("Opaque")), ("data", json!({ key: b64 }))]);
    }
    match std::str::from_utf8(content) {
        Ok(text) => obj([("data", json!({ key: text }))]),
        Err(_) => obj([("binaryData", json!({ key: b64 }))]),
    }
}

/// The pod volume and mount of one secret or config.
fn mount(
    kind: &Kind,
    object: &str,
    m: &FileMount,
    path: &str,
    keys: &mut Keys,
    parts: &mut PodParts,
) {
    let target = match &m.target {
        Some(t) if t.starts_with('/') => t.clone(),
        Some(t) => format!("{}/{t}", kind.default_dir),
        None => format!("{}/{}", kind.default_dir, m.source),
    };
    let key = data_key(&m.source);
    let mut item = Map::from_iter([("key".into(), json!(key)), ("path".into(), json!(key))]);
    if let Some(mode) = m.mode {
        item.insert("mode".into(), json!(mode.0 & 0o777));
    }
    let source = if kind.object == "Secret" {
        obj([("secretName", json!(object)), ("items", json!([item]))])
    } else {
        obj([("name", json!(object)), ("items", json!([item]))])
    };
    let field = if kind.object == "Secret" {
        "secret"
    } else {
        "configMap"
    };
    parts.add(
        &format!("{}-{}", &kind.key[..kind.key.len() - 1], m.source),
        obj([(field, Value::Object(source))]),
        obj([
            ("mountPath", json!(target)),
            ("subPath", json!(key)),
            ("readOnly", json!(true)),
        ]),
    );
    for k in ["source", "target", "mode"] {
        keys.used(format!("{path}.{k}"));
    }
    for k in ["uid", "gid"] {
        keys.drop(
            format!("{path}.{k}"),
            "Kubernetes sets the group of mounted files only for the whole pod (fsGroup)",
        );
    }
}

/// A single-file bind → ConfigMap `<service>-<file>` mounted at the
/// target (ConfigMap mounts are read-only: a writable bind is reported).
#[allow(clippy::too_many_arguments)]
pub fn file_bind(
    kname: &str,
    source: &str,
    target: &str,
    read_only: bool,
    path: &str,
    scope: &Scope,
    files: &dyn HostFiles,
    keys: &mut Keys,
    parts: &mut PodParts,
) -> Result<(), Error> {
    let p = Path::new(source);
    let content = files.read(p).map_err(|source_err| Error::Read {
        path: p.into(),
        what: format!("services.{kname}.{path}"),
        source: source_err,
    })?;
    if content.len() > MAX_DATA {
        keys.drop(
            path,
            format!("{source} is larger than a ConfigMap can hold (1 MiB)"),
        );
        return Ok(());
    }
    let file_name = p.file_name().and_then(|f| f.to_str()).unwrap_or("file");
    let name = names::derived(kname, file_name);
    let key = data_key(file_name);
    let body = data_body(false, &key, &content);
    parts.objects.push(scope.object(
        "v1",
        "ConfigMap",
        &name,
        &format!("services.{kname}.{path}"),
        scope.selector(kname),
        body,
    ));
    let mut item = Map::from_iter([("key".into(), json!(key)), ("path".into(), json!(key))]);
    let mode = files.mode(p) & 0o777;
    if mode & 0o111 != 0 {
        item.insert("mode".into(), json!(mode));
    }
    parts.add(
        &name,
        obj([("configMap", json!({"name": name, "items": [item]}))]),
        obj([
            ("mountPath", json!(target)),
            ("subPath", json!(key)),
            ("readOnly", json!(true)),
        ]),
    );
    if read_only {
        keys.used(path);
    } else {
        keys.changed(path, "mounted read-only: a ConfigMap cannot be written to");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fake, project};

    #[test]
    fn environment_becomes_a_config_map() {
        let p =
            project("services:\n  api:\n    image: x\n    environment: {A: \"1\", ON: \"yes\"}\n");
        let svc = &p.services["api"];
        let scope = Scope::new("demo", None);
        let (mut keys, mut parts) = (Keys::default(), PodParts::default());
        environment("api", svc, &scope, &mut keys, &mut parts);
        assert_eq!(
            parts.env_from,
            [json!({"configMapRef": {"name": "api-env"}})]
        );
        assert_eq!(
            parts.objects[0].value["data"],
            json!({"A": "1", "ON": "yes"})
        );
        assert_eq!(parts.objects[0].value["metadata"]["namespace"], "demo");
    }

    #[test]
    fn unset_variables_are_reported() {
        let mut svc = Service::default();
        svc.environment.insert("GONE".into(), None);
        let scope = Scope::new("demo", None);
        let (mut keys, mut parts) = (Keys::default(), PodParts::default());
        environment("api", &svc, &scope, &mut keys, &mut parts);
        assert!(parts.objects.is_empty() && parts.env_from.is_empty());
        let r = keys.report("services.api", &serde_json::to_value(&svc).unwrap());
        assert!(
            r[0].to_string()
                .starts_with("services.api.environment.GONE: not carried over: no value")
        );
    }

    #[test]
    fn secrets_are_mounted_under_run_secrets_and_configs_at_their_target() {
        let p = project(
            "services:\n  api:\n    image: x\n    secrets: [db_password, {source: tls, target: /etc/tls.key, mode: 0400, uid: \"10\"}]\n    configs: [app_conf]\n  web:\n    image: x\n    secrets: [db_password]\n\
             secrets:\n  db_password: {file: ./pw.txt}\n  tls: {environment: TLS}\nconfigs:\n  app_conf: {content: \"debug = true\"}\n",
        );
        let files = Fake::default().file("pw.txt", b"hunter2");
        let scope = Scope::new("demo", None);
        let mut shared = Shared::default();
        let (mut keys, mut parts) = (Keys::default(), PodParts::default());
        for svc in ["api", "web"] {
            secrets_and_configs(
                &p,
                &p.services[svc],
                &scope,
                &files,
                &mut shared,
                &mut keys,
                &mut parts,
            )
            .unwrap();
        }
        let names: Vec<_> = shared
            .objects
            .iter()
            .map(|o| (o.kind.as_str(), o.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("Secret", "db-password"),
                ("Secret", "tls"),
                ("ConfigMap", "app-conf")
            ]
        );
        assert_eq!(
            shared.objects[0].value["data"],
            json!({"db_password": "aHVudGVyMg=="})
        );
        assert_eq!(
            shared.objects[2].value["data"],
            json!({"app_conf": "debug = true"})
        );
        assert_eq!(
            parts.mounts[0],
            json!({"name": "secret-db-password", "mountPath": "/run/secrets/db_password", "subPath": "db_password", "readOnly": true})
        );
        assert_eq!(parts.mounts[1]["mountPath"], "/etc/tls.key");
        assert_eq!(parts.volumes[1]["secret"]["items"][0]["mode"], 0o400);
        assert_eq!(parts.mounts[2]["mountPath"], "/app_conf");
        keys.used("image");
        keys.used("networks");
        let r = keys.report(
            "services.api",
            &serde_json::to_value(&p.services["api"]).unwrap(),
        );
        let r: Vec<String> = r.iter().map(|e| e.path.clone()).collect();
        assert_eq!(r, ["services.api.secrets[1].uid"]);
    }

    #[test]
    fn a_secret_file_that_is_not_here_is_left_to_the_user() {
        let p = project(
            "services:\n  api:\n    image: x\n    secrets: [s]\nsecrets:\n  s: {file: ./nope}\n",
        );
        let scope = Scope::new("demo", None);
        let (mut shared, mut parts) = (Shared::default(), PodParts::default());
        let svc = &p.services["api"];
        secrets_and_configs(
            &p,
            svc,
            &scope,
            &Fake::default(),
            &mut shared,
            &mut Keys::default(),
            &mut parts,
        )
        .unwrap();
        assert!(shared.objects.is_empty());
        assert_eq!(parts.volumes[0]["secret"]["secretName"], "s");
        assert_eq!(
            shared.report[0].to_string(),
            "secrets.s.file: note: /fake/demo/nope is not here: no Secret is generated; create it in the cluster: kubectl create secret generic s --from-file=s=/fake/demo/nope -n demo"
        );
    }

    #[test]
    fn a_file_bind_becomes_a_config_map_keeping_the_exec_bit() {
        let files = Fake::default()
            .file("run.sh", b"#!/bin/sh\n")
            .mode("run.sh", 0o755);
        let scope = Scope::new("demo", None);
        let (mut keys, mut parts) = (Keys::default(), PodParts::default());
        let src = files.path("run.sh");
        file_bind(
            "api",
            &src,
            "/usr/local/bin/run.sh",
            false,
            "volumes[0]",
            &scope,
            &files,
            &mut keys,
            &mut parts,
        )
        .unwrap();
        assert_eq!(parts.objects[0].name, "api-run-sh");
        assert_eq!(
            parts.objects[0].value["data"],
            json!({"run.sh": "#!/bin/sh\n"})
        );
        assert_eq!(parts.volumes[0]["configMap"]["items"][0]["mode"], 0o755);
        assert_eq!(parts.mounts[0]["subPath"], "run.sh");
        let v = json!({"volumes": [{"type": "bind"}]});
        assert!(
            keys.report("services.api", &v)[0]
                .to_string()
                .contains("changed: mounted read-only")
        );
    }
}
