//! `rstack container run [OPTIONS] IMAGE [COMMAND] [ARG...]`: like
//! `docker run` in the foreground. The image comes from the local store
//! (pulled when missing, like docker); the container is created by
//! rstack-runtime, its exit code becomes ours (125 for rstack's own
//! errors, 126/127 when the command cannot be run, 128+N after signal N),
//! and everything it created is removed when it ends.
//!
//! Signals sent to rstack (SIGINT, SIGTERM, SIGHUP, ...) are forwarded to
//! the container's first process, like docker's `--sig-proxy`. A PID 1
//! without signal handlers ignores them (as under Docker), so the third
//! SIGINT/SIGTERM/SIGHUP/SIGQUIT kills the container instead. With `-t`, a
//! SIGHUP (the user's terminal went away) hangs up the container's terminal
//! and ends the container 2 s later: nobody could reach it any more.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use rstack_images::{PullOptions, Reference};
use rstack_runtime::parse::{self, SecurityOpt};
use rstack_runtime::{
    Container, ContainerError, DnsConfig, NetworkMode, Paths, Resources, RunOptions, Stdio,
};

use super::net::{self, Connected, NetFlags, Plan};
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub(super) help: Option<bool>,
    /// Automatically remove the container when it exits (always done when attached)
    #[arg(long)]
    pub(super) rm: bool,
    /// Run container in background (supervised) and print container ID
    #[arg(short = 'd', long)]
    pub(super) detach: bool,
    /// Restart policy to apply when a container exits (no, always, on-failure[:N], unless-stopped)
    #[arg(long)]
    pub(super) restart: Option<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub(super) health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    pub(super) health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    pub(super) health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub(super) health_retries: Option<u32>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h)
    #[arg(long = "health-start-period")]
    pub(super) health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h)
    #[arg(long = "health-start-interval")]
    pub(super) health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub(super) no_healthcheck: bool,
    /// Logging driver for the container (json-file)
    #[arg(long = "log-driver")]
    pub(super) log_driver: Option<String>,
    /// Log driver options (max-size, max-file)
    #[arg(long = "log-opt")]
    pub(super) log_opt: Vec<String>,
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    pub(super) interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub(super) tty: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub(super) name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "LIST")]
    pub(super) env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    pub(super) env_file: Vec<PathBuf>,
    /// Set metadata on the container
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub(super) label: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub(super) workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub(super) user: Option<String>,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    pub(super) group_add: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub(super) entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub(super) hostname: Option<String>,
    /// Bind mount a volume (HOST-PATH:CONTAINER-PATH[:ro])
    #[arg(short = 'v', long = "volume")]
    pub(super) volume: Vec<String>,
    /// Mount a tmpfs directory (PATH[:OPTIONS])
    #[arg(long)]
    pub(super) tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub(super) read_only: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub(super) cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub(super) cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub(super) privileged: bool,
    /// Cgroup namespace to use (host|private)
    #[arg(long, value_parser = ["host", "private"])]
    pub(super) cgroupns: Option<String>,
    /// Security options (seccomp=unconfined|FILE, no-new-privileges)
    #[arg(long = "security-opt")]
    pub(super) security_opt: Vec<String>,
    /// Connect a container to a network (NAME, bridge, none, host, container:NAME; default: none, or bridge with -p)
    #[arg(long = "network", visible_alias = "net")]
    pub(super) network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", visible_alias = "net-alias")]
    pub(super) network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub(super) ip: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub(super) mac_address: Option<String>,
    /// Publish a container's port(s) to the host ([IP:][HOST_PORT:]CONTAINER_PORT[/PROTO])
    #[arg(short = 'p', long = "publish", value_name = "LIST")]
    pub(super) publish: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub(super) init: bool,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub(super) memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub(super) memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap")]
    pub(super) memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub(super) cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub(super) cpu_shares: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub(super) cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit")]
    pub(super) pids_limit: Option<String>,
    /// Ulimit options (name=soft[:hard])
    #[arg(long)]
    pub(super) ulimit: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub(super) shm_size: Option<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub(super) dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub(super) dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option")]
    pub(super) dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub(super) add_host: Vec<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub(super) stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub(super) stop_timeout: Option<u32>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub(super) pull: String,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub(super) args: Vec<String>,
}

/// `container create`: the flags of `run`, recorded, not started.
pub fn create(global: &GlobalOpts, mut args: Args) -> anyhow::Result<u8> {
    supervised_defaults(&mut args);
    match super::detached::create(global, &args) {
        Ok(code) => Ok(code),
        Err(err) => {
            eprintln!("rstack: {err:#}");
            Ok(125)
        }
    }
}

