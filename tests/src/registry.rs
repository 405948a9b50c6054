//! A real local registry: the distro's `docker-registry` (distribution v2).
//!
//! Each [`Registry`] is one `docker-registry serve` process listening on a
//! free `127.0.0.1` port, with its config, storage and optional htpasswd
//! file in its own temp dir. It is killed and its dir removed on drop (also
//! when the test panics), and killed by the kernel if the test process dies
//! (see `process.rs`). Images are put into it with `skopeo`, never rstack.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::process::Daemon;

/// How long a registry may take to answer `/v2/` after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the registry dir")]
    TempDir(#[source] std::io::Error),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot find a free port on 127.0.0.1")]
    FreePort(#[source] std::io::Error),
    #[error("cannot run {command}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {stderr}")]
    CommandFailed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("docker-registry exited early ({status}); its log:\n{log}")]
    Exited {
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("docker-registry on {addr} did not answer /v2/ within {timeout:?}; its log:\n{log}")]
    NotReady {
        addr: SocketAddr,
        timeout: Duration,
        log: String,
    },
}

/// Credentials of a registry started with [`Registry::start_with_auth`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The manifest format skopeo writes to the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Keep the source manifest byte for byte (`--preserve-digests`).
    Preserve,
    /// Convert to Docker v2 schema 2 (`--format v2s2`); for lists, a Docker
    /// manifest list.
    DockerV2s2,
}

/// One running `docker-registry`.
#[derive(Debug)]
pub struct Registry {
    daemon: Daemon,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    credentials: Option<Credentials>,
}

/// What kind of registry to start.
#[derive(Debug, Default)]
struct Mode {
    credentials: Option<Credentials>,
    /// `proxy.remoteurl`: a pull-through cache of that registry.
    remote_url: Option<String>,
    /// Token auth: the token server's realm and certificate.
    token: Option<(String, PathBuf)>,
}

impl Registry {
    /// Starts a registry without authentication.
    pub fn start() -> Result<Registry, Error> {
        Registry::start_inner(Mode::default())
    }

    /// Starts a registry with token auth (`auth.token`) trusting the tokens
    /// of `server`, whose user has `username`/`password` (used here for
    /// pushes).
    pub fn start_with_token(
        server: &crate::tokenauth::TokenServer,
        username: &str,
        password: &str,
    ) -> Result<Registry, Error> {
        Registry::start_inner(Mode {
            credentials: Some(Credentials {
                username: username.to_owned(),
                password: password.to_owned(),
            }),
            remote_url: None,
            token: Some((server.realm(), server.cert())),
        })
    }

    /// Starts a pull-through cache of `upstream` (distribution's
    /// `proxy.remoteurl`): what a company puts in front of Docker Hub. It
    /// fetches what it is asked for from `upstream` and keeps a copy in
    /// its own storage; it takes no pushes.
    pub fn start_mirror_of(upstream: &Registry) -> Result<Registry, Error> {
        Registry::start_inner(Mode {
            credentials: None,
            remote_url: Some(format!("http://{}", upstream.addr)),
            token: None,
        })
    }

    /// Starts a registry that requires HTTP basic auth (htpasswd, bcrypt)
    /// for every request; anonymous requests get `401`.
    pub fn start_with_auth(username: &str, password: &str) -> Result<Registry, Error> {
        Registry::start_inner(Mode {
            credentials: Some(Credentials {
                username: username.to_owned(),
                password: password.to_owned(),
            }),
            remote_url: None,
            token: None,
        })
    }

