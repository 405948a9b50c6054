//! Privileged tests: real containers from a busybox rootfs, as root.
//!
//! The whole binary first moves into its own mount namespace (private
//! propagation), so the overlay and bind mounts the tests make never show
//! on the host; cgroups are real (they cannot be namespaced away) and each
//! test checks that nothing of its container is left in the cgroup tree or
//! the mount table. Without root, or without a needed cgroup controller,
//! the tests are reported as ignored with the reason.
//!
//! Run: `sudo -E cargo test -p rstack-runtime --test privileged`

use std::collections::HashSet;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};
use oci_spec::image::{ConfigBuilder, ImageConfiguration, ImageConfigurationBuilder};
use rstack_runtime::{
    Container, ContainerError, ExecOptions, ExitStatus, MountSpec, NetworkMode, Paths, Resources,
    RunOptions, SeccompProfile, Stdio,
};

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    layers: Vec<PathBuf>,
    probe: bool,
}

static ENV: OnceLock<Env> = OnceLock::new();

fn env() -> &'static Env {
    ENV.get().expect("environment set up in main")
}

/// A busybox layer: bin/busybox, one symlink per applet, passwd and group.
fn busybox_layer(dir: &Path) -> std::io::Result<()> {
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

fn setup() -> Result<Env, String> {
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

fn image(cmd: &[&str]) -> ImageConfiguration {
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

fn paths() -> Paths {
    Paths::new(&env().root.join("run"), &env().root.join("data"))
}

fn sh(script: &str) -> RunOptions {
    RunOptions {
        command: vec!["sh".into(), "-c".into(), script.into()],
        ..Default::default()
    }
}

/// Mount points under our test root still in the mount table.
fn leftover_mounts() -> Vec<String> {
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
struct Traces {
    dirs: Vec<PathBuf>,
}

impl Traces {
    fn of(c: &Container) -> Traces {
        let mut dirs = c.cgroup().leaf_dirs();
        dirs.extend(c.cgroup().missing_dirs.iter().cloned());
        dirs.push(env().root.join("data/containers").join(c.id()));
        dirs.push(env().root.join("run/containers").join(c.id()));
        Traces { dirs }
    }
    fn check(&self) -> Result<(), Failed> {
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

fn capture() -> (OwnedFd, Stdio) {
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

fn read_all(r: OwnedFd) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(r);
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        s
    })
}

/// Creates, starts, waits and removes a container; returns status and output.
fn run_with(
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

fn run(opts: &RunOptions) -> Result<(ExitStatus, String), Failed> {
    run_with(&image(&["sh"]), &env().layers, opts, |_| Ok(()))
}

use rstack_sys::chain::chain;

fn expect(cond: bool, what: String) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(what.into()) }
}

fn expect_ok(status: ExitStatus, out: &str) -> Result<(), Failed> {
    expect(status.code == 0, format!("exit {status:?}, output: {out}"))
}

// ---------------------------------------------------------------- tests

fn pid1_is_the_command() -> Result<(), Failed> {
    let o = sh("echo pid=$$; ls /proc | grep -c '^[0-9]'");
    let (st, out) = run(&o)?;
    expect_ok(st, &out)?;
    let mut lines = out.lines();
    expect(lines.next() == Some("pid=1"), format!("output: {out}"))?;
    // Only sh, ls and grep exist in the pid namespace: host processes are invisible.
    let n: u32 = lines.next().unwrap_or("").trim().parse().unwrap_or(99);
    expect(n <= 3, format!("{n} processes visible: {out}"))
}

fn hostname_and_etc_files() -> Result<(), Failed> {
    let mut o = sh("hostname; cat /etc/hostname; grep -c web /etc/hosts; cat /etc/resolv.conf");
    o.hostname = Some("web".into());
    o.dns = Some(rstack_runtime::DnsConfig {
        nameservers: vec!["10.1.2.3".parse().unwrap()],
        search: vec!["example.test".into()],
        options: vec![],
    });
    o.addresses = vec!["10.0.0.9".parse().unwrap()];
    let (st, out) = run(&o)?;
    expect_ok(st, &out)?;
    expect(
        out == "web\nweb\n1\nnameserver 10.1.2.3\nsearch example.test\n",
        format!("output: {out:?}"),
    )
}

fn cap_eff(o: &RunOptions) -> Result<String, Failed> {
    let mut o = o.clone();
    o.command = vec![
        "sh".into(),
        "-c".into(),
        "grep CapEff /proc/self/status".into(),
    ];
    let (st, out) = run(&o)?;
    expect_ok(st, &out)?;
    Ok(out.split_whitespace().nth(1).unwrap_or("").to_owned())
}

fn capabilities_default_add_drop() -> Result<(), Failed> {
    let default = cap_eff(&RunOptions::default())?;
    expect(
        default == "00000000a80425fb",
        format!("default CapEff {default}"),
    )?;
    let added = cap_eff(&RunOptions {
        cap_add: vec!["NET_ADMIN".into()],
        cap_drop: vec!["CHOWN".into()],
        ..Default::default()
    })?;
    expect(
        added == "00000000a80435fa",
        format!("NET_ADMIN-CHOWN CapEff {added}"),
    )?;
    let none = cap_eff(&RunOptions {
        cap_drop: vec!["ALL".into()],
        ..Default::default()
    })?;
    expect(
        none == "0000000000000000",
        format!("drop ALL CapEff {none}"),
    )
}

fn probe(args: &str, o: RunOptions) -> Result<(ExitStatus, String), Failed> {
    let mut o = o;
    o.command = vec!["sh".into(), "-c".into(), format!("probe {args}")];
    run(&o)
}

fn seccomp_blocks_unshare_and_keyctl() -> Result<(), Failed> {
    for call in ["unshare", "keyctl"] {
        let (_, out) = probe(call, RunOptions::default())?;
        expect(
            out.trim() == "errno=1",
            format!("{call} under default seccomp: {out}"),
        )?;
    }
    // Unconfined: keyctl reaches the kernel (no EPERM from the filter).
    let (_, out) = probe(
        "keyctl",
        RunOptions {
            seccomp: SeccompProfile::Unconfined,
            ..Default::default()
        },
    )?;
    expect(out.trim() != "errno=1", format!("keyctl unconfined: {out}"))?;
    // A profile file in Docker's format: everything allowed but mkdir/mkdirat.
    let profile = env().root.join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )?;
    let mut o = sh("mkdir /made && echo made; touch /touched && echo touched");
    o.seccomp = SeccompProfile::File(profile);
    let (_, out) = run(&o)?;
    expect(
        !out.lines().any(|l| l == "made")
            && out.contains("Permission denied")
            && out.lines().any(|l| l == "touched"),
        format!("custom profile: {out}"),
    )
}

fn proc_masked_and_mount_denied() -> Result<(), Failed> {
    let (st, out) = run(&sh(
        "for f in /proc/kcore /proc/keys /proc/timer_list; do [ -e $f ] && echo $f=$(wc -c < $f); done; echo 1 > /proc/sys/kernel/domainname && echo wrote-proc-sys; mount -t tmpfs none /mnt && echo mounted; true",
    ))?;
    expect_ok(st, &out)?;
    // Masked files exist but read empty (this kernel may lack /proc/kcore).
    let masked: Vec<&str> = out.lines().filter(|l| l.starts_with("/proc/")).collect();
    expect(
        !masked.is_empty() && masked.iter().all(|l| l.ends_with("=0")),
        format!("masked paths readable: {out}"),
    )?;
    expect(
        !out.contains("wrote-proc-sys"),
        format!("/proc/sys writable: {out}"),
    )?;
    expect(!out.contains("mounted"), format!("mount allowed: {out}"))
}

fn read_only_rootfs_with_tmpfs() -> Result<(), Failed> {
    let mut o = sh("touch /x && echo root-writable; touch /tmp/y && echo tmp-writable; true");
    o.read_only = true;
    o.mounts = vec![MountSpec::Tmpfs {
        target: "/tmp".into(),
        options: vec![],
    }];
    let (st, out) = run(&o)?;
    expect_ok(st, &out)?;
    expect(
        !out.contains("root-writable"),
        format!("rootfs writable: {out}"),
    )?;
    expect(
        out.contains("tmp-writable"),
        format!("tmpfs not writable: {out}"),
    )
}

fn bind_mounts_ro_and_created() -> Result<(), Failed> {
    let host = env().root.join("bind-src");
    std::fs::create_dir_all(&host)?;
    std::fs::write(host.join("f"), "hello")?;
    let created = env().root.join("bind-new/sub");
    let mut o = sh(
        "cat /data/f; touch /data/g && echo ro-writable; touch /new/h && echo new-writable; true",
    );
    o.mounts = vec![
        MountSpec::Bind {
            source: host.clone(),
            target: "/data".into(),
            read_only: true,
        },
        MountSpec::Bind {
            source: created.clone(),
            target: "/new".into(),
            read_only: false,
        },
    ];
    let (st, out) = run(&o)?;
    expect_ok(st, &out)?;
    expect(out.starts_with("hello"), format!("output: {out}"))?;
    expect(
        !out.contains("ro-writable"),
        format!(":ro bind writable: {out}"),
    )?;
    expect(out.contains("new-writable"), format!("created bind: {out}"))?;
    expect(created.join("h").exists(), "file not on the host".into())
}

fn user_from_flag() -> Result<(), Failed> {
    let mut o = sh("id -u; id -g; id -G");
    o.user = Some("app".into());
    let (st, out) = run(&o)?;
    expect_ok(st, &out)?;
    expect(out == "1000\n1000\n1000 10\n", format!("app: {out:?}"))?;
    o.user = Some("1234:5678".into());
    let (st, out) = run(&o)?;
    expect_ok(st, &out)?;
    expect(
        out.starts_with("1234\n5678\n"),
        format!("1234:5678: {out:?}"),
    )
}

fn exit_codes_and_signals() -> Result<(), Failed> {
    let (st, _) = run(&sh("exit 42"))?;
    expect(st.code == 42, format!("{st:?}"))?;
    // SIGKILL from outside: 137, not an OOM kill.
    let (r, stdio) = capture();
    let reader = read_all(r);
    let mut c = Container::create(
        &paths(),
        &image(&["sh"]),
        &env().layers,
        &sh("sleep 30"),
        stdio,
    )
    .map_err(|e| chain(&e))?;
    let traces = Traces::of(&c);
    c.start().map_err(|e| chain(&e))?;
    c.kill(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| chain(&e))?;
    let st = c.wait().map_err(|e| chain(&e))?;
    c.remove().map_err(|e| chain(&e))?;
    let _ = reader.join();
    traces.check()?;
    expect(
        st.code == 137 && st.signal == Some(9) && !st.oom_killed,
        format!("{st:?}"),
    )
}

fn init_forwards_signals_and_stop() -> Result<(), Failed> {
    // With --init, PID 1 is our reaper; SIGTERM reaches `sleep`, 128+15.
    let mut o = sh("sleep 30");
    o.init = true;
    o.stop_timeout = Some(5);
    let (r, stdio) = capture();
    let reader = read_all(r);
    let mut c = Container::create(&paths(), &image(&["sh"]), &env().layers, &o, stdio)
        .map_err(|e| chain(&e))?;
    let traces = Traces::of(&c);
    c.start().map_err(|e| chain(&e))?;
    std::thread::sleep(Duration::from_millis(200));
    let t = std::time::Instant::now();
    let st = c.stop(None).map_err(|e| chain(&e))?;
    c.remove().map_err(|e| chain(&e))?;
    let _ = reader.join();
    traces.check()?;
    expect(st.code == 143, format!("{st:?}"))?;
    expect(
        t.elapsed() < Duration::from_secs(4),
        format!("stop took {:?}", t.elapsed()),
    )?;
    // Without --init the shell as PID 1 ignores SIGTERM: stop escalates to SIGKILL.
    let mut o = sh("sleep 30");
    o.stop_timeout = Some(1);
    let (r, stdio) = capture();
    let reader = read_all(r);
    let mut c = Container::create(&paths(), &image(&["sh"]), &env().layers, &o, stdio)
        .map_err(|e| chain(&e))?;
    c.start().map_err(|e| chain(&e))?;
    let st = c.stop(None).map_err(|e| chain(&e))?;
    c.remove().map_err(|e| chain(&e))?;
    let _ = reader.join();
    expect(st.code == 137, format!("{st:?}"))
}

fn memory_limit_oom_kills() -> Result<(), Failed> {
    let o = RunOptions {
        resources: Resources {
            memory: Some(32 << 20),
            ..Default::default()
        },
        command: vec!["probe".into(), "alloc".into(), "64".into()],
        ..Default::default()
    };
    let (st, out) = run(&o)?;
    expect(
        st.code == 137 && st.oom_killed,
        format!("{st:?}, output: {out}"),
    )
}

fn cpus_and_pids_in_cgroup_files() -> Result<(), Failed> {
    let o = RunOptions {
        resources: Resources {
            cpus: Some(0.5),
            pids_limit: Some(20),
            ..Default::default()
        },
        ..sh("true")
    };
    let mut seen = String::new();
    let (st, out) = run_with(&image(&["sh"]), &env().layers, &o, |c| {
        let cpu = c.cgroup().cpu_dir().ok_or("no cpu cgroup")?;
        let pids = c.cgroup().pids_dir().ok_or("no pids cgroup")?;
        let read =
            |p: PathBuf| std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()));
        seen = match c.cgroup().layout {
            rstack_runtime::cgroup::Layout::Legacy => format!(
                "{} {} {}",
                read(cpu.join("cpu.cfs_quota_us"))?.trim(),
                read(cpu.join("cpu.cfs_period_us"))?.trim(),
                read(pids.join("pids.max"))?.trim()
            ),
            rstack_runtime::cgroup::Layout::Unified => format!(
                "{} {}",
                read(cpu.join("cpu.max"))?.trim(),
                read(pids.join("pids.max"))?.trim()
            ),
        };
        Ok(())
    })?;
    expect_ok(st, &out)?;
    expect(seen == "50000 100000 20", format!("cgroup files: {seen}"))
}

