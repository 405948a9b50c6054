//! `rstack run [--rm] SERVICE [COMMAND...]`: a one-off container with the
//! service's configuration, like `docker compose run`: its dependencies
//! are started first (unless `--no-deps`), the service's ports are not
//! published (unless `--service-ports` or `-p`), its standard streams are
//! ours, and its exit code is ours. This process is its parent and serves
//! its DNS while it runs.

use std::time::Duration;

use anyhow::{Context, bail};
use rstack_images::Store;
use rstack_runtime::Stdio;
use rstack_stack::lifecycle;
use rstack_stack::state::{ContainerRecord, Status};

use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run container in background (not supported: a one-off needs its caller)
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VAL")]
    pub env: Vec<String>,
    /// Run as specified username or uid
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Bind mount a volume
    #[arg(short, long = "volume")]
    pub volumes: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Run command with the service's ports enabled and mapped to the host
    #[arg(long = "service-ports")]
    pub service_ports: bool,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Override the entrypoint of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Disable pseudo-TTY allocation (rstack never allocates one for run)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// The service
    pub service: String,
    /// The command and its arguments
    #[arg(allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    if args.detach {
        bail!("run -d is not supported by rstack: use `rstack up -d SERVICE`");
    }
    let ctx = stack_common::load(global, std::slice::from_ref(&args.service))?;
    let Some(svc) = ctx.project.services.get(&args.service) else {
        bail!("no such service: {}", args.service);
    };
    if !args.no_deps && !svc.depends_on.is_empty() {
        let deps: Vec<String> = svc.depends_on.keys().cloned().collect();
        let up = super::up::Args::for_dependencies(deps);
        let code = super::up::run(global, up)?;
        if code != 0 {
            return Ok(code);
        }
    }
    let store = global.store()?;
    let image_ref = ctx.project.image_name(&args.service);
    let image = service_image(&store, &image_ref, &args, svc.build.is_some())?;
    if rstack_stack::supervisor::running_supervisor(&ctx.pp).is_none() {
        ensure_resources(&ctx, &args.service)?;
    }
    let suffix = rstack_sys::random::random_hex(6)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}-run-{suffix}", ctx.project.name, args.service));
    let mut plan = lifecycle::plan(&ctx.env, &ctx.pp, &ctx.project, &args.service, &name, 1)?;
    apply_overrides(&ctx, &args, &mut plan)?;
    let mut rec = ContainerRecord::new(&name, &args.service, 1);
    rec.oneoff = true;
    rec.image = image_ref.clone();
    rec.image_id = image.id.clone();
    let mut cmd = plan.options.entrypoint.clone().unwrap_or_default();
    cmd.extend(plan.options.command.iter().cloned());
    rec.command = cmd;
    // A current-thread runtime: no other thread exists while libcontainer
    // clones the container's processes (see rstack_stack::creator).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let resolver = rstack_netns::Resolver::new(
        &ctx.env.networks.paths().run_dir,
        rstack_netns::Upstreams::from_host(),
    );
    let launcher = lifecycle::Launcher {
        env: &ctx.env,
        pp: &ctx.pp,
        image: &image,
        resolver: Some(&resolver),
        rt: rt.handle(),
        creator: None,
    };
    let started = lifecycle::create_and_start(&launcher, &mut rec, &plan, Some(own_stdio(&args)?));
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            if args.rm {
                let _ = ctx.pp.remove_container(&name);
            }
            return Err(e.into());
        }
    };
    let code = wait_and_remove(&ctx, &args, &rt, started, &mut rec);
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

/// The service's image: a missing one is pulled, as docker compose run
/// does (one to build must be built first).
fn service_image(
    store: &Store,
    image_ref: &str,
    args: &Args,
    built: bool,
) -> anyhow::Result<rstack_images::LocalImage> {
    Ok(match store.lookup(image_ref)? {
        Some(i) => i,
        None if built => bail!(
            "image {image_ref} is not built yet: run `rstack build {}` first",
            args.service
        ),
        None => {
            let wanted = [super::service_pull::Wanted {
                label: args.service.clone(),
                image: image_ref.to_owned(),
            }];
            super::service_pull::pull_all(store, &wanted, false)?
                .pop()
                .context("no pull result")??
        }
    })
}

/// A project that was never up gets its networks and volumes (recorded,
/// so `down` removes them), as with docker compose run.
fn ensure_resources(ctx: &stack_common::Ctx, service: &str) -> anyhow::Result<()> {
    let reporter: rstack_stack::supervisor::Reporter = std::sync::Arc::new(|e| {
        if let rstack_stack::supervisor::Event::Resource { kind, name, action } = e {
            eprintln!("{}", super::up::progress(kind, &name, &action));
        }
    });
    rstack_stack::supervisor::ensure_resources(
        &ctx.env,
        &ctx.pp,
        &ctx.project,
        &[service.to_owned()],
        &reporter,
    )?;
    Ok(())
}

