//! The project's supervisor: the one long-lived process of a stack.
//!
//! It creates the networks and volumes, then starts every service as soon
//! as its `depends_on` conditions hold (one starter thread per service
//! waiting on a condition variable that every state change notifies — no
//! polling delay), runs each container's life in a runner thread (wait for
//! exit, restart policy with backoff), runs healthchecks in prober threads,
//! turns the raw output files into json logs, serves DNS for its
//! containers, and answers requests on its control socket.
//!
//! It is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so processes of its
//! containers that get orphaned are reaped by it. Everything it knows is in
//! the state files: after a SIGKILL the containers keep running (their
//! output goes to files, not pipes) and the next supervisor adopts them —
//! verified by pid + start time through a pidfd — keeping healthy ones
//! running and resuming healthchecks, restarts, DNS and log tailing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rstack_compose::Project;
use rstack_compose::model::DependencyCondition;
use rstack_compose::plan::Wait;
use rstack_images::LocalImage;

use crate::control::{self, Request, Response};
use crate::health::{Check, Tracker};
use crate::lifecycle::{self, Env, chain};
use crate::logs::{JsonLog, RawTail, Rotation};
use crate::process::Pidfd;
use crate::restart::{Backoff, Policy};
use crate::state::{
    ContainerRecord, Health, ProjectPaths, ProjectResources, Status, Stream, SupervisorRecord,
    now_rfc3339,
};

/// A failure of the supervisor's set-up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    State(#[from] crate::state::Error),
    #[error(transparent)]
    Lifecycle(#[from] lifecycle::Error),
    #[error(transparent)]
    Restart(#[from] crate::restart::Error),
    #[error(transparent)]
    Health(#[from] crate::health::Error),
    #[error(transparent)]
    Logs(#[from] crate::logs::Error),
    #[error(transparent)]
    Plan(#[from] rstack_compose::plan::Error),
    #[error(transparent)]
    VolumeDriver(#[from] crate::volume_driver::Error),
    #[error("network {name} declared as external could not be found")]
    ExternalNetwork {
        name: String,
        #[source]
        source: rstack_netns::network::Error,
    },
    #[error("cannot create network {name}")]
    CreateNetwork {
        name: String,
        #[source]
        source: rstack_netns::network::Error,
    },
    #[error("service {service}: image {image} is not in the store (pull it first)")]
    NoImage { service: String, image: String },
    #[error("cannot open the image store")]
    Store(#[source] Box<rstack_images::Error>),
    #[error("service {service}: cannot read the config of image {image}")]
    ImageConfig {
        service: String,
        image: String,
        #[source]
        source: Box<rstack_images::Error>,
    },
    #[error(transparent)]
    Creator(crate::creator::Error),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot listen on {path}")]
    Listen {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", .0.join("\n"))]
    Services(Vec<String>),
}

/// What `up` asks for.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Services to start (with their dependencies); empty = all.
    pub services: Vec<String>,
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub remove_orphans: bool,
    /// Ready means healthy (`--wait`), not just started.
    pub wait_healthy: bool,
    /// Stop timeout override (`-t`) for recreated containers.
    pub timeout: Option<u64>,
    /// Start only `services`, not their dependencies, and do not wait for them.
    pub no_deps: bool,
}

/// Progress, printed by the CLI like docker compose's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `Container demo-web-1  Started`
    Resource {
        kind: &'static str,
        name: String,
        action: String,
    },
    Warning(String),
    /// A container exited (attached `up` prints `name exited with code N`).
    Exited {
        name: String,
        code: Option<i32>,
    },
}

pub type Reporter = Arc<dyn Fn(Event) + Send + Sync>;

/// A container the supervisor looks after.
#[derive(Debug)]
struct Live {
    rec: ContainerRecord,
    pidfd: Option<Arc<Pidfd>>,
    /// Bumped on each exit: probers of an older run stop.
    generation: u64,
    /// Its runner thread is alive.
    active: bool,
    /// Create failed or exited where a dependant needed it up.
    failed: Option<String>,
    /// A stop was asked: no restart, runner ends after teardown.
    stop_requested: bool,
    stop_signal: i32,
    stop_timeout: Duration,
}

#[derive(Debug, Default)]
struct Hub {
    shutting: bool,
    kill_now: bool,
    ctrs: BTreeMap<String, Live>,
    /// Services whose starter gave up (dependency failed).
    blocked: HashMap<String, String>,
    /// Services whose containers were all launched.
    launched: HashMap<String, bool>,
}

struct Inner {
    env: Env,
    pp: ProjectPaths,
    project: Project,
    plan: rstack_compose::Plan,
    images: HashMap<String, LocalImage>,
    reporter: Reporter,
    hub: Mutex<Hub>,
    cv: Condvar,
    rt: tokio::runtime::Runtime,
    resolver: rstack_netns::Resolver,
    creator: crate::creator::Creator,
    /// Raw-to-json log state, shared by the pump thread and the runners
    /// (which drain a container's output before recording its exit).
    pumps: Mutex<Pumps>,
}

impl Inner {
    fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn report(&self, name: &str, action: &str) {
        (self.reporter)(Event::Resource {
            kind: "Container",
            name: name.to_owned(),
            action: action.to_owned(),
        });
    }

    /// Changes a container under the lock, saves its record, wakes waiters.
    fn update(&self, name: &str, f: impl FnOnce(&mut Live)) {
        let mut hub = self.hub();
        if let Some(live) = hub.ctrs.get_mut(name) {
            f(live);
            if let Err(e) = self.pp.save_container(&live.rec) {
                tracing::warn!(error = %chain(&e), "cannot save a container record");
            }
        }
        drop(hub);
        self.cv.notify_all();
    }

    fn wait_timeout<'a>(&self, g: MutexGuard<'a, Hub>, d: Duration) -> MutexGuard<'a, Hub> {
        self.cv
            .wait_timeout(g, d)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0)
    }

    fn wait<'a>(&self, g: MutexGuard<'a, Hub>) -> MutexGuard<'a, Hub> {
        self.cv.wait(g).unwrap_or_else(|p| p.into_inner())
    }
}

/// The running supervisor.
pub struct Supervisor {
    inner: Arc<Inner>,
    /// Bound before `up -d` returns, so a command right after it finds it.
    listener: std::os::unix::net::UnixListener,
    selected: Vec<String>,
    wait_healthy: bool,
}

/// Whether the project's supervisor runs (pid + start time verified).
pub fn running_supervisor(pp: &ProjectPaths) -> Option<SupervisorRecord> {
    let rec = pp.supervisor().ok()??;
    Pidfd::open_verified(rec.pid, rec.start_time).map(|_| rec)
}

