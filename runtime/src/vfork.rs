//! Spawning a process with `clone(CLONE_VM | CLONE_VFORK)`, running a
//! set-up callback in the child before `execve` (for [`crate::direct_exec`]).
//!
//! std's `Command` forks when it has a `pre_exec` callback. A fork copies
//! no page tables of file-backed mappings, so the child faults in every
//! page of the spawn path again: measured on the probe path, ~8 ms of a
//! 10 ms probe went there. A vfork child runs in the parent's address
//! space (the parent thread waits until it execs or exits), as
//! `posix_spawn` does — which takes no callback. So this is that, with
//! one: the child gets its own stack, default dispositions for every
//! signal the parent handles (their handlers must not run in it), an empty
//! signal mask, stdio, its own process group, the callback, then `execve`
//! over the candidate paths (the `PATH` search is done here, in the
//! child's mount namespace: `execvp` would read the parent's `environ`).
//! The child only makes system calls on data prepared before `clone`; a
//! failure is written to memory the parent reads once `clone` returns.

use std::ffi::{CString, c_char, c_int, c_void};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// The child's stack (the set-up callback's frames are small).
const STACK: usize = 256 * 1024;

/// What failed in the child.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// `clone` itself.
    Clone(std::io::Error),
    /// The set-up callback or the stdio/process-group steps.
    Setup(std::io::Error),
    /// `execve` of every candidate (the most telling error, like execvp).
    Exec(std::io::Error),
}

/// A program to exec: the candidate paths, argv and envp.
#[derive(Debug)]
pub(crate) struct Program {
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Program {
    /// `argv[0]` searched in `path` (a `PATH` value) unless it has a `/`.
    /// `None` when a string holds a NUL byte.
    pub(crate) fn new(argv: &[String], env: &[(String, String)], path: &str) -> Option<Program> {
        let program = argv.first()?;
        let candidates = if program.contains('/') {
            vec![CString::new(program.as_str()).ok()?]
        } else {
            path.split(':')
                .filter(|d| !d.is_empty())
                .map(|d| CString::new(format!("{}/{program}", d.trim_end_matches('/'))).ok())
                .collect::<Option<Vec<_>>>()?
        };
        Some(Program {
            candidates,
            argv: argv
                .iter()
                .map(|a| CString::new(a.as_str()).ok())
                .collect::<Option<_>>()?,
            envp: env
                .iter()
                .map(|(k, v)| CString::new(format!("{k}={v}")).ok())
                .collect::<Option<_>>()?,
        })
    }
}

/// Everything the child reads (prepared before `clone`).
struct ChildArgs<'a> {
    candidates: Vec<*const c_char>,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    stdio: [RawFd; 3],
    setup: &'a (dyn Fn() -> std::io::Result<()> + Sync),
    /// errno of the failure; 0 while none.
    errno: AtomicI32,
    /// 1: set-up, 2: exec.
    stage: AtomicI32,
}

