//! The commands a Docker tutorial teaches, typed verbatim through a
//! `docker` symlink, with images named as on Docker Hub and only a
//! mirror configured (a real pull-through cache of a local upstream): the
//! issue's "done when" of single containers, as a user would run it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use rstack_e2e::tcpproxy::TcpProxy;
use rstack_e2e::{Rstack, RunOutput, trial};
use serde_json::json;

use crate::personality::as_named;
use crate::registries::{Hub, write_daemon_json};
use crate::sandbox::{NEEDS, NetNs};

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "docker::tutorial_commands_verbatim_through_a_mirror",
        NEEDS,
        tutorial,
    )]
}

/// `docker ARGS` in the test's namespace; must succeed.
struct Docker<'a> {
    ns: &'a NetNs,
    r: &'a Rstack,
    link: PathBuf,
}

impl Docker<'_> {
    fn run(&self, args: &[&str]) -> RunOutput {
        as_named(self.ns, self.r, &self.link, args)
    }

    fn ok(&self, args: &[&str]) -> RunOutput {
        let out = self.run(args);
        assert!(out.success(), "docker {}:\n{out}", args.join(" "));
        out
    }

    /// `wget` of `url` from container `from` ("" when it fails).
    fn fetch(&self, from: &str, url: &str) -> String {
        self.run(&["exec", from, "timeout", "3", "wget", "-q", "-O", "-", url])
            .stdout
    }
}

/// Removes every container and network of the trial if it fails half-way
/// (their supervisors end with them).
struct CleanOnPanic<'a>(&'a Docker<'a>);

impl Drop for CleanOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let ids = self.0.run(&["ps", "-aq"]).stdout;
            for id in ids.split_whitespace() {
                let _ = self.0.run(&["rm", "-f", id]);
            }
            let _ = self.0.run(&["network", "rm", "minha-rede", "bridge"]);
        }
    }
}

fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn tutorial() {
    let hub = Hub::start();
    let ns = NetNs::new();
    let forward = TcpProxy::start_in_netns(ns.pid(), hub.mirror.addr())
        .expect("forward the netns loopback to the mirror");
    let r = Rstack::new().with_timeout(Duration::from_secs(180));
    write_daemon_json(
        &r,
        &json!({ "registry-mirrors": [format!("http://{}", forward.addr())] }),
    );
    let link = r.work_dir().join("docker");
    std::os::unix::fs::symlink(r.bin(), &link).unwrap();
    let d = Docker {
        ns: &ns,
        r: &r,
        link,
    };
    let _guard = CleanOnPanic(&d);
    let app = r.work_dir().join("minha-app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        "FROM busybox:1.35\nRUN mkdir -p /www /usr/src/app/data && echo ola > /www/index.html\n\
         CMD [\"httpd\", \"-f\", \"-p\", \"3000\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    d.ok(&["build", "-t", "minha-app", app.to_str().unwrap()]);
    assert!(forward.served() > 0, "busybox:1.35 came through the mirror");
    let images = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.stdout.contains("busybox:1.35"), "{images}");
    d.ok(&["network", "create", "minha-rede"]);
    d.ok(&[
        "volume",
        "create",
        "--driver",
        "local",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "cache",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "-v",
        "dados-app:/usr/src/app/data",
        "minha-app",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "frontend",
        "--network",
        "minha-rede",
        "-p",
        "80:3000",
        "minha-app",
    ]);
    let host = ns.sh("timeout 5 busybox wget -q -O - http://127.0.0.1:80/ 2>/dev/null");
    assert_eq!(host, "ola\n", "the published port");
    let pwd = r.work_dir();
    std::fs::write(pwd.join("arquivo"), "dados\n").unwrap();
    let bind = format!("{}:/app", pwd.display());
    let ls = d.ok(&[
        "run",
        "--rm",
        "--user",
        "1000:1000",
        "-v",
        &bind,
        "busybox:1.35",
        "cat",
        "/app/arquivo",
    ]);
    assert_eq!(ls.stdout, "dados\n");
    lifecycle(&d);
    files_and_networks(&d, &pwd);
    cleanup(&d);
    ns.assert_clean(&r);
}

/// ps, stop, start, restart, kill, rename, logs, inspect, top, port,
/// wait, stats.
fn lifecycle(d: &Docker) {
    let ps = d.ok(&["ps"]).stdout;
    assert!(
        ps.contains("frontend") && ps.contains("0.0.0.0:80->3000/tcp"),
        "{ps}"
    );
    assert_eq!(d.ok(&["ps", "-q"]).stdout.lines().count(), 2);
    assert_eq!(d.ok(&["stop", "app"]).stdout, "app\n");
    assert!(d.ok(&["ps", "-a"]).stdout.contains("Exited"));
    d.ok(&["start", "app"]);
    d.ok(&["restart", "app"]);
    d.ok(&["kill", "app"]);
    d.ok(&["rename", "app", "api"]);
    d.ok(&["start", "api"]);
    d.ok(&["logs", "frontend"]);
    let state = d.ok(&["inspect", "-f", "{{.State.Status}}", "api"]);
    assert_eq!(state.stdout.trim(), "running");
    assert!(d.ok(&["top", "frontend"]).stdout.contains("httpd"));
    assert_eq!(
        d.ok(&["port", "frontend"]).stdout,
        "3000/tcp -> 0.0.0.0:80\n"
    );
    assert!(d.ok(&["stats", "--no-stream"]).stdout.contains("frontend"));
    d.ok(&[
        "run",
        "-d",
        "--name",
        "job",
        "busybox:1.35",
        "sh",
        "-c",
        "exit 4",
    ]);
    assert_eq!(d.ok(&["wait", "job"]).stdout, "4\n");
}

/// exec, cp both ways, connect/disconnect, container prune.
fn files_and_networks(d: &Docker, pwd: &Path) {
    let arquivo = pwd.join("arquivo");
    d.ok(&["cp", arquivo.to_str().unwrap(), "frontend:/www/arquivo"]);
    assert_eq!(
        d.fetch("frontend", "http://127.0.0.1:3000/arquivo"),
        "dados\n"
    );
    let destino = pwd.join("destino");
    d.ok(&["cp", "frontend:/www/index.html", destino.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&destino).unwrap(), "ola\n");
    assert_eq!(
        d.fetch("api", "http://frontend:3000/"),
        "",
        "api is not on minha-rede"
    );
    d.ok(&["network", "connect", "minha-rede", "api"]);
    until("api -> frontend by name", || {
        d.fetch("api", "http://frontend:3000/") == "ola\n"
    });
    d.ok(&["network", "disconnect", "minha-rede", "api"]);
    assert_eq!(d.fetch("api", "http://frontend:3000/"), "");
    let pruned = d.ok(&["container", "prune", "-f"]);
    assert!(pruned.stdout.starts_with("Deleted Containers:"), "{pruned}");
    assert!(!d.ok(&["ps", "-a"]).stdout.contains("job"));
}

/// rm [-f], tag, rmi, image prune, system prune: nothing left.
fn cleanup(d: &Docker) {
    let refused = d.run(&["rm", "frontend"]);
    assert!(!refused.success(), "{refused}");
    d.ok(&["rm", "-f", "frontend", "api"]);
    d.ok(&["tag", "minha-app", "minha-app:v2"]);
    d.ok(&["rmi", "minha-app:v2"]);
    d.ok(&["image", "prune", "-f"]);
    d.ok(&["volume", "rm", "dados-app", "cache"]);
    d.ok(&["network", "rm", "minha-rede"]);
    d.ok(&["system", "prune", "-f"]);
    d.ok(&["network", "rm", "bridge"]);
}