impl Supervisor {
    /// Sets up the project (networks, volumes, leftovers, adoption) and
    /// starts the services. Returns once every service is launched; use
    /// [`Supervisor::wait_ready`] and then [`Supervisor::serve`].
    pub fn start(
        env: Env,
        mut project: Project,
        images: HashMap<String, LocalImage>,
        opts: &UpOptions,
        reporter: Reporter,
    ) -> Result<Supervisor, Error> {
        image_healthchecks(&env, &mut project, &images)?;
        let pp = env.layout.project(&project.name);
        let plan = project.plan()?;
        // validate everything first
        for (name, svc) in &project.services {
            Policy::of_service(name, svc)?;
            Check::of_service(name, svc.healthcheck.as_ref())?;
            Rotation::of_service(name, svc.logging.as_ref())?;
            if !images.contains_key(name) {
                return Err(Error::NoImage {
                    service: name.clone(),
                    image: project.image_name(name),
                });
            }
            for n in 1..=svc.replicas().max(1) as u32 {
                let cname = project.container_name(name, n);
                lifecycle::plan(&env, &pp, &project, name, &cname, n)?;
            }
        }
        let me = std::process::id() as i32;
        crate::state::write_json(
            &pp.supervisor_file(),
            &SupervisorRecord {
                pid: me,
                start_time: crate::process::start_time(me).unwrap_or(0),
                started_at: now_rfc3339(),
            },
        )?;
        // SAFETY: prctl with an integer argument; no memory involved.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        // Forked now, while this process has a single thread (see creator).
        let creator = crate::creator::Creator::spawn(
            &pp.run.join("creator.sock"),
            &env,
            &pp,
            &project,
            &images,
        )
        .map_err(Error::Creator)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let resolver = rstack_netns::Resolver::new(
            &env.networks.paths().run_dir,
            rstack_netns::Upstreams::from_host(),
        );
        let inner = Arc::new(Inner {
            env,
            pp,
            project,
            plan,
            images,
            reporter,
            hub: Mutex::new(Hub::default()),
            cv: Condvar::new(),
            rt,
            resolver,
            creator,
            pumps: Mutex::new(HashMap::new()),
        });
        let sock = inner.pp.control_socket();
        let _ = std::fs::remove_file(&sock);
        let listener =
            std::os::unix::net::UnixListener::bind(&sock).map_err(|source| Error::Listen {
                path: sock.clone(),
                source,
            })?;
        ensure_networks_and_volumes(&inner)?;
        let selected = if opts.services.is_empty() {
            inner.plan.start_order()
        } else if opts.no_deps {
            opts.services.clone()
        } else {
            inner.plan.with_dependencies(&opts.services)
        };
        let adopted = reconcile(&inner, opts, &selected)?;
        for (name, pidfd) in adopted {
            let i = inner.clone();
            std::thread::spawn(move || runner(i, name, Some(pidfd)));
        }
        for svc in &selected {
            let i = inner.clone();
            let svc = svc.clone();
            let no_deps = opts.no_deps;
            std::thread::spawn(move || starter(i, svc, no_deps));
        }
        let lp = inner.clone();
        std::thread::spawn(move || log_pump(lp));
        Ok(Supervisor {
            inner,
            listener,
            selected,
            wait_healthy: opts.wait_healthy,
        })
    }

    /// Waits until every selected service is started (or healthy with
    /// `--wait`); returns the failures, if any.
    pub fn wait_ready(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let mut hub = inner.hub();
        loop {
            let mut pending = false;
            let mut failures = Vec::new();
            for svc in &self.selected {
                if let Some(reason) = hub.blocked.get(svc) {
                    failures.push(reason.clone());
                    continue;
                }
                if !hub.launched.get(svc).copied().unwrap_or(false) {
                    pending = true;
                    continue;
                }
                for live in hub.ctrs.values().filter(|l| &l.rec.service == svc) {
                    if let Some(f) = &live.failed {
                        failures.push(f.clone());
                    } else if live.rec.status == Status::Creating
                        || live.rec.status == Status::Created
                    {
                        pending = true;
                    } else if self.wait_healthy {
                        match (&live.rec.health, live.rec.status) {
                            (_, Status::Exited) if live.rec.exit_code != Some(0) => {
                                failures.push(format!(
                                    "container {} exited ({})",
                                    live.rec.name,
                                    live.rec
                                        .exit_code
                                        .map_or("unknown".into(), |c| c.to_string())
                                ))
                            }
                            (Some(h), _) if h.status == Health::Unhealthy => {
                                failures.push(format!("container {} is unhealthy", live.rec.name))
                            }
                            (Some(h), Status::Running) if h.status == Health::Starting => {
                                pending = true
                            }
                            _ => {}
                        }
                    }
                }
            }
            if !pending {
                return if failures.is_empty() {
                    Ok(())
                } else {
                    Err(Error::Services(failures))
                };
            }
            hub = inner.wait(hub);
        }
    }

    /// Serves requests and signals until the project is stopped or taken
    /// down. `attached`: SIGINT/SIGTERM stop the containers (a second one
    /// kills them) and keep their records, like `docker compose up`;
    /// detached, SIGTERM does the same. Returns the exit code.
    pub fn serve(self, attached: bool) -> Result<u8, Error> {
        let inner = self.inner;
        let listener = self.listener;
        enum Msg {
            Conn(std::os::unix::net::UnixStream),
            Signal,
        }
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                if tx2.send(Msg::Conn(s)).is_err() {
                    break;
                }
            }
        });
        {
            let tx = tx.clone();
            let i2 = inner.clone();
            inner.rt.spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return;
                };
                let mut count = 0;
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    count += 1;
                    if count > 1 {
                        i2.hub().kill_now = true;
                        i2.cv.notify_all();
                    }
                    let _ = tx.send(Msg::Signal);
                }
            });
        }
        loop {
            let Ok(msg) = rx.recv() else { break };
            match msg {
                Msg::Signal => {
                    if attached {
                        eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
                    }
                    stop_all(&inner, None, false);
                    finish(&inner, false);
                    return Ok(0);
                }
                Msg::Conn(s) => {
                    let Some(req) = control::read_request(&s) else {
                        continue;
                    };
                    match req {
                        Request::Ping => control::reply(&s, &Response::default()),
                        Request::Down { timeout } => {
                            let lines = stop_all(&inner, timeout, true);
                            finish(&inner, true);
                            control::reply(&s, &Response { lines, error: None });
                            return Ok(0);
                        }
                        Request::Detach => {
                            pump_shared(&inner, false);
                            let _ = crate::state::remove_file(&inner.pp.supervisor_file());
                            let _ = std::fs::remove_file(inner.pp.control_socket());
                            let _ = std::fs::remove_file(inner.pp.run.join("creator.sock"));
                            control::reply(&s, &Response::default());
                            // Leave without dropping the containers' handles.
                            std::process::exit(0);
                        }
                        Request::Stop { services, timeout } => {
                            let r = stop_services(&inner, &services, timeout, true);
                            control::reply(&s, &r);
                        }
                        Request::Rm { services } => {
                            let r = rm_services(&inner, &services);
                            control::reply(&s, &r);
                        }
                        Request::Kill { services, signal } => {
                            let r = kill_services(&inner, &services, signal);
                            control::reply(&s, &r);
                        }
                        Request::Start { services } => {
                            let r = start_services(&inner, &services);
                            control::reply(&s, &r);
                        }
                        Request::Restart { services, timeout } => {
                            let r = restart_services(&inner, &services, timeout);
                            control::reply(&s, &r);
                        }
                    }
                }
            }
        }
        Ok(0)
    }
}

