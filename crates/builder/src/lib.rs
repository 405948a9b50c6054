//! rstack-builder: image builds from Dockerfiles, without a daemon.
//!
//! [`build`] parses the Dockerfile, reads the build context through
//! `.dockerignore`, and executes the stages the target needs in order, on
//! rstack-images' [`Store`](rstack_images::Store). RUN steps run in a
//! container on the stage's layers through a [`RunExecutor`] the caller
//! supplies (rstack-stack implements it with rstack-runtime: this crate
//! stays free of the runtime); their overlayfs upper dir becomes the new
//! layer. COPY/ADD layers are written directly from the sources. Every
//! layer-producing step is cached under ROOT/build/cache by a key chained
//! from its parent (see [`cache`]), so an unchanged step is reused instead
//! of re-run.

pub mod builder;
pub mod cache;
pub mod context;
pub mod diff;
pub mod dockerfile;
pub mod ignore;
pub mod mergedfs;
pub mod words;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use builder::{BuildOptions, BuildOutput, build};

/// A failed build. Dockerfile problems name `file:line`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read Dockerfile {path}")]
    ReadDockerfile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}:{line}: {text}: {message}", file.display())]
    Step {
        file: PathBuf,
        line: usize,
        text: String,
        message: String,
    },
    #[error("{}:{line}: {text}: did not complete successfully: exit code: {code}", file.display())]
    RunFailed {
        file: PathBuf,
        line: usize,
        text: String,
        code: i32,
    },
    #[error("{}:{line}: {text}", file.display())]
    StepSource {
        file: PathBuf,
        line: usize,
        text: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("target stage \"{target}\" could not be found")]
    UnknownTarget { target: String },
    #[error("the Dockerfile has no FROM instruction")]
    NoFrom,
    #[error("build context {path} is not a directory")]
    Context {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Ignore {
        path: PathBuf,
        #[source]
        source: ignore::PatternError,
    },
    #[error("invalid tag {tag:?}")]
    BadTag {
        tag: String,
        #[source]
        source: rstack_images::reference::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] rstack_images::Error),
}

/// Network of a RUN step's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunNetwork {
    /// Only a loopback interface.
    None,
    /// The host's network namespace (what the host reaches, RUN reaches).
    #[default]
    Host,
}

/// Errors of a [`RunExecutor`] (the executor's own types stay its own).
pub type ExecError = Box<dyn std::error::Error + Send + Sync>;

/// One RUN step to execute.
pub struct RunRequest<'a> {
    /// The stage's layer dirs, bottom to top (read-only lower dirs).
    pub layers: &'a [PathBuf],
    /// The process: the shell plus the command, or the exec form.
    pub argv: Vec<String>,
    /// `KEY=VALUE`: the image's ENV plus the build args in scope.
    pub env: Vec<String>,
    /// USER in effect (empty: root).
    pub user: String,
    /// WORKDIR in effect (absolute).
    pub workdir: String,
    pub network: RunNetwork,
    /// Size of /dev/shm in bytes (`None`: the runtime's default).
    pub shm_size: Option<u64>,
    /// Receives the process's stdout and stderr as they come.
    pub output: &'a (dyn Fn(&[u8]) + Sync),
}

/// How a RUN process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    /// Exit code (128+N after signal N).
    pub exit_code: i32,
}

/// Runs RUN steps in containers.
pub trait RunExecutor {
    /// Runs `req` in a new container whose root is an overlay of
    /// `req.layers` and a fresh upper dir. When the process exits 0, calls
    /// `capture` with the upper dir (the step's changes) before the
    /// container is removed; the container is removed in every case.
    fn run(
        &self,
        req: &RunRequest<'_>,
        capture: &mut dyn FnMut(&Path) -> Result<(), ExecError>,
    ) -> Result<RunOutcome, ExecError>;
}

/// A step as the progress display shows it.
#[derive(Debug, Clone)]
pub struct StepInfo {
    /// Stage name (or index) as buildkit prints it: `build`, `stage-0`.
    pub stage: String,
    /// 1-based number of the step in its stage.
    pub number: usize,
    /// Steps (FROM, RUN, COPY, ADD, WORKDIR) in the stage.
    pub total: usize,
    /// The instruction text.
    pub text: String,
}

/// Receives build progress.
pub trait BuildProgress: Sync {
    /// A step starts.
    fn step(&self, _step: &StepInfo) {}
    /// Output of the running step.
    fn output(&self, _data: &[u8]) {}
    /// A step ended (`cached`: reused from the cache).
    fn step_done(&self, _step: &StepInfo, _cached: bool, _elapsed: Duration) {}
    /// A line of information (warnings, pulls).
    fn note(&self, _text: &str) {}
}

/// Progress sink that drops everything.
pub struct Quiet;
impl BuildProgress for Quiet {}
