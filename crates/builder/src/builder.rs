//! Executing a parsed Dockerfile: stages, instruction semantics, cache
//! lookups, layer creation and the final image.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rstack_images::docker_config::{Healthcheck, History, ImageConfig};
use rstack_images::{LocalImage, Platform, Reference, Store};

use crate::context::{self, ContextFs, Item, SourceFs};
use crate::diff::{Attrs, LayerWriter};
use crate::dockerfile::{self, Cmd, Inst, Kind, Src};
use crate::ignore::{self, Matcher};
use crate::mergedfs::MergedFs;
use crate::words;
use crate::{BuildProgress, Error, RunExecutor, RunNetwork, RunRequest, StepInfo, cache};

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile (default: `CONTEXT/Dockerfile`).
    pub dockerfile: Option<PathBuf>,
    /// Dockerfile content given inline (compose `dockerfile_inline`).
    pub dockerfile_inline: Option<String>,
    /// Names for the image (`-t`).
    pub tags: Vec<String>,
    /// Stage to build (`--target`); the last one by default.
    pub target: Option<String>,
    /// `--build-arg KEY=VALUE`.
    pub build_args: BTreeMap<String, String>,
    /// `--label`: set on the final image.
    pub labels: BTreeMap<String, String>,
    /// `--no-cache`: run every step.
    pub no_cache: bool,
    /// `--pull`: pull base images even when present.
    pub pull: bool,
    /// Network of RUN steps.
    pub network: RunNetwork,
    /// /dev/shm size of RUN steps.
    pub shm_size: Option<u64>,
    /// Target platform (the host's by default).
    pub platform: Option<Platform>,
}

/// A finished build.
#[derive(Debug)]
pub struct BuildOutput {
    pub image: LocalImage,
    /// Steps executed or reused (FROM not counted).
    pub steps: usize,
    /// Of which came from the cache.
    pub cached: usize,
}

/// A stage of the Dockerfile.
struct StageDef {
    name: Option<String>,
    from: Inst,
    insts: Vec<Inst>,
}

/// The state of a stage as its instructions execute.
#[derive(Clone)]
struct State {
    config: ImageConfig,
    /// Cache key of the last layer-producing step (or of the base).
    key: String,
    /// Build args declared in this stage, with their values.
    args: BTreeMap<String, Option<String>>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
}

impl State {
    fn layers(&self, store: &Store) -> Vec<PathBuf> {
        self.config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| store.layer_diff_dir(d))
            .collect()
    }

    fn lookup(&self, key: &str) -> Option<String> {
        if let Some(v) = self.config.config.env_get(key) {
            return Some(v);
        }
        self.args.get(key).cloned().flatten()
    }

    fn workdir(&self) -> String {
        self.config
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    fn shell(&self) -> Vec<String> {
        self.config
            .config
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }
}

struct Ctx<'a> {
    store: &'a Store,
    opts: &'a BuildOptions,
    file: PathBuf,
    escape: char,
    executor: &'a dyn RunExecutor,
    progress: &'a dyn BuildProgress,
    context: ContextFs,
    global_args: BTreeMap<String, Option<String>>,
    platform: Platform,
    /// Final states of the stages built so far, by index.
    done: BTreeMap<usize, State>,
    stages: Vec<StageDef>,
    steps: usize,
    cached: usize,
    used_args: BTreeSet<String>,
    /// Index of the stage being built.
    current: usize,
}

/// Args every build defines (buildkit's automatic platform args).
fn predefined_args(p: &Platform) -> BTreeMap<String, Option<String>> {
    let plat = match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    };
    let mut m = BTreeMap::new();
    for prefix in ["TARGET", "BUILD"] {
        m.insert(format!("{prefix}PLATFORM"), Some(plat.clone()));
        m.insert(format!("{prefix}OS"), Some(p.os.clone()));
        m.insert(format!("{prefix}ARCH"), Some(p.architecture.clone()));
        m.insert(
            format!("{prefix}VARIANT"),
            Some(p.variant.clone().unwrap_or_default()),
        );
    }
    m
}

