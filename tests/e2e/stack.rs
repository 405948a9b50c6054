//! `rstack up / ps / logs / exec / stop / start / kill / down` on real
//! multi-service stacks, as a user runs them.
//!
//! Images are pulled from the shared local registry in the host's network
//! namespace; every stack command then runs inside one private network
//! namespace (held by a `sleep` started with `unshare -n`, entered with
//! `nsenter`), so bridges, nft rules and published ports never touch the
//! host. The detached supervisor is started from there and inherits it.

use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use rstack_e2e::{Rstack, trial};

use crate::sandbox::{
    DownOnPanic, NEEDS, NetNs, args, container_cgroups, find, ps, setup, sigkill_supervisor,
    wait_for,
};

pub fn tests() -> Vec<Trial> {
    vec![
        trial("stack::up_ps_exec_logs_down", NEEDS, up_ps_exec_logs_down),
        trial(
            "stack::restart_policies_stop_start",
            NEEDS,
            restart_policies_stop_start,
        ),
        trial(
            "stack::supervisor_sigkill_readopt",
            NEEDS,
            supervisor_sigkill_readopt,
        ),
        trial(
            "stack::up_down_cycles_leak_nothing",
            NEEDS,
            up_down_cycles_leak_nothing,
        ),
        trial(
            "stack::attached_up_exit_code_from",
            NEEDS,
            attached_up_exit_code_from,
        ),
        trial(
            "stack::kill_and_down_during_a_pending_restart",
            NEEDS,
            kill_and_down_during_a_pending_restart,
        ),
    ]
}

const WEB_STACK: &str = r#"
services:
  web:
    image: IMAGE
    command: ["sh", "-c", "echo hello from web; mkdir -p /www; echo it works > /www/index.html; exec httpd -f -p 80 -h /www"]
    ports: ["8080:80"]
    networks: [front]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost/"]
      interval: 30s
      start_period: 20s
  client:
    image: IMAGE
    command: ["sh", "-c", "echo client sees $$(wget -q -O - http://web/); exec sleep 1000"]
    networks: [front]
    depends_on:
      web:
        condition: service_healthy
networks:
  front: {}
"#;

fn up_ps_exec_logs_down() {
    let ns = NetNs::new();
    let (r, image, base) = setup(WEB_STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    up_waits_for_health(&ns, &r, &base);
    let v = ps_shows_the_stack(&ns, &r, &base, &image);
    exec_dns_and_exit_codes(&ns, &r, &base);
    published_port_and_logs(&ns, &r, &base);
    one_off_runs(&ns, &r, &base);
    port_ls_pause_rerun(&ns, &r, &base, &v);

    let down = ns.ok(&r, &args(&base, &["down"]));
    assert!(
        down.stderr.contains("Network demo_front  Removed"),
        "{down}"
    );
    ns.assert_clean(&r);
}

/// `up -d` reports each step, and starts the client only once web is healthy.
fn up_waits_for_health(ns: &NetNs, r: &Rstack, base: &[String]) {
    let up = ns.ok(r, &args(base, &["up", "-d"]));
    for needle in [
        "Network demo_front  Created",
        "Container demo-web-1  Started",
        "Container demo-web-1  Healthy",
        "Container demo-client-1  Started",
    ] {
        assert!(up.stderr.contains(needle), "missing {needle:?}:\n{up}");
    }
    // the client started only once web was healthy
    let healthy_at = up.stderr.find("demo-web-1  Healthy").unwrap();
    let client_at = up.stderr.find("demo-client-1  Starting").unwrap();
    assert!(
        healthy_at < client_at,
        "client started before web was healthy:\n{up}"
    );
}

/// `ps` as JSON, as a table and as service names; returns the JSON.
fn ps_shows_the_stack(
    ns: &NetNs,
    r: &Rstack,
    base: &[String],
    image: &str,
) -> Vec<serde_json::Value> {
    let v = ps(ns, r, base);
    assert_eq!(v.len(), 2, "{v:?}");
    let web = find(&v, "demo-web-1");
    assert_eq!(web["State"], "running");
    assert_eq!(web["Health"], "healthy");
    assert_eq!(web["Service"], "web");
    assert_eq!(web["Image"], image);
    assert!(
        web["Status"].as_str().unwrap().ends_with("(healthy)"),
        "{web}"
    );
    assert_eq!(web["Publishers"][0]["PublishedPort"], 8080);
    let table = ns.ok(r, &args(base, &["ps"])).stdout;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"
        ]
    );
    assert!(table.contains("0.0.0.0:8080->80/tcp"), "{table}");
    let services = ns.ok(r, &args(base, &["ps", "--services"])).stdout;
    assert_eq!(services.lines().collect::<Vec<_>>(), ["client", "web"]);
    v
}