/// The command line's flags over the service's configuration.
fn apply_overrides(
    ctx: &stack_common::Ctx,
    args: &Args,
    plan: &mut lifecycle::ContainerPlan,
) -> anyhow::Result<()> {
    let o = &mut plan.options;
    if !args.command.is_empty() {
        o.command = args.command.clone();
    }
    if let Some(e) = &args.entrypoint {
        o.entrypoint = Some(e.split_whitespace().map(str::to_owned).collect());
    }
    for e in &args.env {
        if e.contains('=') {
            o.env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            o.env.push(format!("{e}={v}"));
        }
    }
    if args.user.is_some() {
        o.user = args.user.clone();
    }
    if args.workdir.is_some() {
        o.workdir = args.workdir.clone();
    }
    for v in &args.volumes {
        o.mounts.push(
            rstack_runtime::parse::parse_volume(v, &ctx.project.working_dir)
                .with_context(|| format!("invalid --volume {v:?}"))?,
        );
    }
    o.labels
        .insert("com.docker.compose.oneoff".into(), "True".into());
    if !args.service_ports {
        plan.ports.clear();
    }
    for p in &args.publish {
        plan.ports.push(
            p.parse()
                .map_err(|e| anyhow::anyhow!("invalid --publish {p:?}: {e}"))?,
        );
    }
    Ok(())
}

/// Our own streams, duplicated so the container keeps them.
fn own_stdio(args: &Args) -> anyhow::Result<Stdio> {
    use std::os::fd::AsFd;
    let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned();
    Ok(Stdio {
        stdin: if args.interactive || !args.no_tty {
            Some(dup(std::io::stdin().as_fd())?)
        } else {
            None
        },
        stdout: Some(dup(std::io::stdout().as_fd())?),
        stderr: Some(dup(std::io::stderr().as_fd())?),
    })
}

/// Waits for the container (Ctrl-C / SIGTERM go to it, as with docker
/// compose run), removes it and its network, and keeps or drops its
/// record; its exit code is ours.
fn wait_and_remove(
    ctx: &stack_common::Ctx,
    args: &Args,
    rt: &tokio::runtime::Runtime,
    started: lifecycle::Started,
    rec: &mut ContainerRecord,
) -> anyhow::Result<u8> {
    let lifecycle::Started {
        container,
        attachments,
        dns,
        pidfd: _,
    } = started;
    let container = container.context("the container was created in this process")?;
    let (container, status) = wait_forwarding_signals(rt, container)?;
    if let Some(d) = dns {
        rt.block_on(d.stop());
    }
    let mut problems = Vec::new();
    if let Err(e) = container.remove() {
        problems.push(rstack_sys::chain::chain(&e));
    }
    drop(attachments);
    problems.extend(lifecycle::teardown_network(&ctx.env, rec));
    let code = status.as_ref().map(|s| s.code).unwrap_or(125);
    if args.rm {
        ctx.pp.remove_container(&rec.name)?;
        ctx.pp.remove_container_data(&rec.name);
    } else {
        rec.status = Status::Exited;
        rec.exit_code = Some(code);
        rec.finished_at = Some(rstack_stack::state::now_rfc3339());
        rec.pid = None;
        ctx.pp.save_container(rec)?;
    }
    for p in problems {
        eprintln!("WARN[0000] {p}");
    }
    status.context("wait for the container")?;
    Ok(code.clamp(0, 255) as u8)
}

type Waited = (
    rstack_runtime::Container,
    Result<rstack_runtime::container::ExitStatus, rstack_runtime::container::ContainerError>,
);

/// Waits for the container on its own thread (the wait blocks) while this
/// one drives DNS and forwards SIGINT and SIGTERM to it.
fn wait_forwarding_signals(
    rt: &tokio::runtime::Runtime,
    mut container: rstack_runtime::Container,
) -> anyhow::Result<Waited> {
    let pid = container.pid();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let waiter = std::thread::spawn(move || {
        let status = container.wait();
        let _ = tx.send(());
        (container, status)
    });
    rt.spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            let sig = tokio::select! {
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
            };
            // SAFETY: kill(2) with a pid of our own child.
            unsafe { libc::kill(pid, sig) };
        }
    });
    let _ = rt.block_on(rx);
    waiter
        .join()
        .map_err(|_| anyhow::anyhow!("the container's waiter panicked"))
}
