//! Privileged tests: real containers from a busybox rootfs, as root.
//!
//! The whole binary first moves into its own mount namespace (private
//! propagation), so the overlay and bind mounts the tests make never show
//! on the host; cgroups are real (they cannot be namespaced away) and each
//! test checks that nothing of its container is left in the cgroup tree or
//! the mount table. Without root, or without a needed cgroup controller,
//! the tests are reported as ignored with the reason.
//!
//! Run: `sudo -E cargo test -p rstack-runtime --test privileged`

mod cases;
mod harness;

use std::path::Path;

use libtest_mimic::{Arguments, Failed, Trial};

use cases::*;
use harness::*;

/// A trial: its name, its body, and the host feature it needs.
type Case = (
    &'static str,
    fn() -> Result<(), Failed>,
    Option<&'static str>,
);

fn main() {
    // Builds run in this binary re-executed as a single-threaded helper (as
    // in rstack); RSTACK_RT_IN_PROCESS=1 tests the in-process path instead.
    if let Some(code) = rstack_runtime::helper::run_if_helper() {
        std::process::exit(code);
    }
    if std::env::var_os("RSTACK_RT_IN_PROCESS").is_none() {
        if let Ok(exe) = std::env::current_exe() {
            rstack_runtime::helper::use_helper(exe);
        }
    }
    if let Ok(filter) = std::env::var("RSTACK_LOG") {
        let level: tracing_subscriber::filter::LevelFilter = filter
            .parse()
            .unwrap_or(tracing_subscriber::filter::LevelFilter::WARN);
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .init();
    }
    let mut args = Arguments::from_args();
    // Serial: the leftover checks look at shared cgroup parents and mounts.
    args.test_threads = Some(1);
    let prepared = prepare();
    let plan = rstack_runtime::cgroup::CgroupPlan::new(None, "probe");
    let needs_probe = ENV.get().is_some_and(|e| !e.probe);
    let trials = cases()
        .into_iter()
        .map(|(name, f, need)| {
            if let Some(e) = prepared.setup_error.clone() {
                return Trial::test(name, move || Err(e.into()));
            }
            let reason = prepared
                .skip
                .clone()
                .or_else(|| missing_feature(need, &plan, needs_probe));
            match reason {
                Some(r) => rstack_testkit::skipped(name, r),
                None => Trial::test(name, f),
            }
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    rstack_testkit::report();
    // `exit` skips destructors: remove the temp tree (layers, dirs) here.
    if let Some(e) = ENV.get() {
        let _ = std::fs::remove_dir_all(&e.root);
    }
    conclusion.exit();
}

/// Why every trial is skipped, or fails, before any runs.
struct Prepared {
    /// A missing prerequisite (root, busybox, a mount namespace).
    skip: Option<String>,
    /// A broken fixture: a failure, never a skip.
    setup_error: Option<String>,
}

/// Checks the prerequisites, moves the binary into a private mount
/// namespace (before any thread exists) and sets up the fixture ([`ENV`]).
fn prepare() -> Prepared {
    let skipped = |why: String| Prepared {
        skip: Some(why),
        setup_error: None,
    };
    if !nix::unistd::geteuid().is_root() {
        return skipped("needs root".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return skipped("needs /bin/busybox (busybox-static)".into());
    }
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS) {
        return skipped(format!("cannot unshare the mount namespace: {e}"));
    }
    let _ = nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    );
    let setup_error = match setup() {
        Ok(e) => {
            let _ = ENV.set(e);
            None
        }
        Err(e) => Some(format!("setup failed: {e}")),
    };
    Prepared {
        skip: None,
        setup_error,
    }
}

/// The reason a trial needing `need` cannot run on this host.
fn missing_feature(
    need: Option<&str>,
    plan: &rstack_runtime::cgroup::CgroupPlan,
    needs_probe: bool,
) -> Option<String> {
    match need {
        Some("probe") if needs_probe => {
            Some("needs a C compiler with static libc (cc -static) for the probe".into())
        }
        Some("memory") if plan.missing_controller("memory") => {
            Some("no memory cgroup controller".into())
        }
        Some("pids") if plan.missing_controller("pids") => Some("no pids cgroup controller".into()),
        Some("cpu+pids") if plan.missing_controller("cpu") || plan.missing_controller("pids") => {
            Some("no cpu or pids cgroup controller".into())
        }
        Some("memory") if needs_probe => Some("needs the probe (cc -static)".into()),
        _ => None,
    }
}

/// Every trial, in the order they run.
fn cases() -> Vec<Case> {
    vec![
        ("pid1_is_the_command", pid1_is_the_command, None),
        ("hostname_and_etc_files", hostname_and_etc_files, None),
        (
            "capabilities_default_add_drop",
            capabilities_default_add_drop,
            None,
        ),
        (
            "seccomp_blocks_unshare_and_keyctl",
            seccomp_blocks_unshare_and_keyctl,
            Some("probe"),
        ),
        (
            "proc_masked_and_mount_denied",
            proc_masked_and_mount_denied,
            None,
        ),
        (
            "read_only_rootfs_with_tmpfs",
            read_only_rootfs_with_tmpfs,
            None,
        ),
        (
            "bind_mounts_ro_and_created",
            bind_mounts_ro_and_created,
            None,
        ),
        ("user_from_flag", user_from_flag, None),
        ("exit_codes_and_signals", exit_codes_and_signals, None),
        (
            "init_forwards_signals_and_stop",
            init_forwards_signals_and_stop,
            None,
        ),
        (
            "memory_limit_oom_kills",
            memory_limit_oom_kills,
            Some("memory"),
        ),
        (
            "cpus_and_pids_in_cgroup_files",
            cpus_and_pids_in_cgroup_files,
            Some("cpu+pids"),
        ),
        (
            "pids_limit_stops_fork_bomb",
            pids_limit_stops_fork_bomb,
            Some("pids"),
        ),
        (
            "missing_binary_is_127_and_clean",
            missing_binary_is_127_and_clean,
            None,
        ),
        (
            "bad_user_fails_before_setup",
            bad_user_fails_before_setup,
            None,
        ),
        (
            "exec_into_running_container",
            exec_into_running_container,
            None,
        ),
        (
            "adopted_container_exec_and_remove",
            adopted_container_exec_and_remove,
            None,
        ),
        ("many_layers", many_layers, None),
        ("network_none_and_host", network_none_and_host, None),
    ]
}