fn pids_limit_stops_fork_bomb() -> Result<(), Failed> {
    let o = RunOptions {
        resources: Resources {
            pids_limit: Some(20),
            ..Default::default()
        },
        ..sh("for i in $(seq 1 40); do sleep 2 & done; echo all-forked")
    };
    let (st, out) = run(&o)?;
    expect(
        out.contains("can't fork") && !out.contains("all-forked") && st.code != 0,
        format!("fork bomb under --pids-limit 20: {st:?} {out}"),
    )
}

fn missing_binary_is_127_and_clean() -> Result<(), Failed> {
    let before = std::fs::read_dir(env().root.join("data/containers"))
        .map(|d| d.count())
        .unwrap_or(0);
    let o = RunOptions {
        command: vec!["nonexistent-cmd".into()],
        ..Default::default()
    };
    let (_r, stdio) = capture();
    match Container::create(&paths(), &image(&["sh"]), &env().layers, &o, stdio) {
        Err(e @ ContainerError::CommandNotFound { .. }) => {
            expect(e.exit_code() == 127, format!("exit code {}", e.exit_code()))?;
            expect(
                e.to_string() == "exec: \"nonexistent-cmd\": executable file not found in $PATH",
                format!("message: {e}"),
            )?;
        }
        Err(e) => return Err(format!("unexpected error: {}", chain(&e)).into()),
        Ok(_) => return Err("created a container with a missing binary".into()),
    }
    let after = std::fs::read_dir(env().root.join("data/containers"))
        .map(|d| d.count())
        .unwrap_or(0);
    expect(before == after, "container dir left behind".into())?;
    expect(
        leftover_mounts().is_empty(),
        format!("mounts: {:?}", leftover_mounts()),
    )
}

