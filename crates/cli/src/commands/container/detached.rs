//! `container run -d`: a single container supervised like a stack.
//!
//! Each detached container is a one-service project of its own (`c-<hex>`,
//! its Compose document in `RUN/projects/<p>/container.json`, made by
//! [`super::single`]) with its own supervisor process. One supervisor per
//! container rather than one for all: a crash or an upgrade of one never
//! touches another container, `rm` ends exactly one process, and the
//! supervisor's code is the stack's, already tested for re-adoption (the
//! reasons are in docs/ARCHITECTURE.md). The project commands run as a
//! child `rstack -f container.json -p <p> ...` whose progress lines are
//! kept from the user (Docker prints the id, or the name given).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use rstack_stack::state::{ContainerRecord, Layout, ProjectPaths, Status};

use super::net::{self, Plan};
use super::run::Args;
use super::single::{self, Flags, Health, Net, VolumeArg};
use crate::global::GlobalOpts;

/// The Compose document's file name in the project's run dir.
const DOCUMENT: &str = "container.json";

/// A single container's project.
#[derive(Debug, Clone)]
pub struct SingleProject {
    pub name: String,
    pub pp: ProjectPaths,
}

impl SingleProject {
    /// The project `name` when it is a single container's.
    pub fn of(layout: &Layout, name: &str) -> Option<SingleProject> {
        let pp = layout.project(name);
        pp.run.join(DOCUMENT).is_file().then(|| SingleProject {
            name: name.to_owned(),
            pp,
        })
    }

    pub(super) fn document(&self) -> PathBuf {
        self.pp.run.join(DOCUMENT)
    }

    /// `rstack -f container.json -p <p> ARGS...` with our global flags.
    fn command(&self, global: &GlobalOpts, args: &[&str]) -> anyhow::Result<Command> {
        let mut cmd = global.rstack_command().context("find the rstack binary")?;
        cmd.arg("-f")
            .arg(self.document())
            .arg("-p")
            .arg(&self.name)
            .args(args)
            .stdin(Stdio::null())
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROFILES")
            .env_remove("COMPOSE_PROJECT_NAME");
        Ok(cmd)
    }

    /// Runs a project command; its output is shown only when it fails.
    pub fn run(&self, global: &GlobalOpts, args: &[&str]) -> anyhow::Result<()> {
        let out = self
            .command(global, args)?
            .output()
            .with_context(|| format!("run rstack {}", args.join(" ")))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            let text = text.trim();
            bail!(
                "{}",
                if text.is_empty() {
                    format!("rstack {} failed ({})", args.join(" "), out.status)
                } else {
                    text.to_owned()
                }
            );
        }
        Ok(())
    }

    /// Starts the container's supervisor unless one runs: it adopts the
    /// container when it runs, else starts it (`up -d` keeps the id and
    /// the files of an existing container).
    pub fn ensure_supervisor(&self, global: &GlobalOpts) -> anyhow::Result<()> {
        if rstack_stack::supervisor::running_supervisor(&self.pp).is_some() {
            return Ok(());
        }
        self.run(global, &["up", "-d", "--no-recreate", "--pull", "never"])
    }

    /// Removes the container and everything of its project.
    pub fn remove(&self, global: &GlobalOpts, timeout: Option<u64>) -> anyhow::Result<()> {
        let t = timeout.map(|t| t.to_string());
        let mut args = vec!["down"];
        if let Some(t) = &t {
            args.extend(["-t", t]);
        }
        self.run(global, &args)?;
        let _ = std::fs::remove_file(self.document());
        let _ = std::fs::remove_file(self.pp.lock_file());
        let _ = std::fs::remove_dir(&self.pp.run);
        let _ = std::fs::remove_dir_all(&self.pp.data);
        Ok(())
    }
}

/// Every container name in use, in any project (single or stack), and
/// the runtime's reservations.
pub(super) fn name_taken(
    global: &GlobalOpts,
    layout: &Layout,
    name: &str,
) -> anyhow::Result<Option<String>> {
    for p in layout.list_projects()? {
        if let Some(r) = layout.project(&p).container(name)? {
            return Ok(Some(r.id.unwrap_or(p)));
        }
    }
    super::run::check_name_free(global, name)?;
    Ok(None)
}

