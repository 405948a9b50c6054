//! Healthcheck probes on the direct path (`rstack_runtime::direct_exec`):
//! exit codes and output recorded as `docker inspect` shows them, a probe
//! that outlives its timeout killed with what it started, a probe in a
//! locked-down container (read-only rootfs, non-root user, no capabilities,
//! no_new_privs, seccomp) running with exactly that, the probe inside the
//! container's namespaces and cgroups, and probes going on after the
//! supervisor was SIGKILLed and a new one re-adopted the containers.

use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use rstack_e2e::{Rstack, trial};

use crate::sandbox::{DownOnPanic, NEEDS, NetNs, args, find, setup, sigkill_supervisor, wait_for};

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "probe::exit_codes_timeouts_lockdown_readoption",
        NEEDS,
        exit_codes_timeouts_lockdown_readoption,
    )]
}

const PROBE_STACK: &str = r#"
services:
  ok:
    image: IMAGE
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $$!; done"]
    hostname: okhost
    healthcheck:
      test: ["CMD", "sh", "-c", "echo out $$(hostname); echo err >&2"]
      interval: 1s
    stop_grace_period: 1s
  bad:
    image: IMAGE
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $$!; done"]
    healthcheck:
      test: ["CMD-SHELL", "echo nope; exit 3"]
      interval: 1s
      retries: 2
    stop_grace_period: 1s
  slow:
    image: IMAGE
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $$!; done"]
    healthcheck:
      test: ["CMD", "sh", "-c", "sleep 301 & sleep 302"]
      interval: 1s
      timeout: 2s
    stop_grace_period: 1s
  locked:
    image: IMAGE
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $$!; done"]
    read_only: true
    user: "1000:1000"
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    working_dir: /tmp
    healthcheck:
      test: ["CMD-SHELL", "id -u; id -g; pwd; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; touch /probe-wrote 2>&1 || echo read-only"]
      interval: 1s
    stop_grace_period: 1s
"#;

fn exit_codes_timeouts_lockdown_readoption() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(PROBE_STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    wait_for(&ns, &r, &base, "ok healthy, bad and slow unhealthy", |v| {
        find(v, "demo-ok-1")["Health"] == "healthy"
            && find(v, "demo-bad-1")["Health"] == "unhealthy"
            && find(v, "demo-slow-1")["Health"] == "unhealthy"
            && find(v, "demo-locked-1")["Health"] == "healthy"
    });
    exit_codes_and_output(&ns, &r);
    timeout_kills_the_probe_and_its_children(&ns, &r);
    locked_down_probe(&ns, &r);
    probes_go_on_after_readoption(&ns, &r, &base);
    ns.ok(&r, &args(&base, &["down", "-t", "1"]));
    ns.assert_clean(&r);
}

/// `inspect`'s State.Health.Log of `name`.
fn health_log(ns: &NetNs, r: &Rstack, name: &str) -> Vec<serde_json::Value> {
    let state = inspect_state(ns, r, name);
    state["Health"]["Log"]
        .as_array()
        .unwrap_or_else(|| panic!("no health log in {state}"))
        .clone()
}

/// `inspect`'s State of container `name`.
fn inspect_state(ns: &NetNs, r: &Rstack, name: &str) -> serde_json::Value {
    let out = ns.ok(r, &["inspect", name]).stdout;
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
    v[0]["State"].clone()
}

fn exit_codes_and_output(ns: &NetNs, r: &Rstack) {
    let ok = health_log(ns, r, "demo-ok-1");
    let last = ok.last().unwrap();
    assert_eq!(last["ExitCode"], 0, "{last}");
    // stdout and stderr, and the container's UTS namespace
    assert_eq!(last["Output"], "out okhost\nerr\n", "{last}");
    let bad = health_log(ns, r, "demo-bad-1");
    let last = bad.last().unwrap();
    assert_eq!(last["ExitCode"], 3, "{last}");
    assert_eq!(last["Output"], "nope\n", "{last}");
    assert!(bad.len() <= 5, "docker keeps the last 5 results: {bad:?}");
}

fn timeout_kills_the_probe_and_its_children(ns: &NetNs, r: &Rstack) {
    // while a probe runs: inside the container's namespaces and cgroups
    let init = init_pid(ns, r, "demo-slow-1");
    let probe = wait_for_process("sleep 302");
    for n in ["mnt", "net", "uts", "ipc", "pid", "cgroup"] {
        let link = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(link(probe), link(init), "probe not in the {n} namespace");
    }
    let cg = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cg(probe), cg(init), "probe not in the container's cgroups");
    let log = health_log(ns, r, "demo-slow-1");
    let last = log.last().unwrap();
    assert_eq!(last["ExitCode"], -1, "{last}");
    assert_eq!(
        last["Output"], "Health check exceeded timeout (2s)",
        "{last}"
    );
    // both sleeps of every timed-out probe are gone: at most the ones of
    // the probe running now
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes("sleep 301").len();
        if left <= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} timed-out probes left");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn locked_down_probe(ns: &NetNs, r: &Rstack) {
    let log = health_log(ns, r, "demo-locked-1");
    let out = log.last().unwrap()["Output"].as_str().unwrap().to_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["1000", "1000", "/tmp"], "{out}");
    for want in [
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
    ] {
        assert!(out.contains(want), "{want} missing: {out}");
    }
    assert!(
        out.contains("Read-only file system") || out.ends_with("read-only\n"),
        "{out}"
    );
}

/// SIGKILL the supervisor; a new one (from `up -d`) re-adopts the
/// containers and their probes go on.
fn probes_go_on_after_readoption(ns: &NetNs, r: &Rstack, base: &[String]) {
    sigkill_supervisor(r, "demo");
    let seen = health_log(ns, r, "demo-ok-1").last().unwrap()["Start"].clone();
    let up = ns.ok(r, &args(base, &["up", "-d"]));
    assert!(up.stderr.contains("demo-ok-1  Running"), "{up}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = health_log(ns, r, "demo-ok-1");
        let last = log.last().unwrap();
        if last["Start"] != seen {
            assert_eq!(last["Output"], "out okhost\nerr\n", "{last}");
            break;
        }
        assert!(Instant::now() < deadline, "no probe after re-adoption");
        std::thread::sleep(Duration::from_millis(200));
    }
    let v = wait_for(ns, r, base, "health kept", |v| {
        find(v, "demo-ok-1")["Health"] == "healthy"
    });
    assert_eq!(find(&v, "demo-bad-1")["Health"], "unhealthy");
}

/// The container's init pid (`inspect`'s State.Pid).
fn init_pid(ns: &NetNs, r: &Rstack, name: &str) -> i32 {
    inspect_state(ns, r, name)["Pid"]
        .as_i64()
        .expect("State.Pid") as i32
}

/// Host pids whose command line is exactly `cmdline` (space-separated).
fn processes(cmdline: &str) -> Vec<i32> {
    let want: Vec<&str> = cmdline.split(' ').collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).filter(|a| !a.is_empty()).collect();
                args.len() == want.len() && args.iter().zip(&want).all(|(a, w)| *a == w.as_bytes())
            })
        })
        .collect()
}

fn wait_for_process(cmdline: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = processes(cmdline).first() {
            return *pid;
        }
        assert!(Instant::now() < deadline, "no process `{cmdline}`");
        std::thread::sleep(Duration::from_millis(50));
    }
}