    /// The plain registry shared by every test of this run (the fixtures
    /// live there). Panics if it cannot be started: tests using it should
    /// declare [`crate::Need::Registry`].
    pub fn shared() -> &'static Registry {
        match shared_slot().get_or_init(|| Registry::start().map_err(|e| error_chain(&e))) {
            Ok(registry) => registry,
            Err(message) => panic!("cannot start the shared registry: {message}"),
        }
    }

    fn start_inner(mode: Mode) -> Result<Registry, Error> {
        let Mode {
            credentials,
            remote_url,
            token,
        } = mode;
        let dir = tempfile::Builder::new()
            .prefix("rstack-e2e-registry-")
            .tempdir()
            .map_err(Error::TempDir)?;
        let htpasswd = match &credentials {
            Some(_) if token.is_some() => None,
            Some(c) => {
                let out = run(Command::new("htpasswd").args(["-Bbn", &c.username, &c.password]))?;
                let path = dir.path().join("htpasswd");
                write(&path, out.as_bytes())?;
                Some(path)
            }
            None => None,
        };
        // The port is chosen by binding :0 and released before the registry
        // binds it; another process may take it in between, so retry.
        let mut last = None;
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(Error::FreePort)?
                .port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let config = dir.path().join("config.yml");
            write(
                &config,
                registry_config(
                    dir.path(),
                    addr,
                    htpasswd.as_deref(),
                    remote_url.as_deref(),
                    token.as_ref(),
                )
                .as_bytes(),
            )?;
            let log_path = dir.path().join("registry.log");
            let log = std::fs::File::create(&log_path).map_err(|source| Error::Write {
                path: log_path.clone(),
                source,
            })?;
            let log2 = log.try_clone().map_err(|source| Error::Write {
                path: log_path.clone(),
                source,
            })?;
            let mut cmd = Command::new("docker-registry");
            cmd.arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2);
            let daemon = Daemon::spawn(cmd).map_err(|source| Error::Spawn {
                command: "docker-registry serve".to_owned(),
                source,
            })?;
            match wait_ready(&daemon, addr, &log_path) {
                Ok(()) => {
                    return Ok(Registry {
                        daemon,
                        dir,
                        addr,
                        credentials,
                    });
                }
                Err(err @ Error::Exited { .. }) => {
                    // Most likely the port was taken: try another one.
                    last = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT/<repo_and_tag>`, e.g. `reference("e2e/busybox:v2s2")`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr)
    }

    /// The credentials it requires, if it was started with auth.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The registry's process id.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// Copies `source` (a containers-transports name such as
    /// `oci:/path/to/layout:tag`) to `repo_and_tag` in this registry with
    /// `skopeo copy`, using the registry's credentials if it has any. `all`
    /// copies every image of a manifest list / index (`--all`). Returns the
    /// digest of the manifest as stored in the registry.
    pub fn push(
        &self,
        source: &str,
        repo_and_tag: &str,
        format: Format,
        all: bool,
    ) -> Result<String, Error> {
        let digest_file = tempfile::NamedTempFile::new().map_err(Error::TempDir)?;
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        match format {
            Format::Preserve => cmd.arg("--preserve-digests"),
            Format::DockerV2s2 => cmd.args(["--format", "v2s2"]),
        };
        if all {
            cmd.arg("--all");
        }
        if let Some(c) = &self.credentials {
            cmd.arg("--dest-creds")
                .arg(format!("{}:{}", c.username, c.password));
        }
        cmd.arg("--digestfile").arg(digest_file.path());
        cmd.arg(source)
            .arg(format!("docker://{}", self.reference(repo_and_tag)));
        run(&mut cmd)?;
        let digest = std::fs::read_to_string(digest_file.path()).map_err(|source| Error::Read {
            path: digest_file.path().to_owned(),
            source,
        })?;
        Ok(digest.trim().to_owned())
    }

    /// The raw manifest (or index) stored for `reference` (a tag or digest
    /// of `repo`), fetched with `skopeo inspect --raw`.
    pub fn raw_manifest(&self, repo: &str, reference: &str) -> Result<String, Error> {
        let sep = if reference.starts_with("sha256:") {
            "@"
        } else {
            ":"
        };
        let mut cmd = Command::new("skopeo");
        cmd.args(["inspect", "--raw", "--tls-verify=false"]);
        if let Some(c) = &self.credentials {
            cmd.arg("--creds")
                .arg(format!("{}:{}", c.username, c.password));
        }
        cmd.arg(format!("docker://{}/{repo}{sep}{reference}", self.addr));
        run(&mut cmd)
    }

    /// The registry's storage root (distribution's filesystem driver).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Kills the registry now (it is also killed on drop).
    pub fn stop(&self) {
        self.daemon.stop();
    }
}

fn shared_slot() -> &'static OnceLock<Result<Registry, String>> {
    static SHARED: OnceLock<Result<Registry, String>> = OnceLock::new();
    &SHARED
}

/// Stops the shared registry and removes its dir (statics are never
/// dropped). Called by [`crate::cleanup`].
pub(crate) fn stop_shared() {
    if let Some(Ok(registry)) = shared_slot().get() {
        registry.stop();
        let _ = std::fs::remove_dir_all(registry.dir.path());
    }
}

fn registry_config(
    dir: &Path,
    addr: SocketAddr,
    htpasswd: Option<&Path>,
    remote_url: Option<&str>,
    token: Option<&(String, PathBuf)>,
) -> String {
    let mut config = format!(
        "version: 0.1\n\
         log:\n  level: error\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n  secret: rstack-e2e-not-secret\n",
        storage = dir.join("storage").display(),
    );
    if let Some(path) = htpasswd {
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: rstack-e2e\n    path: {}\n",
            path.display()
        ));
    }
    if let Some((realm, cert)) = token {
        config.push_str(&format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            crate::tokenauth::SERVICE,
            crate::tokenauth::ISSUER,
            cert.display()
        ));
    }
    if let Some(url) = remote_url {
        config.push_str(&format!("proxy:\n  remoteurl: {url}\n"));
    }
    config
}

/// Polls `GET /v2/` until the registry answers with any HTTP status (`200`,
/// or `401` when it requires auth).
fn wait_ready(daemon: &Daemon, addr: SocketAddr, log_path: &Path) -> Result<(), Error> {
    let deadline = Instant::now() + START_TIMEOUT;
    let log = || std::fs::read_to_string(log_path).unwrap_or_default();
    loop {
        if let Some(status) = daemon.exited() {
            return Err(Error::Exited { status, log: log() });
        }
        if http_status(addr, "/v2/").is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            daemon.stop();
            return Err(Error::NotReady {
                addr,
                timeout: START_TIMEOUT,
                log: log(),
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The status code of a plain `GET path` on `addr`, or `None` if nothing
/// answers there.
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    let head = std::str::from_utf8(&head).ok()?;
    head.strip_prefix("HTTP/1.1 ")
        .or_else(|| head.strip_prefix("HTTP/1.0 "))?
        .trim()
        .parse()
        .ok()
}

fn write(path: &Path, data: &[u8]) -> Result<(), Error> {
    std::fs::write(path, data).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}

/// Runs `cmd` to completion; its stdout on success.
pub(crate) fn run(cmd: &mut Command) -> Result<String, Error> {
    let command = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::CommandFailed {
            command,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `err` and its causes on one line.
pub(crate) use rstack_sys::chain::chain as error_chain;
