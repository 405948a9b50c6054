//! Container creation from a single-threaded process.
//!
//! libcontainer starts a container's processes with raw `clone` calls and
//! keeps running Rust code (allocating) in the children. In a
//! multi-threaded process (the supervisor has its runners, probers, log
//! pump and tokio threads) another thread may hold the allocator's lock at
//! that moment, and the child deadlocks on it forever — seen here as `up`
//! hanging at "Starting". So the supervisor forks a *creator* while it is
//! still single-threaded; for every request the creator forks a one-shot
//! worker (a fork of a single-threaded process is safe) that creates and
//! starts the container, answers, and exits.
//! The container's init, orphaned when the worker exits, is re-parented to
//! the supervisor — a child subreaper — which can then wait for it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use rstack_compose::Project;
use rstack_images::LocalImage;
use rstack_runtime::options::NetworkMode;
use rstack_runtime::{Container, Stdio};
use serde::{Deserialize, Serialize};

use crate::error_chain::chain;
use crate::prepare::Env;
use crate::state::{ProjectPaths, Stream};

/// A failure talking to the creator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start the container creator on {path}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the container creator did not answer")]
    Exchange(#[source] std::io::Error),
    #[error("the container creator answered nonsense")]
    Parse(#[source] serde_json::Error),
}

/// What the supervisor asks of the creator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Create and start container `name` of `service` joining `netns`.
    Create {
        service: String,
        name: String,
        number: u32,
        netns: Option<PathBuf>,
        addresses: Vec<IpAddr>,
        /// The id to reuse (a restarted container's).
        #[serde(default)]
        id: Option<String>,
    },
}

/// The creator's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Reply {
    Created {
        id: String,
        pid: i32,
        cgroup_dirs: Vec<PathBuf>,
        cgroup_leaves: Vec<PathBuf>,
    },
    Failed(String),
}

/// The creator process, killed when dropped (and when the supervisor dies).
#[derive(Debug)]
pub struct Creator {
    socket: PathBuf,
    pid: i32,
}

impl Creator {
    /// Forks the creator. Call it while the process is single-threaded.
    pub(crate) fn spawn(
        socket: &Path,
        env: &Env,
        pp: &ProjectPaths,
        project: &Project,
        images: &HashMap<String, LocalImage>,
    ) -> Result<Creator, Error> {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).map_err(|source| Error::Spawn {
            path: socket.to_owned(),
            source,
        })?;
        let parent = std::process::id() as i32;
        // SAFETY: the caller is single-threaded (see above), so the child
        // may run ordinary Rust code.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                // SAFETY: prctl with integer arguments.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
                if nix::unistd::getppid().as_raw() != parent {
                    // SAFETY: leaving the forked child without unwinding.
                    unsafe { libc::_exit(0) };
                }
                close_other_fds(std::os::fd::AsRawFd::as_raw_fd(&listener));
                serve(
                    listener,
                    &Ctx {
                        env,
                        pp,
                        project,
                        images,
                    },
                );
                // SAFETY: as above.
                unsafe { libc::_exit(0) }
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Creator {
                socket: socket.to_owned(),
                pid: child.as_raw(),
            }),
            Err(e) => Err(Error::Spawn {
                path: socket.to_owned(),
                source: e.into(),
            }),
        }
    }

    /// Sends a request and waits for its answer.
    pub(crate) fn call(&self, req: &Request) -> Result<Reply, Error> {
        let mut s = UnixStream::connect(&self.socket).map_err(Error::Exchange)?;
        let mut data = serde_json::to_vec(req).map_err(Error::Parse)?;
        data.push(b'\n');
        s.write_all(&data).map_err(Error::Exchange)?;
        let mut line = String::new();
        BufReader::new(&s)
            .read_line(&mut line)
            .map_err(Error::Exchange)?;
        if line.is_empty() {
            return Err(Error::Exchange(std::io::Error::from(
                std::io::ErrorKind::UnexpectedEof,
            )));
        }
        serde_json::from_str(&line).map_err(Error::Parse)
    }
}

impl Drop for Creator {
    fn drop(&mut self) {
        // SAFETY: kill(2) of the process we forked.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Closes every inherited fd but stdio and `keep` (a lock fd shared with
/// the supervisor would otherwise keep the project locked).
fn close_other_fds(keep: i32) {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if fd > 2 && fd != keep {
            // SAFETY: closing fds inherited by this fresh child; nothing in
            // it uses them.
            unsafe { libc::close(fd) };
        }
    }
}

/// What the creator's workers create containers from (the supervisor's,
/// as it was at fork time).
struct Ctx<'a> {
    env: &'a Env,
    pp: &'a ProjectPaths,
    project: &'a Project,
    images: &'a HashMap<String, LocalImage>,
}