/// Pid of the running container, for the signal forwarder (0 = none yet).
static CONTAINER_PID: AtomicI32 = AtomicI32::new(0);

/// A long-lived (detached or created) container joins Docker's default
/// `bridge` network unless told otherwise, as with Docker; an attached
/// one stays on `none` without `-p` (see `net.rs`).
fn supervised_defaults(args: &mut Args) {
    if args.network.is_none() {
        args.network = Some(super::net::DEFAULT_NETWORK.to_owned());
    }
}

pub fn run(global: &GlobalOpts, mut args: Args) -> anyhow::Result<u8> {
    let result = if args.detach {
        supervised_defaults(&mut args);
        super::detached::run(global, &args)
    } else {
        run_inner(global, args)
    };
    match result {
        Ok(code) => Ok(code),
        Err(err) => {
            let code = err
                .downcast_ref::<ContainerError>()
                .map(ContainerError::exit_code)
                .unwrap_or(125);
            eprintln!("rstack: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            Ok(code)
        }
    }
}

fn flag<T>(name: &str, value: &str, r: Result<T, parse::ParseError>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow::anyhow!("invalid argument \"{value}\" for \"{name}\" flag: {e}"))
}

pub(super) fn options(args: &Args, global: &GlobalOpts) -> anyhow::Result<(RunOptions, Plan)> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let env = environment(args)?;
    let mut o = RunOptions {
        name: args.name.clone(),
        command: args.args[1..].to_vec(),
        entrypoint: args.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                vec![]
            } else {
                vec![e.clone()]
            }
        }),
        env,
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        group_add: args.group_add.clone(),
        hostname: args.hostname.clone(),
        tty: args.tty,
        interactive: args.interactive,
        privileged: args.privileged,
        cgroupns_host: args.cgroupns.as_deref() == Some("host"),
        read_only: args.read_only,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        init: args.init,
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
        transient: args.rm,
        ..Default::default()
    };
    for l in &args.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        o.labels.insert(k.to_owned(), v.to_owned());
    }
    mounts_and_security(args, &cwd, &mut o)?;
    o.resources = resources(args)?;
    let plan = net::plan(
        global,
        &NetFlags {
            network: args.network.as_deref(),
            publish: &args.publish,
            aliases: &args.network_alias,
            ip: args.ip.as_deref(),
            mac: args.mac_address.as_deref(),
            dns: &args.dns,
            dns_search: &args.dns_search,
            dns_option: &args.dns_option,
        },
        |name| other_network_mode(global, name),
    )?;
    if let Plan::Other(mode) = &plan {
        o.network = mode.clone();
    }
    if let Some(dns) = dns_config(args)? {
        o.dns = Some(dns);
    }
    extra_hosts(args, &mut o)?;
    Ok((o, plan))
}

/// `--env-file`s, then `-e`s (a bare name takes our own value).
pub(super) fn environment(args: &Args) -> anyhow::Result<Vec<String>> {
    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for file in &args.env_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read env file {}", file.display()))?;
        env.extend(parse::parse_env_file(file, &text, &lookup)?);
    }
    for e in &args.env {
        env.extend(parse::parse_env(e, &lookup)?);
    }
    Ok(env)
}

/// `-v`, `--tmpfs`, `--security-opt`, `--ulimit` and `--shm-size`.
fn mounts_and_security(
    args: &Args,
    cwd: &std::path::Path,
    o: &mut RunOptions,
) -> anyhow::Result<()> {
    // a detached container's -v are its Compose volumes (single.rs)
    for v in args.volume.iter().filter(|_| !args.detach) {
        o.mounts
            .push(flag("-v, --volume", v, parse::parse_volume(v, cwd))?);
    }
    for t in &args.tmpfs {
        o.mounts.push(flag("--tmpfs", t, parse::parse_tmpfs(t))?);
    }
    for s in &args.security_opt {
        match flag("--security-opt", s, parse::parse_security_opt(s))? {
            SecurityOpt::Seccomp(p) => o.seccomp = p,
            SecurityOpt::NoNewPrivileges(b) => o.no_new_privileges = b,
        }
    }
    for u in &args.ulimit {
        o.ulimits.push(flag("--ulimit", u, parse::parse_ulimit(u))?);
    }
    if let Some(s) = &args.shm_size {
        o.shm_size = Some(flag("--shm-size", s, parse::parse_bytes(s))? as u64);
    }
    Ok(())
}

