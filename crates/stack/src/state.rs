//! What a project's supervisor knows, on disk, so that plain commands
//! (`ps`, `logs`, `exec`, `down`) and a later supervisor can read it.
//!
//! Layout (RUN = `--run-root`, default /run/rstack, volatile; ROOT =
//! `--root`, default /var/lib/rstack, persistent):
//!
//! ```text
//! RUN/projects/<project>/lock                  flock: up/down/stop/... serialise
//! RUN/projects/<project>/supervisor.json       pid + /proc start time of the supervisor
//! RUN/projects/<project>/control.sock          the supervisor's request socket
//! RUN/projects/<project>/project.json          networks/volumes the project created
//! RUN/projects/<project>/containers/<name>.json  one record per container
//! ROOT/projects/<project>/supervisor.log       stdio of a detached supervisor
//! ROOT/projects/<project>/logs/<name>/{stdout,stderr}.raw   the container's own output (O_APPEND)
//! ROOT/projects/<project>/logs/<name>/<name>-json.log(.N)   json-lines, rotated
//! ROOT/volumes/<volume>/_data                  named volumes
//! ```
//!
//! Every file is replaced atomically (temp file, fsync, rename, fsync of the
//! directory). A container's record is written *before* anything of it is
//! created (status `creating`), so `down` and the next `up` find and remove
//! whatever a crash left behind.

use std::path::{Path, PathBuf};

use crate::io_error::{IoError, io};
use serde::{Deserialize, Serialize};

/// A failure reading or writing the state files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("state file {path} is not valid")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Write(#[from] rstack_sys::fs::Error),
    #[error(transparent)]
    Lock(#[from] rstack_sys::lock::Error),
}

/// Where the state of every project lives.
#[derive(Debug, Clone)]
pub struct Layout {
    pub run_root: PathBuf,
    pub root: PathBuf,
}

impl Layout {
    pub fn new(run_root: &Path, root: &Path) -> Layout {
        Layout {
            run_root: run_root.to_owned(),
            root: root.to_owned(),
        }
    }

    pub(crate) fn projects_dir(&self) -> PathBuf {
        self.run_root.join("projects")
    }

    pub fn project(&self, project: &str) -> ProjectPaths {
        ProjectPaths {
            run: self.projects_dir().join(project),
            data: self.root.join("projects").join(project),
        }
    }