/// `exec`: DNS by service name, exit codes, env and working dir.
fn exec_dns_and_exit_codes(ns: &NetNs, r: &Rstack, base: &[String]) {
    // DNS by service name from another service, exit codes propagated
    let got = ns.ok(
        r,
        &args(
            base,
            &[
                "exec",
                "-T",
                "client",
                "wget",
                "-q",
                "-O",
                "-",
                "http://web/",
            ],
        ),
    );
    assert_eq!(got.stdout, "it works\n");
    let failed = ns.rstack(r, &args(base, &["exec", "-T", "web", "sh", "-c", "exit 3"]));
    assert_eq!(failed.status.code(), Some(3), "{failed}");
    let env = ns.ok(
        r,
        &args(
            base,
            &[
                "exec",
                "-T",
                "-e",
                "X=42",
                "-w",
                "/www",
                "web",
                "sh",
                "-c",
                "echo $X $(pwd)",
            ],
        ),
    );
    assert_eq!(env.stdout, "42 /www\n");
}

/// The published port answers, and `logs` with prefixes, per service, tail.
fn published_port_and_logs(ns: &NetNs, r: &Rstack, base: &[String]) {
    // the published port answers from the host side
    let body = ns.sh("busybox wget -q -O - http://127.0.0.1:8080/");
    assert_eq!(body, "it works\n");

    // logs, with prefixes, per service, tail
    let logs = ns.ok(r, &args(base, &["logs", "--no-color"])).stdout;
    assert!(logs.contains("demo-web-1    | hello from web"), "{logs}");
    assert!(
        logs.contains("demo-client-1 | client sees it works"),
        "{logs}"
    );
    let only = ns
        .ok(r, &args(base, &["logs", "--no-log-prefix", "web"]))
        .stdout;
    assert_eq!(only, "hello from web\n");
    let ts = ns
        .ok(r, &args(base, &["logs", "-t", "--tail", "1", "client"]))
        .stdout;
    assert!(ts.starts_with("demo-client-1 | 20"), "{ts}");
    let raw = std::fs::read_to_string(
        r.root()
            .join("projects/demo/logs/demo-web-1/demo-web-1-json.log"),
    )
    .expect("json log");
    let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "hello from web\n");
    assert_eq!(first["stream"], "stdout");
}

/// One-off containers: dependencies, DNS, exit codes, `--rm` leaves nothing.
fn one_off_runs(ns: &NetNs, r: &Rstack, base: &[String]) {
    // one-off containers: dependencies, DNS, exit codes, --rm leaves nothing
    let one = ns.ok(
        r,
        &args(
            base,
            &[
                "run",
                "--rm",
                "-T",
                "client",
                "wget",
                "-q",
                "-O",
                "-",
                "http://web/",
            ],
        ),
    );
    assert_eq!(one.stdout, "it works\n");
    let seven = ns.rstack(
        r,
        &args(
            base,
            &[
                "run",
                "--rm",
                "-T",
                "--no-deps",
                "web",
                "sh",
                "-c",
                "exit 7",
            ],
        ),
    );
    assert_eq!(seven.status.code(), Some(7), "{seven}");
    assert_eq!(ps(ns, r, base).len(), 2, "run --rm left a container");
}

/// `port`, `ls`, pause/unpause, and a second `up` that recreates nothing.
fn port_ls_pause_rerun(ns: &NetNs, r: &Rstack, base: &[String], v: &[serde_json::Value]) {
    // port, ls, pause/unpause
    let port = ns.ok(r, &args(base, &["port", "web", "80"])).stdout;
    assert_eq!(port, "0.0.0.0:8080\n");
    let ls = ns.ok(r, &["ls"]).stdout;
    assert!(ls.contains("demo") && ls.contains("running(2)"), "{ls}");
    ns.ok(r, &args(base, &["pause", "web"]));
    assert_eq!(find(&ps(ns, r, base), "demo-web-1")["State"], "paused");
    ns.ok(r, &args(base, &["unpause", "web"]));
    assert_eq!(find(&ps(ns, r, base), "demo-web-1")["State"], "running");

    // re-running up leaves unchanged containers alone
    let id_before = find(v, "demo-web-1")["ID"].clone();
    ns.ok(r, &args(base, &["up", "-d"]));
    let v2 = ps(ns, r, base);
    assert_eq!(
        find(&v2, "demo-web-1")["ID"],
        id_before,
        "web was recreated"
    );
}