/// Args usable without an ARG line (passed to RUN only when given).
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Builds an image. Blocking: call from a thread that is not inside
/// an async runtime (base images are pulled on a private one).
pub fn build(
    store: &Store,
    opts: &BuildOptions,
    executor: &dyn RunExecutor,
    progress: &dyn BuildProgress,
) -> Result<BuildOutput, Error> {
    let context_dir =
        std::fs::canonicalize(&opts.context).map_err(|source| Error::Context {
            path: opts.context.clone(),
            source,
        })?;
    if !context_dir.is_dir() {
        return Err(Error::Context {
            path: opts.context.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
        });
    }
    let tags = opts
        .tags
        .iter()
        .map(|t| {
            Reference::parse(t).map_err(|source| Error::BadTag {
                tag: t.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (file, text) = match &opts.dockerfile_inline {
        Some(text) => (PathBuf::from("<inline Dockerfile>"), text.clone()),
        None => {
            let path = opts
                .dockerfile
                .clone()
                .unwrap_or_else(|| context_dir.join("Dockerfile"));
            let text =
                std::fs::read_to_string(&path).map_err(|source| Error::ReadDockerfile {
                    path: path.clone(),
                    source,
                })?;
            (path, text)
        }
    };
    let parsed = dockerfile::parse(&file, &text)?;
    let ignore_path = ignore::ignore_file_for(
        &context_dir,
        opts.dockerfile
            .as_deref()
            .filter(|_| opts.dockerfile_inline.is_none()),
    );
    let matcher = match &ignore_path {
        Some(p) => {
            let t = std::fs::read_to_string(p).map_err(|source| Error::ReadDockerfile {
                path: p.clone(),
                source,
            })?;
            Matcher::parse(&t).map_err(|source| Error::Ignore {
                path: p.clone(),
                source,
            })?
        }
        None => Matcher::default(),
    };
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);

    // Global args (before the first FROM) and stages.
    let mut global_args = predefined_args(&platform);
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
    let mut ctx = Ctx {
        store,
        opts,
        file,
        escape: parsed.escape,
        executor,
        progress,
        context: ContextFs {
            root: context_dir,
            ignore: matcher,
        },
        global_args,
        platform,
        done: BTreeMap::new(),
        stages,
        steps: 0,
        cached: 0,
        used_args: BTreeSet::new(),
        current: 0,
    };
    // Layers the build reuses must not be collected while it runs.
    let _lock = store.hold_layers()?;
    let needed = ctx.needed_stages(target)?;
    for i in needed {
        let state = ctx.run_stage(i)?;
        ctx.done.insert(i, state);
    }
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| {
            !ctx.used_args.contains(*k)
                && !ctx.global_args.contains_key(*k)
                && !PROXY_ARGS.contains(&k.as_str())
        })
        .collect();
    if !unused.is_empty() {
        progress.note(&format!(
            "[Warning] One or more build-args {unused:?} were not consumed"
        ));
    }
    let mut state = ctx.done.remove(&target).expect("target stage was built");
    if !opts.labels.is_empty() {
        let labels = state.config.config.labels.get_or_insert_with(BTreeMap::new);
        labels.extend(opts.labels.clone());
    }
    let data = serde_json::to_vec(&state.config).expect("image config serialises");
    drop(_lock);
    let image = store.commit_image(&data, &tags)?;
    Ok(BuildOutput {
        image,
        steps: ctx.steps,
        cached: ctx.cached,
    })
}

fn step_err(file: &Path, inst: &Inst, message: impl Into<String>) -> Error {
    Error::Step {
        file: file.to_owned(),
        line: inst.line,
        text: inst.text.clone(),
        message: message.into(),
    }
}

/// Go's `time.ParseDuration` for HEALTHCHECK flags, in nanoseconds.
fn parse_duration(s: &str) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * mult;
    }
    Some(total as u64)
}

/// Absolute, cleaned path of `p` relative to `base`.
fn abs_path(base: &str, p: &str) -> String {
    let joined = if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("{}/{p}", base.trim_end_matches('/'))
    };
    format!("/{}", context::clean_rel(&joined))
}

