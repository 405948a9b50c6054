//! Tutorial-style stacks, run the way a `docker compose` user runs them:
//! (a) a gateway in front of three backends with healthchecks, reached
//! through a published port; (b) db + app + admin with a named volume,
//! a read-only bind mount, `.env` interpolation, a profile, an override
//! file found by discovery, and `deploy.resources` limits visible in the
//! container's cgroup and in `stats`.
//!
//! Same sandbox as the stack suite: commands run in a private network
//! namespace. (b)'s cgroup checks read cgroup v1 or v2 files, whichever
//! the host has; CI runs (b) again in the pure cgroup v2 VM
//! (`vagrant/vm-test`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use libtest_mimic::Trial;
use rstack_e2e::{Need, Rstack, RunOutput, trial};

use crate::sandbox::{DownOnPanic, NEEDS, NetNs, args, find, ps, setup, wait_for};

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "tutorial::gateway_and_three_backends",
            &[NEEDS, &[Need::Command("script")]].concat(),
            gateway_and_backends,
        ),
        trial(
            "tutorial::db_app_admin_env_profiles_cgroup_limits",
            NEEDS,
            db_app_admin,
        ),
        trial("tutorial::up_build_image_healthcheck", NEEDS, up_build),
    ]
}

const GATEWAY_STACK: &str = r#"
x-backend: &backend
  image: IMAGE
  command: ["sh", "-c", "mkdir -p /www && echo \"$$NAME at your service\" > /www/index.html && exec httpd -f -p 80 -h /www"]
  networks: [backend]
  stop_grace_period: 1s
  healthcheck:
    test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
    interval: 2s
    start_period: 10s
services:
  gateway:
    image: IMAGE
    command: ["httpd", "-f", "-p", "80", "-h", "/srv"]
    volumes: ["./gateway:/srv:ro"]
    ports: ["8080:80"]
    networks: [backend]
    stop_grace_period: 1s
    depends_on:
      api: {condition: service_healthy}
      auth: {condition: service_healthy}
      shop: {condition: service_healthy}
  api:
    <<: *backend
    environment: {NAME: api}
  auth:
    <<: *backend
    environment: {NAME: auth}
  shop:
    <<: *backend
    environment: {NAME: shop}
networks:
  backend: {}
"#;

/// A CGI script of busybox httpd that proxies to a backend by its name.
const PROXY_CGI: &str = "#!/bin/sh\n\
printf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
exec wget -q -O - \"http://${0##*/}/\"\n";

fn gateway_and_backends() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(GATEWAY_STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    let cgi = r.work_dir().join("gateway/cgi-bin");
    std::fs::create_dir_all(&cgi).unwrap();
    for b in ["api", "auth", "shop"] {
        let f = cgi.join(b);
        std::fs::write(&f, PROXY_CGI).unwrap();
        set_mode(&f, 0o755);
    }

    gateway_after_backends(&ns, &r, &base);

    // through the published port and the gateway, each backend by name
    for b in ["api", "auth", "shop"] {
        let body = ns.sh(&format!(
            "busybox wget -q -O - http://127.0.0.1:8080/cgi-bin/{b}"
        ));
        assert_eq!(body, format!("{b} at your service\n"), "via the gateway");
    }

    logs_follow(&ns, &r, &base);
    exec_on_a_terminal(&r, &base);
    logs_since_until(&ns, &r, &base);

    ns.ok(&r, &args(&base, &["down", "-t", "1"]));
    ns.assert_clean(&r);
}

/// `up --wait` starts the gateway only once every backend is healthy.
fn gateway_after_backends(ns: &NetNs, r: &Rstack, base: &[String]) {
    let up = ns.ok(r, &args(base, &["up", "-d", "--wait"]));
    // the gateway starts only once every backend is healthy
    let gateway_at = up
        .stderr
        .find("demo-gateway-1  Starting")
        .unwrap_or_else(|| panic!("{up}"));
    for b in ["api", "auth", "shop"] {
        let healthy = format!("demo-{b}-1  Healthy");
        let at = up.stderr.find(&healthy).unwrap_or_else(|| panic!("{up}"));
        assert!(
            at < gateway_at,
            "gateway started before {b} was healthy:\n{up}"
        );
    }
    let v = ps(ns, r, base);
    assert_eq!(v.len(), 4, "{v:?}");
    for b in ["api", "auth", "shop"] {
        let c = find(&v, &format!("demo-{b}-1"));
        assert_eq!(c["Health"], "healthy", "{c}");
        assert!(c["Status"].as_str().unwrap().ends_with("(healthy)"), "{c}");
    }
    assert_eq!(find(&v, "demo-gateway-1")["State"], "running");
}

