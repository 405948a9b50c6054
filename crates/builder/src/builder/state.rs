//! The state of a stage as its instructions execute: the image config so
//! far, the cache key of its last layer and the build args in scope.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rstack_images::Store;
use rstack_images::docker_config::{History, ImageConfig};

use crate::dockerfile::{Cmd, Inst};

/// The state of a stage as its instructions execute.
#[derive(Clone)]
pub(super) struct State {
    pub(super) config: ImageConfig,
    /// Cache key of the last layer-producing step (or of the base).
    pub(super) key: String,
    /// Build args declared in this stage, with their values.
    pub(super) args: BTreeMap<String, Option<String>>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    pub(super) cmd_set: bool,
}

impl State {
    pub(super) fn layers(&self, store: &Store) -> Vec<PathBuf> {
        self.config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| store.layer_diff_dir(d))
            .collect()
    }

    pub(super) fn lookup(&self, key: &str) -> Option<String> {
        if let Some(v) = self.config.config.env_get(key) {
            return Some(v);
        }
        self.args.get(key).cloned().flatten()
    }

    pub(super) fn workdir(&self) -> String {
        self.config
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    pub(super) fn shell(&self) -> Vec<String> {
        self.config
            .config
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// The build args in scope as `KEY=VALUE`, for RUN's environment and
    /// its cache key (ENV wins over ARG of the same name).
    pub(super) fn arg_env(&self) -> Vec<String> {
        self.args
            .iter()
            .filter(|(k, _)| self.config.config.env_get(k).is_none())
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect()
    }

    /// The process of a CMD, ENTRYPOINT or RUN: the exec form as it is,
    /// the shell form after the SHELL in effect.
    pub(super) fn command(&self, cmd: &Cmd) -> Vec<String> {
        match cmd {
            Cmd::Exec(v) => v.clone(),
            Cmd::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }

    /// Records `inst` in the image's history (`empty`: it made no layer).
    pub(super) fn history(&mut self, inst: &Inst, empty: bool) {
        self.config.history.push(History {
            // The time of the last layer made: metadata steps do not change
            // the image id of a rebuild that reuses every layer.
            created: self.config.created.clone(),
            created_by: Some(inst.text.clone()),
            comment: Some("rstack build".into()),
            empty_layer: empty,
        });
    }
}
