//! `rstack container run` against the local registry's busybox fixture, as
//! a user would run it: output, exit codes, flags, bad input, and nothing
//! left behind (mounts, container dirs, state) after each run.
//!
//! `-it` runs under util-linux `script`, which gives rstack a real pseudo
//! terminal; the privileged tests in runtime/tests/privileged.rs cover
//! isolation and limits in depth.

use std::path::Path;

use libtest_mimic::Trial;
use rstack_e2e::{Fixtures, Need, Rstack, RunOutput, trial};

const NEEDS: &[Need] = &[Need::Root, Need::Registry, Need::Rstack, Need::Overlay];

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "runtime::run_prints_and_propagates_exit_code",
            NEEDS,
            run_exit_code,
        ),
        trial("runtime::run_pulls_missing_image_once", NEEDS, pulls_once),
        trial(
            "runtime::run_user_env_workdir_hostname",
            NEEDS,
            user_env_workdir,
        ),
        trial("runtime::run_isolation_defaults", NEEDS, isolation_defaults),
        trial("runtime::run_mounts_read_only_tmpfs", NEEDS, mounts),
        trial(
            "runtime::run_bad_input_is_clear_and_clean",
            NEEDS,
            bad_input,
        ),
        trial(
            "runtime::run_it_gives_an_interactive_shell",
            &[
                Need::Root,
                Need::Registry,
                Need::Rstack,
                Need::Overlay,
                Need::Command("script"),
            ],
            interactive_shell,
        ),
        trial("runtime::run_forwards_sigterm", NEEDS, forwards_sigterm),
        trial(
            "runtime::run_network_container_name",
            NEEDS,
            network_container,
        ),
        limits_trial(),
    ]
}

/// Memory and pids limits need those cgroup controllers (v1 hierarchy or
/// enabled in cgroup2): without them the trial is skipped with the reason.
fn limits_trial() -> Trial {
    let name = "runtime::cgroup_memory_oom_and_pids_limit";
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
    let has = |c: &str| {
        Path::new("/sys/fs/cgroup").join(c).is_dir() || v2.split_whitespace().any(|x| x == c)
    };
    if !has("memory") || !has("pids") {
        return rstack_testkit::skipped(name, "needs the memory and pids cgroup controllers");
    }
    trial(name, NEEDS, limits)
}

