//! Unit tests of the spec: Docker's defaults and rules, without root.

use std::path::PathBuf;

use oci_spec::image::{ConfigBuilder, ImageConfiguration, ImageConfigurationBuilder};
use serde_json::{Value, json};

use super::process::check_exec_size;
use super::*;
use crate::options::{MountSpec, NetworkMode, Resources, RunOptions, SeccompProfile, Ulimit};
use crate::seccomp::Target;
use crate::user::ResolvedUser;

fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>, env: &[&str]) -> ImageConfiguration {
    let mut cfg = ConfigBuilder::default();
    if let Some(e) = entrypoint {
        cfg = cfg.entrypoint(e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }
    if let Some(c) = cmd {
        cfg = cfg.cmd(c.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }
    cfg = cfg
        .env(env.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .working_dir("/srv".to_owned());
    ImageConfigurationBuilder::default()
        .config(cfg.build().unwrap())
        .build()
        .unwrap()
}

fn ctx() -> SpecContext {
    SpecContext {
        id: "0123456789abcdef".into(),
        rootfs: "/r/rootfs".into(),
        etc_dir: "/r/etc".into(),
        user: ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/root".into(),
        },
        caps: crate::caps::DOCKER_DEFAULT_CAPS.into_iter().collect(),
        target: Target {
            arch: "amd64",
            scmp_arch: "SCMP_ARCH_X86_64",
            kernel: (6, 1),
            x32_abi: true,
        },
        cgroups_path: "/rstack/0123456789abcdef".into(),
        hard_limits: vec![("RLIMIT_NOFILE", 4096)],
        default_hostname: "0123456789ab".into(),
        swap_limit_supported: true,
        cgroup_view: CgroupView::Namespaced,
        host_devices: Vec::new(),
    }
}

#[test]
fn privileged_gets_the_hosts_devices() {
    let devs = host_devices(std::path::Path::new("/dev"));
    let null = devs
        .iter()
        .find(|d| d.path == "/dev/null")
        .expect("/dev/null");
    assert_eq!((null.kind, null.major, null.minor), ('c', 1, 3));
    assert!(devs.iter().all(|d| !d.path.starts_with("/dev/pts/")));
    assert!(devs.iter().all(|d| d.path != "/dev/console"));
    let img = image(None, Some(&["sh"]), &[]);
    let mut c = ctx();
    c.host_devices = devs.clone();
    let privileged = RunOptions {
        privileged: true,
        ..RunOptions::default()
    };
    let v = serde_json::to_value(build_spec(&img, &privileged, &c).unwrap()).unwrap();
    let listed = v["linux"]["devices"].as_array().unwrap();
    assert_eq!(listed.len(), devs.len());
    let v = serde_json::to_value(build_spec(&img, &RunOptions::default(), &c).unwrap()).unwrap();
    assert!(v["linux"]["devices"].is_null(), "only --privileged");
}

#[test]
fn a_huge_image_env_merges_in_one_pass_and_is_refused_when_too_big() {
    let many: Vec<String> = (0..100_000).map(|i| format!("V{i}=x")).collect();
    let mut img = image(None, Some(&["sh"]), &[]);
    let mut config = img.config().clone().unwrap_or_default();
    config.set_env(Some(many));
    img.set_config(Some(config));
    let o = RunOptions {
        env: vec!["V5=y".into()],
        ..RunOptions::default()
    };
    let env = environment(&img, &o, "h", "/root").unwrap();
    assert_eq!(env.len(), 100_000 + 3, "PATH, HOSTNAME, HOME");
    assert!(env.contains(&"V5=y".to_owned()));
    // 100k entries are ~900 KB: accepted; 300k are too many for execve
    assert!(check_exec_size(&["sh".into()], &env).is_ok());
    let big: Vec<String> = (0..300_000).map(|i| format!("VAR{i}=xxx")).collect();
    let err = check_exec_size(&["sh".into()], &big)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than the 2097152 bytes"), "{err}");
    let long = vec![format!("LONG={}", "x".repeat(200_000))];
    let err = check_exec_size(&["sh".into()], &long)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the longest is LONG"), "{err}");
}

#[test]
fn cgroups_are_the_containers_own_and_read_only() {
    let img = image(None, Some(&["sh"]), &[]);
    let mut c = ctx();
    let mounts = |opts: &RunOptions, c: &SpecContext| -> Vec<Value> {
        let spec = build_spec(&img, opts, c).unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                m["destination"]
                    .as_str()
                    .unwrap()
                    .starts_with("/sys/fs/cgroup")
            })
            .cloned()
            .collect()
    };
    let opts = RunOptions::default();
    let v2 = mounts(&opts, &c);
    assert_eq!(v2.len(), 1);
    assert_eq!(v2[0]["type"], "cgroup");
    assert!(v2[0]["options"].as_array().unwrap().contains(&json!("ro")));
    c.cgroup_view = CgroupView::Binds(vec![
        (
            "memory".into(),
            PathBuf::from("/sys/fs/cgroup/memory/rstack/x"),
        ),
        ("pids".into(), PathBuf::from("/sys/fs/cgroup/pids/rstack/x")),
    ]);
    let v1 = mounts(&opts, &c);
    assert_eq!(v1[0]["type"], "tmpfs");
    assert_eq!(v1[1]["destination"], "/sys/fs/cgroup/memory");
    assert_eq!(v1[1]["source"], "/sys/fs/cgroup/memory/rstack/x");
    assert!(v1[1]["options"].as_array().unwrap().contains(&json!("ro")));
    assert_eq!(v1.len(), 3, "no systemd, no unified, no host root: {v1:?}");
    // --privileged: the hierarchies, writable, as Docker does
    let privileged = RunOptions {
        privileged: true,
        ..RunOptions::default()
    };
    let p = mounts(&privileged, &c);
    assert_eq!(p.len(), 1);
    assert!(p[0]["options"].as_array().unwrap().contains(&json!("rw")));
}