/// `logs -f` follows: a line written after it started reaches it.
fn logs_follow(ns: &NetNs, r: &Rstack, base: &[String]) {
    // logs -f follows: a line written by the container after `logs -f`
    // started reaches it
    let inner = r.command(&args(base, &["logs", "-f", "--no-log-prefix", "api"]));
    let mut cmd = ns.nsenter();
    cmd.arg(inner.get_program()).args(inner.get_args());
    r.sandbox_env(&mut cmd);
    let mut follower = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("rstack logs -f");
    let (tx, rx) = mpsc::channel();
    let out = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    ns.ok(
        r,
        &args(
            base,
            &[
                "exec",
                "-T",
                "api",
                "sh",
                "-c",
                "echo followed-line > /proc/1/fd/1",
            ],
        ),
    );
    let mut seen = Vec::new();
    let got = loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) if l == "followed-line" => break true,
            Ok(l) => seen.push(l),
            Err(_) => break false,
        }
    };
    let _ = follower.kill();
    let _ = follower.wait();
    let _ = reader.join();
    assert!(got, "logs -f did not follow; it printed {seen:?}");
}

/// `exec` on a terminal gets a pseudo terminal, like docker compose exec.
fn exec_on_a_terminal(r: &Rstack, base: &[String]) {
    // exec on a terminal gets a pseudo terminal, like docker compose exec
    let line = format!(
        "{} --root {} --run-root {} {} exec api sh",
        r.bin().display(),
        r.root().display(),
        r.run_root().display(),
        base.join(" ")
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]);
    r.sandbox_env(&mut cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn script");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        std::thread::sleep(Duration::from_millis(1500));
        let _ = stdin.write_all(b"echo hi $((6*7)); tty\r");
        std::thread::sleep(Duration::from_millis(500));
        let _ = stdin.write_all(b"exit 5\r");
        std::thread::sleep(Duration::from_millis(2000));
    });
    let out = child.wait_with_output().expect("wait for script");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("hi 42\n/dev/pts/"), "no terminal: {text}");
}

/// `logs --since` / `--until` filter by the lines' timestamps.
fn logs_since_until(ns: &NetNs, r: &Rstack, base: &[String]) {
    // --since / --until filter by the lines' timestamps
    let recent = ns
        .ok(
            r,
            &args(base, &["logs", "--no-log-prefix", "--since", "10m", "api"]),
        )
        .stdout;
    assert!(recent.contains("followed-line"), "{recent}");
    let old = ns
        .ok(
            r,
            &args(base, &["logs", "--until", "2000-01-01T00:00:00Z", "api"]),
        )
        .stdout;
    assert_eq!(old, "", "--until 2000 printed lines");
    let bad = ns.rstack(r, &args(base, &["logs", "--since", "yesterday", "api"]));
    assert!(!bad.success() && bad.stderr.contains("--since"), "{bad}");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

const DB_STACK: &str = r#"
services:
  db:
    image: IMAGE
    environment:
      DB_PASSWORD: ${DB_PASSWORD:-postgres}
    command: ["sh", "-c", "[ -f /var/lib/db/rows ] || echo row1 > /var/lib/db/rows; echo boot >> /var/lib/db/boots; exec httpd -f -p 5432 -h /var/lib/db"]
    volumes: [dbdata:/var/lib/db]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:5432/rows"]
      interval: 2s
      start_period: 10s
  app:
    image: IMAGE
    environment:
      APP_MODE: ${APP_MODE}
    command: ["sh", "-c", "wget -q -O /tmp/rows http://db:5432/rows && exec httpd -f -p 80 -h /etc/app"]
    volumes: ["./conf:/etc/app:ro"]
    ports: ["${APP_PORT:-8000}:80"]
    stop_grace_period: 1s
    depends_on:
      db: {condition: service_healthy, restart: true}
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 64M, pids: 50}
  admin:
    image: IMAGE
    profiles: [debug]
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    depends_on: [db]
volumes:
  dbdata: {}