/// Creates the project's networks (recorded first) and volume dirs.
fn ensure_networks_and_volumes(inner: &Inner) -> Result<(), Error> {
    ensure_resources(&inner.env, &inner.pp, &inner.project, &[], &inner.reporter)
}

/// Creates the networks of `project`'s services (of `only` when not empty),
/// each recorded in the project's resources before it is created so `down`
/// removes it, and the volume dirs; for `up`'s supervisor and for a one-off
/// `run` on a project that was never up.
pub fn ensure_resources(
    env: &Env,
    pp: &ProjectPaths,
    project: &Project,
    only: &[String],
    reporter: &Reporter,
) -> Result<(), Error> {
    // the volumes' driver options first: a bad one creates nothing
    let volume_opts = crate::volume_driver::declared(project)?;
    let mut res = pp.resources()?;
    res.config_files = project.compose_files.clone();
    res.working_dir = project.working_dir.clone();
    let used: std::collections::BTreeSet<&str> = project
        .services
        .iter()
        .filter(|(name, _)| only.is_empty() || only.contains(name))
        .flat_map(|(_, s)| s.networks.keys().map(String::as_str))
        .collect();
    // networks that exist already: their accepts in the host's firewall
    // are re-applied (a firewall reload or a dockerd started since then
    // may have dropped or preceded them); new ones get them on create
    let mut reused = false;
    for key in used {
        let name = project.network_name(key);
        let decl = project.networks.get(key).cloned().unwrap_or_default();
        if decl.external == Some(true) {
            reused = true;
            env.networks
                .inspect(&name)
                .map_err(|source| Error::ExternalNetwork {
                    name: name.clone(),
                    source,
                })?;
            continue;
        }
        if env.networks.inspect(&name).is_ok() {
            reused = true;
            continue;
        }
        if !res.networks.contains(&name) {
            res.networks.push(name.clone());
            pp.save_resources(&res)?;
        }
        let mut labels = BTreeMap::new();
        labels.insert("com.docker.compose.network".into(), key.to_owned());
        labels.insert("com.docker.compose.project".into(), project.name.clone());
        for (k, v) in &decl.labels {
            labels.insert(k.clone(), v.clone());
        }
        let pool = decl.ipam.as_ref().and_then(|i| i.config.first());
        let opts = rstack_netns::CreateOptions {
            name: name.clone(),
            subnet: pool.and_then(|p| p.subnet.clone()),
            gateway: pool.and_then(|p| p.gateway.clone()),
            internal: decl.internal.unwrap_or(false),
            options: decl.driver_opts.clone().into_iter().collect(),
            labels,
        };
        (reporter)(Event::Resource {
            kind: "Network",
            name: name.clone(),
            action: "Creating".into(),
        });
        env.networks
            .create(&opts)
            .map_err(|source| Error::CreateNetwork {
                name: name.clone(),
                source,
            })?;
        (reporter)(Event::Resource {
            kind: "Network",
            name,
            action: "Created".into(),
        });
    }
    if reused && let Err(e) = env.networks.refresh_firewall() {
        (reporter)(Event::Warning(format!(
            "cannot re-apply rstack's rules to the host's firewall: {}",
            crate::lifecycle::chain(&e)
        )));
    }
    for (key, decl) in &project.volumes {
        if decl.external == Some(true) {
            continue;
        }
        let name = project.volume_name(key);
        let dir = env.layout.volume_dir(&name).join("_data");
        if dir.exists() {
            continue;
        }
        if !res.volumes.contains(&name) {
            res.volumes.push(name.clone());
            pp.save_resources(&res)?;
        }
        if let Some(opts) = volume_opts.get(key) {
            crate::volume_driver::save(&env.layout.volume_dir(&name), opts)?;
        }
        std::fs::create_dir_all(&dir).map_err(|source| crate::state::Error::Io {
            what: "create",
            path: dir.clone(),
            source,
        })?;
        (reporter)(Event::Resource {
            kind: "Volume",
            name,
            action: "Created".into(),
        });
    }
    pp.save_resources(&res)?;
    Ok(())
}

/// Selected services that `up` restarts although their own config is
/// unchanged: those declaring `depends_on: {S: {restart: true}}` on a
/// service S that is being recreated (docker compose restarts them after
/// updating S; here that means creating them afresh).
fn restarted_dependants(
    project: &Project,
    opts: &UpOptions,
    selected: &[String],
    records: &[ContainerRecord],
    wanted: &BTreeMap<String, ContainerRecord>,
) -> Vec<String> {
    if opts.no_recreate {
        return Vec::new();
    }
    let mut changed: Vec<String> = Vec::new();
    for old in records
        .iter()
        .filter(|r| !r.oneoff && r.status == Status::Running)
    {
        let Some(new) = wanted.get(&old.name) else {
            continue;
        };
        let recreated = opts.force_recreate || old.config_hash != new.config_hash;
        if recreated && selected.contains(&old.service) && !changed.contains(&old.service) {
            changed.push(old.service.clone());
        }
    }
    if changed.is_empty() {
        return Vec::new();
    }
    project
        .with_restart_dependents(&changed)
        .into_iter()
        .filter(|s| !changed.contains(s) && selected.contains(s))
        .collect()
}

