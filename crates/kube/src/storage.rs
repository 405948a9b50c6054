//! `volumes`, `tmpfs` and `shm_size` → pod volumes: named volumes become
//! PersistentVolumeClaims (one per top-level volume, shared by the services
//! mounting it), anonymous volumes `emptyDir`, tmpfs an in-memory
//! `emptyDir`, single-file binds ConfigMaps ([`crate::files`]). A
//! directory bind names a directory of this machine that no cluster node
//! has: it is reported, and becomes a `hostPath` only when asked
//! (`--allow-hostpath`).
//!
//! Size and StorageClass of a claim: the volume's `x-kubernetes` (`size`,
//! `storage_class`), else the `x-kubernetes` (`pvc_size`, `storage_class`)
//! of the services mounting it (they must agree), else `--pvc-size` and
//! the cluster's default class. Access mode: the volume's `access_modes`,
//! else ReadWriteOnce.

use std::path::Path;

use indexmap::IndexMap;
use rstack_compose::Project;
use rstack_compose::model::ServiceVolume;
use rstack_compose::units::Bytes;
use serde_json::{Value, json};

use crate::extension::{self, AccessMode};
use crate::files;
use crate::names::{self, memory_quantity};
use crate::objects::{Object, PodParts, Scope, Svc, obj, string_map};
use crate::report::{Entry, Keys};
use crate::{Error, FileKind, HostFiles, Options};

/// The claims the services asked for, by top-level volume.
#[derive(Debug, Default)]
pub struct Claims {
    by_volume: IndexMap<String, Claim>,
}

#[derive(Debug, Default)]
struct Claim {
    /// The services mounting it, and their replica counts.
    users: Vec<(String, i64)>,
    /// A size and class some service asked for, and which one.
    size: Option<(String, String)>,
    class: Option<(String, String)>,
}

/// What one service's volumes need besides the service itself.
pub struct Env<'a> {
    pub project: &'a Project,
    pub opts: &'a Options,
    pub scope: &'a Scope,
    pub files: &'a dyn HostFiles,
}

/// The volumes of a service.
pub fn volumes(
    env: &Env<'_>,
    s: &Svc<'_>,
    claims: &mut Claims,
    keys: &mut Keys,
    parts: &mut PodParts,
) -> Result<(), Error> {
    let svc = s.svc;
    for (i, v) in svc.volumes.iter().enumerate() {
        let path = format!("volumes[{i}]");
        for k in [
            "type",
            "source",
            "target",
            "read_only",
            "consistency",
            "bind.create_host_path",
        ] {
            keys.used(format!("{path}.{k}"));
        }
        match v.kind.as_str() {
            "volume" => named(env, s, v, &path, claims, keys, parts)?,
            "tmpfs" => {
                let size = v.tmpfs.as_ref().and_then(|t| t.size);
                keys.used(format!("{path}.tmpfs.size"));
                memory_dir(&v.target, &v.target, size, parts);
            }
            "bind" => bind(env, s.kname, v, &path, keys, parts)?,
            _ => keys.drop(
                path,
                format!("a {} mount has no Kubernetes equivalent", v.kind),
            ),
        }
    }
    for (i, t) in svc.tmpfs.iter().enumerate() {
        let mut it = t.splitn(2, ':');
        let target = it.next().unwrap_or_default();
        let mut size = None;
        for opt in it
            .next()
            .unwrap_or_default()
            .split(',')
            .filter(|o| !o.is_empty())
        {
            match opt.strip_prefix("size=").map(Bytes::parse) {
                Some(Ok(b)) => size = Some(b),
                _ => keys.note(
                    format!("tmpfs[{i}]"),
                    format!("option {opt:?} left out: an emptyDir takes only a size"),
                ),
            }
        }
        keys.used(format!("tmpfs[{i}]"));
        memory_dir(target, target, size, parts);
    }
    if let Some(shm) = svc.shm_size {
        keys.used("shm_size");
        memory_dir("shm", "/dev/shm", Some(shm), parts);
    }
    Ok(())
}

/// An in-memory `emptyDir` at `target`.
fn memory_dir(name: &str, target: &str, size: Option<Bytes>, parts: &mut PodParts) {
    let mut dir = json!({"medium": "Memory"});
    if let Some(b) = size.filter(|b| b.0 > 0) {
        dir["sizeLimit"] = json!(memory_quantity(b.0));
    }
    parts.add(
        name,
        obj([("emptyDir", dir)]),
        obj([("mountPath", json!(target))]),
    );
}

