//! `rstack up`: create and start the project's containers, like
//! `docker compose up`. Attached, this process *is* the supervisor and
//! streams the logs; with `-d` the supervisor is started detached (its own
//! session, output to `ROOT/projects/<p>/supervisor.log`) and this command
//! returns once the services are started (healthy with `--wait`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rstack_images::{LocalImage, Store};
use rstack_stack::control::Request;
use rstack_stack::state::ProjectLock;
use rstack_stack::supervisor::known;
use rstack_stack::supervisor::{Ended, Event, Supervisor, UpOptions, running_supervisor};

use super::service_pull::{self, Wanted};
use super::stack_common::{self, Ctx};
use crate::global::GlobalOpts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    Always,
    Missing,
    Never,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Detached mode: run containers in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Wait for services to be running|healthy (implies --detach)
    #[arg(long)]
    pub wait: bool,
    /// Maximum duration in seconds to wait for the project to be running|healthy
    #[arg(long = "wait-timeout", value_name = "SECONDS")]
    pub wait_timeout: Option<u64>,
    /// Recreate containers even if their configuration hasn't changed
    #[arg(long = "force-recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long = "no-recreate", conflicts_with = "force_recreate")]
    pub no_recreate: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Build images before starting containers
    #[arg(long)]
    pub build: bool,
    /// Don't build an image, even if it's missing
    #[arg(long = "no-build", conflicts_with = "build")]
    pub no_build: bool,
    /// Pull image before running
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: PullPolicy,
    /// Shutdown timeout in seconds (for recreated containers)
    #[arg(short = 't', long = "timeout", value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Produce monochrome output
    #[arg(long = "no-color")]
    pub no_color: bool,
    /// Don't print a prefix in logs
    #[arg(long = "no-log-prefix")]
    pub no_log_prefix: bool,
    /// Stops all containers if any container was stopped (attached only)
    #[arg(long = "abort-on-container-exit", conflicts_with = "detach")]
    pub abort_on_container_exit: bool,
    /// Return the exit code of the selected service container (implies --abort-on-container-exit)
    #[arg(
        long = "exit-code-from",
        value_name = "SERVICE",
        conflicts_with = "detach"
    )]
    pub exit_code_from: Option<String>,
    /// Scale SERVICE to NUM instances (overrides `scale` in the Compose file)
    #[arg(long, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Internal: run as the detached supervisor
    #[arg(long = "supervisor-child", hide = true)]
    pub supervisor_child: bool,
    /// Services to start (and their dependencies)
    pub services: Vec<String>,
}

impl Args {
    /// `up -d --wait DEPS...` as `run` starts a one-off's dependencies
    /// (healthy ones when they have a healthcheck).
    pub fn for_dependencies(services: Vec<String>) -> Args {
        Args {
            detach: true,
            wait: true,
            wait_timeout: None,
            force_recreate: false,
            no_recreate: false,
            remove_orphans: false,
            build: false,
            no_build: false,
            pull: PullPolicy::Missing,
            timeout: None,
            no_color: false,
            no_log_prefix: false,
            abort_on_container_exit: false,
            exit_code_from: None,
            scale: Vec::new(),
            no_deps: false,
            supervisor_child: false,
            services,
        }
    }
}

/// The container that stopped first and its exit code.
type FirstExit = (String, Option<i32>);

pub(crate) fn progress(kind: &str, name: &str, action: &str) -> String {
    format!(" {kind} {name}  {action}")
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let mut ctx = stack_common::load(global, &args.services)?;
    apply_scale(&mut ctx, &args)?;
    let store = global.store()?;
    if args.supervisor_child {
        let foreign = keep_foreign(&mut ctx, &args)?;
        return run_child(ctx, &store, &args, foreign);
    }
    let lock = ProjectLock::acquire(&ctx.pp)?;
    // services with `build:`: all rebuilt with --build, else the missing
    // images only (docker compose's rule); then pulls for the rest
    if !args.no_build {
        super::build::build_for_up(global, &ctx.project, args.build)?;
    }
    let foreign = keep_foreign(&mut ctx, &args)?;
    // a name conflict fails before anything changes (the running
    // supervisor is not even asked to let go)
    let selected = known::selected(&ctx.project, &args.services, args.no_deps, &foreign)?;
    let pairs = known::wanted_names(&ctx.project);
    if let Some(c) = known::name_conflict(&pairs, &ctx.pp.containers()?, &selected) {
        bail!("{c}");
    }
    let images = ensure_images(&ctx, &store, args.pull)?;
    if let Some(sup) = running_supervisor(&ctx.pp) {
        // A supervisor runs: let it go (its containers keep running) and
        // start a new one that adopts them and applies the changes.
        stack_common::ask(&ctx.pp, &Request::Detach, Duration::from_secs(30))?;
        rstack_stack::status::wait_supervisor_exit(&sup, Duration::from_secs(30));
    }
    let opts = up_options(&args, foreign);
    if args.detach || args.wait {
        let code = spawn_detached(global, &ctx, &args)?;
        drop(lock);
        return Ok(code);
    }
    run_attached(&ctx, &args, images, &opts, lock)
}