/// Decides, for every recorded and every wanted container, what to do:
/// adopt a live one whose config still matches, remove what is stale or
/// dead, register the rest. Returns the containers to adopt.
fn reconcile(
    inner: &Arc<Inner>,
    opts: &UpOptions,
    selected: &[String],
) -> Result<Vec<(String, Pidfd)>, Error> {
    let project = &inner.project;
    let mut wanted: BTreeMap<String, ContainerRecord> = BTreeMap::new();
    for (svc_name, svc) in &project.services {
        let image = &inner.images[svc_name];
        let hash = crate::mapping::config_hash(svc, &image.id);
        for n in 1..=svc.replicas().max(1) as u32 {
            let name = project.container_name(svc_name, n);
            let plan = lifecycle::plan(&inner.env, &inner.pp, project, svc_name, &name, n)?;
            let mut rec = ContainerRecord::new(&name, svc_name, n);
            rec.config_hash = hash.clone();
            rec.image = project.image_name(svc_name);
            rec.image_id = image.id.clone();
            rec.command = display_command(&plan.options, image);
            wanted.insert(name, rec);
        }
    }
    let records = inner.pp.containers()?;
    let restart_too = restarted_dependants(project, opts, selected, &records, &wanted);
    let mut adopt = Vec::new();
    let mut hub = inner.hub();
    for mut old in records {
        if old.oneoff {
            // `rstack run` owns it
            continue;
        }
        let live = match (old.pid, old.start_time) {
            (Some(pid), Some(st)) if old.status == Status::Running => Pidfd::open_verified(pid, st),
            _ => None,
        };
        let is_selected = selected.contains(&old.service);
        match wanted.remove(&old.name) {
            Some(_) if !is_selected && live.is_none() => {
                // not asked for: left as it is (stopped), still known
                for e in lifecycle::remove_leftover(&inner.env, &mut old) {
                    (inner.reporter)(Event::Warning(e));
                }
                let mut l = new_live(inner, old);
                l.rec.status = Status::Exited;
                hub.ctrs.insert(l.rec.name.clone(), l);
            }
            Some(new) => {
                let keep = live.is_some()
                    && (!is_selected
                        || opts.no_recreate
                        || (!opts.force_recreate
                            && old.config_hash == new.config_hash
                            && !restart_too.contains(&old.service)));
                if keep {
                    let name = old.name.clone();
                    let mut l = new_live(inner, old);
                    // its runner is started below: no starter may launch it
                    l.active = true;
                    inner.report(&name, "Running");
                    hub.ctrs.insert(name.clone(), l);
                    if let Some(p) = live {
                        adopt.push((name, p));
                    }
                    continue;
                }
                if let Some(p) = &live {
                    inner.report(&old.name, "Recreate");
                    stop_pidfd(
                        p,
                        stop_signal_of(inner, &old.service),
                        Duration::from_secs(opts.timeout.unwrap_or(10)),
                    );
                }
                let errs = lifecycle::remove_leftover(&inner.env, &mut old);
                for e in errs {
                    (inner.reporter)(Event::Warning(e));
                }
                // A new container gets a fresh writable layer; an unchanged
                // one that had stopped (or is restarted along with a
                // dependency) is docker's same container started again.
                // Anonymous volumes stay either way, as with compose.
                let mut rec = new;
                if opts.force_recreate || old.config_hash != rec.config_hash {
                    let _ = std::fs::remove_dir_all(inner.pp.rw_dir(&old.name));
                } else {
                    rec.id = old.id.clone();
                }
                rec.restart_count = 0;
                hub.ctrs.insert(rec.name.clone(), new_live(inner, rec));
            }
            None => {
                // a replica beyond the service's scale, or an orphan
                let surplus = project.services.contains_key(&old.service);
                if surplus || opts.remove_orphans || live.is_none() {
                    if let Some(p) = &live {
                        let grace = Duration::from_secs(opts.timeout.unwrap_or(10));
                        stop_pidfd(p, stop_signal_of(inner, &old.service), grace);
                    }
                    for e in lifecycle::remove_leftover(&inner.env, &mut old) {
                        (inner.reporter)(Event::Warning(e));
                    }
                    inner.pp.remove_container(&old.name)?;
                    let _ = std::fs::remove_dir_all(inner.pp.log_dir(&old.name));
                    inner.pp.remove_container_data(&old.name);
                    inner.report(&old.name, "Removed");
                } else if live.is_some() {
                    (inner.reporter)(Event::Warning(format!(
                        "Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                        old.name
                    )));
                }
            }
        }
    }
    for (name, rec) in wanted {
        if selected.contains(&rec.service) {
            hub.ctrs.insert(name, new_live(inner, rec));
        }
    }
    for live in hub.ctrs.values_mut() {
        if live.pidfd.is_none()
            && selected.contains(&live.rec.service)
            && !adopt.iter().any(|(n, _)| n == &live.rec.name)
        {
            // Not running: it gets (re)created by its service's starter.
            live.rec.status = Status::Creating;
            live.rec.user_stopped = false;
        }
    }
    Ok(adopt)
}

fn new_live(inner: &Inner, rec: ContainerRecord) -> Live {
    let svc = inner.project.services.get(&rec.service);
    let stop_timeout = svc
        .and_then(|s| s.stop_grace_period)
        .map(|d| d.as_std())
        .unwrap_or(Duration::from_secs(10));
    Live {
        stop_signal: stop_signal_of(inner, &rec.service),
        rec,
        pidfd: None,
        generation: 0,
        active: false,
        failed: None,
        stop_requested: false,
        stop_timeout,
    }
}

fn stop_signal_of(inner: &Inner, service: &str) -> i32 {
    let from_service = inner
        .project
        .services
        .get(service)
        .and_then(|s| s.stop_signal.clone());
    let from_image = inner.images.get(service).and_then(|i| {
        i.config
            .config()
            .as_ref()
            .and_then(|c| c.stop_signal().clone())
    });
    from_service
        .or(from_image)
        .and_then(|s| rstack_runtime::container::parse_signal(&s).ok())
        .map(|s| s as i32)
        .unwrap_or(libc::SIGTERM)
}

fn display_command(o: &rstack_runtime::RunOptions, image: &LocalImage) -> Vec<String> {
    let cfg = image.config.config().as_ref();
    let mut v = o
        .entrypoint
        .clone()
        .or_else(|| cfg.and_then(|c| c.entrypoint().clone()))
        .unwrap_or_default();
    if o.command.is_empty() {
        v.extend(cfg.and_then(|c| c.cmd().clone()).unwrap_or_default());
    } else {
        v.extend(o.command.iter().cloned());
    }
    v
}

/// Stop signal, `timeout` to exit, then SIGKILL. True if it exited.
fn stop_pidfd(p: &Pidfd, signal: i32, timeout: Duration) -> bool {
    let _ = p.signal(signal);
    if p.wait_exit(timeout) {
        return true;
    }
    let _ = p.signal(libc::SIGKILL);
    p.wait_exit(Duration::from_secs(10))
}

