//! Layer steps (RUN, COPY/ADD, WORKDIR): the step's cache key, the cached
//! layer when there is one, else the layer made in the store's staging dir,
//! imported into the store and recorded in the cache.

use std::path::Path;

use super::copy::{CopyPlan, write_parents};
use super::state::State;
use super::{Ctx, abs_path, step_err};
use crate::context;
use crate::diff::{LayerBlob, LayerWriter};
use crate::dockerfile::{Inst, Kind};
use crate::mergedfs::MergedFs;
use crate::{Error, cache};

impl Ctx<'_> {
    /// RUN, COPY, ADD, WORKDIR: reuse the cached layer or make it.
    /// Returns whether the cache was used.
    pub(super) fn layer_step(&mut self, state: &mut State, inst: &Inst) -> Result<bool, Error> {
        let mut key = state_key(state, inst);
        // COPY/ADD: what is copied, resolved now (errors like a missing
        // source show before anything runs).
        let plan = match &inst.kind {
            Kind::Copy { .. } => {
                let plan = self.copy_plan(state, inst)?;
                key.part("content", plan.hash.as_bytes());
                Some(plan)
            }
            Kind::Workdir(w) => {
                if self.set_workdir(state, inst, w)? {
                    state.history(inst, true);
                    return Ok(false);
                }
                None
            }
            _ => None,
        };
        let key = key.finish();
        if !self.opts.no_cache
            && let Some(entry) = cache::get(self.store, &key)
        {
            tracing::debug!(key, diff_id = entry.diff_id, "cache hit");
            state.config.rootfs.diff_ids.push(entry.diff_id);
            state.config.created = Some(entry.created);
            state.key = key;
            state.history(inst, false);
            return Ok(true);
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!("build-{}-", std::process::id()))
            .tempdir_in(self.store.staging_dir())
            .map_err(|source| Error::Write {
                path: self.store.staging_dir(),
                source,
            })?;
        let blob_path = tmp.path().join("layer.tar.gz");
        let blob = self.make_layer(state, inst, plan, &blob_path)?;
        self.add_layer(state, inst, key, blob)?;
        Ok(false)
    }

    /// WORKDIR: sets the working dir; true when it already exists in the
    /// stage (no layer needed).
    fn set_workdir(&self, state: &mut State, inst: &Inst, w: &str) -> Result<bool, Error> {
        let w = self.expand(state, inst, w)?;
        let abs = abs_path(&state.workdir(), &w);
        state.config.config.working_dir = Some(abs.clone());
        let fs = MergedFs::new(state.layers(self.store));
        Ok(fs.lookup(&abs).is_some_and(|f| f.meta.is_dir()))
    }

    /// Writes the step's layer blob to `blob_path`.
    fn make_layer(
        &self,
        state: &State,
        inst: &Inst,
        plan: Option<CopyPlan>,
        blob_path: &Path,
    ) -> Result<LayerBlob, Error> {
        let write_err = |source: std::io::Error| Error::Write {
            path: blob_path.to_owned(),
            source,
        };
        match &inst.kind {
            Kind::Run { cmd, network } => self.run(state, inst, cmd, network.as_deref(), blob_path),
            Kind::Copy { .. } => {
                let plan = plan.expect("planned above");
                let mut w = LayerWriter::create(blob_path).map_err(write_err)?;
                plan.write(&mut w)
                    .map_err(|e| step_err(&self.file, inst, e.to_string()))?;
                w.finish().map_err(write_err)
            }
            Kind::Workdir(_) => self.workdir_layer(state, blob_path).map_err(write_err),
            _ => unreachable!("not a layer step"),
        }
    }

    /// The layer of a WORKDIR that does not exist yet: the directory and
    /// its missing parents, owned by the USER in effect.
    fn workdir_layer(&self, state: &State, blob_path: &Path) -> std::io::Result<LayerBlob> {
        let abs = state.workdir();
        let owner = match state.config.config.user.as_deref() {
            Some(u) if !u.is_empty() => MergedFs::new(state.layers(self.store))
                .resolve_owner(u)
                .unwrap_or((0, 0)),
            _ => (0, 0),
        };
        let fs = MergedFs::new(state.layers(self.store));
        let mut w = LayerWriter::create(blob_path)?;
        write_parents(&mut w, &fs, &[context::clean_rel(&abs)], owner, true)?;
        w.finish()
    }

    /// Imports a made layer into the store, records it in the cache under
    /// `key` and adds it to the stage.
    fn add_layer(
        &self,
        state: &mut State,
        inst: &Inst,
        key: String,
        blob: LayerBlob,
    ) -> Result<(), Error> {
        self.store
            .import_layer_file(&blob.path, &blob.diff_id, &blob.blob_digest)?;
        let created = jiff::Timestamp::now().to_string();
        cache::put(
            self.store,
            &key,
            &cache::Entry {
                diff_id: blob.diff_id.clone(),
                created: created.clone(),
            },
        )?;
        state.config.created = Some(created);
        state.config.rootfs.diff_ids.push(blob.diff_id);
        state.key = key;
        state.history(inst, false);
        Ok(())
    }
}

/// The cache key of a step so far: its parent, the instruction and the
/// state it runs in (COPY/ADD add their content).
fn state_key(state: &State, inst: &Inst) -> cache::KeyBuilder {
    let mut key = cache::KeyBuilder::new(&state.key);
    key.part("instruction", format!("{:?}", inst.kind).as_bytes());
    key.part(
        "env",
        state
            .config
            .config
            .env
            .clone()
            .unwrap_or_default()
            .join("\0")
            .as_bytes(),
    );
    key.part(
        "user",
        state
            .config
            .config
            .user
            .clone()
            .unwrap_or_default()
            .as_bytes(),
    );
    key.part("workdir", state.workdir().as_bytes());
    key.part("shell", state.shell().join("\0").as_bytes());
    key.part("args", state.arg_env().join("\0").as_bytes());
    key
}
