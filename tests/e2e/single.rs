//! Single long-lived containers (`container run -d`) as a Docker tutorial
//! uses them: a detached server on a published port, `stop`/`start`/
//! `restart`/`kill`/`rm` by name, restart policies, `--health-cmd`, named
//! volumes created on first use, and the supervisor's SIGKILL: the
//! container keeps running, every command still works and re-adopts it.

use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use rstack_e2e::{Fixtures, Rstack, trial};

use crate::sandbox::{NEEDS, NetNs};

pub fn tests() -> Vec<Trial> {
    vec![
        trial("single::detached_server_stop_start_rm", NEEDS, server),
        trial(
            "single::restart_health_and_supervisor_kill",
            NEEDS,
            policies,
        ),
        trial("single::bad_input_leaves_nothing", NEEDS, bad_input),
        trial("single::user_network_names_and_connect", NEEDS, networks),
    ]
}

/// Removes every container if the test fails half-way.
struct RmOnPanic<'a>(&'a NetNs, &'a Rstack);

impl Drop for RmOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let ids = self.0.rstack(self.1, &["container", "ls", "-aq"]).stdout;
            for id in ids.split_whitespace() {
                let _ = self.0.rstack(self.1, &["container", "rm", "-f", id]);
            }
            let _ = self.0.rstack(self.1, &["network", "rm", "bridge"]);
        }
    }
}

fn image(r: &Rstack) -> String {
    let image = Fixtures::shared().busybox_v2s2.reference();
    r.ok(&["pull", "-q", &image]);
    image
}

/// `container ls -a --format '{{.Names}} {{.State}}'` of `name`.
fn state(ns: &NetNs, r: &Rstack, name: &str) -> String {
    let out = ns.ok(
        r,
        &["container", "ls", "-a", "--format", "{{.Names}} {{.State}}"],
    );
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
        .unwrap_or_default()
}

fn inspect(ns: &NetNs, r: &Rstack, name: &str) -> serde_json::Value {
    ns.ok(r, &["container", "inspect", name]).json()[0].clone()
}

/// Polls `what` until it holds (60 s).
fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The pid of the supervisor of single container `name`.
fn supervisor_pid(r: &Rstack, name: &str) -> i32 {
    for e in std::fs::read_dir(r.run_root().join("projects")).unwrap() {
        let dir = e.unwrap().path();
        let Ok(doc) = std::fs::read_to_string(dir.join("container.json")) else {
            continue;
        };
        let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
        if doc["services"].get(name).is_some() {
            let sup = std::fs::read_to_string(dir.join("supervisor.json")).unwrap();
            let sup: serde_json::Value = serde_json::from_str(&sup).unwrap();
            return sup["pid"].as_i64().unwrap() as i32;
        }
    }
    panic!("no single project for {name}");
}