    /// `ROOT/volumes/<name>`; the content is in `_data` below it.
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.root.join("volumes").join(name)
    }

    /// Projects that have state on this host, sorted.
    pub fn list_projects(&self) -> Result<Vec<String>, Error> {
        let dir = self.projects_dir();
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io("read", &dir)(e).into()),
        };
        for e in entries.flatten() {
            if e.path().is_dir() {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The files of one project.
#[derive(Debug, Clone)]
pub struct ProjectPaths {
    /// RUN/projects/<project>
    pub run: PathBuf,
    /// ROOT/projects/<project>
    pub data: PathBuf,
}

impl ProjectPaths {
    pub fn lock_file(&self) -> PathBuf {
        self.run.join("lock")
    }
    pub fn supervisor_file(&self) -> PathBuf {
        self.run.join("supervisor.json")
    }
    pub fn control_socket(&self) -> PathBuf {
        self.run.join("control.sock")
    }
    pub fn project_file(&self) -> PathBuf {
        self.run.join("project.json")
    }
    pub fn containers_dir(&self) -> PathBuf {
        self.run.join("containers")
    }
    pub fn container_file(&self, name: &str) -> PathBuf {
        self.containers_dir().join(format!("{name}.json"))
    }
    pub fn supervisor_log(&self) -> PathBuf {
        self.data.join("supervisor.log")
    }
    /// The containers' log dirs' parent.
    pub(crate) fn logs_dir(&self) -> PathBuf {
        self.data.join("logs")
    }
    pub fn log_dir(&self, name: &str) -> PathBuf {
        self.logs_dir().join(name)
    }
    /// A container's anonymous volumes.
    pub fn anon_dir(&self, name: &str) -> PathBuf {
        self.data.join("anon").join(name)
    }
    /// A container's writable layer (overlay upper and work dirs): like a
    /// Docker container's, it outlives stop/start and restarts and goes
    /// when the container is removed.
    pub fn rw_dir(&self, name: &str) -> PathBuf {
        self.data.join("rw").join(name)
    }
    /// Removes the files a removed container leaves behind: its anonymous
    /// volumes and its writable layer (best effort: they may be gone).
    pub fn remove_container_data(&self, name: &str) {
        let _ = std::fs::remove_dir_all(self.anon_dir(name));
        let _ = std::fs::remove_dir_all(self.rw_dir(name));
    }
    pub(crate) fn raw_log(&self, name: &str, stream: Stream) -> PathBuf {
        self.log_dir(name).join(format!("{}.raw", stream.as_str()))
    }
    pub fn json_log(&self, name: &str) -> PathBuf {
        self.log_dir(name).join(format!("{name}-json.log"))
    }

    /// Every container record, sorted by name. Unreadable records are
    /// reported, not skipped.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>, Error> {
        let dir = self.containers_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("read", &dir)(e).into()),
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                if let Some(rec) = read_json::<ContainerRecord>(&p)? {
                    out.push(rec);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn container(&self, name: &str) -> Result<Option<ContainerRecord>, Error> {
        read_json(&self.container_file(name))
    }

    pub fn save_container(&self, rec: &ContainerRecord) -> Result<(), Error> {
        write_json(&self.container_file(&rec.name), rec)
    }

    /// [`Self::save_container`] without fsync, for an update a host crash
    /// may lose without harm (a probe's result, rewritten by the next
    /// probe; no container outlives the host): a reader still sees the old
    /// file or the new one whole, and a supervisor crash loses nothing.
    pub(crate) fn save_container_unsynced(&self, rec: &ContainerRecord) -> Result<(), Error> {
        let path = self.container_file(&rec.name);
        let data = json_bytes(&path, rec)?;
        Ok(rstack_sys::fs::replace(
            &path,
            &data,
            rstack_sys::fs::DEFAULT_MODE,
        )?)
    }

    pub fn remove_container(&self, name: &str) -> Result<(), Error> {
        remove_file(&self.container_file(name))
    }

    pub fn supervisor(&self) -> Result<Option<SupervisorRecord>, Error> {
        read_json(&self.supervisor_file())
    }

    pub fn resources(&self) -> Result<ProjectResources, Error> {
        Ok(read_json(&self.project_file())?.unwrap_or_default())
    }

    pub(crate) fn save_resources(&self, r: &ProjectResources) -> Result<(), Error> {
        write_json(&self.project_file(), r)
    }
}

/// One of a container's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The running supervisor of a project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SupervisorRecord {
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat, to tell a reused pid.
    pub start_time: u64,
    pub started_at: String,
}

/// Networks and volumes a project created (recorded before creation), so
/// `down` removes exactly those.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProjectResources {
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    /// Where the project was started from (for `ls`).
    #[serde(default)]
    pub config_files: Vec<PathBuf>,
    #[serde(default)]
    pub working_dir: PathBuf,
    /// The services the supervisor supervises, as last declared: an `up`
    /// with other files keeps supervising the containers of the services
    /// it does not declare (see `supervisor::known`).
    #[serde(
        default,
        skip_serializing_if = "indexmap::IndexMap::is_empty",
        deserialize_with = "services_from_json"
    )]
    pub services: indexmap::IndexMap<String, rstack_compose::model::Service>,
}

/// The services of a state file, each through the loader's deserializer
/// (`rstack_compose::model::service_from_json`: one copy of that code).
fn services_from_json<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<indexmap::IndexMap<String, rstack_compose::model::Service>, D::Error> {
    let raw: indexmap::IndexMap<String, serde_json::Value> = Deserialize::deserialize(d)?;
    raw.into_iter()
        .map(
            |(name, v)| match rstack_compose::model::service_from_json(v) {
                Ok(s) => Ok((name, s)),
                Err(e) => Err(serde::de::Error::custom(format!("service {name}: {e}"))),
            },
        )
        .collect()
}

/// Life stage of a container, as `docker ps` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Recorded; resources are being created.
    Creating,
    Created,
    Running,
    Restarting,
    Exited,
    Removing,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Creating | Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Removing => "removing",
        }
    }
}

/// Health of a container with a healthcheck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's result, kept like docker's `State.Health.Log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// Health status, failing streak and the last probe results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthRecord {
    pub status: Health,
    pub failing_streak: u64,
    pub log: Vec<ProbeResult>,
}

/// Everything known about one container of a project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub name: String,
    pub service: String,
    pub number: u32,
    /// The runtime's id, once created.
    pub id: Option<String>,
    pub config_hash: String,
    pub image: String,
    pub image_id: String,
    /// The command line shown by `ps` (entrypoint + command).
    pub command: Vec<String>,
    pub created: String,
    pub status: Status,
    pub pid: Option<i32>,
    /// /proc start time of `pid` when it was recorded.
    pub start_time: Option<u64>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub exit_code: Option<i32>,
    /// The exit code could not be known (the process was not our child and
    /// the kernel lacks PIDFD_INFO_EXIT).
    #[serde(default)]
    pub exit_unknown: bool,
    #[serde(default)]
    pub oom_killed: bool,
    pub health: Option<HealthRecord>,
    pub restart_count: u32,
    /// `rstack stop` by the user: no restart policy brings it back.
    pub user_stopped: bool,
    /// Published ports as `docker ps` prints them (`0.0.0.0:8080->80/tcp`).
    pub ports: Vec<String>,
    /// Exposed ports that are not published (`80/tcp`), listed after them.
    #[serde(default)]
    pub exposed: Vec<String>,
    /// Pinned network namespace, recorded before it is created.
    pub netns: Option<PathBuf>,
    /// Networks the container was attached to.
    #[serde(default)]
    pub networks: Vec<String>,
    /// cgroup directories the runtime created for it (removed on teardown).
    #[serde(default)]
    pub cgroup_dirs: Vec<PathBuf>,
    /// Bytes of the raw stdout/stderr files already turned into json lines.
    #[serde(default)]
    pub log_offsets: [u64; 2],
    /// A one-off container (`rstack run`).
    #[serde(default)]
    pub oneoff: bool,
    /// Named volumes it mounts (full names), so `volume rm` can refuse.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Its cgroup directories, one per hierarchy (for pause, stats).
    #[serde(default)]
    pub cgroup_leaves: Vec<PathBuf>,
}