fn bad_user_fails_before_setup() -> Result<(), Failed> {
    let o = RunOptions {
        user: Some("nosuchuser".into()),
        ..sh("true")
    };
    let (_r, stdio) = capture();
    match Container::create(&paths(), &image(&["sh"]), &env().layers, &o, stdio) {
        Err(e) => expect(
            e.to_string() == "unable to find user nosuchuser: no matching entries in passwd file",
            format!("message: {e}"),
        ),
        Ok(_) => Err("created with a bad user".into()),
    }
}

fn exec_into_running_container() -> Result<(), Failed> {
    let mut o = sh("sleep 30");
    o.hostname = Some("execme".into());
    o.name = Some("exec-test".into());
    let mut c = Container::create(
        &paths(),
        &image(&["sh"]),
        &env().layers,
        &o,
        Stdio::default(),
    )
    .map_err(|e| chain(&e))?;
    let traces = Traces::of(&c);
    let res = (|| -> Result<(), Failed> {
        c.start().map_err(|e| chain(&e))?;
        let (r, stdio) = capture();
        let reader = read_all(r);
        let p = c
            .exec(
                &ExecOptions {
                    args: vec![
                        "sh".into(),
                        "-c".into(),
                        "hostname; id -u; grep CapEff /proc/self/status".into(),
                    ],
                    user: Some("app".into()),
                    ..Default::default()
                },
                stdio,
            )
            .map_err(|e| chain(&e))?;
        let code = p.wait().map_err(|e| chain(&e))?;
        let out = reader.join().unwrap_or_default();
        expect(code == 0, format!("exec exit {code}: {out}"))?;
        expect(
            out.contains("execme\n1000\nCapEff:\t0000000000000000\n"),
            format!("exec output: {out}"),
        )?;
        // With a terminal: the output comes through the pty master.
        let mut p = c
            .exec(
                &ExecOptions {
                    args: vec!["sh".into(), "-c".into(), "tty; echo $TERM $HOME".into()],
                    user: Some("app".into()),
                    tty: true,
                    ..Default::default()
                },
                Stdio::default(),
            )
            .map_err(|e| chain(&e))?;
        let master = p.take_pty_master().ok_or("no pty master")?;
        let reader = read_all(master);
        let code = p.wait().map_err(|e| chain(&e))?;
        let out = reader.join().unwrap_or_default();
        expect(code == 0, format!("tty exec exit {code}: {out}"))?;
        expect(
            out.starts_with("/dev/pts/") && out.contains("xterm /home/app"),
            format!("tty exec output: {out:?}"),
        )?;
        let netns =
            rstack_runtime::container::netns_of(&paths(), "exec-test").map_err(|e| chain(&e))?;
        expect(netns == c.netns_path(), format!("netns {netns:?}"))?;
        let (_r, stdio) = capture();
        match c.exec(
            &ExecOptions {
                args: vec!["foo".into()],
                ..Default::default()
            },
            stdio,
        ) {
            Err(e) => expect(
                e.exit_code() == 127
                    && e.to_string() == "exec: \"foo\": executable file not found in $PATH",
                format!("exec foo: {} ({})", chain(&e), e.exit_code()),
            ),
            Ok(p) => Err(format!("exec foo ran: {:?}", p.wait()).into()),
        }
    })();
    c.remove().map_err(|e| chain(&e))?;
    res?;
    traces.check()
}