/// The cgroup limits of `-m`, `--cpus` and the like.
fn resources(args: &Args) -> anyhow::Result<Resources> {
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(Resources {
        memory: args
            .memory
            .as_deref()
            .map(|m| flag("-m, --memory", m, parse::parse_memory(m)))
            .transpose()?,
        memory_reservation: args
            .memory_reservation
            .as_deref()
            .map(|m| flag("--memory-reservation", m, parse::parse_memory(m)))
            .transpose()?,
        memory_swap: args
            .memory_swap
            .as_deref()
            .map(|m| flag("--memory-swap", m, parse::parse_memory_swap(m)))
            .transpose()?,
        cpus: args
            .cpus
            .as_deref()
            .map(|c| flag("--cpus", c, parse::parse_cpus(c, host_cpus)))
            .transpose()?,
        cpu_shares: args
            .cpu_shares
            .as_deref()
            .map(|c| {
                flag("-c, --cpu-shares", c, parse::parse_int("--cpu-shares", c))
                    .map(|v| v.max(2) as u64)
            })
            .transpose()?,
        cpuset_cpus: args
            .cpuset_cpus
            .as_deref()
            .map(|c| flag("--cpuset-cpus", c, parse::parse_cpuset(c)))
            .transpose()?,
        pids_limit: args
            .pids_limit
            .as_deref()
            .map(|p| flag("--pids-limit", p, parse::parse_int("--pids-limit", p)))
            .transpose()?,
    })
}