"#;

const DB_OVERRIDE: &str = r#"
services:
  app:
    environment:
      OVERRIDDEN: "yes"
    labels:
      tier: frontend
"#;

/// Runs `rstack -p demo ARGS` from `dir` (file discovery, `.env`), inside
/// the test's network namespace.
fn in_dir(ns: &NetNs, r: &Rstack, dir: &Path, more: &[&str], env: &[(&str, &str)]) -> RunOutput {
    let project = ["-p".to_owned(), "demo".to_owned()];
    let all = args(&project, more);
    let inner = r.command(&all);
    let mut cmd = ns.nsenter();
    cmd.arg(inner.get_program())
        .args(inner.get_args())
        .current_dir(dir);
    r.sandbox_env(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    r.run_command(cmd, None)
}

fn in_dir_ok(ns: &NetNs, r: &Rstack, dir: &Path, more: &[&str]) -> RunOutput {
    let out = in_dir(ns, r, dir, more, &[]);
    assert!(out.success(), "expected success:\n{out}");
    out
}

/// `--project-directory DIR -p demo`: the project of a test that runs
/// from `dir`, for the helpers that take explicit arguments.
fn project_args(dir: &Path) -> Vec<String> {
    vec![
        "--project-directory".to_owned(),
        dir.display().to_string(),
        "-p".to_owned(),
        "demo".to_owned(),
    ]
}

/// The container's recorded cgroup directories (one per hierarchy).
fn cgroup_leaves(r: &Rstack, name: &str) -> Vec<PathBuf> {
    let rec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            r.run_root()
                .join(format!("projects/demo/containers/{name}.json")),
        )
        .expect("container record"),
    )
    .unwrap();
    rec["cgroup_leaves"]
        .as_array()
        .expect("cgroup_leaves")
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect()
}

/// The first of `files` found in one of `leaves`, trimmed.
fn cgroup_value(leaves: &[PathBuf], files: &[&str]) -> Option<(String, String)> {
    for f in files {
        for l in leaves {
            if let Ok(s) = std::fs::read_to_string(l.join(f)) {
                return Some((f.to_string(), s.trim().to_owned()));
            }
        }
    }
    None
}

/// When container `name` last started, as `inspect` shows it.
fn started_at(ns: &NetNs, r: &Rstack, guard_base: &[String], name: &str) -> String {
    let out = ns.ok(
        r,
        &args(guard_base, &["inspect", "-f", "{{.State.StartedAt}}", name]),
    );
    out.stdout.trim().to_owned()
}

fn db_app_admin() {
    let ns = NetNs::new();
    // `setup` writes compose.yaml; this test runs without -f, from the dir
    let (r, _image, _base) = setup(DB_STACK);
    let dir = r.work_dir();
    let guard_base = project_args(&dir);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &guard_base,
    };
    std::fs::write(dir.join("compose.override.yaml"), DB_OVERRIDE).unwrap();
    std::fs::write(dir.join(".env"), "APP_MODE=production\nAPP_PORT=8081\n").unwrap();
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::write(dir.join("conf/app.conf"), "mode=tutorial\n").unwrap();

    interpolation(&ns, &r, &dir);
    let app_id = up_without_profile(&ns, &r, &dir, &guard_base);
    resource_limits(&ns, &r, &dir);
    let db_id = profile_then_restart(&ns, &r, &dir, &guard_base, &app_id);
    changed_config(&ns, &r, &dir, &guard_base, &db_id);
    volume_survives_down(&ns, &r, &dir);
}

/// Interpolation and the override file: the default, then the shell's value.
fn interpolation(ns: &NetNs, r: &Rstack, dir: &Path) {
    // interpolation: the default, then the shell's value over it
    let cfg = in_dir_ok(ns, r, dir, &["config", "--format", "json"]).json();
    assert_eq!(
        cfg["services"]["db"]["environment"]["DB_PASSWORD"],
        "postgres"
    );
    assert_eq!(cfg["services"]["app"]["environment"]["OVERRIDDEN"], "yes");
    assert_eq!(cfg["services"]["app"]["labels"]["tier"], "frontend");
    let cfg = in_dir(
        ns,
        r,
        dir,
        &["config", "--format", "json"],
        &[("DB_PASSWORD", "s3cret")],
    );
    assert!(cfg.success(), "{cfg}");
    assert_eq!(
        cfg.json()["services"]["db"]["environment"]["DB_PASSWORD"],
        "s3cret"
    );
}