/// A container whose creator is gone (handle forgotten, as after a
/// supervisor crash) is found again by name, exec'd into and removed with
/// nothing left, cgroup parents included.
fn adopted_container_exec_and_remove() -> Result<(), Failed> {
    let mut o = sh("sleep 30");
    o.name = Some("adopt-me".into());
    o.hostname = Some("adopted".into());
    let mut c = Container::create(
        &paths(),
        &image(&["sh"]),
        &env().layers,
        &o,
        Stdio::default(),
    )
    .map_err(|e| chain(&e))?;
    let traces = Traces::of(&c);
    c.start().map_err(|e| chain(&e))?;
    std::mem::forget(c);
    let a = rstack_runtime::adopt::Adopted::open(&paths(), "adopt-me").map_err(|e| chain(&e))?;
    let (r, stdio) = capture();
    let reader = read_all(r);
    let p = a
        .exec(
            &ExecOptions {
                args: vec!["hostname".into()],
                ..Default::default()
            },
            stdio,
        )
        .map_err(|e| chain(&e))?;
    let code = p.wait().map_err(|e| chain(&e))?;
    let out = reader.join().unwrap_or_default();
    expect(
        code == 0 && out == "adopted\n",
        format!("exec: {code} {out:?}"),
    )?;
    let (_r, stdio) = capture();
    match a.exec(
        &ExecOptions {
            args: vec!["nope".into()],
            ..Default::default()
        },
        stdio,
    ) {
        Err(e) => expect(e.exit_code() == 127, format!("exec nope: {}", chain(&e)))?,
        Ok(_) => return Err("exec of a missing command ran".into()),
    }
    a.remove(&[]).map_err(|e| chain(&e))?;
    expect(
        !env().root.join("run/names/adopt-me").exists(),
        "name left".into(),
    )?;
    traces.check()
}