/// SIGKILL of a supervisor this test started.
fn kill9(pid: i32) {
    let st = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

fn server() {
    let ns = NetNs::new();
    let r = Rstack::new().with_timeout(Duration::from_secs(120));
    let img = image(&r);
    let _guard = RmOnPanic(&ns, &r);
    let script = "mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 80 -h /www";
    let run = ns.ok(
        &r,
        &[
            "container",
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            "8080:80",
            &img,
            "sh",
            "-c",
            script,
        ],
    );
    let id = run.stdout.trim().to_owned();
    assert!(
        id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{run}"
    );
    let fetch = || ns.sh("timeout 3 busybox wget -q -O - http://127.0.0.1:8080/ 2>/dev/null");
    until("web to serve on 8080", || fetch() == "served\n");
    assert_eq!(state(&ns, &r, "web"), "running");
    // a single container carries no compose labels, and `ls` of compose
    // projects does not list it
    let labelled = ns.ok(
        &r,
        &[
            "container",
            "ls",
            "-q",
            "--filter",
            "label=com.docker.compose.project",
        ],
    );
    assert_eq!(labelled.stdout, "", "{labelled}");
    assert_eq!(ns.ok(&r, &["ls", "-q"]).stdout, "");
    ns.fails(
        &r,
        &["container", "rm", "web"],
        &["container is running", "force remove"],
    );
    ns.ok(&r, &["container", "exec", &id[..12], "touch", "/kept"]);
    let stop = ns.ok(&r, &["container", "stop", "-t", "1", "web"]);
    assert_eq!(stop.stdout, "web\n", "{stop}");
    assert_eq!(state(&ns, &r, "web"), "exited");
    assert_eq!(fetch(), "");
    let start = ns.ok(&r, &["container", "start", "web"]);
    assert_eq!(start.stdout, "web\n", "{start}");
    until("web to serve again", || fetch() == "served\n");
    assert_eq!(
        inspect(&ns, &r, "web")["Id"],
        id.as_str(),
        "start keeps the id"
    );
    ns.ok(&r, &["container", "exec", "web", "test", "-f", "/kept"]);
    ns.ok(&r, &["container", "restart", "-t", "1", "web"]);
    until("web to serve after restart", || fetch() == "served\n");
    info_commands(&ns, &r, &img);
    ns.ok(&r, &["container", "kill", "web"]);
    until("web to be killed", || state(&ns, &r, "web") == "exited");
    ns.ok(&r, &["container", "start", "web"]);
    ns.ok(&r, &["container", "pause", "web"]);
    assert_eq!(state(&ns, &r, "web"), "paused");
    ns.ok(&r, &["container", "unpause", "web"]);
    volumes_and_create(&ns, &r, &img);
}

/// A named volume created on first use and kept; `create` then `start`;
/// then nothing is left.
fn volumes_and_create(ns: &NetNs, r: &Rstack, img: &str) {
    // a named volume is created on first use, filled, and outlives the container
    ns.ok(
        r,
        &[
            "container",
            "run",
            "-d",
            "--name",
            "vol",
            "-v",
            "dados-app:/data",
            img,
            "sh",
            "-c",
            "echo kept > /data/f; exec sleep 3600",
        ],
    );
    until("the volume to be written", || {
        ns.rstack(r, &["container", "exec", "vol", "cat", "/data/f"])
            .stdout
            == "kept\n"
    });
    let rm = ns.ok(r, &["container", "rm", "-f", "web", "vol"]);
    assert_eq!(rm.stdout, "web\nvol\n", "{rm}");
    assert!(
        ns.ok(r, &["volume", "ls", "-q"])
            .stdout
            .contains("dados-app")
    );
    ns.ok(r, &["volume", "rm", "dados-app"]);
    assert_eq!(ns.ok(r, &["container", "ls", "-aq"]).stdout, "");
    // create records it (Created, its id), start runs it with that id
    let made = ns.ok(
        r,
        &[
            "container",
            "create",
            "--name",
            "made",
            img,
            "sleep",
            "3600",
        ],
    );
    assert_eq!(state(ns, r, "made"), "created");
    ns.ok(r, &["container", "start", "made"]);
    assert_eq!(state(ns, r, "made"), "running");
    assert_eq!(inspect(ns, r, "made")["Id"], made.stdout.trim());
    ns.ok(r, &["container", "rm", "-f", "made"]);
    ns.ok(r, &["network", "rm", "bridge"]);
    ns.assert_clean(r);
}

/// `port`, `top`, `stats`, `cp` both ways, `wait` and `prune` on the
/// running `web` and a short-lived container.
fn info_commands(ns: &NetNs, r: &Rstack, img: &str) {
    let port = ns.ok(r, &["container", "port", "web"]);
    assert_eq!(port.stdout, "80/tcp -> 0.0.0.0:8080\n", "{port}");
    assert_eq!(
        ns.ok(r, &["container", "port", "web", "80"]).stdout,
        "0.0.0.0:8080\n"
    );
    let sized = ns.ok(r, &["container", "ls", "-s", "--filter", "name=web"]);
    let head = sized.stdout.lines().next().unwrap_or_default();
    assert!(
        head.ends_with("SIZE") && sized.stdout.contains("(virtual "),
        "{sized}"
    );
    let top = ns.ok(r, &["container", "top", "web"]);
    assert!(
        top.stdout.starts_with("UID") && top.stdout.contains("httpd"),
        "{top}"
    );
    let stats = ns.ok(r, &["container", "stats", "--no-stream", "web"]);
    assert!(
        stats
            .stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("web")),
        "{stats}"
    );
    let host = r.work_dir().join("note.txt");
    std::fs::write(&host, "from host\n").unwrap();
    ns.ok(
        r,
        &[
            "container",
            "cp",
            host.to_str().unwrap(),
            "web:/tmp/note.txt",
        ],
    );
    let got = ns.ok(r, &["container", "exec", "web", "cat", "/tmp/note.txt"]);
    assert_eq!(got.stdout, "from host\n");
    let out = r.work_dir().join("index.html");
    ns.ok(
        r,
        &[
            "container",
            "cp",
            "web:/www/index.html",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "served\n");
    let id = ns.ok(
        r,
        &[
            "container",
            "run",
            "-d",
            "--name",
            "short",
            img,
            "sh",
            "-c",
            "exit 7",
        ],
    );
    let wait = ns.ok(r, &["container", "wait", "short"]);
    assert_eq!(wait.stdout, "7\n", "{wait}");
    let prune = ns.ok(r, &["container", "prune", "-f"]);
    assert!(prune.stdout.starts_with("Deleted Containers:\n"), "{prune}");
    assert!(prune.stdout.contains(id.stdout.trim()), "{prune}");
    assert_eq!(state(ns, r, "short"), "");
    assert_eq!(state(ns, r, "web"), "running");
}

fn policies() {
    let ns = NetNs::new();
    let r = Rstack::new().with_timeout(Duration::from_secs(120));
    let img = image(&r);
    let _guard = RmOnPanic(&ns, &r);
    on_failure(&ns, &r, &img);
    health(&ns, &r, &img);
    supervisor_sigkill(&ns, &r, &img);
    unless_stopped_and_update(&ns, &r, &img);
    ns.ok(
        &r,
        &["container", "rm", "-f", "flaky", "hc", "loop", "us", "upd"],
    );
    ns.ok(&r, &["network", "rm", "bridge"]);
    ns.assert_clean(&r);
}

/// `--restart on-failure:2`: two restarts, then exited with its code.
fn on_failure(ns: &NetNs, r: &Rstack, img: &str) {
    ns.ok(
        r,
        &[
            "container",
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            img,
            "sh",
            "-c",
            "sleep 0.2; exit 3",
        ],
    );
    until("two restarts then exited", || {
        let i = inspect(ns, r, "flaky");
        i["RestartCount"] == 2 && i["State"]["Status"] == "exited" && i["State"]["ExitCode"] == 3
    });
    std::thread::sleep(Duration::from_millis(500));
    let i = inspect(ns, r, "flaky");
    assert_eq!(
        (i["RestartCount"].clone(), i["State"]["Status"].clone()),
        (2.into(), "exited".into())
    );
}

/// `--health-cmd`: unhealthy, then healthy once the check passes.
fn health(ns: &NetNs, r: &Rstack, img: &str) {
    ns.ok(
        r,
        &[
            "container",
            "run",
            "-d",
            "--name",
            "hc",
            "--health-cmd",
            "test -f /tmp/ok",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            img,
            "sleep",
            "3600",
        ],
    );
    until("hc unhealthy", || {
        status(ns, r, "hc").contains("(unhealthy)")
    });
    ns.ok(r, &["container", "exec", "hc", "touch", "/tmp/ok"]);
    until("hc healthy", || status(ns, r, "hc").contains("(healthy)"));
}

/// SIGKILL of supervisors: the containers keep running; ls, logs, exec
/// and stop work; exec and start re-adopt, and restarts resume.
fn supervisor_sigkill(ns: &NetNs, r: &Rstack, img: &str) {
    // SIGKILL of the supervisor: the container keeps running, and ls,
    // logs, exec and stop still work (stop re-adopts it first)
    ns.ok(
        r,
        &[
            "container",
            "run",
            "-d",
            "--name",
            "loop",
            "--restart",
            "always",
            img,
            "sh",
            "-c",
            "echo round; sleep 1; exit 1",
        ],
    );
    // (killed while it runs: killed during a backoff, it would stay
    // "restarting" until re-adopted)
    until("a restart of loop, running", || {
        inspect(ns, r, "loop")["RestartCount"].as_u64() >= Some(1)
            && state(ns, r, "loop") == "running"
    });
    let hc_sup = supervisor_pid(r, "hc");
    kill9(hc_sup);
    kill9(supervisor_pid(r, "loop"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(ns, r, "hc"), "running");
    // loop exits with no supervisor to restart it
    until("loop to exit unsupervised", || {
        state(ns, r, "loop") == "exited"
    });
    let logs = ns.ok(r, &["container", "logs", "loop"]);
    assert!(logs.stdout.starts_with("round\n"), "{logs}");
    // exec of a running container re-adopts it: a new supervisor
    let exec = ns.ok(r, &["container", "exec", "hc", "echo", "still here"]);
    assert_eq!(exec.stdout, "still here\n");
    let new_sup = supervisor_pid(r, "hc");
    assert_ne!(new_sup, hc_sup, "exec started a new supervisor");
    assert!(std::path::Path::new(&format!("/proc/{new_sup}")).exists());
    until("hc healthy again, probed by the new supervisor", || {
        status(ns, r, "hc").contains("(healthy)")
    });
    ns.ok(r, &["container", "stop", "-t", "1", "hc"]);
    assert_eq!(state(ns, r, "hc"), "exited");
    // `start` re-adopts loop and its restarts resume
    let before = inspect(ns, r, "loop")["RestartCount"].as_u64().unwrap();
    ns.ok(r, &["container", "start", "loop"]);
    until("restarts to resume", || {
        inspect(ns, r, "loop")["RestartCount"].as_u64().unwrap() > before
    });
}

/// `unless-stopped` stays stopped after `stop` and a supervisor SIGKILL;
/// `update` changes limits and policy.
fn unless_stopped_and_update(ns: &NetNs, r: &Rstack, img: &str) {
    // unless-stopped stays stopped after `stop` and a supervisor SIGKILL
    ns.ok(
        r,
        &[
            "container",
            "run",
            "-d",
            "--name",
            "us",
            "--restart",
            "unless-stopped",
            img,
            "sleep",
            "3600",
        ],
    );
    ns.ok(r, &["container", "stop", "-t", "1", "us"]);
    kill9(supervisor_pid(r, "us"));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(state(ns, r, "us"), "exited");
    // update: the memory limit at once, the restart policy by the
    // supervisor that adopts it
    ns.ok(
        r,
        &[
            "container",
            "run",
            "-d",
            "--name",
            "upd",
            img,
            "sh",
            "-c",
            "sleep 1; exit 1",
        ],
    );
    let upd = ns.ok(
        r,
        &[
            "container",
            "update",
            "--restart",
            "always",
            "-m",
            "64m",
            "upd",
        ],
    );
    assert_eq!(upd.stdout, "upd\n", "{upd}");
    let stats = ns.ok(r, &["container", "stats", "--no-stream", "upd"]);
    assert!(stats.stdout.contains("/ 64.00MiB"), "{stats}");
    until("upd restarted by its new policy", || {
        inspect(ns, r, "upd")["RestartCount"].as_u64() >= Some(1)
    });
    ns.fails(
        r,
        &["container", "update", "--restart", "often", "upd"],
        &["invalid restart policy"],
    );
}

/// `container ls` STATUS of `n` (`Up 2 seconds (healthy)`), with its name.
fn status(ns: &NetNs, r: &Rstack, n: &str) -> String {
    let out = ns.ok(
        r,
        &["container", "ls", "--format", "{{.Names}} {{.Status}}"],
    );
    out.stdout
        .lines()
        .find(|l| l.starts_with(&format!("{n} ")))
        .unwrap_or("")
        .to_owned()
}

fn bad_input() {
    let ns = NetNs::new();
    let r = Rstack::new().with_timeout(Duration::from_secs(120));
    let img = image(&r);
    let _guard = RmOnPanic(&ns, &r);
    ns.ok(
        &r,
        &[
            "container",
            "run",
            "-d",
            "--name",
            "taken",
            &img,
            "sleep",
            "3600",
        ],
    );
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--name", "taken"],
            &["Conflict", "\"/taken\" is already in use"],
        ),
        (
            &["--restart", "sometimes"],
            &["invalid restart policy: sometimes"],
        ),
        (&["--name", "-bad"], &["Invalid container name (-bad)"]),
        (
            &["--health-interval", "soon"],
            &["\"soon\" for \"--health-interval\""],
        ),
        (&["--log-opt", "colour=red"], &["unknown log opt 'colour'"]),
        (
            &["-v", "x y:/d"],
            &["invalid characters for a local volume name"],
        ),
        (&["--network", "nosuch"], &["nosuch"]),
    ];
    for (flags, needles) in cases {
        let mut a = vec!["container", "run", "-d"];
        a.extend_from_slice(flags);
        a.extend([img.as_str(), "true"]);
        ns.fails(&r, &a, needles);
    }
    ns.fails(
        &r,
        &["container", "stop", "nosuch"],
        &["No such container: nosuch"],
    );
    let projects = std::fs::read_dir(r.run_root().join("projects"))
        .unwrap()
        .count();
    assert_eq!(projects, 1, "a failed run left a project behind");
    ns.ok(&r, &["container", "rm", "-f", "taken"]);
    ns.ok(&r, &["network", "rm", "bridge"]);
    ns.assert_clean(&r);
}

