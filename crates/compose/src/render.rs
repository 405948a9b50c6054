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

/// Renders a project as YAML.
pub fn yaml(project: &Project) -> Result<String, Error> {
    // docker compose indents list items under their key and never folds long
    // lines; multi-line strings still use literal blocks.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.compact_list_indent = false;
    options.folded_wrap_chars = usize::MAX;
    options.min_fold_chars = usize::MAX;
    serde_saphyr::to_string_with_options(project, options).map_err(Error::Yaml)
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