fn many_layers() -> Result<(), Failed> {
    let mut layers = env().layers.clone();
    let long = "x".repeat(60);
    for i in 0..120 {
        let d = env().root.join(format!("layers/{long}-{i:03}"));
        std::fs::create_dir_all(d.join("layers"))?;
        std::fs::write(d.join(format!("layers/{i:03}")), "")?;
        layers.push(d);
    }
    let (st, out) = run_with(&image(&["sh"]), &layers, &sh("ls /layers | wc -l"), |_| {
        Ok(())
    })?;
    expect_ok(st, &out)?;
    expect(out.trim() == "120", format!("output: {out}"))
}

fn network_none_and_host() -> Result<(), Failed> {
    let (st, out) = run(&sh(
        "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '",
    ))?;
    expect_ok(st, &out)?;
    expect(
        out == "lo\n",
        format!("interfaces with --network none: {out:?}"),
    )?;
    // lo is up: a TCP connection over 127.0.0.1 works.
    let (st, out) = run(&sh(
        "(echo pong | nc -l -p 7777 &) ; sleep 0.3; nc 127.0.0.1 7777 </dev/null",
    ))?;
    expect(
        st.code == 0 && out.trim() == "pong",
        format!("loopback: {st:?} {out:?}"),
    )?;
    let host_ifaces: HashSet<String> = std::fs::read_to_string("/proc/net/dev")?
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|s| s.trim().to_owned()))
        .collect();
    let mut o = sh("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '");
    o.network = NetworkMode::Host;
    let (st, out) = run(&o)?;
    expect_ok(st, &out)?;
    let seen: HashSet<String> = out.lines().map(str::to_owned).collect();
    expect(
        seen == host_ifaces,
        format!("host network: {seen:?} vs {host_ifaces:?}"),
    )
}