/// Without the profile admin is not started; env, DNS, `:ro` and the port.
fn up_without_profile(
    ns: &NetNs,
    r: &Rstack,
    dir: &Path,
    guard_base: &[String],
) -> serde_json::Value {
    // without the profile, admin is not started
    in_dir_ok(ns, r, dir, &["up", "-d"]);
    let v = wait_for(ns, r, guard_base, "db and app running", |v| {
        v.len() == 2 && v.iter().all(|c| c["State"] == "running")
    });
    assert!(v.iter().all(|c| c["Service"] != "admin"), "{v:?}");
    let app_id = find(&v, "demo-app-1")["ID"].clone();

    let exec = |svc: &str, cmd: &str| -> RunOutput {
        in_dir(ns, r, dir, &["exec", "-T", svc, "sh", "-c", cmd], &[])
    };
    let env = exec("app", "echo $APP_MODE $OVERRIDDEN");
    assert_eq!(env.stdout, "production yes\n", "{env}");
    let pw = exec("db", "echo $DB_PASSWORD");
    assert_eq!(pw.stdout, "postgres\n", "{pw}");
    // the app read the db by its service name before serving
    assert_eq!(exec("app", "cat /tmp/rows").stdout, "row1\n");
    // the bind mount is read-only; the published port comes from .env
    let ro = exec("app", "touch /etc/app/x");
    assert_ne!(ro.status.code(), Some(0), "a :ro bind mount was writable");
    let body = ns.sh("busybox wget -q -O - http://127.0.0.1:8081/app.conf");
    assert_eq!(body, "mode=tutorial\n");
    app_id
}

/// `deploy.resources.limits` in the container's cgroup and in `stats`.
fn resource_limits(ns: &NetNs, r: &Rstack, dir: &Path) {
    // deploy.resources.limits in the container's cgroup (v1 or v2 files)
    let leaves = cgroup_leaves(r, "demo-app-1");
    let (f, mem) = cgroup_value(&leaves, &["memory.max", "memory.limit_in_bytes"])
        .unwrap_or_else(|| panic!("no memory controller in {leaves:?}"));
    assert_eq!(mem, (64u64 << 20).to_string(), "{f}");
    match cgroup_value(&leaves, &["cpu.max", "cpu.cfs_quota_us"]) {
        Some((f, v)) if f == "cpu.max" => assert_eq!(v, "50000 100000"),
        Some((f, v)) => {
            let period = cgroup_value(&leaves, &["cpu.cfs_period_us"]).unwrap().1;
            let ratio = v.parse::<f64>().unwrap() / period.parse::<f64>().unwrap();
            assert!((ratio - 0.5).abs() < 1e-9, "{f}: {v} / {period}");
        }
        None => panic!("no cpu controller in {leaves:?}"),
    }
    let (f, pids) = cgroup_value(&leaves, &["pids.max"])
        .unwrap_or_else(|| panic!("no pids controller in {leaves:?}"));
    assert_eq!(pids, "50", "{f}");
    // ... and in stats
    let stats = in_dir_ok(
        ns,
        r,
        dir,
        &["stats", "--no-stream", "--format", "json", "app"],
    )
    .json_lines();
    assert_eq!(stats.len(), 1, "{stats:?}");
    assert_eq!(stats[0]["Name"], "demo-app-1");
    let usage = stats[0]["MemUsage"].as_str().unwrap();
    assert!(usage.ends_with("/ 64.00MiB"), "{usage}");
    let pids: u64 = stats[0]["PIDs"].as_str().unwrap().parse().unwrap();
    assert!(pids >= 1, "{stats:?}");
}

