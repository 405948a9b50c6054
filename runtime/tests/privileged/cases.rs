//! The runtime trials: one real container each.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use libtest_mimic::Failed;
use rstack_runtime::{
    Container, ContainerError, ExecOptions, ExitStatus, MountSpec, NetworkMode, Resources,
    RunOptions, SeccompProfile, Stdio,
};

use crate::harness::*;

pub(crate) fn pid1_is_the_command() -> Result<(), Failed> {
    let o = sh("echo pid=$$; ls /proc | grep -c '^[0-9]'");
    let (st, out) = run(&o)?;
    expect_ok(st, &out)?;
    let mut lines = out.lines();
    expect(lines.next() == Some("pid=1"), format!("output: {out}"))?;
    // Only sh, ls and grep exist in the pid namespace: host processes are invisible.
    let n: u32 = lines.next().unwrap_or("").trim().parse().unwrap_or(99);
    expect(n <= 3, format!("{n} processes visible: {out}"))
}

pub(crate) fn hostname_and_etc_files() -> Result<(), Failed> {
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

pub(crate) fn cap_eff(o: &RunOptions) -> Result<String, Failed> {
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

pub(crate) fn capabilities_default_add_drop() -> Result<(), Failed> {
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

pub(crate) fn probe(args: &str, o: RunOptions) -> Result<(ExitStatus, String), Failed> {
    let mut o = o;
    o.command = vec!["sh".into(), "-c".into(), format!("probe {args}")];
    run(&o)
}

pub(crate) fn seccomp_blocks_unshare_and_keyctl() -> Result<(), Failed> {
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

pub(crate) fn proc_masked_and_mount_denied() -> Result<(), Failed> {
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

pub(crate) fn read_only_rootfs_with_tmpfs() -> Result<(), Failed> {
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

pub(crate) fn bind_mounts_ro_and_created() -> Result<(), Failed> {
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

pub(crate) fn user_from_flag() -> Result<(), Failed> {
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

pub(crate) fn exit_codes_and_signals() -> Result<(), Failed> {
    let (st, _) = run(&sh("exit 42"))?;
    expect(st.code == 42, format!("{st:?}"))?;
    // SIGKILL from outside: 137, not an OOM kill.
    let (r, stdio) = capture();
    let reader = read_all(r);
    let mut c = create_sh(&sh("sleep 30"), stdio)?;
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

pub(crate) fn init_forwards_signals_and_stop() -> Result<(), Failed> {
    // With --init, PID 1 is our reaper; SIGTERM reaches `sleep`, 128+15.
    let mut o = sh("sleep 30");
    o.init = true;
    o.stop_timeout = Some(5);
    let (r, stdio) = capture();
    let reader = read_all(r);
    let mut c = create_sh(&o, stdio)?;
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
    let mut c = create_sh(&o, stdio)?;
    c.start().map_err(|e| chain(&e))?;
    let st = c.stop(None).map_err(|e| chain(&e))?;
    c.remove().map_err(|e| chain(&e))?;
    let _ = reader.join();
    expect(st.code == 137, format!("{st:?}"))
}

pub(crate) fn memory_limit_oom_kills() -> Result<(), Failed> {
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

pub(crate) fn cpus_and_pids_in_cgroup_files() -> Result<(), Failed> {
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

pub(crate) fn pids_limit_stops_fork_bomb() -> Result<(), Failed> {
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

pub(crate) fn missing_binary_is_127_and_clean() -> Result<(), Failed> {
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

pub(crate) fn bad_user_fails_before_setup() -> Result<(), Failed> {
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

pub(crate) fn exec_into_running_container() -> Result<(), Failed> {
    let mut o = sh("sleep 30");
    o.hostname = Some("execme".into());
    o.name = Some("exec-test".into());
    let mut c = create_sh(&o, Stdio::default())?;
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
pub(crate) fn adopted_container_exec_and_remove() -> Result<(), Failed> {
    let mut o = sh("sleep 30");
    o.name = Some("adopt-me".into());
    o.hostname = Some("adopted".into());
    let mut c = create_sh(&o, Stdio::default())?;
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

pub(crate) fn many_layers() -> Result<(), Failed> {
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

pub(crate) fn network_none_and_host() -> Result<(), Failed> {
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