fn main() {
    // Builds run in this binary re-executed as a single-threaded helper (as
    // in rstack); RSTACK_RT_IN_PROCESS=1 tests the in-process path instead.
    rstack_runtime::helper::run_if_helper();
    if std::env::var_os("RSTACK_RT_IN_PROCESS").is_none() {
        if let Ok(exe) = std::env::current_exe() {
            rstack_runtime::helper::use_helper(exe);
        }
    }
    if let Ok(filter) = std::env::var("RSTACK_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let mut args = Arguments::from_args();
    // Serial: the leftover checks look at shared cgroup parents and mounts.
    args.test_threads = Some(1);
    let mut skip: Option<String> = None;
    let mut setup_error: Option<String> = None;
    if !nix::unistd::geteuid().is_root() {
        skip = Some("needs root".into());
    } else if !Path::new("/bin/busybox").exists() {
        skip = Some("needs /bin/busybox (busybox-static)".into());
    } else {
        // Before any thread exists: a private mount namespace for the whole binary.
        if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS) {
            skip = Some(format!("cannot unshare the mount namespace: {e}"));
        } else {
            let _ = nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                None::<&str>,
            );
            match setup() {
                Ok(e) => {
                    let _ = ENV.set(e);
                }
                // a broken fixture is a failure, never a skip
                Err(e) => setup_error = Some(format!("setup failed: {e}")),
            }
        }
    }
    let plan = rstack_runtime::cgroup::CgroupPlan::new(None, "probe");
    let needs_probe = ENV.get().is_some_and(|e| !e.probe);
    type T = fn() -> Result<(), Failed>;
    let tests: Vec<(&str, T, Option<&str>)> = vec![
        ("pid1_is_the_command", pid1_is_the_command, None),
        ("hostname_and_etc_files", hostname_and_etc_files, None),
        (
            "capabilities_default_add_drop",
            capabilities_default_add_drop,
            None,
        ),
        (
            "seccomp_blocks_unshare_and_keyctl",
            seccomp_blocks_unshare_and_keyctl,
            Some("probe"),
        ),
        (
            "proc_masked_and_mount_denied",
            proc_masked_and_mount_denied,
            None,
        ),
        (
            "read_only_rootfs_with_tmpfs",
            read_only_rootfs_with_tmpfs,
            None,
        ),
        (
            "bind_mounts_ro_and_created",
            bind_mounts_ro_and_created,
            None,
        ),
        ("user_from_flag", user_from_flag, None),
        ("exit_codes_and_signals", exit_codes_and_signals, None),
        (
            "init_forwards_signals_and_stop",
            init_forwards_signals_and_stop,
            None,
        ),
        (
            "memory_limit_oom_kills",
            memory_limit_oom_kills,
            Some("memory"),
        ),
        (
            "cpus_and_pids_in_cgroup_files",
            cpus_and_pids_in_cgroup_files,
            Some("cpu+pids"),
        ),
        (
            "pids_limit_stops_fork_bomb",
            pids_limit_stops_fork_bomb,
            Some("pids"),
        ),
        (
            "missing_binary_is_127_and_clean",
            missing_binary_is_127_and_clean,
            None,
        ),
        (
            "bad_user_fails_before_setup",
            bad_user_fails_before_setup,
            None,
        ),
        (
            "exec_into_running_container",
            exec_into_running_container,
            None,
        ),
        (
            "adopted_container_exec_and_remove",
            adopted_container_exec_and_remove,
            None,
        ),
        ("many_layers", many_layers, None),
        ("network_none_and_host", network_none_and_host, None),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, f, need)| {
            let reason = skip.clone().or_else(|| match need {
                Some("probe") if needs_probe => {
                    Some("needs a C compiler with static libc (cc -static) for the probe".into())
                }
                Some("memory") if plan.missing_controller("memory") => {
                    Some("no memory cgroup controller".into())
                }
                Some("pids") if plan.missing_controller("pids") => {
                    Some("no pids cgroup controller".into())
                }
                Some("cpu+pids")
                    if plan.missing_controller("cpu") || plan.missing_controller("pids") =>
                {
                    Some("no cpu or pids cgroup controller".into())
                }
                Some("memory") if needs_probe => Some("needs the probe (cc -static)".into()),
                _ => None,
            });
            if let Some(e) = setup_error.clone() {
                return Trial::test(name, move || Err(e.into()));
            }
            match reason {
                Some(r) => rstack_testkit::skipped(name, r),
                None => Trial::test(name, f),
            }
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    rstack_testkit::report();
    // `exit` skips destructors: remove the temp tree (layers, dirs) here.
    if let Some(e) = ENV.get() {
        let _ = std::fs::remove_dir_all(&e.root);
    }
    conclusion.exit();
}