/// The container's resolver when `--dns`, `--dns-search` or
/// `--dns-option` is given.
fn dns_config(args: &Args) -> anyhow::Result<Option<DnsConfig>> {
    if !args.dns.is_empty() || !args.dns_search.is_empty() || !args.dns_option.is_empty() {
        let nameservers = args
            .dns
            .iter()
            .map(|d| {
                d.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "invalid argument \"{d}\" for \"--dns\" flag: not an IP address"
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
        return Ok(Some(DnsConfig {
            nameservers,
            search: args.dns_search.clone(),
            options: args.dns_option.clone(),
        }));
    }
    Ok(None)
}

/// `--add-host HOST:IP` (or `HOST=IP`, an IPv6 address maybe bracketed).
fn extra_hosts(args: &Args, o: &mut RunOptions) -> anyhow::Result<()> {
    for h in &args.add_host {
        let (name, ip) = h
            .split_once(':')
            .or_else(|| h.split_once('='))
            .with_context(|| {
                format!("invalid argument \"{h}\" for \"--add-host\" flag: expected HOST:IP")
            })?;
        let ip = ip
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .with_context(|| {
                format!("invalid argument \"{h}\" for \"--add-host\" flag: invalid IP address")
            })?;
        o.extra_hosts.push((name.to_owned(), ip));
    }
    Ok(())
}

/// The runtime's mode for none, host and container:NAME; `None` for a
/// bridge network name.
fn other_network_mode(global: &GlobalOpts, name: &str) -> anyhow::Result<Option<NetworkMode>> {
    Ok(match name {
        "none" => Some(NetworkMode::None),
        "host" => Some(NetworkMode::Host),
        other => match other.strip_prefix("container:") {
            Some(target) => Some(NetworkMode::Path(rstack_runtime::container::netns_of(
                &container_paths(global),
                target,
            )?)),
            None => None,
        },
    })
}

/// Docker's error when `--name` is taken: checked before any network is
/// set up (the runtime checks again, atomically, when it takes the name).
pub(super) fn check_name_free(global: &GlobalOpts, name: &str) -> anyhow::Result<()> {
    // `RUN/names/<name>` -> id is the runtime's name reservation (see
    // rstack_runtime::container's state layout).
    let link = container_paths(global).run_root.join("names").join(name);
    if let Ok(id) = std::fs::read_link(&link) {
        bail!(
            "Conflict. The container name \"{name}\" is already in use by container \"{}\". You have to stop (or remove) that container to be able to reuse that name.",
            id.display()
        );
    }
    Ok(())
}

fn container_paths(global: &GlobalOpts) -> Paths {
    Paths::new(&global.run_root, &global.root)
}

/// The image from the store, pulled first when missing (or `--pull always`).
pub(super) fn image(
    global: &GlobalOpts,
    reference: &str,
    pull: &str,
) -> anyhow::Result<rstack_images::LocalImage> {
    let store = global.store()?;
    let local = store.lookup(reference)?;
    let must_pull = match pull {
        "always" => true,
        "missing" => local.is_none(),
        "never" => false,
        other => {
            bail!("invalid argument \"{other}\" for \"--pull\" flag: use always, missing or never")
        }
    };
    if !must_pull {
        return local.with_context(|| format!("no such image: {reference} (and --pull never)"));
    }
    let familiar = Reference::parse(reference)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| reference.to_owned());
    if local.is_none() {
        eprintln!("Unable to find image '{familiar}' locally");
    }
    let rt = crate::global::tokio_runtime()?;
    let image = rt
        .block_on(store.pull(
            reference,
            &PullOptions::default(),
            &rstack_images::NoProgress,
        ))
        .with_context(|| format!("cannot pull {familiar}"))?;
    if local.as_ref().map(|l| &l.id) != Some(&image.id) {
        eprintln!("Status: Downloaded newer image for {familiar}");
    }
    Ok(image)
}

fn run_inner(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let (mut opts, plan) = options(&args, global)?;
    if args.tty && args.interactive && !std::io::stdin().is_terminal() {
        bail!("the input device is not a TTY");
    }
    if let Some(name) = &args.name {
        check_name_free(global, name)?;
    }
    let image = image(global, &args.args[0], &args.pull)?;
    tracing::debug!(id = %image.id, "image ready");
    // From here on, signals wait for the container instead of ending us
    // halfway through the set-up.
    install_signal_forwarding()?;
    let network = match &plan {
        Plan::Bridge(bridge) => Some(Connected::connect(global, bridge, &mut opts)?),
        Plan::Other(_) => None,
    };
    let outcome = run_container(global, &args, &image, &opts);
    let torn_down = network.map_or(Ok(()), Connected::teardown);
    let code = outcome?;
    torn_down?;
    Ok(code)
}

/// Creates, runs and removes the container; its exit code.
fn run_container(
    global: &GlobalOpts,
    args: &Args,
    image: &rstack_images::LocalImage,
    opts: &RunOptions,
) -> anyhow::Result<u8> {
    let paths = container_paths(global);
    let mut container = Container::create(
        &paths,
        &image.config,
        &image.layer_dirs,
        opts,
        Stdio::default(),
    )?;
    CONTAINER_PID.store(container.pid(), Ordering::SeqCst);
    flush_pending_signals();
    let relay = match container.take_pty_master() {
        Some(master) => Some(super::tty::Relay::start(master, args.interactive)?),
        None => None,
    };
    let result = container.start().and_then(|()| container.wait());
    CONTAINER_PID.store(0, Ordering::SeqCst);
    if let Some(relay) = relay {
        relay.finish();
    }
    tracing::debug!(?result, "container exited");
    let removed = container.remove();
    tracing::debug!("container removed");
    let status = result?;
    removed?;
    if status.oom_killed {
        // docker shows this as State.OOMKilled; without inspect, say it here.
        eprintln!("rstack: the container was OOMKilled (out of memory in its memory limit)");
    }
    Ok(u8::try_from(status.code).unwrap_or(255))
}

/// Wakes the forwarder so signals received during setup reach the container.
fn flush_pending_signals() {
    on_signal(0);
}

/// Write end of the self-pipe the signal handler writes to.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a local byte.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 and SIGWINCH to the
/// container through a self-pipe read by a thread (handlers must stay
/// async-signal-safe). A signal that arrives before the container exists
/// is delivered as soon as it does.
fn install_signal_forwarding() -> anyhow::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, sigaction};
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    SIGNAL_PIPE.store(std::os::fd::IntoRawFd::into_raw_fd(w), Ordering::SeqCst);
    let forwarded = [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ];
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in forwarded {
        // SAFETY: the handler only calls write(2) on a pipe fd.
        unsafe { sigaction(sig, &action) }.with_context(|| format!("cannot handle {sig}"))?;
    }
    std::thread::spawn(move || {
        let mut file = std::fs::File::from(r);
        let mut pending: Vec<Signal> = Vec::new();
        let mut stops = 0u32;
        loop {
            let mut byte = [0u8; 1];
            if std::io::Read::read(&mut file, &mut byte).unwrap_or(0) == 0 {
                return;
            }
            // A 0 byte only asks to flush what arrived before the container existed.
            if let Ok(sig) = Signal::try_from(i32::from(byte[0])) {
                if sig == Signal::SIGWINCH {
                    super::tty::resize_requested();
                    continue;
                }
                pending.push(sig);
            }
            let pid = CONTAINER_PID.load(Ordering::SeqCst);
            if pid > 0 {
                for s in pending.drain(..) {
                    let mut s = s;
                    if s != Signal::SIGUSR1 && s != Signal::SIGUSR2 {
                        stops += 1;
                        // A PID 1 without handlers ignores them: the third
                        // one forces it, so the user is never stuck.
                        if stops >= 3 {
                            eprintln!("rstack: killing the container (third stop signal)");
                            s = Signal::SIGKILL;
                        }
                    }
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s);
                    if s == Signal::SIGHUP && super::tty::hangup() {
                        // Nobody is attached any more and a PID 1 without a
                        // handler ignores SIGHUP: end it after a grace period.
                        std::thread::spawn(move || {
                            std::thread::sleep(std::time::Duration::from_secs(2));
                            if CONTAINER_PID.load(Ordering::SeqCst) == pid {
                                let _ = nix::sys::signal::kill(
                                    nix::unistd::Pid::from_raw(pid),
                                    Signal::SIGKILL,
                                );
                            }
                        });
                    }
                }
            }
        }
    });
    Ok(())
}
