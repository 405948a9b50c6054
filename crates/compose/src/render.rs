//! The canonical YAML of a project, as `rstack config` prints it.
//!
//! serde-saphyr serialises the typed model; the model's field order and
//! `skip_serializing_if` rules give `docker compose config`'s shape (`name`
//! first, long syntax, absolute paths, empty fields left out).

use crate::project::Project;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("render the project as YAML")]
    Yaml(#[source] serde_saphyr::SerializeError),
}

/// The project as `docker compose config` shows it: every map sorted by
/// key, as Go prints maps (services, resources, and the maps inside
/// services; lists keep their order), and no secret content.
pub fn sorted(project: &Project) -> Project {
    let mut p = project.clone();
    p.services.sort_keys();
    p.networks.sort_keys();
    p.volumes.sort_keys();
    p.secrets.sort_keys();
    p.configs.sort_keys();
    p.models.sort_keys();
    p.extensions.sort_keys();
    for s in p.services.values_mut() {
        s.environment.sort_keys();
        s.labels.sort_keys();
        s.annotations.sort_keys();
        s.depends_on.sort_keys();
        s.networks.sort_keys();
        s.sysctls.sort_keys();
        s.ulimits.sort_keys();
        s.storage_opt.sort_keys();
        if let Some(b) = s.build.as_mut() {
            b.args.sort_keys();
            b.labels.sort_keys();
            b.additional_contexts.sort_keys();
        }
        if let Some(l) = s.logging.as_mut() {
            l.options.sort_keys();
        }
        if let Some(d) = s.deploy.as_mut() {
            d.labels.sort_keys();
        }
    }
    // Like compose-go: a secret's content is never printed, nor a config's
    // content that came from the environment.
    for s in p.secrets.values_mut() {
        s.content = None;
    }
    for c in p.configs.values_mut() {
        if c.environment.is_some() {
            c.content = None;
        }
    }
    for n in p.networks.values_mut() {
        n.labels.sort_keys();
        n.driver_opts.sort_keys();
    }
    for v in p.volumes.values_mut() {
        v.labels.sort_keys();
        v.driver_opts.sort_keys();
    }
    p
}

/// Renders a project as YAML, maps sorted like `docker compose config`.
pub fn yaml(project: &Project) -> Result<String, Error> {
    let project = &sorted(project);
    // docker compose indents list items under their key and never folds long
    // lines; multi-line strings still use literal blocks.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.compact_list_indent = false;
    options.folded_wrap_chars = usize::MAX;
    options.min_fold_chars = usize::MAX;
    serde_saphyr::to_string_with_options(project, options).map_err(Error::Yaml)
}

/// Renders a canonical tree (from [`crate::load_tree`]) as YAML: `name`
/// first, then every map sorted by key.
pub fn yaml_value(tree: &serde_json::Value) -> Result<String, Error> {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                keys.into_iter()
                    .filter(|k| {
                        !(k.as_str() == "environment"
                            && o[*k].as_object().is_some_and(|e| e.is_empty()))
                    })
                    .map(|k| (k.clone(), sort(&o[k])))
                    .collect()
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    let mut out = serde_json::Map::new();
    if let Some(o) = tree.as_object() {
        for k in [
            "name", "services", "networks", "volumes", "secrets", "configs",
        ] {
            if let Some(v) = o.get(k) {
                out.insert(k.to_string(), sort(v));
            }
        }
        for (k, v) in o {
            if !out.contains_key(k) {
                out.insert(k.clone(), sort(v));
            }
        }
    }
    let mut options = serde_saphyr::SerializerOptions::default();
    options.compact_list_indent = false;
    options.folded_wrap_chars = usize::MAX;
    options.min_fold_chars = usize::MAX;
    serde_saphyr::to_string_with_options(&serde_json::Value::Object(out), options)
        .map_err(Error::Yaml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_name_first_and_long_syntax() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  web:\n    image: nginx\n    ports: [\"8080:80\"]\n    environment: [A=1]\n    volumes: [./data:/data]\n",
        )
        .unwrap();
        let mut env = indexmap::IndexMap::new();
        env.insert("HOME".to_string(), "/root".to_string());
        let mut o = crate::Options::new(dir.path(), env);
        o.project_name = Some("demo".into());
        let p = crate::load(&o).unwrap();
        let text = yaml(&p).unwrap();
        println!("{text}");
        assert!(text.starts_with("name: demo\n"), "{text}");
        assert!(text.contains("published: \"8080\""), "{text}");
        assert!(text.contains("name: demo_default"), "{text}");
    }
}

#[cfg(test)]
mod no_interpolate {
    #[test]
    fn values_with_variables_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "name: n\nservices:\n  web:\n    image: \"nginx:${TAG}\"\n    ports: [\"${PORT}:80\", \"81\"]\n    stop_grace_period: ${GRACE}\n",
        )
        .unwrap();
        let mut o = crate::Options::new(dir.path(), indexmap::IndexMap::new());
        o.interpolate = false;
        let tree = crate::load_tree(&o).unwrap();
        let text = super::yaml_value(&tree).unwrap();
        assert!(text.starts_with("name: "), "{text}");
        assert!(!text.contains("environment"), "{text}");
        assert!(text.contains("image: nginx:${TAG}"), "{text}");
        assert!(text.contains("- ${PORT}:80"), "{text}");
        assert!(text.contains("stop_grace_period: ${GRACE}"), "{text}");
        assert!(text.contains("target: 81"), "{text}");
    }
}