/// `--scale SERVICE=NUM` over the model; every service named must exist.
fn apply_scale(ctx: &mut Ctx, args: &Args) -> anyhow::Result<()> {
    for s in &args.scale {
        let (svc, n) = s
            .split_once('=')
            .and_then(|(a, b)| Some((a, b.parse::<i64>().ok()?)))
            .filter(|(_, n)| *n >= 0)
            .ok_or_else(|| anyhow::anyhow!("invalid --scale {s:?}: expected SERVICE=NUM"))?;
        let Some(service) = ctx.project.services.get_mut(svc) else {
            bail!("no such service: {svc}");
        };
        service.scale = Some(n);
    }
    for s in args.services.iter().chain(args.exit_code_from.iter()) {
        if !ctx.project.services.contains_key(s) {
            bail!("no such service: {s}");
        }
    }
    Ok(())
}

/// What the supervisor is asked to do, from the command line.
fn up_options(args: &Args, foreign: Vec<String>) -> UpOptions {
    UpOptions {
        services: args.services.clone(),
        force_recreate: args.force_recreate,
        no_recreate: args.no_recreate,
        remove_orphans: args.remove_orphans,
        wait_healthy: args.wait,
        timeout: args.timeout,
        no_deps: args.no_deps,
        foreign,
    }
}

/// Attached: this process is the supervisor, and prints the containers'
/// logs until the project stops.
fn run_attached(
    ctx: &Ctx,
    args: &Args,
    images: HashMap<String, LocalImage>,
    opts: &UpOptions,
    lock: ProjectLock,
) -> anyhow::Result<u8> {
    // --abort-on-container-exit: the first exit stops the project (as a
    // Ctrl-C would); its code, or the --exit-code-from service's, is ours.
    let abort = args.abort_on_container_exit || args.exit_code_from.is_some();
    let first_exit: Arc<std::sync::Mutex<Option<FirstExit>>> = Arc::default();
    let reporter = attached_reporter(abort, first_exit.clone());
    let names: Vec<String> = names_of(ctx);
    let sup = Supervisor::start(ctx.env.clone(), ctx.project.clone(), images, opts, reporter)?;
    let ready = sup.wait_ready();
    drop(lock);
    if let Err(e) = &ready {
        eprintln!("Error: {e}");
    }
    let color = stack_common::use_color(args.no_color);
    let pp = ctx.pp.clone();
    let no_prefix = args.no_log_prefix;
    std::thread::spawn(move || follow_logs(&pp, &names, color, no_prefix));
    if sup.serve(true)? == Ended::Detached {
        // another `up` took over: leave at once, its containers running
        return Ok(0);
    }
    if let Some(svc) = &args.exit_code_from {
        let recs = stack_common::containers_of(&ctx.pp, svc)?;
        let c = recs.first().and_then(|r| r.exit_code).unwrap_or(1);
        return Ok(c.clamp(0, 255) as u8);
    }
    if abort {
        let first = first_exit.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some((_, c)) = first {
            return Ok(c.unwrap_or(1).clamp(0, 255) as u8);
        }
    }
    Ok(if ready.is_err() { 1 } else { 0 })
}

/// What the attached supervisor prints; with `abort`, the first exit is
/// kept in `first_exit` and stops the project.
fn attached_reporter(
    abort: bool,
    fe: Arc<std::sync::Mutex<Option<FirstExit>>>,
) -> rstack_stack::supervisor::Reporter {
    Arc::new(move |e: Event| match e {
        Event::Resource { kind, name, action } => eprintln!("{}", progress(kind, &name, &action)),
        Event::Warning(w) => eprintln!("WARN[0000] {w}"),
        Event::Exited { name, code } => {
            let c = code.map_or("unknown".to_owned(), |c| c.to_string());
            println!("{name} exited with code {c}");
            if abort {
                let mut first = fe.lock().unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    *first = Some((name, code));
                    eprintln!("Aborting on container exit...");
                    // SAFETY: kill(2) on our own pid: the supervisor's
                    // signal handler stops the project.
                    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
                }
            }
        }
    })
}