fn v(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

#[test]
fn entrypoint_and_cmd_rules() {
    let img = image(Some(&["/ep"]), Some(&["a", "b"]), &[]);
    let mut o = RunOptions::default();
    assert_eq!(command_line(&img, &o).unwrap(), v(&["/ep", "a", "b"]));
    o.command = v(&["x"]);
    assert_eq!(command_line(&img, &o).unwrap(), v(&["/ep", "x"]));
    o.entrypoint = Some(v(&["/other"]));
    assert_eq!(command_line(&img, &o).unwrap(), v(&["/other", "x"]));
    o.command.clear();
    // --entrypoint drops the image's CMD
    assert_eq!(command_line(&img, &o).unwrap(), v(&["/other"]));
    o.entrypoint = Some(vec![]);
    assert!(matches!(command_line(&img, &o), Err(SpecError::NoCommand)));
    let img = image(None, Some(&["sh"]), &[]);
    assert_eq!(
        command_line(&img, &RunOptions::default()).unwrap(),
        v(&["sh"])
    );
    let img = image(None, None, &[]);
    assert!(command_line(&img, &RunOptions::default()).is_err());
}

#[test]
fn env_merge() {
    let img = image(None, Some(&["sh"]), &["PATH=/img", "A=1", "B=2"]);
    let o = RunOptions {
        env: v(&["B=3", "C=4"]),
        tty: true,
        ..Default::default()
    };
    let env = environment(&img, &o, "h", "/root").unwrap();
    assert_eq!(
        env,
        v(&[
            "PATH=/img",
            "HOSTNAME=h",
            "TERM=xterm",
            "A=1",
            "B=3",
            "C=4",
            "HOME=/root"
        ])
    );
    let img = image(None, Some(&["sh"]), &[]);
    let env = environment(&img, &RunOptions::default(), "h", "/home/u").unwrap();
    assert_eq!(env[0], format!("PATH={DEFAULT_PATH}"));
    assert!(env.contains(&"HOME=/home/u".to_owned()));
}

#[test]
fn full_spec_has_docker_defaults() {
    let img = image(None, Some(&["sh"]), &[]);
    let o = RunOptions {
        mounts: vec![
            MountSpec::Bind {
                source: "/h".into(),
                target: "/c".into(),
                read_only: true,
            },
            MountSpec::Tmpfs {
                target: "/t".into(),
                options: v(&["exec", "size=1m"]),
            },
        ],
        resources: Resources {
            memory: Some(32 << 20),
            cpus: Some(0.5),
            pids_limit: Some(20),
            ..Default::default()
        },
        read_only: true,
        ..Default::default()
    };
    let spec = build_spec(&img, &o, &ctx()).unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.cwd().to_str(), Some("/srv"));
    assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
    assert_eq!(
        p.capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap()
            .len(),
        14
    );
    assert!(spec.root().as_ref().unwrap().readonly().unwrap());
    let linux = spec.linux().as_ref().unwrap();
    assert!(
        linux
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_owned())
    );
    assert!(linux.seccomp().is_some());
    let res = linux.resources().as_ref().unwrap();
    assert_eq!(res.memory().as_ref().unwrap().limit(), Some(32 << 20));
    assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));
    assert_eq!(res.pids().as_ref().unwrap().limit(), 20);
    let mounts = spec.mounts().as_ref().unwrap();
    let c = mounts
        .iter()
        .find(|m| m.destination().to_str() == Some("/c"))
        .unwrap();
    assert!(c.options().as_ref().unwrap().contains(&"ro".to_owned()));
    let t = mounts
        .iter()
        .find(|m| m.destination().to_str() == Some("/t"))
        .unwrap();
    assert_eq!(
        t.options().as_ref().unwrap(),
        &v(&["nosuid", "nodev", "exec", "size=1m"])
    );
    let shm = mounts
        .iter()
        .find(|m| m.destination().to_str() == Some("/dev/shm"))
        .unwrap();
    assert!(
        shm.options()
            .as_ref()
            .unwrap()
            .contains(&format!("size={}", 64 << 20))
    );
    let ns = linux.namespaces().as_ref().unwrap();
    assert_eq!(ns.len(), 6);
}

