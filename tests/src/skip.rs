//! Prerequisites decided when a trial runs, so a host that lacks one reports
//! the trial as ignored (with the reason) instead of passing it silently.

use libtest_mimic::{Completion, Trial};

/// Something a trial needs from the host. Checked just before the trial's
/// body runs; the first one missing makes the trial ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Running as uid 0 (mounts, chown of unpacked layers, namespaces).
    Root,
    /// An executable with this name on `PATH`.
    Command(&'static str),
    /// What the local registry and fixture pushes need: `docker-registry`,
    /// `skopeo` and `htpasswd` on `PATH`.
    Registry,
    /// The `rstack` binary (see [`crate::rstack::rstack_bin`]).
    Rstack,
    /// overlayfs in the kernel (`/proc/filesystems`).
    Overlay,
}

impl Need {
    /// `Ok` when the host has it, else the reason the trial is skipped.
    pub fn check(self) -> Result<(), String> {
        match self {
            Need::Root => {
                if nix::unistd::geteuid().is_root() {
                    Ok(())
                } else {
                    Err("needs root (run the e2e suite with sudo)".to_owned())
                }
            }
            Need::Command(name) => find_in_path(name)
                .map(|_| ())
                .ok_or_else(|| format!("needs `{name}` on PATH (see tests/install-deps.sh)")),
            Need::Registry => ["docker-registry", "skopeo", "htpasswd"]
                .into_iter()
                .try_for_each(|c| Need::Command(c).check()),
            Need::Rstack => crate::rstack::rstack_bin().map(|_| ()),
            Need::Overlay => {
                let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
                if filesystems
                    .lines()
                    .any(|l| l.split_whitespace().last() == Some("overlay"))
                {
                    Ok(())
                } else {
                    Err("needs overlayfs in the kernel (modprobe overlay)".to_owned())
                }
            }
        }
    }
}

/// The full path of an executable named `name` on `PATH`.
pub(crate) fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A test trial that first checks `needs`; the first missing one makes it
/// ignored with that reason (libtest-mimic prints it). The
/// body fails the trial by panicking, like a `#[test]`, and fails it with a
/// diagnostic when it outlives its deadline (see [`crate::watchdog`]).
pub fn trial<F>(name: impl Into<String>, needs: &[Need], body: F) -> Trial
where
    F: FnOnce() + Send + 'static,
{
    let needs = needs.to_vec();
    let name = name.into();
    let label = name.clone();
    Trial::ignorable_test(name, move || {
        for need in needs {
            if let Err(reason) = need.check() {
                return rstack_testkit::skip(&label, reason);
            }
        }
        crate::watchdog::run_with_deadline(&label, crate::watchdog::trial_deadline(), body)?;
        Ok(Completion::Completed)
    })
}