fn names_of(ctx: &Ctx) -> Vec<String> {
    let mut v = Vec::new();
    for (name, svc) in &ctx.project.services {
        for n in rstack_stack::supervisor::replica_numbers(svc) {
            v.push(ctx.project.container_name(name, n));
        }
    }
    v
}

/// Streams every container's json log with `name  | ` prefixes.
fn follow_logs(
    pp: &rstack_stack::state::ProjectPaths,
    names: &[String],
    color: bool,
    no_prefix: bool,
) {
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let mut followers: Vec<_> = names
        .iter()
        .map(|n| rstack_stack::logs::Follower::from_start(&pp.json_log(n)))
        .collect();
    loop {
        let mut any = false;
        for (i, f) in followers.iter_mut().enumerate() {
            for e in f.poll() {
                any = true;
                let mut line = e.log;
                if !line.ends_with('\n') {
                    line.push('\n');
                }
                let pre = if no_prefix {
                    String::new()
                } else {
                    stack_common::prefix(&names[i], width, i, color)
                };
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "{pre}{line}");
                let _ = out.flush();
            }
        }
        if !any {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Looks up (and pulls, per `policy`) the image of every service; the
/// images to pull are pulled together (see [`service_pull`]).
fn ensure_images(
    ctx: &Ctx,
    store: &Store,
    policy: PullPolicy,
) -> anyhow::Result<HashMap<String, LocalImage>> {
    let mut out = HashMap::new();
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut waiting: Vec<(String, String)> = Vec::new();
    for name in ctx.project.services.keys() {
        let image = ctx.project.image_name(name);
        let svc_policy = match ctx.project.services[name].pull_policy.as_deref() {
            Some("always") => PullPolicy::Always,
            Some("never") => PullPolicy::Never,
            _ => policy,
        };
        match (store.lookup(&image)?, svc_policy) {
            (Some(i), PullPolicy::Missing | PullPolicy::Never) => {
                out.insert(name.clone(), i);
            }
            (None, PullPolicy::Never) => {
                bail!("service {name}: image {image} is not present and pull policy is never")
            }
            _ => {
                if !wanted.iter().any(|w| w.image == image) {
                    wanted.push(Wanted {
                        label: name.clone(),
                        image: image.clone(),
                    });
                }
                waiting.push((name.clone(), image));
            }
        }
    }
    let mut pulled = HashMap::new();
    for (w, res) in wanted
        .iter()
        .zip(service_pull::pull_all(store, &wanted, false)?)
    {
        pulled.insert(w.image.clone(), res?);
    }
    for (name, image) in waiting {
        out.insert(name, pulled[&image].clone());
    }
    Ok(out)
}

/// Starts `rstack ... up --supervisor-child` in its own session and relays
/// its progress until it says the services are ready.
fn spawn_detached(global: &GlobalOpts, ctx: &Ctx, args: &Args) -> anyhow::Result<u8> {
    let mut cmd = child_command(global, ctx, args)?;
    std::fs::create_dir_all(&ctx.pp.data)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ctx.pp.supervisor_log())
        .with_context(|| format!("open {}", ctx.pp.supervisor_log().display()))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    // SAFETY: setsid is async-signal-safe; called in the child between
    // fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = cmd.spawn().context("start the supervisor")?;
    relay_until_ready(ctx, args, child)
}

/// `rstack ... up --supervisor-child` with this command's global and up flags.
fn child_command(global: &GlobalOpts, ctx: &Ctx, args: &Args) -> anyhow::Result<Command> {
    let mut cmd = global.rstack_command().context("find the rstack binary")?;
    let c = &global.compose;
    for f in &c.files {
        cmd.arg("-f").arg(f);
    }
    cmd.arg("-p").arg(&ctx.project.name);
    for p in &c.profiles {
        cmd.arg("--profile").arg(p);
    }
    for e in &c.env_files {
        cmd.arg("--env-file").arg(e);
    }
    if let Some(d) = &c.project_directory {
        cmd.arg("--project-directory").arg(d);
    }
    cmd.arg("up").arg("--supervisor-child");
    if args.force_recreate {
        cmd.arg("--force-recreate");
    }
    if args.no_recreate {
        cmd.arg("--no-recreate");
    }
    if args.remove_orphans {
        cmd.arg("--remove-orphans");
    }
    if args.wait {
        cmd.arg("--wait");
    }
    if let Some(t) = args.timeout {
        cmd.arg("-t").arg(t.to_string());
    }
    for sc in &args.scale {
        cmd.arg("--scale").arg(sc);
    }
    if args.no_deps {
        cmd.arg("--no-deps");
    }
    cmd.args(&args.services);
    Ok(cmd)
}

/// Relays the detached supervisor's progress until it says READY (0) or
/// FAILED (1), `--wait-timeout` passes (1), or it exits (an error).
fn relay_until_ready(ctx: &Ctx, args: &Args, mut child: std::process::Child) -> anyhow::Result<u8> {
    let out = child.stdout.take().expect("piped");
    let deadline = args
        .wait_timeout
        .map(|s| std::time::Instant::now() + Duration::from_secs(s));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let timeout = deadline
            .map(|d| d.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or(Duration::from_secs(3600));
        match rx.recv_timeout(timeout) {
            Ok(line) => {
                if line == "READY" {
                    return Ok(0);
                }
                if let Some(msg) = line.strip_prefix("FAILED ") {
                    eprintln!("Error: {}", msg.replace("\\n", "\n"));
                    return Ok(1);
                }
                eprintln!("{line}");
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                eprintln!("Error: timed out waiting for the services (--wait-timeout)");
                return Ok(1);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let st = child.wait().ok();
                bail!(
                    "the supervisor exited before the services were started ({}); see {}",
                    st.map_or("unknown".into(), |s| s.to_string()),
                    ctx.pp.supervisor_log().display()
                );
            }
        }
    }
}

/// The services of the project's last `up` that these files do not declare
/// but whose containers are still there: still supervised (not started),
/// unless `--remove-orphans` removes them.
fn keep_foreign(ctx: &mut Ctx, args: &Args) -> anyhow::Result<Vec<String>> {
    if args.remove_orphans {
        return Ok(Vec::new());
    }
    Ok(known::keep_foreign_services(&mut ctx.project, &ctx.pp)?)
}

/// The detached supervisor: sets up, reports progress on stdout (a pipe
/// to `up -d`), says READY, then points stdout at its log file and serves.
fn run_child(ctx: Ctx, store: &Store, args: &Args, foreign: Vec<String>) -> anyhow::Result<u8> {
    // a long-lived process: few malloc arenas, startup pages shed once
    // the services run (rstack_sys::mem)
    rstack_sys::mem::limit_arenas();
    let images = ensure_images(&ctx, store, PullPolicy::Never)?;
    let opts = up_options(args, foreign);
    let reporter: rstack_stack::supervisor::Reporter = Arc::new(|e: Event| {
        let line = match e {
            Event::Resource { kind, name, action } => progress(kind, &name, &action),
            Event::Warning(w) => format!("WARN[0000] {w}"),
            Event::Exited { name, code } => format!(
                "{name} exited with code {}",
                code.map_or("unknown".to_owned(), |c| c.to_string())
            ),
        };
        // stdout is the pipe to `up -d` until READY, then the log file
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    });
    let sup = match Supervisor::start(
        ctx.env.clone(),
        ctx.project.clone(),
        images,
        &opts,
        reporter,
    ) {
        Ok(s) => s,
        Err(e) => {
            println!("FAILED {}", chain_line(&e));
            return Ok(1);
        }
    };
    match sup.wait_ready() {
        Ok(()) => println!("READY"),
        Err(e) => println!("FAILED {}", chain_line(&e)),
    }
    let _ = std::io::stdout().flush();
    rstack_compose::validate::release_cache();
    rstack_sys::mem::shed_startup_pages();
    // stdout now goes to the log file (stderr already does)
    // SAFETY: dup2 of our own fds.
    unsafe {
        libc::dup2(2, 1);
    }
    sup.serve(false)?;
    Ok(0)
}

fn chain_line(e: &dyn std::error::Error) -> String {
    rstack_sys::chain::chain(e).replace('\n', "\\n")
}
