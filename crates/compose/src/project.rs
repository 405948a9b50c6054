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

    /// `names` and, transitively, every service with `depends_on:
    /// {NAME: {restart: true}}` on one of them: what `docker compose
    /// restart NAME` restarts. In file order.
    pub fn with_restart_dependents(&self, names: &[String]) -> Vec<String> {
        let mut picked: Vec<&str> = names.iter().map(String::as_str).collect();
        loop {
            let more: Vec<&str> = self
                .services
                .iter()
                .filter(|(n, _)| !picked.contains(&n.as_str()))
                .filter(|(_, s)| {
                    s.depends_on
                        .iter()
                        .any(|(dep, d)| d.restart == Some(true) && picked.contains(&dep.as_str()))
                })
                .map(|(n, _)| n.as_str())
                .collect();
            if more.is_empty() {
                break;
            }
            picked.extend(more);
        }
        let mut out: Vec<String> = self
            .services
            .keys()
            .filter(|n| picked.contains(&n.as_str()))
            .cloned()
            .collect();
        // names that are not services stay, for the caller's error
        out.extend(
            names
                .iter()
                .filter(|n| !self.services.contains_key(*n))
                .cloned(),
        );
        out
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

    #[test]
    fn restart_dependents() {
        let dep = |restart: Option<bool>| crate::model::Dependency {
            condition: "service_started".into(),
            restart,
            ..Default::default()
        };
        let mut p = Project::default();
        p.services.insert("db".into(), Service::default());
        let mut app = Service::default();
        app.depends_on.insert("db".into(), dep(Some(true)));
        p.services.insert("app".into(), app);
        let mut web = Service::default();
        web.depends_on.insert("app".into(), dep(Some(true)));
        p.services.insert("web".into(), web);
        let mut cron = Service::default();
        cron.depends_on.insert("db".into(), dep(None));
        p.services.insert("cron".into(), cron);
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            p.with_restart_dependents(&names(&["db"])),
            ["db", "app", "web"]
        );
        assert_eq!(p.with_restart_dependents(&names(&["web"])), ["web"]);
        assert_eq!(p.with_restart_dependents(&names(&["nope"])), ["nope"]);
    }
}
