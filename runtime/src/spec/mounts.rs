//! The `mounts` section: Docker's default mounts (/proc, /dev, /sys, the
//! container's own view of /sys/fs/cgroup, mqueue, shm), the per-container
//! /etc files and the user's bind and tmpfs mounts.

use serde_json::{Value, json};

use super::context::{CgroupView, SpecContext};
use super::error::SpecError;
use crate::options::{MountSpec, RunOptions};

fn check_target(target: &str) -> Result<(), SpecError> {
    if !target.starts_with('/')
        || target.trim_end_matches('/').is_empty()
        || target.contains("/../")
    {
        return Err(SpecError::MountTarget {
            target: target.to_owned(),
        });
    }
    Ok(())
}

/// Docker's default mounts plus the per-container files and the user's mounts.
pub(super) fn mounts(opts: &RunOptions, ctx: &SpecContext) -> Result<Vec<Value>, SpecError> {
    let shm = opts.shm_size.unwrap_or(64 << 20);
    let mut m = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", if opts.privileged { "rw" } else { "ro" }]}),
    ];
    match (&ctx.cgroup_view, opts.privileged) {
        (CgroupView::Binds(binds), false) => {
            m.push(json!({"destination": "/sys/fs/cgroup", "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "noexec", "nodev", "mode=755", "size=64k"]}));
            for (name, dir) in binds {
                m.push(json!({"destination": format!("/sys/fs/cgroup/{name}"), "type": "bind",
                              "source": dir,
                              "options": ["rbind", "rprivate", "ro", "nosuid", "noexec", "nodev"]}));
            }
        }
        (_, privileged) => m.push(
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                   "options": ["nosuid", "noexec", "nodev", "relatime", if privileged { "rw" } else { "ro" }]}),
        ),
    }
    m.push(
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
    );
    m.push(
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    );
    for file in ["resolv.conf", "hostname", "hosts"] {
        m.push(
            json!({"destination": format!("/etc/{file}"), "type": "bind",
            "source": ctx.etc_dir.join(file), "options": ["rbind", "rprivate"]}),
        );
    }
    for spec in &opts.mounts {
        match spec {
            MountSpec::Bind {
                source,
                target,
                read_only,
            } => {
                check_target(target)?;
                let mut o = vec!["rbind", "rprivate"];
                if *read_only {
                    o.push("ro");
                }
                m.push(
                    json!({"destination": target, "type": "bind", "source": source, "options": o}),
                );
            }
            MountSpec::Tmpfs { target, options } => {
                check_target(target)?;
                let mut o: Vec<String> = ["nosuid", "nodev", "noexec"]
                    .iter()
                    .map(|s| s.to_string())
                    .filter(|d| {
                        // an explicit exec/suid/dev lifts the default
                        let lifted = &d[2..];
                        !options.iter().any(|u| u == lifted)
                    })
                    .collect();
                o.extend(options.iter().cloned());
                m.push(json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": o}));
            }
        }
    }
    Ok(m)
}
