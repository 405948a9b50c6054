//! RUN: the step's process in a container on the stage's layers, through
//! the caller's [`RunExecutor`](crate::RunExecutor); the container's upper
//! dir, captured before it is removed, becomes the layer.

use std::path::Path;

use super::state::State;
use super::{Ctx, PROXY_ARGS, step_err};
use crate::diff::{self, LayerBlob, LayerWriter};
use crate::dockerfile::{Cmd, Inst};
use crate::{Error, ExecError, RunNetwork, RunRequest};

impl Ctx<'_> {
    /// Runs a RUN step and writes its changes to `blob_path`.
    pub(super) fn run(
        &self,
        state: &State,
        inst: &Inst,
        cmd: &Cmd,
        network: Option<&str>,
        blob_path: &Path,
    ) -> Result<LayerBlob, Error> {
        let layers = state.layers(self.store);
        if layers.is_empty() {
            return Err(step_err(
                &self.file,
                inst,
                "RUN needs a base image with files (the stage starts FROM scratch)",
            ));
        }
        let network = self.run_network(inst, network)?;
        let output = |data: &[u8]| self.progress.output(data);
        let req = RunRequest {
            layers: &layers,
            argv: state.command(cmd),
            env: self.run_env(state),
            user: state.config.config.user.clone().unwrap_or_default(),
            workdir: state.workdir(),
            network,
            shm_size: self.opts.shm_size,
            output: &output,
        };
        let mut blob = None;
        let mut capture = |upper: &Path| -> Result<(), ExecError> {
            let mut w = LayerWriter::create(blob_path)?;
            diff::write_upper(&mut w, upper)?;
            blob = Some(w.finish()?);
            Ok(())
        };
        let outcome =
            self.executor
                .run(&req, &mut capture)
                .map_err(|source| Error::StepSource {
                    file: self.file.clone(),
                    line: inst.line,
                    text: inst.text.clone(),
                    source,
                })?;
        if outcome.exit_code != 0 {
            return Err(Error::RunFailed {
                file: self.file.clone(),
                line: inst.line,
                text: inst.text.clone(),
                code: outcome.exit_code,
            });
        }
        blob.ok_or_else(|| {
            step_err(
                &self.file,
                inst,
                "the executor did not capture the step's changes",
            )
        })
    }

    /// `RUN --network=`: the build's network by default.
    fn run_network(&self, inst: &Inst, network: Option<&str>) -> Result<RunNetwork, Error> {
        match network {
            None | Some("default") => Ok(self.opts.network),
            Some("none") => Ok(RunNetwork::None),
            Some("host") => Ok(RunNetwork::Host),
            Some(other) => Err(step_err(
                &self.file,
                inst,
                format!("RUN --network={other}: use default, none or host"),
            )),
        }
    }

    /// RUN's environment: the image's ENV, the build args in scope, and
    /// the proxy args given.
    fn run_env(&self, state: &State) -> Vec<String> {
        let mut env = state.config.config.env.clone().unwrap_or_default();
        env.extend(state.arg_env());
        for p in PROXY_ARGS {
            if let Some(v) = self.opts.build_args.get(*p) {
                env.push(format!("{p}={v}"));
            }
        }
        env
    }
}
