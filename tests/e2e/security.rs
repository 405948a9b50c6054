//! Containment, probed from inside as an attacker would: a container cannot
//! raise its own cgroup limits nor see a host cgroup root (`release_agent`);
//! an image's symlinks cannot point its working directory at the host; the
//! PID 1 of an `--init` container and of a stack's `init: true` service
//! holds only fds 0-2.

use std::path::Path;

use libtest_mimic::Trial;
use rstack_e2e::{Fixtures, Need, Rstack, trial};

use crate::sandbox::{DownOnPanic, NEEDS as STACK_NEEDS, NetNs, args, setup};

const NEEDS: &[Need] = &[Need::Root, Need::Registry, Need::Rstack, Need::Overlay];

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "security::cgroup_limits_cannot_be_raised_from_inside",
            NEEDS,
            cgroup_limits_stay,
        ),
        trial(
            "security::hostile_workdir_stays_in_the_rootfs",
            NEEDS,
            hostile_workdir,
        ),
        trial("security::huge_env_starts", NEEDS, huge_env),
        trial(
            "security::privileged_sees_host_devices",
            NEEDS,
            privileged_devices,
        ),
        trial(
            "security::init_holds_only_stdio",
            STACK_NEEDS,
            init_holds_only_stdio,
        ),
    ]
}

fn image() -> String {
    Fixtures::shared().busybox_v2s2.reference()
}

/// Tries to lift the pids and memory limits (v1 and v2 file names), then
/// reports what it sees of the cgroup file systems.
const LIFT: &str = r#"
for f in /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max; do
  [ -f $f ] || continue
  echo max > $f 2>/dev/null && echo RAISED $f
  echo "pids.max=$(cat $f)"
done
for f in /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes /sys/fs/cgroup/memory.max; do
  [ -f $f ] || continue
  echo -1 > $f 2>/dev/null && echo RAISED $f
  echo max > $f 2>/dev/null && echo RAISED $f
done
mkdir /sys/fs/cgroup/pids/escape 2>/dev/null && echo RAISED mkdir
echo "agents=$(find /sys/fs/cgroup -name release_agent | wc -l)"
echo "dirs=$(ls /sys/fs/cgroup | tr '\n' ' ')"
grep -E ' - cgroup2? ' /proc/self/mountinfo | awk '{print "mount " $5 " " $6}'
"#;

fn cgroup_limits_stay() {
    let r = Rstack::new();
    let img = image();
    for caps in [&["--cap-drop", "ALL"][..], &[][..]] {
        let mut a = vec!["container", "run", "--rm"];
        a.extend_from_slice(caps);
        a.extend(["--pids-limit", "50", "-m", "32m", &img, "sh", "-c", LIFT]);
        let out = r.ok(&a);
        assert!(!out.stdout.contains("RAISED"), "a limit was raised:\n{out}");
        assert!(out.stdout.contains("pids.max=50"), "{out}");
        assert!(
            out.stdout.contains("agents=0"),
            "release_agent visible:\n{out}"
        );
        assert!(
            !out.stdout.contains("systemd"),
            "name=systemd visible:\n{out}"
        );
        for line in out.stdout.lines().filter(|l| l.starts_with("mount ")) {
            let opts = line.rsplit(' ').next().unwrap_or_default();
            assert!(
                opts.split(',').any(|o| o == "ro"),
                "a writable cgroup mount: {line}\n{out}"
            );
        }
        assert!(
            out.stdout.lines().any(|l| l.starts_with("mount ")),
            "no cgroup mount at all:\n{out}"
        );
    }
    // the cgroup namespace: private by default (paths from its root),
    // the host's with --cgroupns host (the full path, under rstack/)
    let own = r.ok(&["container", "run", "--rm", &img, "cat", "/proc/self/cgroup"]);
    assert!(!own.stdout.contains("rstack"), "private cgroupns:\n{own}");
    let host = r.ok(&[
        "container",
        "run",
        "--rm",
        "--cgroupns",
        "host",
        &img,
        "cat",
        "/proc/self/cgroup",
    ]);
    assert!(host.stdout.contains("rstack/"), "--cgroupns host:\n{host}");
    // with the limits in force a fork bomb stops at 50
    let out = r.run(&[
        "container",
        "run",
        "--rm",
        "--pids-limit",
        "50",
        &img,
        "sh",
        "-c",
        "echo max > /sys/fs/cgroup/pids/pids.max 2>/dev/null; \
         for i in $(seq 1 80); do sleep 5 & done; echo all-forked",
    ]);
    assert!(!out.stdout.contains("all-forked"), "{out}");
    r.assert_no_leaks();
}

