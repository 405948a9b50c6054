//! The project's supervisor: the one long-lived process of a stack.
//!
//! It creates the networks and volumes ([`resources`]), decides what to do
//! with the containers it finds ([`plan`], carried out by [`reconcile`]),
//! then starts every service as soon as its `depends_on` conditions hold
//! ([`depends`], decided by [`conditions`]), runs each container's life in
//! a runner thread ([`runner`]: wait for exit, restart policy with
//! backoff), runs healthchecks in prober threads ([`prober`], [`probe`]),
//! turns the raw output files into json logs ([`log_pump`]), serves DNS
//! for its containers, and answers requests on its control socket
//! ([`control_loop`], [`commands`]). Threads share one [`hub`].
//!
//! It is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so processes of its
//! containers that get orphaned are reaped by it. Everything it knows is in
//! the state files: after a SIGKILL the containers keep running (their
//! output goes to files, not pipes) and the next supervisor adopts them —
//! verified by pid + start time through a pidfd — keeping healthy ones
//! running and resuming healthchecks, restarts, DNS and log tailing.

mod commands;
mod conditions;
mod control_loop;
mod depends;
mod hub;
pub mod known;
mod log_pump;
mod plan;
mod probe;
mod prober;
mod reconcile;
mod resources;
mod runner;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rstack_compose::Project;
use rstack_images::LocalImage;

pub use control_loop::Ended;
pub use plan::replica_numbers;
pub use resources::ensure_resources;

use crate::health::Check;
use crate::lifecycle::{self, Env};
use crate::logs::Rotation;
use crate::process::Pidfd;
use crate::restart::Policy;
use crate::state::{Health, ProjectPaths, Status, SupervisorRecord, now_rfc3339};
use hub::{Hub, Inner, Shared};

/// A failure of the supervisor's set-up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    State(#[from] crate::state::Error),
    #[error(transparent)]
    Prepare(#[from] crate::prepare::Error),
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
    #[error("{0}")]
    NameConflict(known::Conflict),
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
    /// Services of an earlier `up` that these files do not declare, still
    /// supervised but not started ([`known::keep_foreign_services`]).
    pub foreign: Vec<String>,
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
        resources::image_healthchecks(&env, &mut project, &images)?;
        let pp = env.layout.project(&project.name);
        let plan = project.plan()?;
        validate(&env, &pp, &project, &images)?;
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
            shared: Shared::default(),
            rt,
            resolver,
            creator,
            pumps: Mutex::new(HashMap::new()),
            pump_kick: log_pump::Kick::new(),
        });
        let listener = listen(&inner)?;
        let stop = |rec: &crate::state::ContainerRecord, p: &Pidfd| {
            let l = inner.new_live(rec.clone());
            p.stop(l.stop_signal, l.stop_timeout, || false);
        };
        resources::ensure_resources_with(
            &inner.env,
            &inner.pp,
            &inner.project,
            &[],
            &inner.reporter,
            Some(&stop),
        )?;
        let mut res = inner.pp.resources()?;
        res.services = inner.project.services.clone();
        inner.pp.save_resources(&res)?;
        let selected =
            known::selected(&inner.project, &opts.services, opts.no_deps, &opts.foreign)?;
        let adopted = reconcile::reconcile(&inner, opts, &selected)?;
        for (name, pidfd) in adopted {
            runner::spawn(&inner, name, Some(pidfd));
        }
        for svc in &selected {
            let i = inner.clone();
            let svc = svc.clone();
            let no_deps = opts.no_deps;
            std::thread::spawn(move || depends::starter(i, svc, no_deps));
        }
        log_pump::spawn(&inner);
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
            match readiness(&hub, &self.selected, self.wait_healthy) {
                Some(failures) if failures.is_empty() => return Ok(()),
                Some(failures) => return Err(Error::Services(failures)),
                None => hub = inner.wait(hub),
            }
        }
    }
}

/// Everything checked before anything is touched: restart policies,
/// healthchecks, logging options, images, each container's plan.
fn validate(
    env: &Env,
    pp: &ProjectPaths,
    project: &Project,
    images: &HashMap<String, LocalImage>,
) -> Result<(), Error> {
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
        for n in replica_numbers(svc) {
            let cname = project.container_name(name, n);
            lifecycle::plan(env, pp, project, name, &cname, n)?;
        }
    }
    Ok(())
}