impl ContainerRecord {
    /// `docker compose ps`'s PORTS: published, then exposed-only.
    pub fn ports_text(&self) -> String {
        self.ports
            .iter()
            .chain(&self.exposed)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn new(name: &str, service: &str, number: u32) -> ContainerRecord {
        ContainerRecord {
            name: name.to_owned(),
            service: service.to_owned(),
            number,
            id: None,
            config_hash: String::new(),
            image: String::new(),
            image_id: String::new(),
            command: Vec::new(),
            created: now_rfc3339(),
            status: Status::Creating,
            pid: None,
            start_time: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            exit_unknown: false,
            oom_killed: false,
            health: None,
            restart_count: 0,
            user_stopped: false,
            ports: Vec::new(),
            exposed: Vec::new(),
            netns: None,
            networks: Vec::new(),
            cgroup_dirs: Vec::new(),
            log_offsets: [0, 0],
            oneoff: false,
            volumes: Vec::new(),
            cgroup_leaves: Vec::new(),
        }
    }
}

/// The current time as RFC 3339 with nanoseconds (docker's shape).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// Reads a JSON file; `None` when it does not exist.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|source| Error::Parse {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", path)(e).into()),
    }
}

/// Writes `value` as JSON atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    write_atomic(path, &json_bytes(path, value)?)
}

/// `value` as the pretty JSON of state file `path`.
fn json_bytes<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec_pretty(value).map_err(|source| Error::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Replaces `path` with `data`: temp file in the same dir, fsync, rename,
/// fsync of the dir. Creates the parent dirs.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    Ok(rstack_sys::fs::write_atomic(path, data)?)
}

/// Removes a file; a missing one is fine.
pub(crate) fn remove_file(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", path)(e).into()),
        _ => Ok(()),
    }
}

/// The exclusive per-project lock, held while the guard lives (flock is
/// released by the kernel if the holder dies).
#[derive(Debug)]
pub struct ProjectLock {
    _lock: rstack_sys::lock::LockGuard,
}

impl ProjectLock {
    /// Blocks until the project's lock is ours.
    pub fn acquire(paths: &ProjectPaths) -> Result<ProjectLock, Error> {
        std::fs::create_dir_all(&paths.run).map_err(io("create", &paths.run))?;
        let lock = rstack_sys::lock::lock(&paths.lock_file(), rstack_sys::lock::Mode::Exclusive)?;
        Ok(ProjectLock { _lock: lock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::new(&tmp.path().join("run"), &tmp.path().join("root"));
        let p = layout.project("demo");
        assert!(p.containers().unwrap().is_empty());
        let mut rec = ContainerRecord::new("demo-web-1", "web", 1);
        rec.ports = vec!["0.0.0.0:8080->80/tcp".into()];
        p.save_container(&rec).unwrap();
        rec.status = Status::Running;
        p.save_container(&rec).unwrap();
        let all = p.containers().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].status, Status::Running);
        assert_eq!(all[0].ports, rec.ports);
        // no temp files left
        let names: Vec<_> = std::fs::read_dir(p.containers_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["demo-web-1.json"]);
        assert_eq!(layout.list_projects().unwrap(), ["demo"]);
        p.remove_container("demo-web-1").unwrap();
        p.remove_container("demo-web-1").unwrap();
        assert!(p.containers().unwrap().is_empty());
    }

    #[test]
    fn corrupt_record_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = Layout::new(tmp.path(), tmp.path()).project("x");
        std::fs::create_dir_all(p.containers_dir()).unwrap();
        std::fs::write(p.container_file("x-a-1"), b"{nope").unwrap();
        let err = p.containers().unwrap_err().to_string();
        assert!(err.contains("x-a-1.json"), "{err}");
    }

    #[test]
    fn lock_serialises() {
        let tmp = tempfile::tempdir().unwrap();
        let p = Layout::new(tmp.path(), tmp.path()).project("x");
        let guard = ProjectLock::acquire(&p).unwrap();
        let p2 = p.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let _g = ProjectLock::acquire(&p2).unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err()
        );
        drop(guard);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        t.join().unwrap();
    }
}
