//! Manifests as YAML: one multi-document stream, or one file per object
//! (`<name>-<kind>.yaml`, kompose's naming) with an optional
//! `kustomization.yaml` listing them.
//!
//! Strings are written so that Kubernetes' YAML reader (YAML 1.1 rules:
//! `yes`, `on`, `0755` are not strings there) reads them back as strings:
//! serde-saphyr quotes every string a YAML 1.1 or 1.2 reader would take for
//! something else, and the tests hold it to that.

use serde_json::Value;

use crate::objects::Object;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("render {kind} {name:?} as YAML")]
    Yaml {
        kind: String,
        name: String,
        #[source]
        source: serde_saphyr::SerializeError,
    },
}

fn options() -> serde_saphyr::SerializerOptions {
    let mut o = serde_saphyr::SerializerOptions::default();
    o.compact_list_indent = false;
    o.folded_wrap_chars = usize::MAX;
    o.min_fold_chars = usize::MAX;
    o
}

/// One object as a YAML document (no `---`).
pub fn document(o: &Object) -> Result<String, Error> {
    serde_saphyr::to_string_with_options(&o.value, options()).map_err(|source| Error::Yaml {
        kind: o.kind.clone(),
        name: o.name.clone(),
        source,
    })
}

/// Every object, as one stream of `---`-separated documents.
pub fn stream(objects: &[Object]) -> Result<String, Error> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&document(o)?);
    }
    Ok(out)
}

/// The file name of an object.
pub fn file_name(o: &Object) -> String {
    format!("{}-{}.yaml", o.name, o.kind.to_ascii_lowercase())
}

/// Each object as (file name, YAML), plus `kustomization.yaml` when asked.
pub fn files(objects: &[Object], kustomize: bool) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for o in objects {
        out.push((file_name(o), document(o)?));
    }
    if kustomize {
        let resources: Vec<Value> = out.iter().map(|(n, _)| Value::String(n.clone())).collect();
        let k = serde_json::json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
        });
        let o = Object {
            kind: "Kustomization".into(),
            name: "kustomization".into(),
            origin: String::new(),
            value: k,
        };
        out.push(("kustomization.yaml".into(), document(&o)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Object {
        Object {
            kind: "ConfigMap".into(),
            name: "x".into(),
            origin: String::new(),
            value,
        }
    }

    #[test]
    fn ambiguous_strings_stay_strings() {
        let tricky = [
            "yes", "no", "on", "off", "y", "n", "true", "null", "~", "0755", "8080", "1e3", "0x1F",
            "1:30", "", " x", "a: b", "- a", "#c", "@x", "*x", "&x", "!x", "%x", "`x", "'q'",
            "\"q\"", "a\nb",
        ];
        let data: serde_json::Map<String, Value> = tricky
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("k{i}"), json!(t)))
            .collect();
        let yaml = document(&object(json!({"data": data}))).unwrap();
        // read back with YAML 1.1 rules too: every value must still be that string
        let back: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        for (i, t) in tricky.iter().enumerate() {
            assert_eq!(back["data"][format!("k{i}")], json!(t), "{t:?} in\n{yaml}");
        }
        for t in ["yes", "no", "on", "off", "y", "n"] {
            let line = yaml
                .lines()
                .find(|l| l.trim_start().ends_with(&format!(": {t}")))
                .map(str::to_owned);
            assert_eq!(line, None, "{t} is unquoted (a YAML 1.1 boolean):\n{yaml}");
        }
    }

    #[test]
    fn a_stream_and_files() {
        let objs = [object(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        )];
        let s = stream(&objs).unwrap();
        assert_eq!(
            s,
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
        );
        let f = files(&objs, true).unwrap();
        assert_eq!(f[0].0, "x-configmap.yaml");
        assert_eq!(f[1].0, "kustomization.yaml");
        assert!(
            f[1].1.contains("resources:\n  - x-configmap.yaml\n"),
            "{}",
            f[1].1
        );
    }
}