const RESTART_STACK: &str = r#"
services:
  flaky:
    image: IMAGE
    command: ["sh", "-c", "echo try; exit 1"]
    restart: on-failure:2
  once:
    image: IMAGE
    command: ["sh", "-c", "exit 1"]
    restart: "no"
  steady:
    image: IMAGE
    command: ["sleep", "1000"]
    restart: always
    stop_grace_period: 1s
"#;

fn restart_policies_stop_start() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(RESTART_STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    let v = wait_for(&ns, &r, &base, "flaky to give up", |v| {
        let f = find(v, "demo-flaky-1");
        f["State"] == "exited" && f["RestartCount"] == 2
    });
    let once = find(&v, "demo-once-1");
    assert_eq!(once["State"], "exited");
    assert_eq!(once["ExitCode"], 1);
    assert_eq!(once["RestartCount"], 0, "restart: no restarted it");
    let tries = ns
        .ok(&r, &args(&base, &["logs", "--no-log-prefix", "flaky"]))
        .stdout;
    assert_eq!(tries, "try\ntry\ntry\n", "1 run + 2 restarts");

    // always: a kill brings it back
    let id = find(&v, "demo-steady-1")["ID"].clone();
    ns.ok(&r, &args(&base, &["kill", "steady"]));
    let v = wait_for(&ns, &r, &base, "steady to be restarted", |v| {
        let s = find(v, "demo-steady-1");
        s["State"] == "running" && s["RestartCount"] == 1
    });
    // the same container again, as with docker
    assert_eq!(find(&v, "demo-steady-1")["ID"], id);

    // a user stop is remembered: no restart
    ns.ok(&r, &args(&base, &["stop", "steady"]));
    std::thread::sleep(Duration::from_millis(500));
    let v = ps(&ns, &r, &base);
    assert_eq!(find(&v, "demo-steady-1")["State"], "exited", "{v:?}");
    let running = ns.ok(&r, &args(&base, &["ps", "-q"])).stdout;
    assert!(running.trim().is_empty(), "{running}");
    ns.ok(&r, &args(&base, &["start", "steady"]));
    let v = ps(&ns, &r, &base);
    assert_eq!(find(&v, "demo-steady-1")["State"], "running", "{v:?}");

    // --scale adds replicas and takes them away; the first one stays
    let id1 = find(&v, "demo-steady-1")["ID"].clone();
    ns.ok(
        &r,
        &args(&base, &["up", "-d", "--scale", "steady=2", "steady"]),
    );
    let v = ps(&ns, &r, &base);
    assert_eq!(find(&v, "demo-steady-2")["State"], "running", "{v:?}");
    assert_eq!(
        find(&v, "demo-steady-1")["ID"],
        id1,
        "scaling recreated replica 1"
    );
    ns.ok(&r, &args(&base, &["up", "-d", "steady"]));
    let v = ps(&ns, &r, &base);
    assert!(v.iter().all(|c| c["Name"] != "demo-steady-2"), "{v:?}");
    assert_eq!(find(&v, "demo-steady-1")["ID"], id1);
    // --scale S=0 runs no container of S, as with docker compose
    ns.ok(
        &r,
        &args(&base, &["up", "-d", "--scale", "steady=0", "steady"]),
    );
    let v = ps(&ns, &r, &base);
    assert!(
        v.iter()
            .all(|c| !c["Name"].as_str().unwrap_or("").contains("steady")),
        "{v:?}"
    );

    ns.ok(&r, &args(&base, &["down"]));
    ns.assert_clean(&r);
}

const PENDING_RESTART_STACK: &str = r#"
services:
  db:
    image: IMAGE
    # healthy on its first run only (its files survive a restart): a
    # `restart` then waits for it until the start period is over
    command: ["sh", "-c", "if [ -e /marker ]; then rm -f /ok; else touch /marker /ok; fi; trap 'exit 0' TERM; while :; do sleep 1 & wait $$!; done"]
    healthcheck:
      test: ["CMD", "test", "-e", "/ok"]
      interval: 1s
      start_period: 300s
    stop_grace_period: 1s
  web:
    image: IMAGE
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $$!; done"]
    depends_on:
      db:
        condition: service_healthy
        restart: true
    stop_grace_period: 1s