/// Waits for a service's dependencies, then launches its containers.
fn starter(inner: Arc<Inner>, svc: String, no_deps: bool) {
    let waits = if no_deps {
        Vec::new()
    } else {
        inner.plan.waits.get(&svc).cloned().unwrap_or_default()
    };
    match await_dependencies(&inner, &svc, &waits) {
        Ok(true) => {}
        Ok(false) => return,
        Err(reason) => {
            block(&inner, &svc, reason);
            return;
        }
    }
    let names: Vec<String> = {
        let hub = inner.hub();
        hub.ctrs
            .values()
            .filter(|l| l.rec.service == svc && !l.active && l.pidfd.is_none())
            .map(|l| l.rec.name.clone())
            .collect()
    };
    for name in names {
        let i = inner.clone();
        inner.update(&name, |l| l.active = true);
        std::thread::spawn(move || runner(i, name, None));
    }
    inner.hub().launched.insert(svc, true);
    inner.cv.notify_all();
}

/// Waits until each of `waits` holds (an optional dependency that cannot
/// is reported and skipped). `Ok(false)`: the project is shutting down;
/// `Err`: why a required dependency can never hold.
fn await_dependencies(inner: &Inner, svc: &str, waits: &[Wait]) -> Result<bool, String> {
    for w in waits {
        if !inner.project.services.contains_key(&w.dependency) {
            if w.required {
                return Err(format!(
                    "service {svc} depends on undefined service {}",
                    w.dependency
                ));
            }
            continue;
        }
        let mut hub = inner.hub();
        loop {
            if hub.shutting {
                return Ok(false);
            }
            match condition(&hub, inner, &w.dependency, w.condition) {
                Some(Ok(())) => break,
                Some(Err(reason)) => {
                    drop(hub);
                    if w.required {
                        return Err(reason);
                    }
                    (inner.reporter)(Event::Warning(reason));
                    break;
                }
                None => hub = inner.wait(hub),
            }
        }
    }
    Ok(true)
}

/// `restart`: stops the services, then starts them again in dependency
/// order, each once the restarted dependencies it declared with
/// `restart: true` meet their condition — what `docker compose restart`
/// waits for (so a dependant does not come back before its database).
fn restart_services(inner: &Arc<Inner>, services: &[String], timeout: Option<u64>) -> Response {
    let mut r = stop_services(inner, services, timeout, false);
    if r.error.is_some() {
        return r;
    }
    let selected = match services_or_all(inner, services) {
        Ok(s) => s,
        Err(e) => {
            r.error = Some(e);
            return r;
        }
    };
    for svc in inner.plan.start_order() {
        if !selected.contains(&svc) {
            continue;
        }
        let waits: Vec<Wait> = inner
            .plan
            .waits
            .get(&svc)
            .into_iter()
            .flatten()
            .filter(|w| w.restart && selected.contains(&w.dependency))
            .cloned()
            .collect();
        match await_dependencies(inner, &svc, &waits) {
            Ok(true) => {}
            Ok(false) => break,
            Err(reason) => {
                r.error = Some(reason);
                break;
            }
        }
        let started = start_services(inner, std::slice::from_ref(&svc));
        r.lines.extend(started.lines);
        if started.error.is_some() {
            r.error = started.error;
            break;
        }
    }
    r
}

fn block(inner: &Inner, svc: &str, reason: String) {
    (inner.reporter)(Event::Warning(reason.clone()));
    let mut hub = inner.hub();
    hub.blocked.insert(svc.to_owned(), reason);
    hub.launched.insert(svc.to_owned(), true);
    drop(hub);
    inner.cv.notify_all();
}

/// Whether dependency `dep` meets `cond`: `None` = not yet.
fn condition(
    hub: &Hub,
    inner: &Inner,
    dep: &str,
    cond: DependencyCondition,
) -> Option<Result<(), String>> {
    if let Some(reason) = hub.blocked.get(dep) {
        return Some(Err(reason.clone()));
    }
    let ctrs: Vec<&Live> = hub.ctrs.values().filter(|l| l.rec.service == dep).collect();
    if ctrs.is_empty() || !hub.launched.get(dep).copied().unwrap_or(false) {
        // adopted containers of a service not selected count as launched
        if ctrs.is_empty() || ctrs.iter().any(|l| l.pidfd.is_none()) {
            return None;
        }
    }
    let has_check = inner
        .project
        .services
        .get(dep)
        .and_then(|s| {
            Check::of_service(dep, s.healthcheck.as_ref())
                .ok()
                .flatten()
        })
        .is_some();
    for l in &ctrs {
        if let Some(f) = &l.failed {
            return Some(Err(format!("dependency failed to start: {f}")));
        }
        let r = &l.rec;
        match cond {
            DependencyCondition::Started => {
                if !matches!(
                    r.status,
                    Status::Running | Status::Exited | Status::Restarting
                ) {
                    return None;
                }
            }
            DependencyCondition::Healthy => {
                if !has_check {
                    return Some(Err(format!(
                        "dependency failed to start: container {} has no healthcheck configured",
                        r.name
                    )));
                }
                match r.health.as_ref().map(|h| h.status) {
                    Some(Health::Healthy) if r.status == Status::Running => {}
                    Some(Health::Unhealthy) => {
                        return Some(Err(format!(
                            "dependency failed to start: container {} is unhealthy",
                            r.name
                        )));
                    }
                    _ if r.status == Status::Exited && l.pidfd.is_none() && !l.active => {
                        return Some(Err(format!(
                            "dependency failed to start: container {} exited ({})",
                            r.name,
                            r.exit_code.map_or("unknown".into(), |c| c.to_string())
                        )));
                    }
                    _ => return None,
                }
            }
            DependencyCondition::CompletedSuccessfully => {
                if r.status != Status::Exited || l.pidfd.is_some() {
                    return None;
                }
                if r.exit_code != Some(0) {
                    return Some(Err(format!(
                        "service {dep} didn't complete successfully: exit {}",
                        r.exit_code.map_or("unknown".into(), |c| c.to_string())
                    )));
                }
            }
        }
    }
    Some(Ok(()))
}

/// Completes each service's healthcheck with its image's `HEALTHCHECK`
/// (see [`crate::health::with_image`]), so everything downstream (checks,
/// `service_healthy`, the config hash) sees the one Docker would run.
fn image_healthchecks(
    env: &Env,
    project: &mut Project,
    images: &HashMap<String, LocalImage>,
) -> Result<(), Error> {
    let store =
        rstack_images::Store::open(&env.layout.root).map_err(|e| Error::Store(Box::new(e)))?;
    for (name, svc) in project.services.iter_mut() {
        let Some(img) = images.get(name) else {
            continue;
        };
        let config = store
            .docker_config(img)
            .map_err(|source| Error::ImageConfig {
                service: name.clone(),
                image: img.id.clone(),
                source: Box::new(source),
            })?;
        svc.healthcheck =
            crate::health::with_image(svc.healthcheck.as_ref(), config.config.healthcheck.as_ref());
    }
    Ok(())
}

