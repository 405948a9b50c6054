//! The loaded project: what `rstack up` executes and `rstack config` prints.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Serialize;

use crate::model::{FileObject, Network, Service, Volume};

/// A fully loaded, merged, interpolated, validated Compose project.
///
/// Services hold only the active ones (profiles applied); paths are
/// absolute; the default network is present when a service uses it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Project {
    /// The project name (`-p`, `COMPOSE_PROJECT_NAME`, `name:`, or the
    /// directory name), already checked against `[a-z0-9][a-z0-9_-]*`.
    pub name: String,
    #[serde(skip)]
    pub working_dir: PathBuf,
    /// The Compose files in load order (`-` for standard input).
    #[serde(skip)]
    pub compose_files: Vec<PathBuf>,
    /// Variables used for interpolation (shell environment over `.env`).
    #[serde(skip)]
    pub environment: IndexMap<String, String>,
    pub services: IndexMap<String, Service>,
    /// Services left out because none of their profiles is active.
    #[serde(skip)]
    pub disabled_services: IndexMap<String, Service>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub networks: IndexMap<String, Network>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub volumes: IndexMap<String, Volume>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub secrets: IndexMap<String, FileObject>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub configs: IndexMap<String, FileObject>,
    /// Top-level AI `models` (kept as written; rstack does not run them).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub models: IndexMap<String, serde_json::Value>,
    /// Top-level `x-*` extensions.
    #[serde(flatten)]
    pub extensions: IndexMap<String, serde_json::Value>,
    /// Warnings met while loading (obsolete `version:`, unset variables...).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Project {
    /// Every profile named by a service, sorted (for `config --profiles`).
    pub fn all_profiles(&self) -> Vec<String> {
        let mut p: Vec<String> = self
            .services
            .values()
            .chain(self.disabled_services.values())
            .flat_map(|s| s.profiles.iter().cloned())
            .collect();
        p.sort();
        p.dedup();
        p
    }

    /// The container name of replica `index` (1-based) of a service:
    /// `container_name` when set, else `<project>-<service>-<index>`, as
    /// docker compose names them.
    pub fn container_name(&self, service: &str, index: u32) -> String {
        match self
            .services
            .get(service)
            .and_then(|s| s.container_name.clone())
        {
            Some(n) => n,
            None => format!("{}-{service}-{index}", self.name),
        }
    }

    /// The image a service runs: `image`, else `<project>-<service>` (the
    /// name docker compose gives an image it builds).
    pub fn image_name(&self, service: &str) -> String {
        match self.services.get(service).and_then(|s| s.image.clone()) {
            Some(i) => i,
            None => format!("{}-{service}", self.name),
        }
    }

    /// The real name of a network of the file (`name:` or `<project>_<key>`).
    pub fn network_name(&self, key: &str) -> String {
        match self.networks.get(key).and_then(|n| n.name.clone()) {
            Some(n) => n,
            None => format!("{}_{key}", self.name),
        }
    }

    /// The real name of a named volume of the file (`name:` or `<project>_<key>`).
    pub fn volume_name(&self, key: &str) -> String {
        match self.volumes.get(key).and_then(|v| v.name.clone()) {
            Some(n) => n,
            None => format!("{}_{key}", self.name),
        }
    }

    /// The start and stop order of the services (see [`crate::plan`]).
    pub fn plan(&self) -> Result<crate::plan::Plan, crate::plan::Error> {
        crate::plan::Plan::new(&self.services)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let mut p = Project {
            name: "demo".into(),
            ..Project::default()
        };
        let web = Service {
            container_name: Some("web1".into()),
            ..Service::default()
        };
        p.services.insert("web".into(), web);
        p.services.insert("db".into(), Service::default());
        assert_eq!(p.container_name("web", 1), "web1");
        assert_eq!(p.container_name("db", 2), "demo-db-2");
        assert_eq!(p.image_name("db"), "demo-db");
        assert_eq!(p.network_name("default"), "demo_default");
        assert_eq!(p.volume_name("data"), "demo_data");
    }
}
