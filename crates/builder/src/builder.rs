//! Executing a parsed Dockerfile: stages, instruction semantics, cache
//! lookups, layer creation and the final image.
//!
//! [`build`] reads the Dockerfile and the `.dockerignore`, splits the
//! instructions into a `Plan` (global ARGs, stages, the target), and a
//! `Ctx` runs the stages the target needs, one instruction at a time:
//! `stages` (the stage graph, FROM), `meta` (instructions that only change
//! the config), `layer` (RUN, COPY/ADD, WORKDIR through the cache), `run`
//! (a RUN step through the [`RunExecutor`]) and `copy` (what COPY/ADD
//! writes). The final stage's config becomes the image.

mod copy;
mod layer;
mod meta;
mod run;
mod stages;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rstack_images::{LocalImage, Platform, Reference, Store};

use crate::context::{self, ContextFs};
use crate::dockerfile::{self, Dockerfile, Inst};
use crate::ignore::{self, Matcher};
use crate::words;
use crate::{BuildProgress, Error, RunExecutor, RunNetwork};
use stages::StageDef;
use state::State;

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

/// The Dockerfile split for execution.
struct Plan {
    /// The Dockerfile's path (or `<inline Dockerfile>`), for messages.
    file: PathBuf,
    /// The escape character of the Dockerfile's words.
    escape: char,
    /// ARGs before the first FROM (with the predefined ones), with values.
    global_args: BTreeMap<String, Option<String>>,
    stages: Vec<StageDef>,
    /// Index of the stage the image is made of.
    target: usize,
}

/// A build in progress.
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
    let context_dir = context_dir(opts)?;
    let tags = parse_tags(&opts.tags)?;
    let (file, parsed) = read_dockerfile(opts, &context_dir)?;
    let matcher = read_ignore(opts, &context_dir)?;
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let plan = Plan::new(file, parsed, opts, &platform)?;
    let target = plan.target;
    let mut ctx = Ctx {
        store,
        opts,
        file: plan.file,
        escape: plan.escape,
        executor,
        progress,
        context: ContextFs {
            root: context_dir,
            ignore: matcher,
        },
        global_args: plan.global_args,
        platform,
        done: BTreeMap::new(),
        stages: plan.stages,
        steps: 0,
        cached: 0,
        used_args: BTreeSet::new(),
        current: 0,
    };
    // Layers the build reuses must not be collected while it runs.
    let lock = store.hold_layers()?;
    let needed = ctx.needed_stages(target)?;
    for i in needed {
        let state = ctx.run_stage(i)?;
        ctx.done.insert(i, state);
    }
    ctx.warn_unused_args();
    let mut state = ctx.done.remove(&target).expect("target stage was built");
    if !opts.labels.is_empty() {
        let labels = state.config.config.labels.get_or_insert_with(BTreeMap::new);
        labels.extend(opts.labels.clone());
    }
    let data = serde_json::to_vec(&state.config).expect("image config serialises");
    drop(lock);
    let image = store.commit_image(&data, &tags)?;
    Ok(BuildOutput {
        image,
        steps: ctx.steps,
        cached: ctx.cached,
    })
}

/// The build context directory, canonical.
fn context_dir(opts: &BuildOptions) -> Result<PathBuf, Error> {
    let context_dir = std::fs::canonicalize(&opts.context).map_err(|source| Error::Context {
        path: opts.context.clone(),
        source,
    })?;
    if !context_dir.is_dir() {
        return Err(Error::Context {
            path: opts.context.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
        });
    }
    Ok(context_dir)
}

fn parse_tags(tags: &[String]) -> Result<Vec<Reference>, Error> {
    tags.iter()
        .map(|t| {
            Reference::parse(t).map_err(|source| Error::BadTag {
                tag: t.clone(),
                source,
            })
        })
        .collect()
}

/// The Dockerfile (inline, given, or `CONTEXT/Dockerfile`), parsed, and
/// the name its messages use.
fn read_dockerfile(
    opts: &BuildOptions,
    context_dir: &Path,
) -> Result<(PathBuf, Dockerfile), Error> {
    let (file, text) = match &opts.dockerfile_inline {
        Some(text) => (PathBuf::from("<inline Dockerfile>"), text.clone()),
        None => {
            let path = opts
                .dockerfile
                .clone()
                .unwrap_or_else(|| context_dir.join("Dockerfile"));
            let text = std::fs::read_to_string(&path).map_err(|source| Error::ReadDockerfile {
                path: path.clone(),
                source,
            })?;
            (path, text)
        }
    };
    let parsed = dockerfile::parse(&file, &text)?;
    Ok((file, parsed))
}

/// The `.dockerignore` that applies (none: nothing is excluded).
fn read_ignore(opts: &BuildOptions, context_dir: &Path) -> Result<Matcher, Error> {
    let ignore_path = ignore::ignore_file_for(
        context_dir,
        opts.dockerfile
            .as_deref()
            .filter(|_| opts.dockerfile_inline.is_none()),
    );
    let Some(p) = &ignore_path else {
        return Ok(Matcher::default());
    };
    let t = std::fs::read_to_string(p).map_err(|source| Error::ReadDockerfile {
        path: p.clone(),
        source,
    })?;
    Matcher::parse(&t).map_err(|source| Error::Ignore {
        path: p.clone(),
        source,
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
    /// `s` with the variables of `state` expanded.
    fn expand(&self, state: &State, inst: &Inst, s: &str) -> Result<String, Error> {
        words::word(s, &|k: &str| state.lookup(k), self.escape)
            .map_err(|m| step_err(&self.file, inst, m))
    }

    /// Warns about `--build-arg`s that no ARG declared.
    fn warn_unused_args(&self) {
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| {
                !self.used_args.contains(*k)
                    && !self.global_args.contains_key(*k)
                    && !PROXY_ARGS.contains(&k.as_str())
            })
            .collect();
        if !unused.is_empty() {
            self.progress.note(&format!(
                "[Warning] One or more build-args {unused:?} were not consumed"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(abs_path("/app", "sub/"), "/app/sub");
        assert_eq!(abs_path("/app", "/etc"), "/etc");
        assert_eq!(abs_path("/", "."), "/");
        assert_eq!(abs_path("/a/b", "../c"), "/a/c");
    }
}
