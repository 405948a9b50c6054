//! One healthcheck probe: the check's command exec'd in the container
//! (same namespaces, cgroup, capabilities as its processes), its output
//! captured through a pipe, killed when it outlives the check's timeout.

use std::io::Read;
use std::time::Duration;

use rstack_runtime::adopt::Adopted;
use rstack_runtime::{ExecOptions, Stdio};

use crate::health::Check;
use crate::process::Pidfd;
use crate::state::{ProbeResult, now_rfc3339};

/// Runs the probe in container `id`; never fails: a probe that cannot run
/// is an unhealthy result with the reason as output (like docker).
pub(crate) fn run(paths: &rstack_runtime::Paths, id: &str, check: &Check) -> ProbeResult {
    let start = now_rfc3339();
    let (code, output) = match exec(paths, id, check) {
        Ok(r) => r,
        Err(msg) => (-1, msg),
    };
    ProbeResult {
        start,
        end: now_rfc3339(),
        exit_code: code,
        output,
    }
}

fn exec(paths: &rstack_runtime::Paths, id: &str, check: &Check) -> Result<(i32, String), String> {
    let c = Adopted::open(paths, id).map_err(|e| e.to_string())?;
    let (r, w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    let w2 = w.try_clone().map_err(|e| format!("pipe: {e}"))?;
    let p = c
        .exec(
            &ExecOptions {
                args: check.argv.clone(),
                ..Default::default()
            },
            Stdio {
                stdin: None,
                stdout: Some(w),
                stderr: Some(w2),
            },
        )
        .map_err(|e| crate::error_chain::chain(&e))?;
    let pidfd = Pidfd::open(p.pid()).map_err(|e| e.to_string())?;
    let timed_out = !pidfd.wait_exit(check.timeout);
    if timed_out {
        let _ = pidfd.signal(libc::SIGKILL);
    }
    let code = p.wait().map_err(|e| e.to_string())?;
    // The writer ends are closed once the probe (and anything it started
    // that kept them) is gone; read without blocking on stragglers.
    let mut out = Vec::new();
    let _ = nix::fcntl::fcntl(
        &r,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut f = std::fs::File::from(r);
    let mut buf = [0u8; 4096];
    while out.len() < 4096 {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    if timed_out {
        return Ok((
            -1,
            format!(
                "Health check exceeded timeout ({:?})",
                Duration::from_millis(check.timeout.as_millis() as u64)
            ),
        ));
    }
    Ok((code, String::from_utf8_lossy(&out).into_owned()))
}
