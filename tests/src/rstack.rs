//! Running the real `rstack` binary in a per-test sandbox.
//!
//! A [`Rstack`] owns one temp dir holding everything the binary may touch:
//! `root/` (`--root`), `run/` (`--run-root`), `config/` (`RSTACK_CONFIG`,
//! where `rstack login` keeps credentials), `home/` (`HOME`, so the host's
//! `~/.docker/config.json` is never read), `tmp/` (`TMPDIR`, which must be
//! empty again after every command) and `work/` (files the test makes, e.g.
//! saved tarballs). Dropping it detaches stray mounts under it and removes
//! it (set `RSTACK_E2E_KEEP=1` to keep it for debugging).

use std::ffi::OsStr;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::leaks;

/// How long one rstack command may run before the test fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a command's stdout/stderr may stay open after it exited.
const PIPE_GRACE: Duration = Duration::from_secs(10);

/// Reads a pipe to its end on a thread of its own; what it read so far can
/// be taken at a deadline even if the pipe never closes.
struct Collector {
    data: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Collector {
    fn start(mut pipe: impl Read + Send + 'static) -> Collector {
        let data = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, done) = std::sync::mpsc::channel();
        let sink = std::sync::Arc::clone(&data);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
            let _ = tx.send(());
        });
        Collector { data, done }
    }

    /// The text read, and whether the pipe was still open at `deadline`.
    fn finish(self, deadline: Instant) -> (String, bool) {
        let wait = deadline.saturating_duration_since(Instant::now());
        let open = matches!(
            self.done.recv_timeout(wait),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        );
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        (String::from_utf8_lossy(&data).into_owned(), open)
    }
}

/// The `rstack` binary under test: `$RSTACK_BIN`, else `rstack` next to the
/// running executable or one dir up (`target/debug/deps/e2e-*` ->
/// `target/debug/rstack`).
pub fn rstack_bin() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("RSTACK_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "RSTACK_BIN={} does not exist (build it: cargo build -p rstack)",
                path.display()
            ))
        };
    }
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the test executable: {e}"))?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("rstack"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "no rstack binary next to {} (build it with `cargo build -p rstack` or set RSTACK_BIN)",
                exe.display()
            )
        })
}

/// What one command did.
#[derive(Debug)]
pub struct RunOutput {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// stdout parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }

    /// stdout parsed as one JSON value per non-empty line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("line {l:?} is not JSON ({e}):\n{self}"))
            })
            .collect()
    }

    /// Panics (showing the whole output) unless stderr contains one of
    /// `needles`, compared case-insensitively.
    pub fn assert_stderr_mentions(&self, needles: &[&str]) -> &Self {
        let stderr = self.stderr.to_lowercase();
        assert!(
            needles.iter().any(|n| stderr.contains(&n.to_lowercase())),
            "expected stderr to mention one of {needles:?}:\n{self}"
        );
        self
    }
}

impl fmt::Display for RunOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "$ {}\n[{}]\n--- stdout\n{}\n--- stderr\n{}\n---",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// The rstack binary with its own sandboxed state (see the module docs).
#[derive(Debug)]
pub struct Rstack {
    bin: PathBuf,
    dir: Option<tempfile::TempDir>,
    base: PathBuf,
    timeout: Duration,
}

impl Default for Rstack {
    fn default() -> Self {
        Rstack::new()
    }
}

