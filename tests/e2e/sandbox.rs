//! What the stack trials share: a private network namespace for a test
//! (held by a `sleep` started with `unshare -n`, entered with `nsenter`,
//! so bridges, nft rules and published ports never touch the host), a
//! sandbox with a Compose file, and polling helpers.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rstack_e2e::{Fixtures, Need, Rstack, RunOutput};

pub(crate) const NEEDS: &[Need] = &[
    Need::Root,
    Need::Registry,
    Need::Rstack,
    Need::Overlay,
    Need::Command("unshare"),
    Need::Command("nsenter"),
    Need::Command("nft"),
];

/// A private network namespace for the duration of a test.
pub(crate) struct NetNs {
    holder: Child,
}

impl NetNs {
    pub(crate) fn new() -> NetNs {
        let holder = Command::new("unshare")
            .args(["-n", "sh", "-c", "ip link set lo up && exec sleep 900"])
            .spawn()
            .expect("unshare -n (util-linux)");
        let ns = NetNs { holder };
        for _ in 0..100 {
            if ns.sh("ip -j link show lo").contains("LOWER_UP") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        ns
    }

    pub(crate) fn nsenter(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.holder.id().to_string(), "-n", "--"]);
        cmd
    }

    pub(crate) fn rstack(&self, r: &Rstack, args: &[&str]) -> RunOutput {
        let inner = r.command(args);
        let mut cmd = self.nsenter();
        cmd.arg(inner.get_program()).args(inner.get_args());
        r.sandbox_env(&mut cmd);
        r.run_command(cmd, None)
    }

    pub(crate) fn ok(&self, r: &Rstack, args: &[&str]) -> RunOutput {
        let out = self.rstack(r, args);
        assert!(out.success(), "expected success:\n{out}");
        out
    }

    /// `rstack <args>` in the namespace, expected to fail mentioning
    /// every one of `needles`.
    pub(crate) fn fails(&self, r: &Rstack, args: &[&str], needles: &[&str]) -> RunOutput {
        let out = self.rstack(r, args);
        assert!(!out.success(), "expected a failure:\n{out}");
        out.assert_stderr_mentions(needles);
        out
    }

    /// `rstack <args>` started in the namespace (output discarded).
    pub(crate) fn spawn(&self, r: &Rstack, args: &[&str]) -> Child {
        let inner = r.command(args);
        let mut cmd = self.nsenter();
        cmd.arg(inner.get_program()).args(inner.get_args());
        r.sandbox_env(&mut cmd);
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn rstack in the namespace")
    }

    /// Names of the links in the namespace.
    pub(crate) fn links(&self) -> Vec<String> {
        let v: serde_json::Value =
            serde_json::from_str(&self.sh("ip -j link")).expect("ip -j link");
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
            .collect()
    }

    /// `sh -c script` in the namespace, killed after 120 s (`timeout`).
    pub(crate) fn sh(&self, script: &str) -> String {
        let _waiting =
            rstack_e2e::watchdog::waiting_on(format!("sh -c {script:?} in the test netns"));
        let out = self
            .nsenter()
            .args(["timeout", "-s", "KILL", "120", "sh", "-c", script])
            .output()
            .expect("nsenter");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pid of the process holding the namespace.
    pub(crate) fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// Nothing of rstack is left in the namespace or the state dirs.
    pub(crate) fn assert_clean(&self, r: &Rstack) {
        let links = self.sh("ip -o link | awk -F': ' '{print $2}'");
        let links: Vec<&str> = links.lines().collect();
        assert_eq!(links, vec!["lo"], "links left behind");
        self.assert_no_rstack_state(r);
    }

    /// No rstack rule in nft or iptables, nothing in the state dirs.
    pub(crate) fn assert_no_rstack_state(&self, r: &Rstack) {
        let rules = self.sh(
            "nft list ruleset; for t in iptables-nft-save iptables-legacy-save; do \
             command -v $t >/dev/null && $t; done",
        );
        assert!(
            !rules.to_lowercase().contains("rstack"),
            "firewall rules left behind: {rules}"
        );
        let record = r.run_root().join("networks/.firewall");
        assert!(!record.exists(), "{} left behind", record.display());
        for sub in ["projects", "netns", "containers", "names"] {
            let left = rstack_e2e::leaks::tree(&r.run_root().join(sub));
            assert!(left.is_empty(), "RUN/{sub} left behind: {left:?}");
        }
        let nets: Vec<_> = rstack_e2e::leaks::tree(&r.run_root().join("networks"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        assert!(nets.is_empty(), "network state left behind: {nets:?}");
        let left = rstack_e2e::leaks::tree(&r.root().join("containers"));
        assert!(left.is_empty(), "ROOT/containers left behind: {left:?}");
        let procs = rstack_processes(r);
        assert!(procs.is_empty(), "rstack processes left running: {procs:?}");
        r.assert_no_leaks();
    }
}

/// Processes of this sandbox's rstack (supervisors) still running, as
/// `pid: command line`.
fn rstack_processes(r: &Rstack) -> Vec<String> {
    let run_root = r.run_root().to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args
            .windows(2)
            .any(|w| w[0] == "--run-root" && w[1] == run_root)
        {
            out.push(format!("{name}: {}", args.join(" ")));
        }
    }
    out
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Takes the project down if the test fails half-way, so a failed test
/// leaves no running containers behind.
pub(crate) struct DownOnPanic<'a> {
    pub(crate) ns: &'a NetNs,
    pub(crate) r: &'a Rstack,
    pub(crate) base: &'a [String],
}

impl Drop for DownOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let out = self
                .ns
                .rstack(self.r, &args(self.base, &["down", "-v", "-t", "0"]));
            eprintln!("clean-up after the failure:\n{out}");
        }
    }
}