pub(super) fn conflict(name: &str, by: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{by}\". You have to remove (or rename) that container to be able to reuse that name."
    )
}

/// The container's name: `--name`, checked and free, or a generated one.
fn choose_name(
    global: &GlobalOpts,
    layout: &Layout,
    given: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(n) = given {
        single::check_container_name(n)?;
        if let Some(by) = name_taken(global, layout, n)? {
            return Err(conflict(n, &by));
        }
        return Ok(n.to_owned());
    }
    for _ in 0..64 {
        let r = rstack_sys::random::random_hex(2)?;
        let v = u16::from_str_radix(&r, 16).unwrap_or(0) as usize;
        let n = single::generated_name((v >> 8, v & 0xff));
        if name_taken(global, layout, &n)?.is_none() {
            return Ok(n);
        }
    }
    let n = format!("rstack_{}", rstack_sys::random::random_hex(6)?);
    Ok(n)
}

/// Go's duration syntax, checked as `docker run` does for `--health-*`.
fn duration_flag(flag: &str, v: &Option<String>) -> anyhow::Result<()> {
    if let Some(v) = v {
        rstack_sys::duration::parse(v)
            .map_err(|e| anyhow::anyhow!("invalid argument \"{v}\" for \"--{flag}\" flag: {e}"))?;
    }
    Ok(())
}

/// Flags only `-d` has, checked before anything is created.
fn check_flags(args: &Args) -> anyhow::Result<()> {
    if args.rm {
        bail!("--rm with -d is not supported yet: remove the container with `rstack container rm`");
    }
    if let Some(r) = &args.restart {
        rstack_stack::restart::Policy::parse("", r)
            .map_err(|_| anyhow::anyhow!("invalid restart policy: {r}"))?;
    }
    duration_flag("health-interval", &args.health_interval)?;
    duration_flag("health-timeout", &args.health_timeout)?;
    duration_flag("health-start-period", &args.health_start_period)?;
    duration_flag("health-start-interval", &args.health_start_interval)?;
    if args.no_healthcheck && args.health_cmd.is_some() {
        bail!("--no-healthcheck conflicts with --health-* options");
    }
    Ok(())
}

fn flags<'a>(args: &'a Args, name: &'a str, env: &'a [String], net: Net<'a>) -> Flags<'a> {
    Flags {
        name,
        image: &args.args[0],
        command: &args.args[1..],
        entrypoint: args.entrypoint.as_deref(),
        env,
        labels: &args.label,
        workdir: args.workdir.as_deref(),
        user: args.user.as_deref(),
        group_add: &args.group_add,
        hostname: args.hostname.as_deref(),
        tty: args.tty,
        interactive: args.interactive,
        privileged: args.privileged,
        cgroupns: args.cgroupns.as_deref(),
        read_only: args.read_only,
        cap_add: &args.cap_add,
        cap_drop: &args.cap_drop,
        security_opt: &args.security_opt,
        init: args.init,
        volumes: &args.volume,
        tmpfs: &args.tmpfs,
        ulimits: &args.ulimit,
        shm_size: args.shm_size.as_deref(),
        memory: args.memory.as_deref(),
        memory_reservation: args.memory_reservation.as_deref(),
        memory_swap: args.memory_swap.as_deref(),
        cpus: args.cpus.as_deref(),
        cpu_shares: args.cpu_shares.as_deref(),
        cpuset_cpus: args.cpuset_cpus.as_deref(),
        pids_limit: args.pids_limit.as_deref(),
        dns: &args.dns,
        dns_search: &args.dns_search,
        dns_option: &args.dns_option,
        add_host: &args.add_host,
        stop_signal: args.stop_signal.as_deref(),
        stop_timeout: args.stop_timeout,
        restart: args.restart.as_deref(),
        health: Health {
            cmd: args.health_cmd.as_deref(),
            interval: args.health_interval.as_deref(),
            timeout: args.health_timeout.as_deref(),
            retries: args.health_retries,
            start_period: args.health_start_period.as_deref(),
            start_interval: args.health_start_interval.as_deref(),
            none: args.no_healthcheck,
        },
        log_driver: args.log_driver.as_deref(),
        log_opts: &args.log_opt,
        network: net,
    }
}