fn limits() {
    let rstack = Rstack::new();
    let img = image();
    let out = rstack.run(&[
        "container",
        "run",
        "--rm",
        "--memory",
        "32m",
        &img,
        "sh",
        "-c",
        "x=$(head -c 64m /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert_eq!(code(&out), Some(137), "{out}");
    out.assert_stderr_mentions(&["OOMKilled"]);
    assert!(!out.stdout.contains("survived"), "{out}");
    let out = rstack.run(&[
        "container",
        "run",
        "--rm",
        "--pids-limit",
        "20",
        &img,
        "sh",
        "-c",
        "for i in $(seq 1 40); do sleep 2 & done; echo all-forked",
    ]);
    assert!(!out.stdout.contains("all-forked"), "{out}");
    out.assert_stderr_mentions(&["can't fork"]);
    assert_clean(&rstack);
}

fn image() -> String {
    Fixtures::shared().busybox_v2s2.reference()
}

fn code(out: &RunOutput) -> Option<i32> {
    out.status.code()
}

/// No container dirs, no executor state, no mounts left.
fn assert_clean(rstack: &Rstack) {
    rstack.assert_no_leaks();
    for dir in [
        rstack.root().join("containers"),
        rstack.run_root().join("containers"),
    ] {
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
    }
}

fn run_exit_code() {
    let rstack = Rstack::new();
    let img = image();
    let out = rstack.run(&[
        "container",
        "run",
        "--rm",
        &img,
        "sh",
        "-c",
        "echo hello; echo oops >&2; exit 3",
    ]);
    assert_eq!(code(&out), Some(3), "{out}");
    assert!(out.stdout.ends_with("hello\n"), "{out}");
    assert!(out.stderr.contains("oops"), "{out}");
    let out = rstack.run(&["container", "run", "--rm", &img, "true"]);
    assert_eq!(code(&out), Some(0), "{out}");
    // Killed by a signal: 128 + 9.
    let out = rstack.run(&[
        "container",
        "run",
        "--rm",
        "--init",
        &img,
        "sh",
        "-c",
        "kill -9 $$",
    ]);
    assert_eq!(code(&out), Some(137), "{out}");
    // SIGPIPE has its default action in the workload (rstack, a Rust
    // program, ignores it): `yes | head -1` ends quietly
    let out = rstack.run(&[
        "container",
        "run",
        "--rm",
        &img,
        "sh",
        "-c",
        "grep SigIgn /proc/self/status; yes | head -1",
    ]);
    assert_eq!(code(&out), Some(0), "{out}");
    let ignored = out
        .stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("SigIgn:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no SigIgn line: {out}"));
    // SIGPIPE is signal 13: bit 12 of the mask
    assert_eq!(ignored & (1 << 12), 0, "SIGPIPE ignored: {out}");
    assert!(out.stdout.ends_with("\ny\n"), "{out}");
    assert!(!out.stderr.contains("Broken pipe"), "{out}");
    // and a listing whose reader went away ends quietly too (docker's
    // CLI dies of SIGPIPE), no panic
    let mut cmd = rstack.command(&["inspect", &img]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn rstack");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait rstack");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_clean(&rstack);
}

fn pulls_once() {
    let rstack = Rstack::new();
    let img = image();
    let first = rstack.ok(&["container", "run", "--rm", &img, "true"]);
    assert!(first.stderr.contains("Unable to find image"), "{first}");
    let second = rstack.ok(&["container", "run", "--rm", &img, "true"]);
    assert!(!second.stderr.contains("Unable to find image"), "{second}");
    assert_clean(&rstack);
}

fn user_env_workdir() {
    let rstack = Rstack::new();
    let img = image();
    let env_file = rstack.work_dir().join("app.env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n").unwrap();
    let out = rstack.ok(&[
        "container",
        "run",
        "--rm",
        "-u",
        "user",
        "-e",
        "A=1",
        "--env-file",
        env_file.to_str().unwrap(),
        "-w",
        "/tmp/work",
        "--hostname",
        "box",
        &img,
        "sh",
        "-c",
        "id -u; echo $A $FROM_FILE; pwd; hostname; echo $HOME",
    ]);
    assert_eq!(
        out.stdout, "1000\n1 yes\n/tmp/work\nbox\n/home/user\n",
        "{out}"
    );
    let out = rstack.ok(&["container", "run", "--rm", "-u", "4321:4321", &img, "id"]);
    assert!(out.stdout.starts_with("uid=4321 gid=4321"), "{out}");
    let out = rstack.ok(&[
        "container",
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        &img,
        "from",
        "entrypoint",
    ]);
    assert_eq!(out.stdout, "from entrypoint\n", "{out}");
    assert_clean(&rstack);
}

fn isolation_defaults() {
    let rstack = Rstack::new();
    let img = image();
    let out = rstack.ok(&[
        "container", "run", "--rm", &img, "sh", "-c",
        "echo $$; grep CapEff /proc/self/status; ls /proc | grep -c '^[0-9]'; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '",
    ]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"1"), "PID 1 is the command: {out}");
    assert_eq!(
        lines.get(1),
        Some(&"CapEff:\t00000000a80425fb"),
        "Docker's default caps: {out}"
    );
    let procs: u32 = lines.get(2).and_then(|l| l.parse().ok()).unwrap_or(99);
    assert!(procs <= 4, "host processes visible: {out}");
    assert_eq!(
        lines.get(3),
        Some(&"lo"),
        "--network none has only lo: {out}"
    );
    let out = rstack.ok(&[
        "container",
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        &img,
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert_eq!(out.stdout, "CapEff:\t0000000000000000\n", "{out}");
    let out = rstack.run(&[
        "container",
        "run",
        "--rm",
        &img,
        "mount",
        "-t",
        "tmpfs",
        "none",
        "/mnt",
    ]);
    assert_ne!(code(&out), Some(0), "mount allowed: {out}");
    assert_clean(&rstack);
}

fn mounts() {
    let rstack = Rstack::new();
    let img = image();
    let src = rstack.work_dir().join("data");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "from host\n").unwrap();
    let new = rstack.work_dir().join("created/by/run");
    let vol = format!("{}:/data:ro", src.display());
    let vol2 = format!("{}:/new", new.display());
    let out = rstack.ok(&[
        "container", "run", "--rm", "--read-only", "--tmpfs", "/tmp", "-v", &vol, "-v", &vol2, &img, "sh",
        "-c",
        "cat /data/f; touch /data/x 2>/dev/null || echo data-ro; touch /x 2>/dev/null || echo root-ro; touch /tmp/t && echo tmp-rw; echo hi > /new/out",
    ]);
    assert_eq!(out.stdout, "from host\ndata-ro\nroot-ro\ntmp-rw\n", "{out}");
    assert_eq!(std::fs::read_to_string(new.join("out")).unwrap(), "hi\n");
    assert!(!Path::new(&src.join("x")).exists());
    assert_clean(&rstack);
}

/// `-it` under a real pseudo terminal (util-linux `script` gives rstack one):
/// the shell prompt, typed commands, their output and the exit code.
fn interactive_shell() {
    let rstack = Rstack::new();
    let img = image();
    rstack.ok(&["pull", "-q", &img]);
    let line = format!(
        "{} --root {} --run-root {} container run --rm -it {img} sh",
        rstack.bin().display(),
        rstack.root().display(),
        rstack.run_root().display()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]);
    rstack.sandbox_env(&mut cmd);
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn script");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let _ = stdin.write_all(b"echo hi $((6*7)); tty\r");
        std::thread::sleep(std::time::Duration::from_millis(500));
        let _ = stdin.write_all(b"exit 7\r");
        std::thread::sleep(std::time::Duration::from_millis(2000));
    });
    let out = child.wait_with_output().expect("wait for script");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert_eq!(out.status.code(), Some(7), "{text}");
    assert!(text.contains("hi 42\n/dev/pts/0\n"), "{text}");
    assert_clean(&rstack);
}

