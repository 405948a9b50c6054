//! The set-up and helpers every runtime trial shares: the busybox rootfs,
//! image configs, running a container with captured output, leftovers.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use libtest_mimic::Failed;
use oci_spec::image::{ConfigBuilder, ImageConfiguration, ImageConfigurationBuilder};
use rstack_runtime::{Container, ExitStatus, Paths, RunOptions, Stdio};

pub(crate) struct Env {
    pub(crate) _tmp: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) layers: Vec<PathBuf>,
    pub(crate) probe: bool,
}

pub(crate) static ENV: OnceLock<Env> = OnceLock::new();

pub(crate) fn env() -> &'static Env {
    ENV.get().expect("environment set up in main")
}

/// A busybox layer: bin/busybox, one symlink per applet, passwd and group.
pub(crate) fn busybox_layer(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("bin"))?;
    std::fs::create_dir_all(dir.join("etc"))?;
    std::fs::create_dir_all(dir.join("tmp"))?;
    std::fs::copy("/bin/busybox", dir.join("bin/busybox"))?;
    let out = Command::new("/bin/busybox").arg("--list").output()?;
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet))?;
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
    )?;
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app\n",
    )?;
    Ok(())
}

pub(crate) fn setup() -> Result<Env, String> {
    let tmp = tempfile::Builder::new()
        .prefix("rstack-rt-")
        .tempdir_in("/var/tmp")
        .map_err(|e| e.to_string())?;
    let root = tmp.path().to_owned();
    let base = root.join("layers/busybox");
    busybox_layer(&base).map_err(|e| format!("busybox layer: {e}"))?;
    // A second layer with the static probe (when a C compiler is around).
    let probe_layer = root.join("layers/probe");
    std::fs::create_dir_all(probe_layer.join("bin")).map_err(|e| e.to_string())?;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probe.c");
    let probe = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(probe_layer.join("bin/probe"))
        .arg(&src)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    Ok(Env {
        layers: vec![base, probe_layer],
        root,
        _tmp: tmp,
        probe,
    })
}

pub(crate) fn image(cmd: &[&str]) -> ImageConfiguration {
    let cfg = ConfigBuilder::default()
        .cmd(cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .env(vec!["PATH=/bin".to_owned()])
        .build()
        .unwrap();
    ImageConfigurationBuilder::default()
        .config(cfg)
        .build()
        .unwrap()
}

pub(crate) fn paths() -> Paths {
    Paths::new(&env().root.join("run"), &env().root.join("data"))
}

pub(crate) fn sh(script: &str) -> RunOptions {
    RunOptions {
        command: vec!["sh".into(), "-c".into(), script.into()],
        ..Default::default()
    }
}

/// Mount points under our test root still in the mount table.
pub(crate) fn leftover_mounts() -> Vec<String> {
    let root = env().root.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| m.starts_with(&root))
        .map(str::to_owned)
        .collect()
}

/// What must be gone after a container was removed.
pub(crate) struct Traces {
    pub(crate) dirs: Vec<PathBuf>,
}

impl Traces {
    pub(crate) fn of(c: &Container) -> Traces {
        let mut dirs = c.cgroup().leaf_dirs();
        dirs.extend(c.cgroup().missing_dirs.iter().cloned());
        dirs.push(env().root.join("data/containers").join(c.id()));
        dirs.push(env().root.join("run/containers").join(c.id()));
        Traces { dirs }
    }
    pub(crate) fn check(&self) -> Result<(), Failed> {
        let left: Vec<_> = self.dirs.iter().filter(|d| d.exists()).collect();
        if !left.is_empty() {
            return Err(format!("left behind: {left:?}").into());
        }
        let mounts = leftover_mounts();
        if !mounts.is_empty() {
            return Err(format!("mounts left: {mounts:?}").into());
        }
        Ok(())
    }
}

pub(crate) fn capture() -> (OwnedFd, Stdio) {
    let (r, w) = nix::unistd::pipe().unwrap();
    let w2 = w.try_clone().unwrap();
    (
        r,
        Stdio {
            stdin: None,
            stdout: Some(w),
            stderr: Some(w2),
        },
    )
}

pub(crate) fn read_all(r: OwnedFd) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(r);
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        s
    })
}

/// Creates (not starts) a container of `sh` on the busybox layers.
pub(crate) fn create_sh(opts: &RunOptions, stdio: Stdio) -> Result<Container, Failed> {
    Container::create(&paths(), &image(&["sh"]), &env().layers, opts, stdio)
        .map_err(|e| chain(&e).into())
}

/// Creates, starts, waits and removes a container; returns status and output.
pub(crate) fn run_with(
    img: &ImageConfiguration,
    layers: &[PathBuf],
    opts: &RunOptions,
    during: impl FnOnce(&mut Container) -> Result<(), Failed>,
) -> Result<(ExitStatus, String), Failed> {
    let (r, stdio) = capture();
    let reader = read_all(r);
    let mut c = match Container::create(&paths(), img, layers, opts, stdio) {
        Ok(c) => c,
        Err(e) => {
            let out = reader.join().unwrap_or_default();
            return Err(format!("create: {}\noutput: {out}", chain(&e)).into());
        }
    };
    let traces = Traces::of(&c);
    let res = (|| {
        during(&mut c)?;
        c.start().map_err(|e| format!("start: {}", chain(&e)))?;
        c.wait().map_err(|e| Failed::from(format!("wait: {e}")))
    })();
    let removed = c.remove();
    let out = reader.join().unwrap_or_default();
    let status = res?;
    removed.map_err(|e| format!("remove: {e}"))?;
    traces.check()?;
    Ok((status, out))
}

pub(crate) fn run(opts: &RunOptions) -> Result<(ExitStatus, String), Failed> {
    run_with(&image(&["sh"]), &env().layers, opts, |_| Ok(()))
}

pub(crate) use rstack_sys::chain::chain;

pub(crate) fn expect(cond: bool, what: String) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(what.into()) }
}

pub(crate) fn expect_ok(status: ExitStatus, out: &str) -> Result<(), Failed> {
    expect(status.code == 0, format!("exit {status:?}, output: {out}"))
}

// ---------------------------------------------------------------- tests
