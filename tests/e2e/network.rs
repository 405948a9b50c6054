//! `rstack network create / ls / inspect / rm` as a user runs them.
//!
//! Each test runs every rstack command inside one private network namespace
//! (held by a `sleep` started with `unshare -n`, entered with `nsenter`), so
//! bridges, sysctls and nft rules never touch the host.

use std::process::{Child, Command};

use libtest_mimic::Trial;
use rstack_e2e::{Need, Rstack, RunOutput, trial};

const NEEDS: &[Need] = &[Need::Root, Need::Rstack];

pub fn tests() -> Vec<Trial> {
    vec![
        trial("network::create_ls_inspect_rm", NEEDS, create_ls_inspect_rm),
        trial(
            "network::bad_input_leaves_nothing",
            NEEDS,
            bad_input_leaves_nothing,
        ),
    ]
}

/// A private network namespace for the duration of a test.
struct NetNs {
    holder: Child,
}

impl NetNs {
    fn new() -> NetNs {
        let holder = Command::new("unshare")
            .args(["-n", "sh", "-c", "ip link set lo up && exec sleep 600"])
            .spawn()
            .expect("unshare -n (util-linux)");
        let ns = NetNs { holder };
        // wait until the holder is inside its namespace
        for _ in 0..100 {
            if ns.sh("ip -j link show lo").contains("LOWER_UP") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        ns
    }

    fn nsenter(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.holder.id().to_string(), "-n", "--"]);
        cmd
    }

    fn rstack(&self, r: &Rstack, args: &[&str]) -> RunOutput {
        let inner = r.command(args);
        let mut cmd = self.nsenter();
        cmd.arg(inner.get_program()).args(inner.get_args());
        r.sandbox_env(&mut cmd);
        r.run_command(cmd, None)
    }

    fn ok(&self, r: &Rstack, args: &[&str]) -> RunOutput {
        let out = self.rstack(r, args);
        assert!(out.success(), "expected success:\n{out}");
        out
    }

    fn fails(&self, r: &Rstack, args: &[&str], needles: &[&str]) -> RunOutput {
        let out = self.rstack(r, args);
        assert!(!out.success(), "expected a failure:\n{out}");
        out.assert_stderr_mentions(needles);
        out
    }

    fn sh(&self, script: &str) -> String {
        let out = self
            .nsenter()
            .args(["sh", "-c", script])
            .output()
            .expect("nsenter");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Nothing of rstack is left in the namespace or the run dir.
    fn assert_clean(&self, r: &Rstack) {
        let links = self.sh("ip -j link");
        let v: serde_json::Value = serde_json::from_str(&links).expect("ip -j link");
        let names: Vec<&str> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["ifname"].as_str())
            .collect();
        assert_eq!(names, vec!["lo"], "links left behind");
        let rules = self.sh("nft -j list ruleset");
        assert!(
            !rules.contains("\"rstack\""),
            "nft table left behind: {rules}"
        );
        let state: Vec<_> = std::fs::read_dir(r.run_root().join("networks"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".json"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(state.is_empty(), "network state left behind: {state:?}");
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn create_ls_inspect_rm() {
    let ns = NetNs::new();
    let r = Rstack::new();
    let id = ns
        .ok(&r, &["network", "create", "web"])
        .stdout
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "create prints the network id: {id}");
    ns.ok(
        &r,
        &[
            "network",
            "create",
            "--subnet",
            "10.5.0.0/24",
            "--gateway",
            "10.5.0.254",
            "--internal",
            "-o",
            "com.docker.network.bridge.name=rsx0",
            "--label",
            "team=a",
            "backend",
        ],
    );
    let ls = ns.ok(&r, &["network", "ls"]).stdout;
    let lines: Vec<&str> = ls.lines().collect();
    assert!(
        lines[0].starts_with("NETWORK ID")
            && lines[0].contains("NAME")
            && lines[0].contains("SCOPE"),
        "{ls}"
    );
    assert!(
        ls.contains(&id[..12])
            && ls.contains("web")
            && ls.contains("bridge")
            && ls.contains("local"),
        "{ls}"
    );
    let quiet = ns
        .ok(&r, &["network", "ls", "-q", "--filter", "name=web"])
        .stdout;
    assert_eq!(quiet.trim(), &id[..12]);

    let inspect = ns.ok(&r, &["network", "inspect", "web", "backend"]).json();
    let web = &inspect[0];
    assert_eq!(web["Name"], "web");
    assert_eq!(web["Id"], id.as_str());
    assert_eq!(web["Driver"], "bridge");
    assert_eq!(web["IPAM"]["Config"][0]["Subnet"], "172.17.0.0/16");
    assert_eq!(web["IPAM"]["Config"][0]["Gateway"], "172.17.0.1");
    let back = &inspect[1];
    assert_eq!(back["Internal"], true);
    assert_eq!(back["IPAM"]["Config"][0]["Gateway"], "10.5.0.254");
    assert_eq!(back["Labels"]["team"], "a");
    assert!(
        ns.sh("ip -j addr show rsx0").contains("10.5.0.254"),
        "bridge named by option"
    );
    // by id prefix too
    ns.ok(&r, &["network", "inspect", &id[..8]]);

    let rm = ns.ok(&r, &["network", "rm", "web", "backend"]).stdout;
    assert_eq!(rm.lines().collect::<Vec<_>>(), vec!["web", "backend"]);
    let ls = ns.ok(&r, &["network", "ls", "-q"]).stdout;
    assert!(ls.trim().is_empty(), "{ls}");
    ns.assert_clean(&r);
}

fn bad_input_leaves_nothing() {
    let ns = NetNs::new();
    let r = Rstack::new();
    ns.fails(
        &r,
        &["network", "create", "--subnet", "10.1.0.0/33", "x"],
        &["invalid subnet"],
    );
    ns.fails(
        &r,
        &["network", "create", "--subnet", "10.1.2.3/16", "x"],
        &["host bits"],
    );
    ns.fails(
        &r,
        &[
            "network",
            "create",
            "--subnet",
            "10.1.0.0/24",
            "--gateway",
            "10.2.0.1",
            "x",
        ],
        &["invalid gateway"],
    );
    ns.fails(
        &r,
        &["network", "create", "--gateway", "10.2.0.1", "x"],
        &["--gateway needs --subnet"],
    );
    ns.fails(
        &r,
        &[
            "network",
            "create",
            "-o",
            "com.docker.network.driver.mtu=abc",
            "x",
        ],
        &["invalid option"],
    );
    ns.fails(
        &r,
        &["network", "create", "bad/name"],
        &["invalid network name"],
    );
    ns.fails(
        &r,
        &["network", "create", "-d", "overlay", "x"],
        &["bridge driver only"],
    );
    ns.assert_clean(&r);

    ns.ok(&r, &["network", "create", "--subnet", "10.1.0.0/16", "a"]);
    ns.fails(
        &r,
        &["network", "create", "--subnet", "10.1.5.0/24", "b"],
        &["overlaps"],
    );
    ns.fails(&r, &["network", "create", "a"], &["already exists"]);
    ns.fails(
        &r,
        &["network", "inspect", "nosuch"],
        &["network nosuch not found"],
    );
    ns.fails(
        &r,
        &["network", "rm", "nosuch"],
        &["network nosuch not found"],
    );
    ns.ok(&r, &["network", "rm", "-f", "nosuch"]);
    let ls = ns.ok(&r, &["network", "ls", "-q"]).stdout;
    assert_eq!(ls.lines().count(), 1, "only network a exists: {ls}");
    ns.ok(&r, &["network", "rm", "a"]);
    ns.assert_clean(&r);
}
