//! rstack beside a real Docker engine (Debian's `docker.io`): dockerd is
//! started by the test, inside the test's own network namespace (so its
//! `iptables -P FORWARD DROP`, its chains and docker0 never reach the
//! host's firewall) with its own data root, exec root and socket, and
//! stopped after. The test's stack and a Docker container work at once,
//! through a dockerd restart, and `down` leaves Docker's ruleset as it was.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use rstack_e2e::{Fixtures, Need, Rstack, trial};

use crate::sandbox::{DownOnPanic, NEEDS, NetNs, args, setup};

pub fn tests() -> Vec<Trial> {
    let mut needs = NEEDS.to_vec();
    needs.extend([
        Need::Command("dockerd"),
        Need::Command("docker"),
        Need::Command("containerd"),
        Need::Command("iptables"),
    ]);
    vec![trial(
        "docker::stack_beside_dockerd",
        &needs,
        stack_beside_dockerd,
    )]
}

/// A dockerd of the test's own in a network namespace.
struct Dockerd {
    dir: PathBuf,
    ns_pid: u32,
    child: Option<Child>,
    /// `/sys/fs/cgroup/*/docker` dirs that existed before dockerd (the
    /// others, made when it first runs a container, are removed after).
    old_cgroups: Vec<PathBuf>,
    /// [`DOCKERD_LEFTOVERS`] that did not exist before (removed after).
    new_files: Vec<PathBuf>,
}

/// Files and dirs dockerd makes outside its data and exec roots (its
/// trust key, its plugin socket dir), deepest first.
const DOCKERD_LEFTOVERS: &[&str] = &["/etc/docker/key.json", "/run/docker/plugins", "/run/docker"];

/// The `docker` cgroups dockerd makes under each hierarchy.
fn docker_cgroups() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| d.flatten().map(|e| e.path().join("docker")).collect())
        .unwrap_or_default();
    v.push(PathBuf::from("/sys/fs/cgroup/docker"));
    v.into_iter().filter(|p| p.is_dir()).collect()
}

impl Dockerd {
    fn start(ns: &NetNs, dir: &Path) -> Dockerd {
        // Docker sets `FORWARD DROP` when it has to turn IP forwarding on
        // (a new namespace inherits the host's setting, which rstack or
        // anything else may have turned on): as on a host where Docker
        // starts first
        ns.sh("sysctl -qw net.ipv4.ip_forward=0");
        let old_cgroups = docker_cgroups();
        let new_files = DOCKERD_LEFTOVERS
            .iter()
            .map(PathBuf::from)
            .filter(|p| !p.exists())
            .collect();
        let mut d = Dockerd {
            dir: dir.to_owned(),
            ns_pid: ns.pid(),
            child: None,
            old_cgroups,
            new_files,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let dir = &self.dir;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("dockerd.log"))
            .expect("dockerd log");
        let child = Command::new("nsenter")
            .args(["-t", &self.ns_pid.to_string(), "-n", "--", "dockerd"])
            .arg(format!("--data-root={}", dir.join("data").display()))
            .arg(format!("--exec-root={}", dir.join("exec").display()))
            .arg(format!("--pidfile={}", dir.join("dockerd.pid").display()))
            .arg(format!("--host=unix://{}", self.socket().display()))
            .args(["--storage-driver=overlay2", "--log-level=warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log fd")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start dockerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        while !self.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within 90 s:\n{}",
                self.log()
            );
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("dockerd exited ({st}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        let _w = rstack_e2e::watchdog::waiting_on(format!("docker {}", args.join(" ")));
        Command::new("timeout")
            .args(["-s", "KILL", "120", "docker"])
            .arg(format!("--host=unix://{}", self.socket().display()))
            .args(args)
            .env("DOCKER_CONFIG", self.dir.join("client"))
            .output()
            .expect("docker client")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGTERM, and wait for it to have cleaned up.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.docker(&["rm", "-f", "dk-web"]);
        }
        self.stop();
        rstack_e2e::leaks::detach_mounts_under(&self.dir);
        for cg in docker_cgroups() {
            if !self.old_cgroups.contains(&cg) {
                let _ = std::fs::remove_dir(&cg);
            }
        }
        for p in &self.new_files {
            let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir(p));
        }
    }
}