/// A named (→ PVC) or anonymous (→ `emptyDir`) volume.
fn named(
    env: &Env<'_>,
    s: &Svc<'_>,
    v: &ServiceVolume,
    path: &str,
    claims: &mut Claims,
    keys: &mut Keys,
    parts: &mut PodParts,
) -> Result<(), Error> {
    let mount = obj([
        ("mountPath", json!(v.target)),
        (
            "subPath",
            json!(v.volume.as_ref().and_then(|o| o.subpath.clone())),
        ),
        (
            "readOnly",
            if v.read_only == Some(true) {
                json!(true)
            } else {
                Value::Null
            },
        ),
    ]);
    keys.used(format!("{path}.volume.subpath"));
    keys.used(format!("{path}.volume.nocopy"));
    let Some(key) = v.source.as_deref().filter(|s| !s.is_empty()) else {
        let empty = serde_json::Map::from_iter([("emptyDir".to_owned(), json!({}))]);
        parts.add(&v.target, empty, mount);
        return Ok(());
    };
    let top = env.project.volumes.get(key).cloned().unwrap_or_default();
    let vext = extension::of_volume(key, &top.extensions)?;
    let claim_name = if top.external == Some(true) {
        names::dns_label(top.name.as_deref().unwrap_or(key), 253)
    } else {
        let c = claims.by_volume.entry(key.to_owned()).or_default();
        c.users.push((s.name.to_owned(), s.svc.replicas()));
        agree(&mut c.size, &s.ext.pvc_size, s.name, key, "pvc_size")?;
        agree(
            &mut c.class,
            &s.ext.storage_class,
            s.name,
            key,
            "storage_class",
        )?;
        names::dns_label(key, 253)
    };
    if access_modes(&vext)
        .iter()
        .all(|m| matches!(m, AccessMode::ReadWriteOnce | AccessMode::ReadWriteOncePod))
    {
        parts.single_node_claim = true;
    }
    parts.add(
        key,
        obj([("persistentVolumeClaim", json!({"claimName": claim_name}))]),
        mount,
    );
    Ok(())
}

/// Records what `service` asks of a shared claim; two services asking
/// different things is an error naming both.
fn agree(
    have: &mut Option<(String, String)>,
    want: &Option<String>,
    service: &str,
    volume: &str,
    key: &str,
) -> Result<(), Error> {
    let Some(w) = want else { return Ok(()) };
    match have {
        Some((h, by)) if h != w => Err(Error::Invalid {
            service: service.to_owned(),
            key: format!("x-kubernetes.{key}"),
            message: format!(
                "{w:?} for volume {volume:?}, but service {by:?} asks for {h:?} (set it once on the volume's x-kubernetes)"
            ),
        }),
        Some(_) => Ok(()),
        None => {
            *have = Some((w.clone(), service.to_owned()));
            Ok(())
        }
    }
}

fn access_modes(vext: &extension::VolumeExt) -> Vec<AccessMode> {
    if vext.access_modes.is_empty() {
        vec![AccessMode::ReadWriteOnce]
    } else {
        vext.access_modes.clone()
    }
}

/// A bind mount: a file → ConfigMap; a directory → hostPath when allowed.
fn bind(
    env: &Env<'_>,
    kname: &str,
    v: &ServiceVolume,
    path: &str,
    keys: &mut Keys,
    parts: &mut PodParts,
) -> Result<(), Error> {
    let Some(source) = v.source.as_deref() else {
        keys.drop(path, "a bind with no source");
        return Ok(());
    };
    let read_only = v.read_only == Some(true);
    let kind = env.files.kind(Path::new(source));
    if kind == FileKind::File {
        return files::file_bind(
            kname, source, &v.target, read_only, path, env.scope, env.files, keys, parts,
        );
    }
    if !env.opts.allow_hostpath {
        let what = match kind {
            FileKind::Missing => "does not exist here (Docker would create it as a directory)",
            FileKind::Other => "is a socket or device of this machine",
            _ => "is a directory of this machine",
        };
        keys.drop(
            path,
            format!(
                "{source} {what}, which cluster nodes do not have: put its files in the image, or use --allow-hostpath for a hostPath volume"
            ),
        );
        return Ok(());
    }
    let host_type = match kind {
        FileKind::Directory => Some("Directory"),
        FileKind::Missing if v.bind.as_ref().and_then(|b| b.create_host_path) != Some(false) => {
            Some("DirectoryOrCreate")
        }
        _ => None,
    };
    let mut host = json!({"path": source});
    if let Some(t) = host_type {
        host["type"] = json!(t);
    }
    let mount = obj([
        ("mountPath", json!(v.target)),
        (
            "readOnly",
            if read_only { json!(true) } else { Value::Null },
        ),
    ]);
    parts.add(
        &format!("host-{}", v.target),
        obj([("hostPath", host)]),
        mount,
    );
    keys.changed(
        path,
        format!("a hostPath volume: the pod sees {source} of whichever node it runs on"),
    );
    Ok(())
}

