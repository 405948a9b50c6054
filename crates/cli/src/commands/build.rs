//! `rstack build [SERVICE...]` (like `docker compose build`) and
//! `rstack image build [OPTIONS] CONTEXT` (like `docker build`): Dockerfile
//! builds with RUN steps in rstack's own containers. Output follows
//! BuildKit's plain progress: `#N [stage i/n] INSTRUCTION`, the RUN output
//! streamed, then `#N DONE 0.4s` or `#N CACHED`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rstack_builder::{BuildOptions, BuildProgress, RunNetwork, StepInfo};
use rstack_stack::build::{RuntimeExecutor, service_builds};

use crate::commands::stack_common;
use crate::global::GlobalOpts;

/// `rstack build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Set build-time variables for services (KEY=VALUE)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_arg: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// Always attempt to pull a newer version of the base images
    #[arg(long)]
    pull: bool,
    /// Don't print anything to STDOUT
    #[arg(short, long)]
    quiet: bool,
    /// Services to build (all services with a build section by default)
    services: Vec<String>,
}

/// `rstack image build`.
#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    tag: Vec<String>,
    /// Name of the Dockerfile (default: "CONTEXT/Dockerfile")
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Set build-time variables (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_arg: Vec<String>,
    /// Set metadata for an image (KEY=VALUE)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// Always attempt to pull a newer version of the base images
    #[arg(long)]
    pull: bool,
    /// Networking mode for the RUN instructions (default, host, none)
    #[arg(long, default_value = "default")]
    network: String,
    /// Size of /dev/shm for RUN instructions (e.g. 64m)
    #[arg(long = "shm-size")]
    shm_size: Option<String>,
    /// Suppress the build output and print the image ID on success
    #[arg(short, long)]
    quiet: bool,
    /// Build context directory
    context: PathBuf,
}

/// Prints BuildKit-style plain progress to stderr.
struct Printer {
    quiet: bool,
    state: Mutex<PrinterState>,
}

#[derive(Default)]
struct PrinterState {
    next: usize,
    current: usize,
    /// The RUN output so far ends without a newline.
    open_line: bool,
    /// Output kept while quiet, shown if the step fails.
    kept: Vec<u8>,
}