/// `--profile debug` adds admin; restarting db restarts app, not admin.
fn profile_then_restart(
    ns: &NetNs,
    r: &Rstack,
    dir: &Path,
    guard_base: &[String],
    app_id: &serde_json::Value,
) -> serde_json::Value {
    // --profile debug adds admin and leaves the others alone
    in_dir_ok(ns, r, dir, &["--profile", "debug", "up", "-d"]);
    let v = ps(ns, r, guard_base);
    assert_eq!(find(&v, "demo-admin-1")["State"], "running", "{v:?}");
    assert_eq!(find(&v, "demo-app-1")["ID"], *app_id, "app was recreated");

    // restart db: app (depends_on restart: true) is restarted with it,
    // admin (a plain dependency) is not
    let started = |name: &str| started_at(ns, r, guard_base, name);
    let (db_started, app_started, admin_started) = (
        started("demo-db-1"),
        started("demo-app-1"),
        started("demo-admin-1"),
    );
    let db_id = find(&v, "demo-db-1")["ID"].clone();
    in_dir_ok(ns, r, dir, &["restart", "-t", "1", "db"]);
    // like `docker compose restart`, app came back only once the
    // restarted db was healthy again (its startup read db, so it runs)
    let v = ps(ns, r, guard_base);
    assert_eq!(find(&v, "demo-db-1")["Health"], "healthy", "{v:?}");
    assert_eq!(find(&v, "demo-app-1")["State"], "running", "{v:?}");
    assert_ne!(started("demo-db-1"), db_started, "db was not restarted");
    assert_ne!(started("demo-app-1"), app_started, "app was not restarted");
    assert_eq!(
        started("demo-admin-1"),
        admin_started,
        "admin was restarted"
    );
    // a restarted container is the same container, as with docker
    assert_eq!(
        find(&v, "demo-db-1")["ID"],
        db_id,
        "restart changed db's id"
    );
    assert_eq!(
        find(&v, "demo-app-1")["ID"],
        *app_id,
        "restart changed app's id"
    );
    db_id
}

/// Up with a changed db config: db recreated, app restarted, admin kept.
fn changed_config(
    ns: &NetNs,
    r: &Rstack,
    dir: &Path,
    guard_base: &[String],
    db_id: &serde_json::Value,
) {
    let exec = |svc: &str, cmd: &str| -> RunOutput {
        in_dir(ns, r, dir, &["exec", "-T", svc, "sh", "-c", cmd], &[])
    };
    let started = |name: &str| started_at(ns, r, guard_base, name);
    // up with a changed db config: db is recreated, app (restart: true)
    // restarted with it, admin stays
    let (app_started, admin_started) = (started("demo-app-1"), started("demo-admin-1"));
    let up = in_dir(
        ns,
        r,
        dir,
        &["--profile", "debug", "up", "-d", "--wait"],
        &[("DB_PASSWORD", "changed")],
    );
    assert!(up.success(), "{up}");
    let v = ps(ns, r, guard_base);
    assert_ne!(find(&v, "demo-db-1")["ID"], *db_id, "db was not recreated");
    assert_ne!(
        started("demo-app-1"),
        app_started,
        "app was not restarted:\n{up}"
    );
    assert_eq!(
        started("demo-admin-1"),
        admin_started,
        "admin was restarted"
    );
    assert_eq!(exec("db", "echo $DB_PASSWORD").stdout, "changed\n");
}

/// The named volume survives `down` and `up`, and goes with `down -v`.
fn volume_survives_down(ns: &NetNs, r: &Rstack, dir: &Path) {
    let exec = |svc: &str, cmd: &str| -> RunOutput {
        in_dir(ns, r, dir, &["exec", "-T", svc, "sh", "-c", cmd], &[])
    };
    // the named volume survives down and up, and goes with down -v
    in_dir_ok(ns, r, dir, &["--profile", "debug", "down", "-t", "1"]);
    in_dir_ok(ns, r, dir, &["up", "-d", "--wait"]);
    // booted by up, restart, up (changed), up
    assert_eq!(
        exec("db", "cat /var/lib/db/boots").stdout,
        "boot\nboot\nboot\nboot\n"
    );
    let down = in_dir_ok(ns, r, dir, &["down", "-v", "-t", "1"]);
    assert!(
        down.stderr.contains("Volume demo_dbdata  Removed"),
        "{down}"
    );
    assert!(!r.root().join("volumes/demo_dbdata").exists());
    ns.assert_clean(r);
}

/// The Dockerfile of [`up_build`]: an app whose image carries its own
/// HEALTHCHECK (the compose file has none).
const APP_DOCKERFILE: &str = "ARG BASE\n\
FROM $BASE\n\
WORKDIR /app\n\
COPY requirements.txt .\n\
RUN sed 's/^/installed /' requirements.txt > installed.txt\n\
COPY . .\n\
HEALTHCHECK --interval=1s --start-period=10s CMD wget -q -O /dev/null http://127.0.0.1:5000/\n\
CMD [\"httpd\", \"-f\", \"-p\", \"5000\", \"-h\", \"/app/static\"]\n";