fn null_terminated(v: &[CString]) -> Vec<*const c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Spawns `program` with `stdio` (raw fds, dup'ed to 0–2) after `setup`
/// ran in the child; the child's pid (ours to wait for).
pub(crate) fn spawn(
    program: &Program,
    stdio: [RawFd; 3],
    setup: &(dyn Fn() -> std::io::Result<()> + Sync),
) -> Result<libc::pid_t, SpawnError> {
    let args = ChildArgs {
        candidates: program.candidates.iter().map(|c| c.as_ptr()).collect(),
        argv: null_terminated(&program.argv),
        envp: null_terminated(&program.envp),
        stdio,
        setup,
        errno: AtomicI32::new(0),
        stage: AtomicI32::new(0),
    };
    let mut stack = vec![0u8; STACK];
    // SAFETY: one past the end of the allocation, aligned down to 16 bytes
    // (the stack grows down from there).
    let top = unsafe { stack.as_mut_ptr().add(STACK) };
    let top = ((top as usize) & !15) as *mut c_void;
    // No handler of ours may run in the child between clone and its reset
    // of the dispositions: block everything around the clone.
    // SAFETY: sigset_t is plain data; sigfillset/pthread_sigmask fill them.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigfillset and pthread_sigmask on our own sets.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: the child runs `child_main` on `stack` in our address space
    // while this thread is suspended (CLONE_VFORK) until it execs or exits;
    // `args` and `stack` outlive that.
    let pid = unsafe {
        libc::clone(
            child_main,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&args as *const ChildArgs<'_>).cast_mut().cast(),
        )
    };
    let clone_error = std::io::Error::last_os_error();
    // SAFETY: restores this thread's mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    drop(stack);
    if pid < 0 {
        return Err(SpawnError::Clone(clone_error));
    }
    let errno = args.errno.load(Ordering::SeqCst);
    if errno == 0 {
        return Ok(pid);
    }
    // it exited: reap it
    let mut status = 0;
    // SAFETY: waitpid on the child we just made.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let e = std::io::Error::from_raw_os_error(errno);
    Err(match args.stage.load(Ordering::SeqCst) {
        2 => SpawnError::Exec(e),
        _ => SpawnError::Setup(e),
    })
}

/// The vfork child: system calls only on `ChildArgs`, then exec or `_exit`.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive while the parent is
    // suspended in clone (it is until we exec or exit).
    let a = unsafe { &*(arg as *const ChildArgs<'_>) };
    let fail = |stage: i32, e: std::io::Error| -> c_int {
        a.stage.store(stage, Ordering::SeqCst);
        a.errno
            .store(e.raw_os_error().unwrap_or(libc::EIO), Ordering::SeqCst);
        // SAFETY: leaving the child without running anything of the parent's.
        unsafe { libc::_exit(127) }
    };
    if let Err(e) = prepare_child(a) {
        return fail(1, e);
    }
    if let Err(e) = (a.setup)() {
        return fail(1, e);
    }
    let mut best = libc::ENOENT;
    for &path in &a.candidates {
        // SAFETY: NUL-terminated path and arrays prepared by the parent.
        unsafe { libc::execve(path, a.argv.as_ptr(), a.envp.as_ptr()) };
        let e = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::ENOENT);
        // like execvp: a file that is there but cannot run says more
        if e != libc::ENOENT && e != libc::ENOTDIR {
            best = e;
        }
    }
    fail(2, std::io::Error::from_raw_os_error(best))
}

/// Default dispositions, an empty mask, stdio, a process group of its own.
fn prepare_child(a: &ChildArgs<'_>) -> std::io::Result<()> {
    // SAFETY: sigaction/sigprocmask/dup2/setpgid on our own task with
    // plain data.
    unsafe {
        for sig in 1..libc::SIGRTMAX() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            // handlers go (they are the parent's code); an ignored SIGPIPE
            // (Rust's default) goes too, as std's Command does
            if old.sa_sigaction != libc::SIG_DFL
                && (old.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE)
            {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        for (i, &fd) in a.stdio.iter().enumerate() {
            if libc::dup2(fd, i as c_int) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        if libc::setpgid(0, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn run(
        argv: &[&str],
        setup: &(dyn Fn() -> std::io::Result<()> + Sync),
    ) -> Result<i32, SpawnError> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let p = Program::new(
            &argv,
            &[("A".into(), "b".into())],
            "/nonexistent:/usr/bin:/bin",
        )
        .unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        let fd = null.as_raw_fd();
        let pid = spawn(&p, [fd, fd, fd], setup)?;
        let mut status = 0;
        // SAFETY: waitpid on our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        Ok(libc::WEXITSTATUS(status))
    }

    #[test]
    fn searches_the_path_and_passes_env_and_args() {
        assert_eq!(
            run(&["sh", "-c", "test \"$A\" = b && exit 7"], &|| Ok(())).unwrap(),
            7
        );
    }

    #[test]
    fn reports_a_missing_command_and_a_failed_setup() {
        assert!(matches!(
            run(&["no-such-command-here"], &|| Ok(())),
            Err(SpawnError::Exec(e)) if e.raw_os_error() == Some(libc::ENOENT)
        ));
        assert!(matches!(
            run(&["true"], &|| Err(std::io::Error::from_raw_os_error(libc::EPERM))),
            Err(SpawnError::Setup(e)) if e.raw_os_error() == Some(libc::EPERM)
        ));
    }

    #[test]
    fn the_child_leads_its_own_process_group() {
        // exit code = (pgid == pid)
        assert_eq!(
            run(
                &["sh", "-c", "[ \"$(cut -d' ' -f5 /proc/$$/stat)\" = $$ ]"],
                &|| Ok(())
            )
            .unwrap(),
            0
        );
    }
}
