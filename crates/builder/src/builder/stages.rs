//! The stages of a Dockerfile: the instructions split into global ARGs
//! and stages, the stages a target needs (its FROM stage, COPY --from),
//! and one stage run from its FROM (a stage, scratch or a base image,
//! pulled when missing) to its last instruction.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use rstack_images::docker_config::ImageConfig;
use rstack_images::{LocalImage, Platform};

use super::state::State;
use super::{BuildOptions, Ctx, Plan, predefined_args, step_err};
use crate::dockerfile::{Dockerfile, Inst, Kind};
use crate::{Error, StepInfo, words};

/// A stage of the Dockerfile.
pub(super) struct StageDef {
    pub(super) name: Option<String>,
    pub(super) from: Inst,
    pub(super) insts: Vec<Inst>,
}

impl Plan {
    /// Splits `parsed` into global args and stages and finds the target
    /// stage (`--target`, else the last one).
    pub(super) fn new(
        file: PathBuf,
        parsed: Dockerfile,
        opts: &BuildOptions,
        platform: &Platform,
    ) -> Result<Plan, Error> {
        let mut global_args = predefined_args(platform);
        let mut stages: Vec<StageDef> = Vec::new();
        for inst in parsed.instructions {
            match (&inst.kind, stages.last_mut()) {
                (Kind::From { name, .. }, _) => stages.push(StageDef {
                    name: name.clone(),
                    from: inst.clone(),
                    insts: Vec::new(),
                }),
                (_, Some(stage)) => stage.insts.push(inst),
                (Kind::Arg(raw), None) => {
                    let lookup = |k: &str| global_args.get(k).cloned().flatten();
                    let pairs = words::pairs(raw, &lookup, parsed.escape, false)
                        .map_err(|m| step_err(&file, &inst, m))?;
                    for (k, v) in pairs {
                        let v = opts.build_args.get(&k).cloned().or(v);
                        global_args.insert(k, v);
                    }
                }
                (_, None) => {
                    return Err(Error::Syntax {
                        file: file.clone(),
                        line: inst.line,
                        message: "no FROM before this instruction: only ARG may come before the first FROM".into(),
                    });
                }
            }
        }
        if stages.is_empty() {
            return Err(Error::NoFrom);
        }
        let target = match &opts.target {
            Some(t) => stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.to_lowercase().as_str()))
                .ok_or_else(|| Error::UnknownTarget { target: t.clone() })?,
            None => stages.len() - 1,
        };
        Ok(Plan {
            file,
            escape: parsed.escape,
            global_args,
            stages,
            target,
        })
    }
}

/// Instructions that make a layer (and count as steps).
fn makes_layer(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Run { .. } | Kind::Copy { .. } | Kind::Workdir(_)
    )
}

fn looks_like_image(s: &str) -> bool {
    s.contains(['/', ':', '@'])
}