/// The network part of the document, from the checked plan.
fn net_of<'a>(args: &'a Args, plan: &'a Plan) -> Net<'a> {
    match plan.bridge_network() {
        Some(network) => Net::Bridge {
            network,
            publish: &args.publish,
            aliases: &args.network_alias,
            ip: args.ip.as_deref(),
            mac: args.mac_address.as_deref(),
        },
        None => match args.network.as_deref() {
            Some(m) => Net::Mode(m),
            None => Net::None,
        },
    }
}

/// A new single container's project, its document written: what `run -d`
/// starts and `create` records.
struct Prepared {
    sp: SingleProject,
    name: String,
    image: rstack_images::LocalImage,
}

fn prepare(global: &GlobalOpts, args: &Args) -> anyhow::Result<Prepared> {
    check_flags(args)?;
    let (_, plan) = super::run::options(args, global)?;
    let env = super::run::environment(args)?;
    let layout = Layout::new(&global.run_root, &global.root);
    let name = choose_name(global, &layout, args.name.as_deref())?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let doc = single::document(&flags(args, &name, &env, net_of(args, &plan)), &cwd)?;
    let image = super::run::image(global, &args.args[0], &args.pull)?;
    if plan.bridge_network() == Some(net::DEFAULT_NETWORK) {
        net::ensure_default_network(global)?;
    }
    for v in &args.volume {
        if let VolumeArg::Named { name, .. } = single::volume_arg(v, &cwd)? {
            crate::commands::volume::ensure(&layout, &name)?;
        }
    }
    let project = format!("c-{}", rstack_sys::random::random_hex(6)?);
    let sp = SingleProject {
        name: project.clone(),
        pp: layout.project(&project),
    };
    std::fs::create_dir_all(&sp.pp.run)
        .with_context(|| format!("create {}", sp.pp.run.display()))?;
    rstack_stack::state::write_json(&sp.document(), &doc)?;
    Ok(Prepared { sp, name, image })
}

/// `container run -d`: prints the new container's id.
pub fn run(global: &GlobalOpts, args: &Args) -> anyhow::Result<u8> {
    let Prepared { sp, name, .. } = prepare(global, args)?;
    if let Err(e) = sp.run(global, &["up", "-d", "--pull", "never"]) {
        // nothing is left behind: the half-made container goes
        if let Err(e2) = sp.remove(global, Some(0)) {
            eprintln!("rstack: cleaning up after the failure: {e2:#}");
        }
        return Err(e);
    }
    let rec = sp
        .pp
        .container(&name)?
        .with_context(|| format!("container {name} has no record after its start"))?;
    println!("{}", rec.id.unwrap_or(name));
    Ok(0)
}

/// `container create`: the container recorded as Created, with its id;
/// `start` has its supervisor create and start it (same id).
pub fn create(global: &GlobalOpts, args: &Args) -> anyhow::Result<u8> {
    let Prepared { sp, name, image } = prepare(global, args)?;
    let mut rec = ContainerRecord::new(&name, &name, 1);
    let id = rstack_sys::random::random_id()?;
    rec.id = Some(id.clone());
    rec.image = args.args[0].clone();
    rec.image_id = image.id.clone();
    rec.command = shown_command(args, &image);
    rec.status = Status::Created;
    rec.created = rstack_stack::state::now_rfc3339();
    std::fs::create_dir_all(sp.pp.containers_dir())
        .with_context(|| format!("create {}", sp.pp.containers_dir().display()))?;
    sp.pp.save_container(&rec)?;
    println!("{id}");
    Ok(0)
}

/// The command `ps` shows before the first start: the entrypoint and
/// command the container will run.
fn shown_command(args: &Args, image: &rstack_images::LocalImage) -> Vec<String> {
    let cfg = image.config.config().as_ref();
    let entrypoint: Vec<String> = match &args.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => cfg.and_then(|c| c.entrypoint().clone()).unwrap_or_default(),
    };
    let cmd: Vec<String> = if args.args.len() > 1 {
        args.args[1..].to_vec()
    } else if args.entrypoint.is_some() {
        Vec::new()
    } else {
        cfg.and_then(|c| c.cmd().clone()).unwrap_or_default()
    };
    entrypoint.into_iter().chain(cmd).collect()
}
