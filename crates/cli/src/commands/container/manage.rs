//! `container stop|start|restart|kill|rm|pause|unpause CONTAINER...`:
//! Docker's per-container commands on any container rstack knows (found by
//! id, name or unique id prefix). The container's supervisor does the work
//! through the project's control requests, for the container's service; a
//! single container's supervisor is started first when it is gone (after
//! a crash or a SIGKILL): it re-adopts the container. Like docker, each
//! argument is printed as given once done, and a failure is reported for
//! that argument while the others go on (exit status 1).

use std::time::Duration;

use anyhow::bail;
use rstack_stack::control::Request;
use rstack_stack::state::{ContainerRecord, Layout, Status};

use super::detached::SingleProject;
use crate::commands::inspect::find_container;
use crate::commands::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "timeout", visible_alias = "time")]
    pub timeout: Option<u64>,
    /// Signal to send to the container (not supported: the stop signal of the container is used)
    #[arg(short = 's', long = "signal", hide = true)]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR (not supported yet)
    #[arg(short, long, hide = true)]
    pub attach: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal", default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// What one argument names.
struct Target {
    project: String,
    rec: ContainerRecord,
    single: Option<SingleProject>,
    layout: Layout,
}

impl Target {
    fn find(global: &GlobalOpts, query: &str) -> anyhow::Result<Target> {
        let layout = Layout::new(&global.run_root, &global.root);
        let Some((project, rec)) = find_container(&layout, query)? else {
            bail!("No such container: {query}");
        };
        let single = SingleProject::of(&layout, &project);
        Ok(Target {
            project,
            rec,
            single,
            layout,
        })
    }

    fn alive(&self) -> bool {
        rstack_stack::status::is_alive(&self.rec)
    }

    /// Sends `req` to the supervisor, starting a single container's
    /// supervisor first when it is gone.
    fn ask(&self, global: &GlobalOpts, req: &Request, wait: Duration) -> anyhow::Result<()> {
        if let Some(sp) = &self.single {
            sp.ensure_supervisor(global)?;
        }
        let pp = self.layout.project(&self.project);
        match stack_common::ask(&pp, req, wait)? {
            Some(_) => Ok(()),
            None => bail!(
                "no supervisor runs for project {} (start it with `rstack -p {} up -d`)",
                self.project,
                self.project
            ),
        }
    }

    fn services(&self) -> Vec<String> {
        vec![self.rec.service.clone()]
    }
}

/// Runs `op` on each argument, docker's way: the argument printed when it
/// worked, `Error response from daemon: ...` when not.
fn each(
    global: &GlobalOpts,
    containers: &[String],
    mut op: impl FnMut(&Target) -> anyhow::Result<()>,
) -> anyhow::Result<u8> {
    let mut code = 0;
    for q in containers {
        match Target::find(global, q).and_then(|t| op(&t)) {
            Ok(()) => println!("{q}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

fn grace(t: Option<u64>) -> Duration {
    Duration::from_secs(t.unwrap_or(10) * 4 + 120)
}

pub fn stop(global: &GlobalOpts, a: StopArgs) -> anyhow::Result<u8> {
    if a.signal.is_some() {
        bail!("--signal is not supported: the container's stop signal is used");
    }
    each(global, &a.containers, |t| {
        if !t.alive() {
            return Ok(());
        }
        let req = Request::Stop {
            services: t.services(),
            timeout: a.timeout,
        };
        t.ask(global, &req, grace(a.timeout))
    })
}

pub fn start(global: &GlobalOpts, a: StartArgs) -> anyhow::Result<u8> {
    if a.attach {
        bail!("start --attach is not supported yet: use `rstack container logs -f`");
    }
    each(global, &a.containers, |t| match &t.single {
        Some(sp) if rstack_stack::supervisor::running_supervisor(&sp.pp).is_none() => {
            // the new supervisor adopts or starts it
            sp.ensure_supervisor(global)
        }
        _ => {
            let req = Request::Start {
                services: t.services(),
            };
            t.ask(global, &req, grace(None))
        }
    })
}

pub fn restart(global: &GlobalOpts, a: StopArgs) -> anyhow::Result<u8> {
    each(global, &a.containers, |t| {
        let req = Request::Restart {
            services: t.services(),
            timeout: a.timeout,
        };
        t.ask(global, &req, grace(a.timeout))
    })
}

pub fn kill(global: &GlobalOpts, a: KillArgs) -> anyhow::Result<u8> {
    let signal = rstack_runtime::container::parse_signal(&a.signal)
        .map_err(|_| anyhow::anyhow!("invalid signal: {}", a.signal))? as i32;
    each(global, &a.containers, |t| {
        if !t.alive() {
            bail!(
                "cannot kill container: {}: container {} is not running",
                t.rec.name,
                t.rec.id.as_deref().unwrap_or(&t.rec.name)
            );
        }
        let req = Request::Kill {
            services: t.services(),
            signal,
        };
        t.ask(global, &req, grace(None))?;
        if signal == libc::SIGKILL {
            wait_exit_recorded(&t.layout, &t.project, &t.rec.name, t.rec.pid);
        }
        Ok(())
    })
}

pub fn rm(global: &GlobalOpts, a: RmArgs) -> anyhow::Result<u8> {
    each(global, &a.containers, |t| {
        if t.alive() && !a.force {
            bail!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                t.rec.name
            );
        }
        match &t.single {
            Some(sp) => sp.remove(global, Some(0)),
            None => {
                if t.alive() {
                    let kill = Request::Kill {
                        services: t.services(),
                        signal: libc::SIGKILL,
                    };
                    t.ask(global, &kill, grace(None))?;
                    wait_exit_recorded(&t.layout, &t.project, &t.rec.name, t.rec.pid);
                }
                let req = Request::Rm {
                    services: t.services(),
                };
                t.ask(global, &req, grace(None))
            }
        }
    })
}

/// Waits (up to 10 s) until the supervisor has recorded the exit of the
/// container's process `pid` (it may have restarted it since), as
/// Docker's kill with SIGKILL returns once the container stopped.
fn wait_exit_recorded(layout: &Layout, project: &str, name: &str, pid: Option<i32>) {
    let pp = layout.project(project);
    for _ in 0..200 {
        match pp.container(name) {
            Ok(Some(r)) if r.pid == pid && r.status == Status::Running => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => return,
        }
    }
}

/// `pause` and `unpause`: the cgroup freezer, from outside.
pub fn pause(global: &GlobalOpts, a: NamesArgs, paused: bool) -> anyhow::Result<u8> {
    each(global, &a.containers, |t| {
        if !t.alive() {
            bail!(
                "container {} is not running",
                t.rec.id.as_deref().unwrap_or(&t.rec.name)
            );
        }
        rstack_stack::cgroups::set_paused(&t.rec.name, &t.rec.cgroup_leaves, paused)?;
        Ok(())
    })
}