fn hostile_workdir() {
    let r = Rstack::new();
    let victim = format!("/tmp/rstack-e2e-victim-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&victim);
    let dir = r.work_dir().join("hostile");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {}\nRUN ln -s /../../../../..{victim} /wd && mkdir -p /srv/app && ln -s /srv/app /app\n",
            image()
        ),
    )
    .unwrap();
    r.ok(&[
        "image",
        "build",
        "-t",
        "e2e/hostile-workdir:1",
        dir.to_str().unwrap(),
    ]);
    let out = r.run(&[
        "container",
        "run",
        "--rm",
        "-w",
        "/wd/created-by-workdir",
        "e2e/hostile-workdir:1",
        "true",
    ]);
    assert!(
        !Path::new(&victim).exists(),
        "the working directory was created on the host: {victim}\n{out}"
    );
    if !out.success() {
        out.assert_stderr_mentions(&["/wd/created-by-workdir"]);
    }
    // a mount point through the same link: nothing on the host either,
    // and the error names the path
    let src = r.work_dir().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let vol = format!("{}:/wd/mnt", src.display());
    let out = r.run(&[
        "container",
        "run",
        "--rm",
        "-v",
        &vol,
        "e2e/hostile-workdir:1",
        "true",
    ]);
    assert!(
        !Path::new(&victim).exists(),
        "a mount point on the host:\n{out}"
    );
    assert!(!out.success(), "{out}");
    out.assert_stderr_mentions(&["mount point '/wd/mnt'"]);
    // a link that stays inside is followed, as with docker
    let out = r.ok(&[
        "container",
        "run",
        "--rm",
        "-w",
        "/app/data",
        "e2e/hostile-workdir:1",
        "sh",
        "-c",
        "pwd; ls -d /srv/app/data",
    ]);
    assert!(out.stdout.contains("/srv/app/data"), "{out}");
    r.assert_no_leaks();
}

/// 100,000 environment variables (an image's `Env` and `--env-file` go
/// through the same merge) start at once; more than execve takes is a
/// clear error, not a silent exit 255.
fn huge_env() {
    let r = Rstack::new();
    let img = image();
    let file = r.work_dir().join("big.env");
    let body: String = (0..100_000).map(|i| format!("V{i}=x\n")).collect();
    std::fs::write(&file, body).unwrap();
    let started = std::time::Instant::now();
    // `env` itself, not a shell: busybox sh takes seconds to import 100k
    // variables, which is the workload's cost, not rstack's
    let out = r.ok(&[
        "container",
        "run",
        "--rm",
        "--env-file",
        file.to_str().unwrap(),
        &img,
        "env",
    ]);
    eprintln!("100k variables: container run took {:?}", started.elapsed());
    let n = out.stdout.lines().filter(|l| l.starts_with('V')).count();
    assert_eq!(n, 100_000, "variables in the container");
    let body: String = (0..300_000).map(|i| format!("VAR{i}=xxxx\n")).collect();
    std::fs::write(&file, body).unwrap();
    let out = r.fails(&[
        "container",
        "run",
        "--rm",
        "--env-file",
        file.to_str().unwrap(),
        &img,
        "true",
    ]);
    out.assert_stderr_mentions(&["execve(2) accepts"]);
    r.assert_no_leaks();
}

/// `--privileged` gives the host's device nodes, as Docker does; a default
/// container only the standard ones.
fn privileged_devices() {
    use std::os::unix::fs::FileTypeExt;
    let standard = [
        "null", "zero", "full", "random", "urandom", "tty", "console", "ptmx",
    ];
    let host: Vec<String> = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_type()
                .is_ok_and(|t| t.is_char_device() || t.is_block_device())
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !standard.contains(&n.as_str()))
        .collect();
    let Some(dev) = host.first() else {
        panic!("this host has no device node beyond the standard ones in /dev");
    };
    let r = Rstack::new();
    let img = image();
    let path = format!("/dev/{dev}");
    let out = r.ok(&[
        "container",
        "run",
        "--rm",
        "--privileged",
        &img,
        "ls",
        &path,
    ]);
    assert_eq!(out.stdout.trim(), path, "{out}");
    let out = r.run(&["container", "run", "--rm", &img, "ls", &path]);
    assert!(!out.success(), "{path} in a default container:\n{out}");
    r.assert_no_leaks();
}

/// The fds of PID 1, sorted, as one line (the shell's own list would race
/// with the pipes it makes for this very pipeline).
const FDS: &str = "ls /proc/1/fd | sort -n | tr '\\n' ' '";

fn init_holds_only_stdio() {
    let r = Rstack::new();
    let out = r.ok(&[
        "container",
        "run",
        "--rm",
        "--init",
        &image(),
        "sh",
        "-c",
        FDS,
    ]);
    assert_eq!(
        out.stdout, "0 1 2 ",
        "fds of PID 1 and of the command:\n{out}"
    );

    // a stack service with init: true: PID 1 must not hold the
    // supervisor's DNS sockets, its root dir or pipes
    let ns = NetNs::new();
    let (r, _image, base) = setup(
        "services:\n  web:\n    image: IMAGE\n    init: true\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n",
    );
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    let out = ns.ok(&r, &args(&base, &["exec", "-T", "web", "sh", "-c", FDS]));
    assert_eq!(out.stdout, "0 1 2 ", "PID 1's fds:\n{out}");
    // an exec'd process: 0-2, and the directory `ls` itself opened
    let out = ns.ok(
        &r,
        &args(&base, &["exec", "-T", "web", "ls", "/proc/self/fd"]),
    );
    assert_eq!(
        out.stdout, "0\n1\n2\n3\n",
        "an exec'd process's fds:\n{out}"
    );
    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
}