/// Containers of different supervisors on one user network find each
/// other by name and short id; `network connect`/`disconnect` of a
/// running single container change that both ways.
fn networks() {
    let ns = NetNs::new();
    let r = Rstack::new().with_timeout(Duration::from_secs(120));
    let img = image(&r);
    let _guard = RmOnPanic(&ns, &r);
    ns.ok(&r, &["network", "create", "minha-rede"]);
    ns.ok(&r, &["network", "create", "other"]);
    let serve = "mkdir -p /www && echo backend-ok > /www/index.html && exec httpd -f -p 80 -h /www";
    let backend = ns.ok(
        &r,
        &[
            "container",
            "run",
            "-d",
            "--name",
            "backend",
            "--network",
            "minha-rede",
            &img,
            "sh",
            "-c",
            serve,
        ],
    );
    ns.ok(
        &r,
        &[
            "container",
            "run",
            "-d",
            "--name",
            "frontend",
            "--network",
            "minha-rede",
            &img,
            "sleep",
            "3600",
        ],
    );
    ns.ok(
        &r,
        &[
            "container",
            "run",
            "-d",
            "--name",
            "lone",
            "--network",
            "other",
            &img,
            "sleep",
            "3600",
        ],
    );
    let short = &backend.stdout.trim()[..12];
    until("frontend -> backend by name", || {
        get(&ns, &r, "frontend", "backend") == "backend-ok\n"
    });
    assert_eq!(
        get(&ns, &r, "frontend", short),
        "backend-ok\n",
        "by short id"
    );
    assert_eq!(get(&ns, &r, "lone", "backend"), "", "another network");
    ns.ok(&r, &["network", "connect", "minha-rede", "lone"]);
    assert_eq!(
        get(&ns, &r, "lone", "backend"),
        "backend-ok\n",
        "after connect"
    );
    let back = ns.ok(
        &r,
        &[
            "container",
            "exec",
            "backend",
            "nslookup",
            "lone",
            "127.0.0.11",
        ],
    );
    assert!(back.stdout.contains("Address"), "backend -> lone: {back}");
    ns.ok(&r, &["network", "disconnect", "minha-rede", "lone"]);
    assert_eq!(get(&ns, &r, "lone", "backend"), "", "after disconnect");
    rename_on_network(&ns, &r);
    ns.ok(&r, &["container", "rm", "-f", "api", "frontend", "lone"]);
    let pruned = ns.ok(&r, &["network", "prune", "-f"]);
    assert_eq!(
        pruned.stdout, "Deleted Networks:\nminha-rede\nother\n\n",
        "{pruned}"
    );
    ns.assert_clean(&r);
}

/// `wget` of `http://HOST/` from container `from` ("" when it fails).
fn get(ns: &NetNs, r: &Rstack, from: &str, host: &str) -> String {
    let url = format!("http://{host}/");
    let args = [
        "container",
        "exec",
        from,
        "timeout",
        "3",
        "wget",
        "-q",
        "-O",
        "-",
        &url,
    ];
    ns.rstack(r, &args).stdout
}

/// `rename backend api`: the new name answers at once, the old one no
/// more, a taken name is refused, and it holds after a restart.
fn rename_on_network(ns: &NetNs, r: &Rstack) {
    ns.ok(r, &["container", "rename", "backend", "api"]);
    assert_eq!(
        get(ns, r, "frontend", "api"),
        "backend-ok\n",
        "by the new name"
    );
    assert_eq!(get(ns, r, "frontend", "backend"), "", "by the old name");
    ns.fails(
        r,
        &["container", "rename", "frontend", "api"],
        &["Conflict", "\"/api\""],
    );
    ns.ok(r, &["container", "restart", "-t", "1", "api"]);
    until("api after its restart", || {
        get(ns, r, "frontend", "api") == "backend-ok\n"
    });
}