/// `up --build` of a tutorial project (Dockerfile + `build: .`): the image
/// is built, its HEALTHCHECK gates a `service_healthy` dependant, the
/// published port serves it; after an edit, `up --build` rebuilds and
/// recreates only the changed service.
fn up_build() {
    let ns = NetNs::new();
    let image = rstack_e2e::Fixtures::shared().busybox_v2s2.reference();
    let r = Rstack::new().with_timeout(Duration::from_secs(300));
    r.ok(&["pull", "-q", &image]);
    let dir = r.work_dir();
    let compose = format!(
        "services:\n  web:\n    build:\n      context: .\n      args: {{BASE: \"{image}\"}}\n    ports: [\"5000:5000\"]\n    stop_grace_period: 1s\n  probe:\n    image: {image}\n    command: [\"sh\", \"-c\", \"wget -q -O - http://web:5000/ && exec sleep 1000\"]\n    stop_grace_period: 1s\n    depends_on:\n      web: {{condition: service_healthy}}\n"
    );
    std::fs::write(dir.join("compose.yaml"), compose).unwrap();
    std::fs::write(dir.join("Dockerfile"), APP_DOCKERFILE).unwrap();
    std::fs::write(dir.join("requirements.txt"), "flask\nredis\n").unwrap();
    std::fs::create_dir_all(dir.join("static")).unwrap();
    std::fs::write(dir.join("static/index.html"), "version 1\n").unwrap();
    let guard_base = project_args(&dir);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &guard_base,
    };

    let up = in_dir_ok(&ns, &r, &dir, &["up", "-d", "--build", "--wait"]);
    assert!(up.stderr.contains("RUN sed"), "no build steps shown:\n{up}");
    assert!(up.stderr.contains("Service web  Built"), "{up}");
    let v = ps(&ns, &r, &guard_base);
    let web = find(&v, "demo-web-1");
    assert_eq!(web["Image"], "demo-web", "{web}");
    assert_eq!(web["Health"], "healthy", "the image's HEALTHCHECK: {web}");
    assert_eq!(find(&v, "demo-probe-1")["State"], "running");
    let body = ns.sh("busybox wget -q -O - http://127.0.0.1:5000/");
    assert_eq!(body, "version 1\n");
    let installed = in_dir_ok(
        &ns,
        &r,
        &dir,
        &["exec", "-T", "web", "cat", "installed.txt"],
    );
    assert_eq!(installed.stdout, "installed flask\ninstalled redis\n");

    // an edit, then up --build: web is rebuilt (cached steps reused) and
    // recreated; probe is left alone
    let probe_id = find(&v, "demo-probe-1")["ID"].clone();
    std::fs::write(dir.join("static/index.html"), "version 2\n").unwrap();
    let up = in_dir_ok(&ns, &r, &dir, &["up", "-d", "--build", "--wait"]);
    assert!(up.stderr.contains("CACHED"), "no cache hit:\n{up}");
    let body = ns.sh("busybox wget -q -O - http://127.0.0.1:5000/");
    assert_eq!(body, "version 2\n", "not rebuilt:\n{up}");
    let v = ps(&ns, &r, &guard_base);
    assert_eq!(
        find(&v, "demo-probe-1")["ID"],
        probe_id,
        "probe was recreated"
    );
    assert_ne!(
        find(&v, "demo-web-1")["ID"],
        web["ID"],
        "web was not recreated"
    );

    // an image in use is not removed; down --rmi local removes the built one
    let busy = r.run(&["rmi", "demo-web"]);
    assert!(
        !busy.success()
            && busy
                .stderr
                .contains("image is being used by running container demo-web-1"),
        "{busy}"
    );
    let down = in_dir_ok(&ns, &r, &dir, &["down", "--rmi", "local", "-t", "1"]);
    assert!(down.stderr.contains("Image demo-web  Removed"), "{down}");
    let images = r.ok(&["images", "--format", "json"]).stdout;
    assert!(!images.contains("demo-web"), "{images}");
    assert!(
        images.contains("busybox"),
        "--rmi local removed the pulled image: {images}"
    );
    ns.assert_clean(&r);
}