impl Rstack {
    /// A fresh sandbox. Panics if the binary is missing (declare
    /// [`crate::Need::Rstack`] so that case is a skip instead).
    pub fn new() -> Rstack {
        let bin = rstack_bin().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::Builder::new()
            .prefix("rstack-e2e-")
            .tempdir()
            .expect("create the sandbox dir");
        let base = dir.path().to_owned();
        crate::watchdog::sandbox_created(&base);
        for sub in ["root", "run", "config", "home", "tmp", "work"] {
            std::fs::create_dir(base.join(sub)).expect("create a sandbox subdir");
        }
        Rstack {
            bin,
            dir: Some(dir),
            base,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Changes how long each command may run (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Rstack {
        self.timeout = timeout;
        self
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The sandbox dir holding all the others.
    pub fn dir(&self) -> &Path {
        &self.base
    }

    /// `--root`: images, layers, volumes.
    pub fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    /// `--run-root`: volatile state.
    pub fn run_root(&self) -> PathBuf {
        self.base.join("run")
    }

    /// `RSTACK_CONFIG`: rstack's config dir (credentials of `rstack login`).
    pub fn config_dir(&self) -> PathBuf {
        self.base.join("config")
    }

    /// `HOME` of the commands.
    pub fn home(&self) -> PathBuf {
        self.base.join("home")
    }

    /// `TMPDIR` of the commands; must be empty after each of them.
    pub fn tmp_dir(&self) -> PathBuf {
        self.base.join("tmp")
    }

    /// Scratch space for the test's own files.
    pub fn work_dir(&self) -> PathBuf {
        self.base.join("work")
    }

    /// `rstack --root R --run-root RR <args>` with the sandbox environment,
    /// not yet run: for wrapping it (e.g. in `unshare`) or extra env vars.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root")
            .arg(self.root())
            .arg("--run-root")
            .arg(self.run_root())
            .args(args);
        self.sandbox_env(&mut cmd);
        cmd
    }

    /// Sets the sandbox's environment on any command (e.g. `unshare ...
    /// rstack`): `RSTACK_CONFIG`, `HOME`, `TMPDIR`, and no inherited
    /// `RSTACK_ROOT`/`RSTACK_RUN`/`DOCKER_CONFIG`/`REGISTRY_AUTH_FILE`/`XDG_RUNTIME_DIR`.
    pub fn sandbox_env(&self, cmd: &mut Command) {
        cmd.env("RSTACK_CONFIG", self.config_dir())
            .env("HOME", self.home())
            .env("TMPDIR", self.tmp_dir())
            .env("NO_COLOR", "1")
            .env_remove("RSTACK_ROOT")
            .env_remove("RSTACK_RUN")
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR");
    }

    /// Runs `rstack <args>` and returns what it did, whatever the status.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> RunOutput {
        self.run_command(self.command(args), None)
    }

    /// Like [`Rstack::run`], with `stdin` as standard input.
    pub fn run_with_stdin<S: AsRef<OsStr>>(&self, args: &[S], stdin: &[u8]) -> RunOutput {
        self.run_command(self.command(args), Some(stdin))
    }

    /// Runs `rstack <args>`; panics with both outputs unless it exits 0.
    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> RunOutput {
        let out = self.run(args);
        assert!(out.success(), "expected success:\n{out}");
        out
    }

    /// Runs `rstack <args>`; panics with both outputs if it exits 0.
    pub fn fails<S: AsRef<OsStr>>(&self, args: &[S]) -> RunOutput {
        let out = self.run(args);
        assert!(!out.success(), "expected a failure:\n{out}");
        assert!(
            !out.stderr.trim().is_empty(),
            "failed without saying why on stderr:\n{out}"
        );
        out
    }

    /// Runs any prepared command (see [`Rstack::command`]) with the
    /// sandbox's timeout; stdin is closed unless given.
    pub fn run_command(&self, mut cmd: Command, stdin: Option<&[u8]>) -> RunOutput {
        let command = format!("{cmd:?}");
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
        if let Some(data) = stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            // A command that does not read its stdin gets EPIPE: not our error.
            let _ = pipe.write_all(data);
        }
        let _waiting = crate::watchdog::waiting_on(command.clone());
        let out = Collector::start(child.stdout.take().expect("piped stdout"));
        let err = Collector::start(child.stderr.take().expect("piped stderr"));
        let deadline = Instant::now() + self.timeout;
        let (status, timed_out) = loop {
            match child.try_wait() {
                Ok(Some(status)) => break (status, false),
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    break (child.wait().expect("wait for killed rstack"), true);
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("cannot wait for {command}: {e}"),
            }
        };
        // A process rstack started may still hold its stdout/stderr (it
        // must not: a detached supervisor has its own log): wait a little
        // for the pipes to close, then report it instead of hanging.
        let grace = Instant::now() + PIPE_GRACE;
        let (stdout, out_open) = out.finish(grace);
        let (stderr, err_open) = err.finish(grace);
        let output = RunOutput {
            command,
            status,
            stdout,
            stderr,
        };
        if timed_out {
            panic!("timed out after {:?}, killed:\n{output}", self.timeout);
        }
        if out_open || err_open {
            panic!(
                "rstack exited but a process it started still holds its {} {:?} later:\n{output}",
                if out_open { "stdout" } else { "stderr" },
                PIPE_GRACE
            );
        }
        output
    }

    /// What is left that should not be: mounts (in this mount namespace)
    /// under the sandbox, and anything in its `TMPDIR`. Empty when clean.
    pub fn leaks(&self) -> Vec<String> {
        let mut leaks: Vec<String> = leaks::mounts_under(&self.base)
            .into_iter()
            .map(|m| format!("mount {}", m.display()))
            .collect();
        leaks.extend(
            leaks::tree(&self.tmp_dir())
                .into_iter()
                .map(|p| format!("temp file $TMPDIR/{}", p.display())),
        );
        leaks
    }

    /// Panics listing [`Rstack::leaks`] if there are any.
    pub fn assert_no_leaks(&self) {
        let leaks = self.leaks();
        assert!(
            leaks.is_empty(),
            "rstack left behind:\n  {}",
            leaks.join("\n  ")
        );
    }
}

impl Drop for Rstack {
    fn drop(&mut self) {
        leaks::detach_mounts_under(&self.base);
        if std::env::var_os("RSTACK_E2E_KEEP").is_some_and(|v| v == "1")
            && let Some(dir) = self.dir.take()
        {
            eprintln!("RSTACK_E2E_KEEP: kept {}", dir.keep().display());
        }
    }
}