impl Printer {
    fn new(quiet: bool) -> Printer {
        Printer {
            quiet,
            state: Mutex::new(PrinterState {
                next: 1,
                ..Default::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PrinterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a failure in quiet mode, the output of the failed step.
    fn flush_kept(&self) {
        let s = self.lock();
        if self.quiet && !s.kept.is_empty() {
            let _ = std::io::stderr().write_all(&s.kept);
        }
    }
}

impl BuildProgress for Printer {
    fn step(&self, step: &StepInfo) {
        let mut s = self.lock();
        s.current = s.next;
        s.next += 1;
        s.kept.clear();
        if !self.quiet {
            eprintln!(
                "#{} [{} {}/{}] {}",
                s.current, step.stage, step.number, step.total, step.text
            );
        }
    }

    fn output(&self, data: &[u8]) {
        let mut s = self.lock();
        if self.quiet {
            s.kept.extend_from_slice(data);
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(data);
        let _ = err.flush();
        s.open_line = !data.ends_with(b"\n");
    }

    fn step_done(&self, _step: &StepInfo, cached: bool, elapsed: Duration) {
        let mut s = self.lock();
        if self.quiet {
            return;
        }
        if s.open_line {
            eprintln!();
            s.open_line = false;
        }
        if cached {
            eprintln!("#{} CACHED", s.current);
        } else {
            eprintln!("#{} DONE {:.1}s", s.current, elapsed.as_secs_f64());
        }
    }

    fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }
}

/// `KEY=VALUE`, or `KEY` taken from the environment (skipped when unset).
fn parse_kv(
    flag: &str,
    items: &[String],
    from_env: bool,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_owned(), v.to_owned());
            }
            Some(_) => bail!("invalid argument \"{item}\" for \"{flag}\" flag: empty key"),
            None if from_env => {
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            None => {
                out.insert(item.clone(), String::new());
            }
        }
    }
    Ok(out)
}

/// Runs one build and prints its summary.
fn build_one(
    global: &GlobalOpts,
    opts: &BuildOptions,
    printer: &Printer,
) -> anyhow::Result<rstack_builder::BuildOutput> {
    let store = global.store()?;
    let executor = RuntimeExecutor::new(&global.run_root, &global.root);
    let started = Instant::now();
    let out = match rstack_builder::build(&store, opts, &executor, printer) {
        Ok(out) => out,
        Err(e) => {
            printer.flush_kept();
            return Err(e.into());
        }
    };
    if !printer.quiet {
        eprintln!(
            "#{} writing image {} done",
            printer.lock().next,
            out.image.id
        );
        for t in &opts.tags {
            eprintln!("#{} naming to {t} done", printer.lock().next);
        }
        eprintln!(
            "Built in {:.1}s ({} steps, {} cached)",
            started.elapsed().as_secs_f64(),
            out.steps,
            out.cached
        );
    }
    Ok(out)
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let ctx = stack_common::load(global, &args.services)?;
    let extra = parse_kv("--build-arg", &args.build_arg, true)?;
    build_services(global, &ctx.project, &args.services, &args, extra)?;
    Ok(0)
}

/// For `up`: builds the services with `build:` — all of them with
/// `--build`, else only those whose image is missing (docker compose's
/// rule). Prints the same progress as `rstack build`.
pub fn build_for_up(
    global: &GlobalOpts,
    project: &rstack_compose::Project,
    all: bool,
) -> anyhow::Result<()> {
    let services = if all {
        service_builds(project, &[])?
            .into_iter()
            .map(|b| b.service)
            .collect()
    } else {
        let store = global.store()?;
        rstack_stack::build::missing(project, &store)?
    };
    if services.is_empty() {
        return Ok(());
    }
    let args = Args {
        build_arg: Vec::new(),
        no_cache: false,
        pull: false,
        quiet: false,
        services: services.clone(),
    };
    build_services(global, project, &services, &args, BTreeMap::new())
}

/// Builds `services` of `project` as `rstack build SERVICE...` does (for
/// `kube generate --push`).
pub fn build_named(
    global: &GlobalOpts,
    project: &rstack_compose::Project,
    services: &[String],
) -> anyhow::Result<()> {
    let args = Args {
        build_arg: Vec::new(),
        no_cache: false,
        pull: false,
        quiet: false,
        services: services.to_vec(),
    };
    build_services(global, project, services, &args, BTreeMap::new())
}

fn build_services(
    global: &GlobalOpts,
    project: &rstack_compose::Project,
    services: &[String],
    args: &Args,
    extra: BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let builds = service_builds(project, services)?;
    for mut b in builds {
        b.options.build_args.extend(extra.clone());
        b.options.no_cache |= args.no_cache;
        b.options.pull |= args.pull;
        if !args.quiet {
            eprintln!("[+] Building {} ({})", b.service, b.image);
        }
        let printer = Printer::new(args.quiet);
        build_one(global, &b.options, &printer)
            .with_context(|| format!("service \"{}\" failed to build", b.service))?;
        if !args.quiet {
            eprintln!(" Service {}  Built", b.service);
        }
    }
    Ok(())
}

pub fn run_image(global: &GlobalOpts, args: ImageArgs) -> anyhow::Result<u8> {
    let network = match args.network.as_str() {
        "default" | "host" => RunNetwork::Host,
        "none" => RunNetwork::None,
        other => {
            bail!("invalid argument \"{other}\" for \"--network\" flag: use default, host or none")
        }
    };
    let shm_size = args
        .shm_size
        .as_deref()
        .map(|s| {
            rstack_runtime::parse::parse_bytes(s)
                .map(|b| b as u64)
                .map_err(|e| {
                    anyhow::anyhow!("invalid argument \"{s}\" for \"--shm-size\" flag: {e}")
                })
        })
        .transpose()?;
    let opts = BuildOptions {
        context: args.context.clone(),
        dockerfile: args.file.clone(),
        dockerfile_inline: None,
        tags: args.tag.clone(),
        target: args.target.clone(),
        build_args: parse_kv("--build-arg", &args.build_arg, true)?,
        labels: parse_kv("--label", &args.label, false)?,
        no_cache: args.no_cache,
        pull: args.pull,
        network,
        shm_size,
        platform: None,
    };
    let printer = Printer::new(args.quiet);
    let out = build_one(global, &opts, &printer)?;
    if args.quiet {
        println!("{}", out.image.id);
    }
    Ok(0)
}