#[test]
fn privileged_and_unconfined() {
    let img = image(None, Some(&["sh"]), &[]);
    let o = RunOptions {
        privileged: true,
        network: NetworkMode::Host,
        ..Default::default()
    };
    let spec = build_spec(&img, &o, &ctx()).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().is_none());
    assert_eq!(linux.namespaces().as_ref().unwrap().len(), 5);
    let o = RunOptions {
        seccomp: SeccompProfile::Unconfined,
        network: NetworkMode::Path("/run/netns/x".into()),
        ..Default::default()
    };
    let spec = build_spec(&img, &o, &ctx()).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    let net = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
        .unwrap();
    assert_eq!(net.path().as_ref().unwrap().to_str(), Some("/run/netns/x"));
}

#[test]
fn bad_inputs() {
    let img = image(None, Some(&["sh"]), &[]);
    let bad = |o: RunOptions| build_spec(&img, &o, &ctx()).unwrap_err().to_string();
    assert!(
        bad(RunOptions {
            workdir: Some("rel".into()),
            ..Default::default()
        })
        .contains("'rel'")
    );
    assert!(
        bad(RunOptions {
            resources: Resources {
                memory_swap: Some(1 << 20),
                ..Default::default()
            },
            ..Default::default()
        })
        .contains("--memory-swap")
    );
    assert!(
        bad(RunOptions {
            ulimits: vec![Ulimit {
                resource: "RLIMIT_NOFILE",
                soft: 1,
                hard: 1 << 20
            }],
            ..Default::default()
        })
        .contains("RLIMIT_NOFILE")
    );
    assert!(
        bad(RunOptions {
            hostname: Some("bad host".into()),
            ..Default::default()
        })
        .contains("hostname")
    );
    assert!(
        bad(RunOptions {
            mounts: vec![MountSpec::Tmpfs {
                target: "/".into(),
                options: vec![]
            }],
            ..Default::default()
        })
        .contains("mount target")
    );
}