/// The PersistentVolumeClaims of the named volumes the services mount,
/// with notes where a ReadWriteOnce claim is shared.
pub fn claim_objects(
    env: &Env<'_>,
    claims: &Claims,
    report: &mut Vec<Entry>,
) -> Result<Vec<Object>, Error> {
    let mut out = Vec::new();
    for (key, c) in &claims.by_volume {
        let top = env.project.volumes.get(key).cloned().unwrap_or_default();
        let vext = extension::of_volume(key, &top.extensions)?;
        let size = vext
            .size
            .clone()
            .or_else(|| c.size.as_ref().map(|(s, _)| s.clone()))
            .unwrap_or_else(|| env.opts.pvc_size.clone());
        let class = vext
            .storage_class
            .clone()
            .or_else(|| c.class.as_ref().map(|(s, _)| s.clone()));
        let modes = access_modes(&vext);
        let pods: i64 = c.users.iter().map(|(_, n)| n).sum();
        if modes == [AccessMode::ReadWriteOnce] && pods > 1 {
            let users: Vec<&str> = c.users.iter().map(|(s, _)| s.as_str()).collect();
            report.push(Entry {
                path: format!("volumes.{key}"),
                kind: crate::Kind::Note,
                message: format!(
                    "mounted by {} pods ({}): a ReadWriteOnce claim serves pods on one node only; set x-kubernetes.access_modes: [ReadWriteMany] on the volume if its storage class allows it",
                    pods,
                    users.join(", ")
                ),
            });
        }
        let modes: Vec<&str> = modes.iter().map(|m| m.as_str()).collect();
        let spec = obj([
            ("accessModes", json!(modes)),
            ("storageClassName", json!(class)),
            ("resources", json!({"requests": {"storage": size}})),
        ]);
        let mut labels = env.scope.project_labels();
        labels.insert(
            "app.kubernetes.io/component".into(),
            json!(names::label_value(key)),
        );
        out.push(env.scope.annotated(
            "v1",
            "PersistentVolumeClaim",
            &names::dns_label(key, 253),
            &format!("volumes.{key}"),
            labels,
            string_map(&top.labels),
            obj([("spec", Value::Object(spec))]),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fake, project};

    fn run(p: &Project, files: &Fake, opts: &Options, svc: &str) -> (PodParts, Keys, Claims) {
        let scope = Scope::new(&p.name, None);
        let env = Env {
            project: p,
            opts,
            scope: &scope,
            files,
        };
        let s = &p.services[svc];
        let ext = extension::of_service(svc, &s.extensions).unwrap();
        let (mut parts, mut keys, mut claims) =
            (PodParts::default(), Keys::default(), Claims::default());
        let one = Svc {
            name: svc,
            kname: svc,
            svc: s,
            ext: &ext,
        };
        volumes(&env, &one, &mut claims, &mut keys, &mut parts).unwrap();
        (parts, keys, claims)
    }

    fn report(p: &Project, svc: &str, keys: &Keys) -> Vec<String> {
        let mut keys = keys.clone();
        keys.used("image");
        keys.used("networks");
        keys.report(
            &format!("services.{svc}"),
            &serde_json::to_value(&p.services[svc]).unwrap(),
        )
        .iter()
        .map(|e| e.to_string())
        .collect()
    }

    #[test]
    fn named_anonymous_and_tmpfs_volumes() {
        let p = project(
            "services:\n  db:\n    image: x\n    volumes: [\"data:/var/lib/db\", \"/cache\", {type: tmpfs, target: /run, tmpfs: {size: 64m}}]\n    tmpfs: [\"/tmp:size=16m,noexec\"]\n    shm_size: 128m\nvolumes:\n  data: {x-kubernetes: {size: 5Gi, storage_class: fast}}\n",
        );
        let (parts, keys, claims) = run(&p, &Fake::default(), &Options::default(), "db");
        assert_eq!(
            parts.volumes,
            [
                json!({"name": "data", "persistentVolumeClaim": {"claimName": "data"}}),
                json!({"name": "cache", "emptyDir": {}}),
                json!({"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}),
                json!({"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}),
                json!({"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "128Mi"}}),
            ]
        );
        assert_eq!(
            parts.mounts[0],
            json!({"name": "data", "mountPath": "/var/lib/db"})
        );
        assert!(parts.single_node_claim);
        let r = report(&p, "db", &keys);
        assert_eq!(
            r,
            [
                "services.db.tmpfs[0]: note: option \"noexec\" left out: an emptyDir takes only a size"
            ]
        );
        let scope = Scope::new("demo", None);
        let opts = Options::default();
        let env = Env {
            project: &p,
            opts: &opts,
            scope: &scope,
            files: &Fake::default(),
        };
        let mut notes = Vec::new();
        let pvc = claim_objects(&env, &claims, &mut notes).unwrap();
        assert_eq!(
            pvc[0].value["spec"],
            json!({"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                   "resources": {"requests": {"storage": "5Gi"}}})
        );
        assert!(notes.is_empty());
    }

    #[test]
    fn directory_binds_are_reported_unless_hostpath_is_allowed() {
        let p = project("services:\n  web:\n    image: x\n    volumes: [\"./site:/srv:ro\"]\n");
        let files = Fake::default().dir("site");
        let (parts, keys, _) = run(&p, &files, &Options::default(), "web");
        assert!(parts.volumes.is_empty());
        let r = report(&p, "web", &keys);
        assert!(r[0].starts_with("services.web.volumes[0]: not carried over: /fake/demo/site is a directory of this machine"), "{r:?}");
        let opts = Options {
            allow_hostpath: true,
            ..Options::default()
        };
        let (parts, keys, _) = run(&p, &files, &opts, "web");
        assert_eq!(
            parts.volumes,
            [
                json!({"name": "host-srv", "hostPath": {"path": "/fake/demo/site", "type": "Directory"}})
            ]
        );
        assert_eq!(
            parts.mounts[0],
            json!({"name": "host-srv", "mountPath": "/srv", "readOnly": true})
        );
        assert!(report(&p, "web", &keys)[0].contains("changed: a hostPath volume"));
    }

    #[test]
    fn a_shared_claim_must_agree_and_is_noted() {
        let yaml = "services:\n  a:\n    image: x\n    volumes: [\"dd:/d\"]\n    x-kubernetes: {pvc_size: 2Gi}\n  b:\n    image: x\n    volumes: [\"dd:/d\"]\n    x-kubernetes: {pvc_size: 3Gi}\nvolumes:\n  dd: {}\n";
        let p = project(yaml);
        let scope = Scope::new("demo", None);
        let opts = Options::default();
        let files = Fake::default();
        let env = Env {
            project: &p,
            opts: &opts,
            scope: &scope,
            files: &files,
        };
        let mut claims = Claims::default();
        let mut res = Ok(());
        for s in ["a", "b"] {
            let ext = extension::of_service(s, &p.services[s].extensions).unwrap();
            let one = Svc {
                name: s,
                kname: s,
                svc: &p.services[s],
                ext: &ext,
            };
            res = res.and(volumes(
                &env,
                &one,
                &mut claims,
                &mut Keys::default(),
                &mut PodParts::default(),
            ));
        }
        let err = res.unwrap_err().to_string();
        assert!(err.starts_with("services.b.x-kubernetes.pvc_size: \"3Gi\" for volume \"dd\", but service \"a\" asks for \"2Gi\""), "{err}");
        let p = project(&yaml.replace("3Gi", "2Gi"));
        let env = Env { project: &p, ..env };
        let mut claims = Claims::default();
        for s in ["a", "b"] {
            let ext = extension::of_service(s, &p.services[s].extensions).unwrap();
            let one = Svc {
                name: s,
                kname: s,
                svc: &p.services[s],
                ext: &ext,
            };
            volumes(
                &env,
                &one,
                &mut claims,
                &mut Keys::default(),
                &mut PodParts::default(),
            )
            .unwrap();
        }
        let mut notes = Vec::new();
        let pvc = claim_objects(&env, &claims, &mut notes).unwrap();
        assert_eq!(
            pvc[0].value["spec"]["resources"]["requests"]["storage"],
            "2Gi"
        );
        assert!(
            notes[0]
                .to_string()
                .starts_with("volumes.dd: note: mounted by 2 pods (a, b)"),
            "{:?}",
            notes
        );
    }
}