impl Ctx<'_> {
    fn stage_of(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_lowercase();
        if let Some(i) = self.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Some(i);
        }
        name.parse::<usize>().ok().filter(|&i| i < before)
    }

    fn global_lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |k: &str| self.global_args.get(k).cloned().flatten()
    }

    /// The stages `target` depends on (FROM stage, COPY --from), in order.
    fn needed_stages(&self, target: usize) -> Result<Vec<usize>, Error> {
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
                    let from = words::word(from, &self.global_lookup(), self.escape)
                        .map_err(|m| step_err(&self.file, inst, m))?;
                    if let Some(dep) = self.stage_of(&from, i) {
                        todo.push(dep);
                    } else if let Some(later) = self
                        .stages
                        .iter()
                        .position(|s| s.name.as_deref() == Some(from.to_lowercase().as_str()))
                    {
                        let _ = later;
                        return Err(step_err(
                            &self.file,
                            inst,
                            format!(
                                "stage \"{from}\" is not defined before this stage (a stage can only copy from earlier stages)"
                            ),
                        ));
                    } else if !looks_like_image(&from)
                        && self.store.lookup(&from).ok().flatten().is_none()
                    {
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
                }
            }
        }
        Ok(needed.into_iter().collect())
    }

    /// A base image: from the store, pulled when missing or asked.
    fn image(&self, reference: &str) -> Result<LocalImage, rstack_images::Error> {
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
        rt.block_on(self.store.pull(reference, &popts, &rstack_images::NoProgress))
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

    fn run_stage(&mut self, i: usize) -> Result<State, Error> {
        self.current = i;
        let total = 1 + self.stages[i]
            .insts
            .iter()
            .filter(|x| {
                matches!(
                    x.kind,
                    Kind::Run { .. } | Kind::Copy { .. } | Kind::Workdir(_)
                )
            })
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
            let layered = matches!(
                inst.kind,
                Kind::Run { .. } | Kind::Copy { .. } | Kind::Workdir(_)
            );
            if layered {
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
            let p = words::word(p, &self.global_lookup(), self.escape)
                .map_err(|m| step_err(&self.file, inst, m))?;
            let wanted =
                Platform::parse(&p).map_err(|e| step_err(&self.file, inst, e.to_string()))?;
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

    fn expand(&self, state: &State, inst: &Inst, s: &str) -> Result<String, Error> {
        words::word(s, &|k: &str| state.lookup(k), self.escape)
            .map_err(|m| step_err(&self.file, inst, m))
    }

    fn history(state: &mut State, inst: &Inst, empty: bool) {
        state.config.history.push(History {
            // The time of the last layer made: metadata steps do not change
            // the image id of a rebuild that reuses every layer.
            created: state.config.created.clone(),
            created_by: Some(inst.text.clone()),
            comment: Some("rstack build".into()),
            empty_layer: empty,
        });
    }

    fn command(state: &State, cmd: &Cmd) -> Vec<String> {
        match cmd {
            Cmd::Exec(v) => v.clone(),
            Cmd::Shell(s) => {
                let mut v = state.shell();
                v.push(s.clone());
                v
            }
        }
    }

    /// Instructions that only change the config.
    fn meta_step(&mut self, state: &mut State, inst: &Inst) -> Result<(), Error> {
        let lookup = |k: &str| state.lookup(k);
        let err = |m: String| step_err(&self.file, inst, m);
        match &inst.kind {
            Kind::Arg(raw) => {
                let pairs = words::pairs(raw, &lookup, self.escape, false).map_err(err)?;
                for (k, v) in pairs {
                    self.used_args.insert(k.clone());
                    let value = self
                        .opts
                        .build_args
                        .get(&k)
                        .cloned()
                        .or(v)
                        .or_else(|| self.global_args.get(&k).cloned().flatten());
                    state.args.insert(k, value);
                }
                return Ok(());
            }
            Kind::Env(raw) => {
                let pairs = words::pairs(raw, &lookup, self.escape, true).map_err(err)?;
                for (k, v) in pairs {
                    let v =
                        v.ok_or_else(|| err(format!("ENV {k} needs a value: ENV {k}=VALUE")))?;
                    state.config.config.env_set(&k, &v);
                }
            }
            Kind::Label(raw) => {
                let pairs = words::pairs(raw, &lookup, self.escape, false).map_err(err)?;
                let labels = state.config.config.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in pairs {
                    let v =
                        v.ok_or_else(|| err(format!("LABEL {k} needs a value: LABEL {k}=VALUE")))?;
                    labels.insert(k, v);
                }
            }
            Kind::User(u) => {
                let u = self.expand(state, inst, u)?;
                state.config.config.user = Some(u);
            }
            Kind::Cmd(c) => {
                state.config.config.cmd = Some(Self::command(state, c));
                state.cmd_set = true;
            }
            Kind::Entrypoint(c) => {
                state.config.config.entrypoint = Some(Self::command(state, c));
                if !state.cmd_set {
                    state.config.config.cmd = None;
                }
            }
            Kind::Expose(ports) => {
                let mut vals = Vec::new();
                for p in ports {
                    let p = words::word(p, &lookup, self.escape).map_err(err)?;
                    vals.push(if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    });
                }
                let map = state
                    .config
                    .config
                    .exposed_ports
                    .get_or_insert_with(BTreeMap::new);
                for p in vals {
                    map.insert(p, serde_json::json!({}));
                }
            }
            Kind::Volume(vols) => {
                let mut vals = Vec::new();
                for v in vols {
                    let v = words::word(v, &lookup, self.escape).map_err(err)?;
                    if v.is_empty() {
                        return Err(err("VOLUME specified can not be an empty string".into()));
                    }
                    vals.push(v);
                }
                let map = state
                    .config
                    .config
                    .volumes
                    .get_or_insert_with(BTreeMap::new);
                for v in vals {
                    map.insert(v, serde_json::json!({}));
                }
            }
            Kind::Healthcheck { flags, test } => {
                let mut hc = Healthcheck::default();
                match test {
                    None => hc.test = vec!["NONE".into()],
                    Some(Cmd::Exec(v)) => {
                        hc.test = std::iter::once("CMD".to_owned())
                            .chain(v.iter().cloned())
                            .collect()
                    }
                    Some(Cmd::Shell(s)) => hc.test = vec!["CMD-SHELL".into(), s.clone()],
                }
                for (name, value) in flags {
                    let dur = || {
                        parse_duration(value)
                            .ok_or_else(|| err(format!("--{name}={value}: invalid duration")))
                    };
                    match name.as_str() {
                        "interval" => hc.interval = dur()?,
                        "timeout" => hc.timeout = dur()?,
                        "start-period" => hc.start_period = dur()?,
                        "start-interval" => hc.start_interval = dur()?,
                        "retries" => {
                            hc.retries = value
                                .parse()
                                .map_err(|_| err(format!("--retries={value}: not a number")))?
                        }
                        _ => {}
                    }
                }
                state.config.config.healthcheck = Some(hc);
            }
            Kind::Stopsignal(s) => {
                let s = self.expand(state, inst, s)?;
                state.config.config.stop_signal = Some(s);
            }
            Kind::Shell(v) => state.config.config.shell = Some(v.clone()),
            Kind::Onbuild(t) => state
                .config
                .config
                .on_build
                .get_or_insert_with(Vec::new)
                .push(t.clone()),
            Kind::Maintainer(m) => {
                state
                    .config
                    .other
                    .insert("author".into(), serde_json::Value::String(m.clone()));
            }
            Kind::From { .. } | Kind::Run { .. } | Kind::Copy { .. } | Kind::Workdir(_) => {
                unreachable!("not a config-only instruction")
            }
        }
        Self::history(state, inst, true);
        Ok(())
    }

    /// The build args in scope as `KEY=VALUE`, for RUN's environment and
    /// its cache key (ENV wins over ARG of the same name).
    fn arg_env(state: &State) -> Vec<String> {
        state
            .args
            .iter()
            .filter(|(k, _)| state.config.config.env_get(k).is_none())
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect()
    }

    /// RUN, COPY, ADD, WORKDIR: reuse the cached layer or make it.
    /// Returns whether the cache was used.
    fn layer_step(&mut self, state: &mut State, inst: &Inst) -> Result<bool, Error> {
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
        key.part("args", Self::arg_env(state).join("\0").as_bytes());
        // COPY/ADD: what is copied, resolved now (errors like a missing
        // source show before anything runs).
        let plan = match &inst.kind {
            Kind::Copy { .. } => {
                let plan = self.copy_plan(state, inst)?;
                key.part("content", plan.hash.as_bytes());
                Some(plan)
            }
            Kind::Workdir(w) => {
                let w = self.expand(state, inst, w)?;
                let abs = abs_path(&state.workdir(), &w);
                state.config.config.working_dir = Some(abs.clone());
                let fs = MergedFs::new(state.layers(self.store));
                if fs.lookup(&abs).is_some_and(|f| f.meta.is_dir()) {
                    Self::history(state, inst, true);
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
            Self::history(state, inst, false);
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
        let write_err = |source: std::io::Error| Error::Write {
            path: blob_path.clone(),
            source,
        };
        let blob = match &inst.kind {
            Kind::Run { cmd, network } => {
                self.run(state, inst, cmd, network.as_deref(), &blob_path)?
            }
            Kind::Copy { .. } => {
                let plan = plan.expect("planned above");
                let mut w = LayerWriter::create(&blob_path).map_err(write_err)?;
                self.write_copy(&mut w, &plan)
                    .map_err(|e| step_err(&self.file, inst, e.to_string()))?;
                w.finish().map_err(write_err)?
            }
            Kind::Workdir(_) => {
                let abs = state.workdir();
                let owner = match state.config.config.user.as_deref() {
                    Some(u) if !u.is_empty() => MergedFs::new(state.layers(self.store))
                        .resolve_owner(u)
                        .unwrap_or((0, 0)),
                    _ => (0, 0),
                };
                let fs = MergedFs::new(state.layers(self.store));
                let mut w = LayerWriter::create(&blob_path).map_err(write_err)?;
                write_parents(&mut w, &fs, &[context::clean_rel(&abs)], owner, true)
                    .map_err(write_err)?;
                w.finish().map_err(write_err)?
            }
            _ => unreachable!("not a layer step"),
        };
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
        Self::history(state, inst, false);
        Ok(false)
    }

    fn run(
        &self,
        state: &State,
        inst: &Inst,
        cmd: &Cmd,
        network: Option<&str>,
        blob_path: &Path,
    ) -> Result<crate::diff::LayerBlob, Error> {
        let layers = state.layers(self.store);
        if layers.is_empty() {
            return Err(step_err(
                &self.file,
                inst,
                "RUN needs a base image with files (the stage starts FROM scratch)",
            ));
        }
        let network = match network {
            None | Some("default") => self.opts.network,
            Some("none") => RunNetwork::None,
            Some("host") => RunNetwork::Host,
            Some(other) => {
                return Err(step_err(
                    &self.file,
                    inst,
                    format!("RUN --network={other}: use default, none or host"),
                ));
            }
        };
        let mut env = state.config.config.env.clone().unwrap_or_default();
        env.extend(Self::arg_env(state));
        for p in PROXY_ARGS {
            if let Some(v) = self.opts.build_args.get(*p) {
                env.push(format!("{p}={v}"));
            }
        }
        let output = |data: &[u8]| self.progress.output(data);
        let req = RunRequest {
            layers: &layers,
            argv: Self::command(state, cmd),
            env,
            user: state.config.config.user.clone().unwrap_or_default(),
            workdir: state.workdir(),
            network,
            shm_size: self.opts.shm_size,
            output: &output,
        };
        let mut blob = None;
        let mut capture = |upper: &Path| -> Result<(), crate::ExecError> {
            let mut w = LayerWriter::create(blob_path)?;
            crate::diff::write_upper(&mut w, upper)?;
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

    fn copy_plan(&self, state: &State, inst: &Inst) -> Result<CopyPlan, Error> {
        let Kind::Copy {
            add,
            srcs,
            dest,
            from,
            chown,
            chmod,
        } = &inst.kind
        else {
            unreachable!("COPY or ADD")
        };
        let err = |m: String| step_err(&self.file, inst, m);
        let dest_raw = self.expand(state, inst, dest)?;
        let dest_abs = abs_path(&state.workdir(), &dest_raw);
        let dir_dest = dest_raw.ends_with('/')
            || dest_raw == "."
            || srcs.len() > 1
            || srcs
                .iter()
                .any(|s| matches!(s, Src::Path(p) if ignore::has_wildcards(p)));
        let stage_fs = MergedFs::new(state.layers(self.store));
        let dest_is_dir = dir_dest || stage_fs.lookup(&dest_abs).is_some_and(|f| f.meta.is_dir());
        let owner = match chown {
            Some(c) => {
                let c = self.expand(state, inst, c)?;
                Some(
                    stage_fs
                        .resolve_owner(&c)
                        .map_err(|m| err(format!("--chown={c}: {m}")))?,
                )
            }
            None => None,
        };
        let mode = match chmod {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .map_err(|_| err(format!("--chmod={m}: expected an octal mode like 755")))?,
            ),
            None => None,
        };
        // The source file system.
        let from_fs: Option<MergedFs> = match from {
            None => None,
            Some(f) => {
                let f = words::word(
                    f,
                    &|k: &str| self.global_args.get(k).cloned().flatten(),
                    self.escape,
                )
                .map_err(err)?;
                let layers = match self.stage_of(&f, self.current) {
                    Some(dep) => self.done[&dep].layers(self.store),
                    None => {
                        let img = self.image(&f).map_err(|e| Error::StepSource {
                            file: self.file.clone(),
                            line: inst.line,
                            text: inst.text.clone(),
                            source: Box::new(e),
                        })?;
                        img.layer_dirs
                    }
                };
                Some(MergedFs::new(layers))
            }
        };
        let fs: &dyn SourceFs = match &from_fs {
            Some(m) => m,
            None => &self.context,
        };
        let mut items = Vec::new();
        let mut archives = Vec::new();
        let mut inline = Vec::new();
        let dest_rel = context::clean_rel(&dest_abs);
        for src in srcs {
            match src {
                Src::Inline { content, expand } => {
                    if dest_is_dir {
                        return Err(err("a heredoc source needs a file destination".into()));
                    }
                    let content = if *expand {
                        words::word(content, &|k: &str| state.lookup(k), self.escape)
                            .unwrap_or_else(|_| content.clone())
                    } else {
                        content.clone()
                    };
                    inline.push((dest_rel.clone(), content));
                }
                Src::Path(p) => {
                    let p = self.expand(state, inst, p)?;
                    let matched = context::resolve(fs, &p);
                    if matched.is_empty() {
                        return Err(err(if from_fs.is_some() {
                            format!("\"{p}\": not found in the source stage or image")
                        } else {
                            format!(
                                "\"{p}\": not found in the build context (or excluded by .dockerignore)"
                            )
                        }));
                    }
                    for (rel, entry) in matched {
                        let base = rel.rsplit('/').next().unwrap_or(&rel).to_owned();
                        if *add
                            && from_fs.is_none()
                            && entry.meta.is_file()
                            && let Some(kind) = context::sniff_archive(&entry.real)
                        {
                            archives.push((entry.real.clone(), kind, dest_rel.clone()));
                            continue;
                        }
                        let target = if entry.meta.is_dir() {
                            dest_rel.clone()
                        } else if dest_is_dir {
                            context::join(&dest_rel, &base)
                        } else {
                            dest_rel.clone()
                        };
                        context::expand(fs, &rel, &entry, &target, &mut items);
                    }
                }
            }
        }
        let mut h =
            context::hash_items(&items).map_err(|e| err(format!("cannot read a source: {e}")))?;
        for (real, _, d) in &archives {
            let one = context::hash_items(&[Item {
                dest: d.clone(),
                entry: context::Entry {
                    real: real.clone(),
                    meta: std::fs::metadata(real).map_err(|e| err(e.to_string()))?,
                },
            }])
            .map_err(|e| err(e.to_string()))?;
            h.push_str(&one);
        }
        for (d, c) in &inline {
            h.push_str(&rstack_images::sha256_digest(
                format!("{d}\0{c}").as_bytes(),
            ));
        }
        let mut parents: Vec<String> = Vec::new();
        if dest_is_dir && !dest_rel.is_empty() {
            parents.push(dest_rel.clone());
        }
        for it in &items {
            if let Some((p, _)) = it.dest.rsplit_once('/') {
                parents.push(p.to_owned());
            }
        }
        for (d, _) in &inline {
            if let Some((p, _)) = d.rsplit_once('/') {
                parents.push(p.to_owned());
            }
        }
        Ok(CopyPlan {
            items,
            archives,
            inline,
            parents,
            owner,
            mode,
            stage_layers: state.layers(self.store),
            hash: h,
        })
    }

    fn write_copy(&self, w: &mut LayerWriter, plan: &CopyPlan) -> std::io::Result<()> {
        let fs = MergedFs::new(plan.stage_layers.clone());
        let item_dests: BTreeSet<&str> = plan.items.iter().map(|i| i.dest.as_str()).collect();
        let parents: Vec<String> = plan
            .parents
            .iter()
            .filter(|p| !item_dests.contains(p.as_str()))
            .cloned()
            .collect();
        write_parents(w, &fs, &parents, plan.owner.unwrap_or((0, 0)), true)?;
        let attrs = Attrs {
            owner: Some(plan.owner.unwrap_or((0, 0))),
            mode: plan.mode,
        };
        for it in &plan.items {
            w.append(&it.entry.real, &it.dest, attrs)?;
        }
        for (dest, content) in &plan.inline {
            w.append_bytes(
                dest,
                content.as_bytes(),
                plan.mode.unwrap_or(0o644),
                plan.owner.unwrap_or((0, 0)),
            )?;
        }
        for (path, kind, dest) in &plan.archives {
            let f = std::io::BufReader::new(std::fs::File::open(path)?);
            let reader: Box<dyn std::io::Read> = match kind {
                context::Archive::Tar => Box::new(f),
                context::Archive::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
                context::Archive::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(f)?),
            };
            let mut archive = tar::Archive::new(reader);
            for entry in archive.entries()? {
                let mut entry = entry?;
                let name = context::clean_rel(&entry.path()?.to_string_lossy());
                if name.is_empty() {
                    continue;
                }
                let full = context::join(dest, &name);
                entry.set_preserve_permissions(true);
                w.append_entry(&mut entry, &full)?;
            }
        }
        Ok(())
    }
}

fn looks_like_image(s: &str) -> bool {
    s.contains(['/', ':', '@'])
}

/// What a COPY/ADD writes.
struct CopyPlan {
    items: Vec<Item>,
    archives: Vec<(PathBuf, context::Archive, String)>,
    inline: Vec<(String, String)>,
    /// Directories the items go into (created if missing).
    parents: Vec<String>,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
    stage_layers: Vec<PathBuf>,
    hash: String,
}

/// Writes directory entries for `dirs` and all their ancestors, shallow
/// first: existing ones with their current attributes (an upper layer's
/// directory replaces the lower one's owner and mode in the merged view),
/// new ones as 0755 owned by `owner`.
fn write_parents(
    w: &mut LayerWriter,
    fs: &MergedFs,
    dirs: &[String],
    owner: (u32, u32),
    include_self: bool,
) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut all = BTreeSet::new();
    for d in dirs {
        let parts: Vec<&str> = d.split('/').filter(|s| !s.is_empty()).collect();
        let upto = if include_self {
            parts.len()
        } else {
            parts.len().saturating_sub(1)
        };
        for n in 1..=upto {
            all.insert(parts[..n].join("/"));
        }
    }
    let mut sorted: Vec<String> = all.into_iter().collect();
    sorted.sort_by_key(|p| (p.matches('/').count(), p.clone()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for d in sorted {
        match fs.lookup(&d) {
            Some(f) if f.meta.is_dir() => w.append_dir(
                &d,
                f.meta.mode() & 0o7777,
                (f.meta.uid(), f.meta.gid()),
                f.meta.mtime().max(0) as u64,
            )?,
            Some(_) => {
                return Err(std::io::Error::other(format!(
                    "/{d} exists in the image and is not a directory"
                )));
            }
            None => w.append_dir(&d, 0o755, owner, now)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_paths() {
        assert_eq!(parse_duration("5s"), Some(5_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("100ms"), Some(100_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("x"), None);
        assert_eq!(abs_path("/app", "sub/"), "/app/sub");
        assert_eq!(abs_path("/app", "/etc"), "/etc");
        assert_eq!(abs_path("/", "."), "/");
        assert_eq!(abs_path("/a/b", "../c"), "/a/c");
    }
}