const STACK: &str = r#"
services:
  web:
    image: IMAGE
    command: ["sh", "-c", "mkdir -p /www && echo rstack-ok > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["8080:80"]
    stop_signal: SIGKILL
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
  app:
    image: IMAGE
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    depends_on:
      web: {condition: service_healthy}
"#;

fn stack_beside_dockerd() {
    let ns = NetNs::new();
    let work = tempfile::Builder::new()
        .prefix("rstack-e2e-dockerd-")
        .tempdir()
        .expect("dockerd dir");
    let mut dockerd = Dockerd::start(&ns, work.path());
    // Docker's image: the busybox fixture, copied by skopeo into a
    // docker-archive (the registry is on the host's loopback, dockerd's
    // namespace cannot reach it) and loaded
    load_and_run_docker_web(&dockerd, &work);
    assert_eq!(docker_fetch(&dockerd), "docker-ok\n", "Docker on its own");
    let policy = ns.sh("iptables -S FORWARD | head -1");
    assert_eq!(policy.trim(), "-P FORWARD DROP", "dockerd set its policy");
    let before = ns.sh("iptables-save | grep -v '^#'; nft list ruleset");

    let (r, _image, base) = setup(STACK);
    let guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d", "--wait"]));
    let check = |when: &str| check_stack(&ns, &r, &base, when);
    check("beside dockerd");
    assert_eq!(
        docker_fetch(&dockerd),
        "docker-ok\n",
        "Docker beside rstack"
    );
    // no subnet taken twice
    let routes = ns.sh("ip -4 route show proto kernel | awk '{print $1}' | sort | uniq -d");
    assert_eq!(routes.trim(), "", "a subnet used twice");

    // a dockerd restart rebuilds Docker's chains; rstack's rules stay
    dockerd.stop();
    dockerd.spawn();
    check("after a dockerd restart");
    dockerd.ok(&["start", "dk-web"]);
    assert_eq!(
        docker_fetch(&dockerd),
        "docker-ok\n",
        "Docker after its restart"
    );

    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
    drop(guard);
    let after = ns.sh("iptables-save | grep -v '^#'; nft list ruleset");
    assert_eq!(
        strip_counters(&after),
        strip_counters(&before),
        "down must leave Docker's ruleset as it was"
    );
    // only Docker's links remain: lo, docker0 and dk-web's veth on it
    let links = ns.sh("ip -o link | grep -v ' master docker0 ' | awk -F': ' '{print $2}'");
    let links: Vec<&str> = links.lines().collect();
    assert_eq!(links, vec!["lo", "docker0"], "links left behind");
    ns.assert_no_rstack_state(&r);
}

/// Loads the busybox fixture into dockerd and runs Docker's own web server.
fn load_and_run_docker_web(dockerd: &Dockerd, work: &tempfile::TempDir) {
    let fixture = Fixtures::shared().busybox_v2s2.reference();
    let archive = work.path().join("busybox.tar");
    let copied = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{fixture}"))
        .arg(format!(
            "docker-archive:{}:e2e/busybox:1",
            archive.display()
        ))
        .output()
        .expect("skopeo");
    assert!(copied.status.success(), "{copied:?}");
    dockerd.ok(&["load", "-q", "-i", &archive.display().to_string()]);
    dockerd.ok(&[
        "run",
        "-d",
        "--name",
        "dk-web",
        "e2e/busybox:1",
        "sh",
        "-c",
        "mkdir -p /www && echo docker-ok > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
}

/// Fetches dk-web's page from a Docker container.
fn docker_fetch(d: &Dockerd) -> String {
    let ip = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "dk-web"]);
    d.ok(&[
        "run",
        "--rm",
        "e2e/busybox:1",
        "timeout",
        "5",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{}/", ip.trim()),
    ])
}

/// app reaches web by name, and the host the published port.
fn check_stack(ns: &NetNs, r: &Rstack, base: &[String], when: &str) {
    let got = ns.rstack(
        r,
        &args(
            base,
            &[
                "exec",
                "-T",
                "app",
                "timeout",
                "5",
                "wget",
                "-q",
                "-O",
                "-",
                "http://web/",
            ],
        ),
    );
    assert_eq!(
        got.stdout, "rstack-ok\n",
        "app -> web by name {when}:\n{got}"
    );
    let host = ns.sh("timeout 5 busybox wget -q -O - http://127.0.0.1:8080/");
    assert_eq!(host, "rstack-ok\n", "published port {when}");
}

/// Rulesets without packet counters (`[12:345]`, `counter packets N bytes
/// M`), as sorted lines: a dockerd restart recreates Docker's chains in
/// another order.
fn strip_counters(s: &str) -> String {
    let mut lines: Vec<String> = s
        .lines()
        .map(|l| {
            let l = match l.find(" [") {
                Some(i) if l.starts_with(':') => &l[..i],
                _ => l,
            };
            match l.find("counter packets") {
                Some(i) => l[..i].trim_end().to_owned(),
                None => l.to_owned(),
            }
        })
        .collect();
    lines.sort();
    lines.join("\n")
}
