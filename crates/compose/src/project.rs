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

    /// The start and stop order of the services (see [`crate::plan`]).
    pub fn plan(&self) -> Result<crate::plan::Plan, crate::plan::Error> {
        crate::plan::Plan::new(&self.services)
    }
}