/// A sandbox with the busybox fixture pulled and `compose` written.
pub(crate) fn setup(compose: &str) -> (Rstack, String, Vec<String>) {
    let fixtures = Fixtures::shared();
    let image = fixtures.busybox_v2s2.reference();
    let r = Rstack::new().with_timeout(Duration::from_secs(180));
    r.ok(&["pull", "-q", &image]);
    let file = r.work_dir().join("compose.yaml");
    std::fs::write(&file, compose.replace("IMAGE", &image)).expect("write compose.yaml");
    let base = vec![
        "-f".to_owned(),
        file.display().to_string(),
        "-p".to_owned(),
        "demo".to_owned(),
    ];
    (r, image, base)
}

pub(crate) fn args<'a>(base: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    base.iter()
        .map(String::as_str)
        .chain(more.iter().copied())
        .collect()
}

/// `ps -a --format json`, one object per container, by name.
pub(crate) fn ps(ns: &NetNs, r: &Rstack, base: &[String]) -> Vec<serde_json::Value> {
    ns.ok(r, &args(base, &["ps", "-a", "--format", "json"]))
        .json_lines()
}

pub(crate) fn find<'a>(v: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    v.iter()
        .find(|c| c["Name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {v:?}"))
}

/// SIGKILLs the supervisor of `project` (its pid from supervisor.json) and
/// gives the kernel a moment to re-parent its containers.
pub(crate) fn sigkill_supervisor(r: &Rstack, project: &str) {
    let file = r
        .run_root()
        .join(format!("projects/{project}/supervisor.json"));
    let sup: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let pid = sup["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(300));
}

/// Polls `ps` until `pred` holds (event-driven code under test; the
/// test itself has to look from outside).
pub(crate) fn wait_for(
    ns: &NetNs,
    r: &Rstack,
    base: &[String],
    what: &str,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = ps(ns, r, base);
        if pred(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {v:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Container cgroup directories (one per hierarchy) under any `rstack`
/// parent below this process's cgroups.
pub(crate) fn container_cgroups() -> Vec<std::path::PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut out = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let mount = if ctrl.is_empty() {
            "/sys/fs/cgroup/unified".to_owned()
        } else if let Some(name) = ctrl.strip_prefix("name=") {
            format!("/sys/fs/cgroup/{name}")
        } else {
            format!("/sys/fs/cgroup/{ctrl}")
        };
        let dir = std::path::Path::new(&mount)
            .join(path.trim_start_matches('/'))
            .join("rstack");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}