"#;

/// Control requests do not wait for each other: while a `restart` waits
/// for a healthcheck, a `kill` is answered at once and a `down` takes the
/// project down, ending the `restart` with an error.
fn kill_and_down_during_a_pending_restart() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(PENDING_RESTART_STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    std::thread::scope(|s| {
        let restart = s.spawn(|| ns.rstack(&r, &args(&base, &["restart", "db"])));
        wait_for(&ns, &r, &base, "db to run again", |v| {
            let db = find(v, "demo-db-1");
            db["State"] == "running" && find(v, "demo-web-1")["State"] == "exited"
        });
        std::thread::sleep(Duration::from_secs(2));
        assert!(!restart.is_finished(), "restart did not wait for db");
        // a signal the container ignores: answered while restart waits
        let t = Instant::now();
        ns.ok(&r, &args(&base, &["kill", "-s", "SIGWINCH", "db"]));
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "kill waited for restart"
        );
        let t = Instant::now();
        ns.ok(&r, &args(&base, &["down", "-t", "1"]));
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "down waited for restart"
        );
        let out = restart.join().expect("restart thread");
        assert!(!out.success(), "an interrupted restart must fail:\n{out}");
    });
    ns.assert_clean(&r);
}

const ADOPT_STACK: &str = r#"
services:
  steady:
    image: IMAGE
    command: ["sh", "-c", "i=0; while true; do echo tick $$i; i=$$((i+1)); sleep 0.2; done"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
      start_period: 5s
  web:
    image: IMAGE
    command: ["httpd", "-f", "-p", "80", "-h", "/etc"]
    stop_grace_period: 1s
"#;

fn supervisor_sigkill_readopt() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(ADOPT_STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    let before = wait_for(&ns, &r, &base, "steady healthy", |v| {
        find(v, "demo-steady-1")["Health"] == "healthy"
    });
    kill_supervisor(&ns, &r, &base);
    readopted_not_restarted(&ns, &r, &base, &before);
    logs_and_dns_after_adoption(&ns, &r, &base);
    healthchecks_resume(&ns, &r, &base);
    ns.ok(&r, &args(&base, &["down", "-t", "1"]));
    ns.assert_clean(&r);
}

/// SIGKILLs the supervisor: containers keep running, `ps` and `exec` work.
fn kill_supervisor(ns: &NetNs, r: &Rstack, base: &[String]) {
    sigkill_supervisor(r, "demo");
    // containers keep running; ps still right without a supervisor
    let during = ps(ns, r, base);
    for c in &during {
        assert_eq!(c["State"], "running", "{c}");
    }
    // exec needs no supervisor (DNS is served by it: back after adoption)
    let got = ns.ok(
        r,
        &args(
            base,
            &[
                "exec",
                "-T",
                "web",
                "wget",
                "-q",
                "-O",
                "-",
                "http://127.0.0.1/hostname",
            ],
        ),
    );
    assert!(
        !got.stdout.is_empty(),
        "web broken after the supervisor died"
    );
}

/// A new supervisor adopts the containers: nothing is recreated.
fn readopted_not_restarted(ns: &NetNs, r: &Rstack, base: &[String], before: &[serde_json::Value]) {
    // a new supervisor adopts them: nothing restarted
    let up = ns.ok(r, &args(base, &["up", "-d"]));
    assert!(up.stderr.contains("demo-steady-1  Running"), "{up}");
    let after = ps(ns, r, base);
    for name in ["demo-steady-1", "demo-web-1"] {
        assert_eq!(
            find(&after, name)["ID"],
            find(before, name)["ID"],
            "{name} was recreated"
        );
        assert_eq!(find(&after, name)["State"], "running");
    }
}

/// No log line lost while no supervisor ran, and DNS served again.
fn logs_and_dns_after_adoption(ns: &NetNs, r: &Rstack, base: &[String]) {
    // logs written while no supervisor ran are not lost
    let ticks = ns
        .ok(r, &args(base, &["logs", "--no-log-prefix", "steady"]))
        .stdout;
    let n: Vec<u64> = ticks
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert!(n.len() > 3, "{ticks}");
    for w in n.windows(2) {
        assert_eq!(w[1], w[0] + 1, "lost or doubled lines: {ticks}");
    }
    // DNS is served again for adopted containers
    let got = ns.ok(
        r,
        &args(
            base,
            &[
                "exec",
                "-T",
                "steady",
                "wget",
                "-q",
                "-O",
                "-",
                "http://web/hostname",
            ],
        ),
    );
    assert!(!got.stdout.is_empty(), "no DNS after adoption");
}

/// Healthchecks resume on the adopted container.
fn healthchecks_resume(ns: &NetNs, r: &Rstack, base: &[String]) {
    // healthchecks resume on the adopted container: new probe results appear
    let probes = |r: &Rstack| -> Vec<String> {
        let rec: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                r.run_root()
                    .join("projects/demo/containers/demo-steady-1.json"),
            )
            .unwrap(),
        )
        .unwrap();
        rec["health"]["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["start"].as_str().unwrap().to_owned())
            .collect()
    };
    let seen = probes(r);
    let deadline = Instant::now() + Duration::from_secs(20);
    while probes(r).last() == seen.last() {
        assert!(
            Instant::now() < deadline,
            "no probe after adoption: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(find(&ps(ns, r, base), "demo-steady-1")["Health"], "healthy");
}

const CYCLE_STACK: &str = r#"
services:
  web:
    image: IMAGE
    command: ["httpd", "-f", "-p", "80", "-h", "/etc"]
    ports: ["8080:80"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost/hostname"]
      start_period: 10s
  client:
    image: IMAGE
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    depends_on:
      web: {condition: service_healthy}
  worker:
    image: IMAGE
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    volumes: [scratch:/scratch]
volumes:
  scratch: {}
"#;

/// `RSTACK_E2E_CYCLES` (default 50) `up -d` / `down -v` cycles of a
/// 3-service stack leave no mount, link, nft rule, netns, state file,
/// cgroup or process behind.
fn up_down_cycles_leak_nothing() {
    let cycles: usize = std::env::var("RSTACK_E2E_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let ns = NetNs::new();
    let (r, _image, base) = setup(CYCLE_STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    let mut ids = Vec::new();
    let started = Instant::now();
    for i in 0..cycles {
        let up = ns.ok(&r, &args(&base, &["up", "-d"]));
        assert!(
            up.stderr.contains("demo-client-1  Started"),
            "cycle {i}:\n{up}"
        );
        let q = ns.ok(&r, &args(&base, &["ps", "-q"])).stdout;
        ids.extend(q.lines().map(str::to_owned));
        ns.ok(&r, &args(&base, &["down", "-v", "-t", "1"]));
    }
    eprintln!(
        "{cycles} up -d/down cycles of 3 services: {:?} per cycle",
        started.elapsed() / cycles.max(1) as u32
    );
    ns.assert_clean(&r);
    assert_eq!(ids.len(), 3 * cycles, "{ids:?}");
    // (other tests run in parallel under the same parent: look for ours only)
    let left: Vec<_> = container_cgroups()
        .into_iter()
        .filter(|d| ids.iter().any(|id| d.ends_with(id)))
        .collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    assert!(
        !r.root().join("volumes/demo_scratch").exists(),
        "volume left behind"
    );
    let sandbox = r.dir().display().to_string();
    let mut stray = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let zombie = std::fs::read_to_string(e.path().join("stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false);
        if cmd.contains(&sandbox) && !zombie {
            stray.push(cmd);
        }
    }
    assert!(stray.is_empty(), "processes left behind: {stray:?}");
}

const ABORT_STACK: &str = r#"
services:
  app:
    image: IMAGE
    command: ["sh", "-c", "trap 'exit 0' TERM; echo app ready; while true; do sleep 0.2; done"]
  test:
    image: IMAGE
    command: ["sh", "-c", "echo testing; sleep 0.5; exit 3"]
"#;

/// Attached `up` streams prefixed logs; `--exit-code-from` stops the
/// project when a container exits and returns that service's code.
fn attached_up_exit_code_from() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(ABORT_STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    let out = ns.rstack(&r, &args(&base, &["up", "--exit-code-from", "test"]));
    assert_eq!(out.status.code(), Some(3), "{out}");
    assert!(out.stdout.contains("demo-test-1 | testing"), "{out}");
    assert!(
        out.stdout.contains("demo-test-1 exited with code 3"),
        "{out}"
    );
    assert!(
        out.stderr.contains("Container demo-app-1  Stopped"),
        "{out}"
    );
    // stopped, not removed, like docker compose
    let v = ps(&ns, &r, &base);
    assert_eq!(find(&v, "demo-app-1")["State"], "exited");
    ns.ok(&r, &args(&base, &["down"]));
    ns.assert_clean(&r);
}