/// One container's life: create (or adopt), wait, tear down, restart.
fn runner(inner: Arc<Inner>, name: String, mut adopted: Option<Pidfd>) {
    let (svc_name, mut generation) = {
        let mut hub = inner.hub();
        let Some(l) = hub.ctrs.get_mut(&name) else {
            return;
        };
        l.active = true;
        (l.rec.service.clone(), l.generation)
    };
    let svc = inner.project.services[&svc_name].clone();
    let policy = Policy::of_service(&svc_name, &svc).unwrap_or_default();
    let check = Check::of_service(&svc_name, svc.healthcheck.as_ref())
        .ok()
        .flatten();
    let mut backoff = Backoff::default();
    loop {
        let began = Instant::now();
        let mut own = None;
        let mut adopted_dns = None;
        let pidfd = match adopted.take() {
            Some(p) => {
                let p = Arc::new(p);
                let netns = inner
                    .hub()
                    .ctrs
                    .get(&name)
                    .and_then(|l| l.rec.netns.clone());
                if let Some(path) = netns {
                    let _guard = inner.rt.enter();
                    match inner.resolver.serve(&name, &path) {
                        Ok(d) => adopted_dns = Some(d),
                        Err(e) => (inner.reporter)(Event::Warning(format!(
                            "container {name}: cannot serve DNS: {}",
                            chain(&e)
                        ))),
                    }
                }
                let p2 = p.clone();
                inner.update(&name, move |l| l.pidfd = Some(p2));
                p
            }
            None => {
                let mut rec = match inner.hub().ctrs.get(&name) {
                    Some(l) => l.rec.clone(),
                    None => return,
                };
                // rec.id stays: the new runtime container takes it over
                rec.pid = None;
                rec.start_time = None;
                rec.health = None;
                rec.cgroup_dirs.clear();
                rec.log_offsets = [0, 0];
                inner.report(&name, "Starting");
                let image = &inner.images[&svc_name];
                let started = lifecycle::plan(
                    &inner.env,
                    &inner.pp,
                    &inner.project,
                    &svc_name,
                    &name,
                    rec.number,
                )
                .and_then(|plan| {
                    lifecycle::create_and_start(
                        &inner.env,
                        &inner.pp,
                        &mut rec,
                        &plan,
                        image,
                        Some(&inner.resolver),
                        inner.rt.handle(),
                        None,
                        Some(&inner.creator),
                    )
                });
                match started {
                    Ok(s) => {
                        let p = Arc::new(Pidfd::open(s.pidfd.pid()).unwrap_or(s.pidfd));
                        let p2 = p.clone();
                        own = Some((s.container, s.attachments, s.dns));
                        if check.is_some() {
                            rec.health =
                                Some(Tracker::new(check.clone().expect("checked")).to_record());
                        }
                        inner.report(&name, "Started");
                        inner.update(&name, move |l| {
                            l.rec = rec;
                            l.pidfd = Some(p2);
                        });
                        p
                    }
                    Err(e) => {
                        let msg = chain(&e);
                        (inner.reporter)(Event::Warning(msg.clone()));
                        inner.update(&name, |l| {
                            l.rec = rec;
                            l.failed = Some(msg);
                            l.active = false;
                        });
                        return;
                    }
                }
            }
        };
        if let Some(c) = &check {
            let i = inner.clone();
            let n = name.clone();
            let c = c.clone();
            std::thread::spawn(move || prober(i, n, generation, c));
        }
        // wait for the exit
        let (code, oom) = match own {
            Some((None, attachments, dns)) => {
                let code = wait_child_exit(&pidfd);
                if let Some(d) = dns {
                    inner.rt.block_on(d.stop());
                }
                drop(attachments);
                (code, false)
            }
            Some((Some(mut container), attachments, dns)) => {
                let st = container.wait();
                let r = match st {
                    Ok(s) => (Some(s.code), s.oom_killed),
                    Err(_) => (None, false),
                };
                if let Some(d) = dns {
                    inner.rt.block_on(d.stop());
                }
                if let Err(e) = container.remove() {
                    (inner.reporter)(Event::Warning(format!("container {name}: {}", chain(&e))));
                }
                drop(attachments);
                r
            }
            None => {
                let code = wait_child_exit(&pidfd);
                if let Some(d) = adopted_dns.take() {
                    inner.rt.block_on(d.stop());
                }
                (code, false)
            }
        };
        // its last lines are in the json log before its exit is recorded
        pump_shared(&inner, false);
        let mut rec = inner.hub().ctrs.get(&name).map(|l| l.rec.clone());
        if let Some(r) = rec.as_mut() {
            for e in lifecycle::remove_leftover(&inner.env, r) {
                (inner.reporter)(Event::Warning(e));
            }
        }
        generation += 1;
        let (stop, shutting, restarts, user_stopped) = {
            let mut hub = inner.hub();
            let shutting = hub.shutting;
            let Some(l) = hub.ctrs.get_mut(&name) else {
                return;
            };
            l.generation = generation;
            l.pidfd = None;
            l.rec.status = Status::Exited;
            l.rec.exit_code = code;
            l.rec.exit_unknown = code.is_none();
            l.rec.oom_killed = oom;
            l.rec.finished_at = Some(now_rfc3339());
            l.rec.pid = None;
            l.rec.start_time = None;
            let _ = inner.pp.save_container(&l.rec);
            (
                l.stop_requested,
                shutting,
                l.rec.restart_count,
                l.rec.user_stopped,
            )
        };
        inner.cv.notify_all();
        (inner.reporter)(Event::Exited {
            name: name.clone(),
            code,
        });
        if stop || shutting || !policy.should_restart(code, restarts, user_stopped) {
            break;
        }
        let delay = backoff.delay(began.elapsed());
        let deadline = Instant::now() + delay;
        let mut hub = inner.hub();
        loop {
            let l = hub.ctrs.get(&name);
            if hub.shutting || l.is_none_or(|l| l.stop_requested) {
                drop(hub);
                inner.update(&name, |l| l.active = false);
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            hub = inner.wait_timeout(hub, left);
        }
        drop(hub);
        inner.update(&name, |l| {
            l.rec.restart_count += 1;
            l.rec.status = Status::Restarting;
        });
    }
    inner.update(&name, |l| l.active = false);
}

/// Waits for a container's init to exit and returns Docker's exit code.
/// Created by the creator's worker, it is re-parented to us (a child
/// subreaper) and reaped here; an adopted one belongs to another parent,
/// and its code comes from PIDFD_GET_INFO when the kernel keeps it.
fn wait_child_exit(pidfd: &Pidfd) -> Option<i32> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    while !pidfd.wait_exit(Duration::from_secs(3600)) {}
    let pid = nix::unistd::Pid::from_raw(pidfd.pid());
    for _ in 0..200 {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => return Some(c),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Some(128 + sig as i32),
            // not (yet) ours: the worker that created it may still be exiting
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(nix::Error::ECHILD) => {
                if let Some(c) = pidfd.exit_code() {
                    return Some(c);
                }
            }
            Err(_) => break,
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    pidfd.exit_code()
}

/// Runs a container's healthcheck until the container's run `generation` ends.
fn prober(inner: Arc<Inner>, name: String, generation: u64, check: Check) {
    let (mut tracker, started, id) = {
        let hub = inner.hub();
        let Some(l) = hub.ctrs.get(&name) else { return };
        let tracker = match &l.rec.health {
            Some(h) => Tracker::resume(check.clone(), h),
            None => Tracker::new(check.clone()),
        };
        let started = l
            .rec
            .started_at
            .as_deref()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .unwrap_or_else(jiff::Timestamp::now);
        (tracker, started, l.rec.id.clone())
    };
    let Some(id) = id else { return };
    let uptime = || {
        let d = jiff::Timestamp::now().duration_since(started);
        Duration::try_from(d).unwrap_or_default()
    };
    loop {
        let delay = tracker.next_delay(uptime());
        let deadline = Instant::now() + delay;
        let mut hub = inner.hub();
        loop {
            let gone = hub
                .ctrs
                .get(&name)
                .is_none_or(|l| l.generation != generation || l.stop_requested);
            if hub.shutting || gone {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            hub = inner.wait_timeout(hub, left);
        }
        drop(hub);
        let leaves = inner
            .hub()
            .ctrs
            .get(&name)
            .map(|l| l.rec.cgroup_leaves.clone())
            .unwrap_or_default();
        if crate::cgroups::is_paused(&leaves) {
            // a frozen container cannot answer; docker skips probes too
            continue;
        }
        let result = match inner.creator.call(&crate::creator::Request::Probe {
            id: id.clone(),
            argv: check.argv.clone(),
            timeout_ms: check.timeout.as_millis() as u64,
        }) {
            Ok(crate::creator::Reply::Probed(r)) => r,
            Ok(other) => probe_failure(format!("unexpected answer {other:?}")),
            Err(e) => probe_failure(chain(&e)),
        };
        let changed = tracker.record(result, uptime());
        let still = inner
            .hub()
            .ctrs
            .get(&name)
            .is_some_and(|l| l.generation == generation);
        if !still {
            return;
        }
        let rec = tracker.to_record();
        inner.update(&name, |l| l.rec.health = Some(rec));
        if changed {
            inner.report(
                &name,
                match tracker.status() {
                    Health::Healthy => "Healthy",
                    Health::Unhealthy => "Unhealthy",
                    Health::Starting => "Starting",
                },
            );
        }
    }
}

fn probe_failure(output: String) -> crate::state::ProbeResult {
    let now = now_rfc3339();
    crate::state::ProbeResult {
        start: now.clone(),
        end: now,
        exit_code: -1,
        output,
    }
}

type Pumps = HashMap<String, (JsonLog, [RawTail; 2])>;

/// Moves the containers' raw output into their json logs, forever.
fn log_pump(inner: Arc<Inner>) {
    loop {
        let busy = pump_shared(&inner, false);
        if !busy {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// [`pump_all`] over the shared state.
fn pump_shared(inner: &Inner, flush: bool) -> bool {
    let mut pumps = inner.pumps.lock().unwrap_or_else(|p| p.into_inner());
    pump_all(inner, &mut pumps, flush)
}

/// One pass over every container; true if anything was moved.
fn pump_all(inner: &Inner, pumps: &mut Pumps, flush: bool) -> bool {
    let names: Vec<(String, String)> = inner
        .hub()
        .ctrs
        .values()
        .map(|l| (l.rec.name.clone(), l.rec.service.clone()))
        .collect();
    let mut busy = false;
    for (name, svc) in names {
        let dir = inner.pp.log_dir(&name);
        if !pumps.contains_key(&name) {
            let rot = Rotation::of_service(
                &svc,
                inner
                    .project
                    .services
                    .get(&svc)
                    .and_then(|s| s.logging.as_ref()),
            )
            .unwrap_or_default();
            let Ok(log) = JsonLog::open(&inner.pp.json_log(&name), rot) else {
                continue;
            };
            let off = crate::logs::load_offsets(&dir);
            pumps.insert(
                name.clone(),
                (
                    log,
                    [
                        RawTail::new(
                            &inner.pp.raw_log(&name, Stream::Stdout),
                            Stream::Stdout,
                            off[0],
                        ),
                        RawTail::new(
                            &inner.pp.raw_log(&name, Stream::Stderr),
                            Stream::Stderr,
                            off[1],
                        ),
                    ],
                ),
            );
        }
        let Some((log, tails)) = pumps.get_mut(&name) else {
            continue;
        };
        let mut moved = false;
        for t in tails.iter_mut() {
            match t.pump(log, flush) {
                Ok(m) => moved |= m,
                Err(e) => tracing::debug!(error = %chain(&e), "log pump"),
            }
        }
        if moved {
            crate::logs::save_offsets(&dir, [tails[0].offset, tails[1].offset]);
            busy = true;
        }
    }
    busy
}

fn services_or_all(inner: &Inner, services: &[String]) -> Result<Vec<String>, String> {
    for s in services {
        if !inner.project.services.contains_key(s) {
            return Err(format!("no such service: {s}"));
        }
    }
    Ok(if services.is_empty() {
        inner.project.services.keys().cloned().collect()
    } else {
        services.to_vec()
    })
}

/// Stops one container and waits for its runner to tear it down.
fn stop_one(inner: &Inner, name: &str, timeout: Option<u64>, user: bool) -> bool {
    let (pidfd, signal, grace) = {
        let mut hub = inner.hub();
        let Some(l) = hub.ctrs.get_mut(name) else {
            return false;
        };
        l.stop_requested = true;
        if user {
            l.rec.user_stopped = true;
        }
        let _ = inner.pp.save_container(&l.rec);
        (
            l.pidfd.clone(),
            l.stop_signal,
            timeout.map(Duration::from_secs).unwrap_or(l.stop_timeout),
        )
    };
    inner.cv.notify_all();
    let Some(p) = pidfd else {
        // not running; wait for a runner in backoff to notice
        let mut hub = inner.hub();
        while hub
            .ctrs
            .get(name)
            .is_some_and(|l| l.active && l.pidfd.is_none())
        {
            hub = inner.wait_timeout(hub, Duration::from_millis(100));
            if hub.ctrs.get(name).is_some_and(|l| l.pidfd.is_some()) {
                drop(hub);
                return stop_one(inner, name, timeout, user);
            }
        }
        return false;
    };
    inner.report(name, "Stopping");
    let leaves = inner
        .hub()
        .ctrs
        .get(name)
        .map(|l| l.rec.cgroup_leaves.clone())
        .unwrap_or_default();
    if crate::cgroups::is_paused(&leaves) {
        // a frozen process gets no signal: thaw it first
        let _ = crate::cgroups::set_paused(name, &leaves, false);
    }
    let _ = p.signal(signal);
    let deadline = Instant::now() + grace;
    loop {
        if p.wait_exit(Duration::from_millis(100)) {
            break;
        }
        if Instant::now() >= deadline || inner.hub().kill_now {
            let _ = p.signal(libc::SIGKILL);
        }
    }
    let mut hub = inner.hub();
    while hub.ctrs.get(name).is_some_and(|l| l.active) {
        hub = inner.wait_timeout(hub, Duration::from_millis(200));
    }
    drop(hub);
    inner.report(name, "Stopped");
    true
}

fn stop_services(inner: &Inner, services: &[String], timeout: Option<u64>, user: bool) -> Response {
    let services = match services_or_all(inner, services) {
        Ok(s) => s,
        Err(e) => {
            return Response {
                lines: vec![],
                error: Some(e),
            };
        }
    };
    let mut lines = Vec::new();
    for layer in inner.plan.stop_layers() {
        let names: Vec<String> = {
            let hub = inner.hub();
            hub.ctrs
                .values()
                .filter(|l| layer.contains(&l.rec.service) && services.contains(&l.rec.service))
                .map(|l| l.rec.name.clone())
                .collect()
        };
        let stopped: Vec<(String, bool)> = std::thread::scope(|s| {
            let hs: Vec<_> = names
                .iter()
                .map(|n| s.spawn(move || (n.clone(), stop_one(inner, n, timeout, user))))
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (n, _) in stopped {
            lines.push(format!("Container {n}  Stopped"));
        }
    }
    Response { lines, error: None }
}

fn kill_services(inner: &Inner, services: &[String], signal: i32) -> Response {
    let services = match services_or_all(inner, services) {
        Ok(s) => s,
        Err(e) => {
            return Response {
                lines: vec![],
                error: Some(e),
            };
        }
    };
    let mut lines = Vec::new();
    let targets: Vec<(String, Arc<Pidfd>)> = {
        let mut hub = inner.hub();
        hub.ctrs
            .values_mut()
            .filter(|l| services.contains(&l.rec.service))
            .filter_map(|l| {
                let p = l.pidfd.clone()?;
                if signal == libc::SIGKILL || signal == libc::SIGTERM {
                    // docker: a killed container is not restarted by "unless-stopped"... but is by always
                }
                Some((l.rec.name.clone(), p))
            })
            .collect()
    };
    for (n, p) in targets {
        let _ = p.signal(signal);
        lines.push(format!("Container {n}  Killed"));
    }
    Response { lines, error: None }
}

fn start_services(inner: &Arc<Inner>, services: &[String]) -> Response {
    let services = match services_or_all(inner, services) {
        Ok(s) => s,
        Err(e) => {
            return Response {
                lines: vec![],
                error: Some(e),
            };
        }
    };
    let mut lines = Vec::new();
    let names: Vec<String> = {
        let mut hub = inner.hub();
        hub.ctrs
            .values_mut()
            .filter(|l| services.contains(&l.rec.service) && !l.active)
            .map(|l| {
                l.stop_requested = false;
                l.failed = None;
                l.rec.user_stopped = false;
                l.rec.status = Status::Creating;
                // a stale `healthy` must not satisfy a dependant
                l.rec.health = None;
                l.rec.name.clone()
            })
            .collect()
    };
    for n in names {
        let i = inner.clone();
        let n2 = n.clone();
        inner.update(&n, |l| l.active = true);
        std::thread::spawn(move || runner(i, n2, None));
        lines.push(format!("Container {n}  Started"));
    }
    // wait until they run (or fail)
    let mut hub = inner.hub();
    while hub.ctrs.values().any(|l| {
        services.contains(&l.rec.service)
            && l.active
            && l.pidfd.is_none()
            && l.failed.is_none()
            && l.rec.status != Status::Exited
    }) {
        hub = inner.wait_timeout(hub, Duration::from_millis(200));
    }
    Response { lines, error: None }
}

/// Forgets the stopped containers of `services` (all when empty).
fn rm_services(inner: &Inner, services: &[String]) -> Response {
    let services = match services_or_all(inner, services) {
        Ok(s) => s,
        Err(e) => {
            return Response {
                lines: vec![],
                error: Some(e),
            };
        }
    };
    let mut hub = inner.hub();
    let names: Vec<String> = hub
        .ctrs
        .values()
        .filter(|l| services.contains(&l.rec.service) && !l.active && l.pidfd.is_none())
        .map(|l| l.rec.name.clone())
        .collect();
    let mut lines = Vec::new();
    for n in names {
        hub.ctrs.remove(&n);
        let _ = inner.pp.remove_container(&n);
        let _ = std::fs::remove_dir_all(inner.pp.log_dir(&n));
        inner.pp.remove_container_data(&n);
        lines.push(format!("Container {n}  Removed"));
    }
    Response { lines, error: None }
}

/// Stops everything in stop order (layers in parallel); with `remove`,
/// deletes the records and logs too. Returns the lines to print.
fn stop_all(inner: &Inner, timeout: Option<u64>, remove: bool) -> Vec<String> {
    let mut lines = stop_services(inner, &[], timeout, false).lines;
    inner.hub().shutting = true;
    inner.cv.notify_all();
    pump_shared(inner, true);
    if remove {
        lines.clear();
        let names: Vec<String> = inner.hub().ctrs.keys().cloned().collect();
        for n in names {
            let _ = inner.pp.remove_container(&n);
            let _ = std::fs::remove_dir_all(inner.pp.log_dir(&n));
            inner.pp.remove_container_data(&n);
            lines.push(format!("Container {n}  Removed"));
        }
    }
    lines
}

/// Removes the supervisor's own files before it exits.
fn finish(inner: &Inner, _down: bool) {
    let _ = crate::state::remove_file(&inner.pp.supervisor_file());
    let _ = std::fs::remove_file(inner.pp.control_socket());
    // the creator dies with us (PR_SET_PDEATHSIG); its socket goes now
    let _ = std::fs::remove_file(inner.pp.run.join("creator.sock"));
}

/// The resources of a project (for `down` after the supervisor is gone).
pub fn resources(pp: &ProjectPaths) -> Result<ProjectResources, crate::state::Error> {
    pp.resources()
}