impl Ctx<'_> {
    /// The stage before `before` that `name` names (by name or index).
    pub(super) fn stage_of(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_lowercase();
        if let Some(i) = self.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Some(i);
        }
        name.parse::<usize>().ok().filter(|&i| i < before)
    }

    pub(super) fn global_lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |k: &str| self.global_args.get(k).cloned().flatten()
    }

    /// The stages `target` depends on (FROM stage, COPY --from), in order.
    pub(super) fn needed_stages(&self, target: usize) -> Result<Vec<usize>, Error> {
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !needed.insert(i) {
                continue;
            }
            let stage = &self.stages[i];
            if let Kind::From { image, .. } = &stage.from.kind {
                let image = words::word(image, &self.global_lookup(), self.escape)
                    .map_err(|m| step_err(&self.file, &stage.from, m))?;
                if let Some(dep) = self.stage_of(&image, i) {
                    todo.push(dep);
                }
            }
            for inst in &stage.insts {
                if let Kind::Copy {
                    from: Some(from), ..
                } = &inst.kind
                {
                    todo.extend(self.copy_from_stage(i, inst, from)?);
                }
            }
        }
        Ok(needed.into_iter().collect())
    }

    /// The stage that `COPY --from=FROM` in stage `i` copies from, if it
    /// names an earlier stage; an error if it names a later stage, or
    /// neither a stage nor an image.
    fn copy_from_stage(&self, i: usize, inst: &Inst, from: &str) -> Result<Option<usize>, Error> {
        let from = words::word(from, &self.global_lookup(), self.escape)
            .map_err(|m| step_err(&self.file, inst, m))?;
        if let Some(dep) = self.stage_of(&from, i) {
            return Ok(Some(dep));
        }
        if self
            .stages
            .iter()
            .any(|s| s.name.as_deref() == Some(from.to_lowercase().as_str()))
        {
            return Err(step_err(
                &self.file,
                inst,
                format!(
                    "stage \"{from}\" is not defined before this stage (a stage can only copy from earlier stages)"
                ),
            ));
        }
        if !looks_like_image(&from) && self.store.lookup(&from).ok().flatten().is_none() {
            let names: Vec<String> = self.stages[..i]
                .iter()
                .enumerate()
                .map(|(n, s)| s.name.clone().unwrap_or_else(|| n.to_string()))
                .collect();
            return Err(step_err(
                &self.file,
                inst,
                format!(
                    "--from={from}: no build stage named \"{from}\" (stages before this one: {}) and no local image {from}",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
        Ok(None)
    }

    /// A base image: from the store, pulled when missing or asked.
    pub(super) fn image(&self, reference: &str) -> Result<LocalImage, rstack_images::Error> {
        if !self.opts.pull
            && let Some(img) = self.store.lookup(reference)?
        {
            return Ok(img);
        }
        self.progress.note(&format!("pulling {reference}"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| rstack_images::Error::Write {
                path: self.store.root().to_owned(),
                source,
            })?;
        let popts = rstack_images::PullOptions {
            platform: self.opts.platform.clone(),
            ..Default::default()
        };
        rt.block_on(
            self.store
                .pull(reference, &popts, &rstack_images::NoProgress),
        )
    }

    fn image_config(&self, img: &LocalImage) -> Result<ImageConfig, rstack_images::Error> {
        self.store.docker_config(img)
    }

    fn stage_name(&self, i: usize) -> String {
        self.stages[i]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{i}"))
    }

    /// Runs stage `i` (its dependencies are done) and returns its state.
    pub(super) fn run_stage(&mut self, i: usize) -> Result<State, Error> {
        self.current = i;
        let total = 1 + self.stages[i]
            .insts
            .iter()
            .filter(|x| makes_layer(&x.kind))
            .count();
        let from = self.stages[i].from.clone();
        let mut info = StepInfo {
            stage: self.stage_name(i),
            number: 1,
            total,
            text: from.text.clone(),
        };
        let started = Instant::now();
        self.progress.step(&info);
        let mut state = self.from(i, &from)?;
        self.progress.step_done(&info, false, started.elapsed());
        if let Some(triggers) = &state.config.config.on_build
            && !triggers.is_empty()
        {
            self.progress.note(&format!(
                "[Warning] the base image has ONBUILD triggers, which rstack does not run: {triggers:?}"
            ));
        }
        // ONBUILD triggers of the base are not inherited by this image.
        state.config.config.on_build = None;
        let insts = self.stages[i].insts.clone();
        for inst in &insts {
            if makes_layer(&inst.kind) {
                info.number += 1;
                info.text = inst.text.clone();
                let started = Instant::now();
                self.progress.step(&info);
                let cached = self.layer_step(&mut state, inst)?;
                self.steps += 1;
                if cached {
                    self.cached += 1;
                }
                self.progress.step_done(&info, cached, started.elapsed());
            } else {
                self.meta_step(&mut state, inst)?;
            }
        }
        Ok(state)
    }

    /// FROM: the state a stage starts from.
    fn from(&mut self, i: usize, inst: &Inst) -> Result<State, Error> {
        let Kind::From {
            image, platform, ..
        } = &inst.kind
        else {
            unreachable!("stage starts with FROM")
        };
        let image = words::word(image, &self.global_lookup(), self.escape)
            .map_err(|m| step_err(&self.file, inst, m))?;
        if let Some(p) = platform {
            self.check_platform(inst, p)?;
        }
        let mut state = if let Some(dep) = self.stage_of(&image, i) {
            let mut s = self.done.get(&dep).cloned().ok_or_else(|| {
                step_err(&self.file, inst, format!("stage {image} was not built"))
            })?;
            s.args.clear();
            s.cmd_set = false;
            s
        } else if image.eq_ignore_ascii_case("scratch") {
            State {
                config: ImageConfig::scratch(&self.platform),
                key: "scratch".into(),
                args: BTreeMap::new(),
                cmd_set: false,
            }
        } else {
            let img = self.image(&image).map_err(|e| Error::StepSource {
                file: self.file.clone(),
                line: inst.line,
                text: inst.text.clone(),
                source: Box::new(e),
            })?;
            let config = self.image_config(&img)?;
            State {
                key: format!("image:{}", img.id),
                config,
                args: BTreeMap::new(),
                cmd_set: false,
            }
        };
        if state.config.created.is_none() {
            // Reproducible: a rebuild from the cache gives the same image id.
            state.config.created = Some("1970-01-01T00:00:00Z".into());
        }
        Ok(state)
    }

    /// `FROM --platform=P`: only the build's own platform (no emulation).
    fn check_platform(&self, inst: &Inst, platform: &str) -> Result<(), Error> {
        let p = words::word(platform, &self.global_lookup(), self.escape)
            .map_err(|m| step_err(&self.file, inst, m))?;
        let wanted = Platform::parse(&p).map_err(|e| step_err(&self.file, inst, e.to_string()))?;
        if wanted.os != self.platform.os || wanted.architecture != self.platform.architecture {
            return Err(step_err(
                &self.file,
                inst,
                format!(
                    "--platform={p}: rstack builds for {} only (no emulation)",
                    self.platform
                ),
            ));
        }
        Ok(())
    }
}