/// SIGTERM to rstack reaches the container (here through `--init`): 143.
fn forwards_sigterm() {
    let rstack = Rstack::new();
    let img = image();
    rstack.ok(&["pull", "-q", &img]);
    let mut child = rstack
        .command(&["container", "run", "--rm", "--init", &img, "sleep", "30"])
        .spawn()
        .expect("spawn rstack");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    send_sigterm(child.id());
    let status = child.wait().expect("wait for rstack");
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert_clean(&rstack);
}

/// `--network container:NAME` joins the named container's netns: a
/// server on its 127.0.0.1 answers (also proves lo is up under none).
fn network_container() {
    let rstack = Rstack::new();
    let img = image();
    rstack.ok(&["pull", "-q", &img]);
    let mut server = rstack
        .command(&[
            "container",
            "run",
            "--rm",
            "--name",
            "web",
            &img,
            "sh",
            "-c",
            "echo pong | nc -l -p 7777",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the server container");
    let mut answer = None;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let out = rstack.run(&[
            "container",
            "run",
            "--rm",
            "--network",
            "container:web",
            &img,
            "sh",
            "-c",
            "nc 127.0.0.1 7777 </dev/null",
        ]);
        if out.success() && out.stdout.trim() == "pong" {
            answer = Some(out);
            break;
        }
    }
    let status = server.wait().expect("wait for the server container");
    assert!(answer.is_some(), "no answer through container:web");
    assert!(status.success(), "server: {status:?}");
    assert_clean(&rstack);
}

fn send_sigterm(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

fn bad_input() {
    let rstack = Rstack::new();
    let img = image();
    let registry_host = img.split('/').next().unwrap().to_owned();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                format!("{registry_host}/no-such-image:latest"),
                "true".into(),
            ],
            125,
            "no-such-image",
        ),
        (
            vec!["--memory".into(), "12x".into(), img.clone(), "true".into()],
            125,
            "invalid size: '12x'",
        ),
        (
            vec!["-u".into(), "nosuchuser".into(), img.clone(), "true".into()],
            125,
            "unable to find user nosuchuser",
        ),
        (
            vec![img.clone(), "nosuchcmd".into()],
            127,
            "exec: \"nosuchcmd\": executable file not found in $PATH",
        ),
        (
            vec![
                "-v".into(),
                "/proc/no/such/dir:/x".into(),
                img.clone(),
                "true".into(),
            ],
            125,
            "/proc/no/such/dir",
        ),
        (
            vec!["--cpus".into(), "lots".into(), img.clone(), "true".into()],
            125,
            "--cpus",
        ),
        (
            vec![
                "--network".into(),
                "container:nosuch".into(),
                img.clone(),
                "true".into(),
            ],
            125,
            "nosuch",
        ),
    ];
    for (args, expected, needle) in cases {
        let mut full = vec!["container".to_owned(), "run".into(), "--rm".into()];
        full.extend(args);
        let out = rstack.run(&full);
        assert_eq!(code(&out), Some(expected), "{out}");
        out.assert_stderr_mentions(&[needle]);
        assert_clean(&rstack);
    }
}