/// Binds the control socket (a stale one from a crash is replaced).
fn listen(inner: &Inner) -> Result<std::os::unix::net::UnixListener, Error> {
    let sock = inner.pp.control_socket();
    let _ = std::fs::remove_file(&sock);
    std::os::unix::net::UnixListener::bind(&sock).map_err(|source| Error::Listen {
        path: sock.clone(),
        source,
    })
}

/// Whether `up` is done with `selected`: `None` while something is still
/// pending, else the failures (none: ready).
fn readiness(hub: &Hub, selected: &[String], wait_healthy: bool) -> Option<Vec<String>> {
    let mut pending = false;
    let mut failures = Vec::new();
    for svc in selected {
        if let Some(reason) = hub.blocked.get(svc) {
            failures.push(reason.clone());
            continue;
        }
        if !hub.launched.get(svc).copied().unwrap_or(false) {
            pending = true;
            continue;
        }
        for live in hub.ctrs.values().filter(|l| &l.rec.service == svc) {
            let rec = &live.rec;
            if let Some(f) = &live.failed {
                failures.push(f.clone());
            } else if rec.status == Status::Creating || rec.status == Status::Created {
                pending = true;
            } else if wait_healthy {
                match (&rec.health, rec.status) {
                    (_, Status::Exited) if rec.exit_code != Some(0) => failures.push(format!(
                        "container {} exited ({})",
                        rec.name,
                        rec.exit_code.map_or("unknown".into(), |c| c.to_string())
                    )),
                    (Some(h), _) if h.status == Health::Unhealthy => {
                        failures.push(format!("container {} is unhealthy", rec.name))
                    }
                    (Some(h), Status::Running) if h.status == Health::Starting => pending = true,
                    _ => {}
                }
            }
        }
    }
    (!pending).then_some(failures)
}

#[cfg(test)]
mod tests {
    use super::hub::Live;
    use super::*;
    use crate::state::{ContainerRecord, HealthRecord};

    fn hub(recs: Vec<ContainerRecord>) -> Hub {
        let mut hub = Hub::default();
        for r in recs {
            hub.launched.insert(r.service.clone(), true);
            hub.ctrs.insert(r.name.clone(), Live::of(r));
        }
        hub
    }

    fn rec(service: &str, status: Status, health: Option<Health>) -> ContainerRecord {
        let mut r = ContainerRecord::new(&format!("p-{service}-1"), service, 1);
        r.status = status;
        r.health = health.map(|status| HealthRecord {
            status,
            failing_streak: 0,
            log: Vec::new(),
        });
        r
    }

    #[test]
    fn ready_once_started_or_healthy_with_wait() {
        let sel = ["db".to_owned()];
        let starting = hub(vec![rec("db", Status::Running, Some(Health::Starting))]);
        assert_eq!(readiness(&starting, &sel, false), Some(vec![]));
        assert_eq!(readiness(&starting, &sel, true), None);
        let healthy = hub(vec![rec("db", Status::Running, Some(Health::Healthy))]);
        assert_eq!(readiness(&healthy, &sel, true), Some(vec![]));
        let sick = hub(vec![rec("db", Status::Running, Some(Health::Unhealthy))]);
        assert_eq!(
            readiness(&sick, &sel, true),
            Some(vec!["container p-db-1 is unhealthy".to_owned()])
        );
        let creating = hub(vec![rec("db", Status::Creating, None)]);
        assert_eq!(readiness(&creating, &sel, false), None);
    }

    #[test]
    fn a_service_scaled_to_zero_is_ready_once_launched() {
        let sel = ["web".to_owned()];
        let mut h = Hub::default();
        assert_eq!(readiness(&h, &sel, true), None);
        h.launched.insert("web".into(), true);
        assert_eq!(readiness(&h, &sel, true), Some(vec![]));
    }

    #[test]
    fn failures_and_blocked_services_are_reported() {
        let sel = ["db".to_owned(), "web".to_owned()];
        let mut h = hub(vec![rec("db", Status::Exited, None)]);
        h.ctrs.get_mut("p-db-1").unwrap().failed = Some("no such image".into());
        h.blocked
            .insert("web".into(), "dependency failed to start".into());
        h.launched.insert("web".into(), true);
        assert_eq!(
            readiness(&h, &sel, false),
            Some(vec![
                "no such image".to_owned(),
                "dependency failed to start".to_owned()
            ])
        );
    }
}