/// The creator's loop: one forked worker per connection.
fn serve(listener: UnixListener, ctx: &Ctx<'_>) {
    for conn in listener.incoming() {
        // reap finished workers (our only children)
        while let Ok(ws) = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(-1),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        ) {
            if ws == nix::sys::wait::WaitStatus::StillAlive {
                break;
            }
        }
        let Ok(conn) = conn else { continue };
        // SAFETY: the creator is single-threaded.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                drop(listener);
                work(&conn, ctx);
                // SAFETY: leave without running destructors (a created
                // container must not be torn down by its handle's Drop).
                unsafe { libc::_exit(0) }
            }
            Ok(nix::unistd::ForkResult::Parent { .. }) => drop(conn),
            Err(e) => {
                answer(&conn, &Reply::Failed(format!("fork a worker: {e}")));
            }
        }
    }
}

fn answer(mut conn: &UnixStream, reply: &Reply) {
    let mut data = serde_json::to_vec(reply).unwrap_or_default();
    data.push(b'\n');
    let _ = conn.write_all(&data);
}

fn work(conn: &UnixStream, ctx: &Ctx<'_>) {
    let mut line = String::new();
    if BufReader::new(conn).read_line(&mut line).is_err() {
        return;
    }
    let reply = match serde_json::from_str::<Request>(&line) {
        Err(e) => Reply::Failed(format!("bad request: {e}")),
        Ok(Request::Create {
            service,
            name,
            number,
            netns,
            addresses,
            id,
        }) => {
            let net = Net { netns, addresses };
            match create(ctx, &service, &name, number, net, id) {
                Ok(r) => r,
                Err(msg) => Reply::Failed(msg),
            }
        }
    };
    answer(conn, &reply);
}

/// The network the supervisor set up for a container to create.
struct Net {
    netns: Option<PathBuf>,
    addresses: Vec<IpAddr>,
}

fn create(
    ctx: &Ctx<'_>,
    service: &str,
    name: &str,
    number: u32,
    net: Net,
    id: Option<String>,
) -> Result<Reply, String> {
    let Ctx {
        env,
        pp,
        project,
        images,
    } = ctx;
    let image = images
        .get(service)
        .ok_or_else(|| format!("no image for service {service}"))?;
    let plan =
        crate::prepare::plan(env, pp, project, service, name, number).map_err(|e| chain(&e))?;
    let mut options = plan.options;
    options.id = id;
    crate::prepare::add_image_volumes(&mut options, image, &pp.anon_dir(name), false)
        .map_err(|e| chain(&e))?;
    if let Some(p) = net.netns {
        options.network = NetworkMode::Path(p);
        options.addresses = net.addresses;
    } else if let crate::mapping::NetPlan::Join(target) = &plan.net {
        let p = rstack_runtime::container::netns_of(&env.runtime, target)
            .map_err(|e| format!("cannot join the network of {target}: {}", chain(&e)))?;
        options.network = NetworkMode::Path(p);
    }
    let out = crate::logs::open_raw(&pp.raw_log(name, Stream::Stdout)).map_err(|e| chain(&e))?;
    let err = crate::logs::open_raw(&pp.raw_log(name, Stream::Stderr)).map_err(|e| chain(&e))?;
    let stdio = Stdio {
        stdin: None,
        stdout: Some(out.into()),
        stderr: Some(err.into()),
    };
    let mut c = Container::create(
        &env.runtime,
        &image.config,
        &image.layer_dirs,
        &options,
        stdio,
    )
    .map_err(|e| format!("container {name}: {}", chain(&e)))?;
    // on a failed start, the handle's Drop removes the container
    c.start()
        .map_err(|e| format!("container {name}: {}", chain(&e)))?;
    let reply = Reply::Created {
        id: c.id().to_owned(),
        pid: c.pid(),
        cgroup_dirs: c.cgroup().missing_dirs.clone(),
        cgroup_leaves: c.cgroup().leaf_dirs(),
    };
    // The container lives on: its handle must not tear it down.
    std::mem::forget(c);
    Ok(reply)
}
