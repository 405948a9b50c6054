//! `rstack exec SERVICE CMD...`: run a command in a running container of
//! a service, like `docker compose exec`; the command's exit code is ours.
//! The container is found from the state files (no supervisor needed).

use std::io::IsTerminal;

use anyhow::{Context, bail};
use rstack_runtime::adopt::Adopted;
use rstack_runtime::{ExecOptions, Stdio};
use rstack_stack::lifecycle::Env;
use rstack_stack::state::ContainerRecord;

use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Disable pseudo-TTY allocation (by default one is allocated when
    /// standard input is a terminal)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VAL")]
    pub env: Vec<String>,
    /// Run the command as this user
    #[arg(short, long)]
    pub user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Give extended privileges to the process (not supported)
    #[arg(long)]
    pub privileged: bool,
    /// The service
    pub service: String,
    /// The command and its arguments
    #[arg(required = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    // `-p NAME` alone finds the project's containers from anywhere, as
    // docker compose finds them by label
    let (project, env, pp) =
        stack_common::load_or_name(global, std::slice::from_ref(&args.service))?;
    if let Some(p) = &project
        && !p.services.contains_key(&args.service)
    {
        bail!("no such service: {}", args.service);
    }
    if args.privileged {
        bail!("exec --privileged is not supported by rstack");
    }
    let recs = stack_common::containers_of(&pp, &args.service)?;
    if project.is_none() && recs.is_empty() {
        bail!("service \"{}\" is not running", args.service);
    }
    let Some(rec) = recs.iter().find(|r| r.number == args.index) else {
        bail!(
            "service \"{}\" is not running container #{}",
            args.service,
            args.index
        );
    };
    exec_record(&env, rec, &args, true)
}

/// Runs `args.command` in the running container `rec` (also `container
/// exec NAME`); `stdin`: the command reads ours (else it gets none).
pub(crate) fn exec_record(
    env: &Env,
    rec: &ContainerRecord,
    args: &Args,
    stdin: bool,
) -> anyhow::Result<u8> {
    if !rstack_stack::status::is_alive(rec) {
        bail!("container {} is not running", rec.name);
    }
    let id = rec.id.clone().context("the container has no id yet")?;
    let c = Adopted::open(&env.runtime, &id)?;
    let mut vars = Vec::new();
    for e in &args.env {
        if e.contains('=') {
            vars.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            vars.push(format!("{e}={v}"));
        }
    }
    let tty = !args.no_tty && !args.detach && std::io::stdin().is_terminal();
    if tty {
        return exec_tty(&c, args, vars);
    }
    let stdin = if args.detach || !stdin {
        None
    } else {
        Some(
            std::os::fd::AsFd::as_fd(&std::io::stdin())
                .try_clone_to_owned()
                .context("duplicate stdin")?,
        )
    };
    let p = c.exec(
        &ExecOptions {
            args: args.command.clone(),
            env: vars,
            workdir: args.workdir.clone(),
            user: args.user.clone(),
            ..Default::default()
        },
        Stdio {
            stdin,
            stdout: None,
            stderr: None,
        },
    )?;
    if args.detach {
        return Ok(0);
    }
    let code = p.wait()?;
    Ok(code.clamp(0, 255) as u8)
}

/// `exec` with a pseudo terminal (the default on a terminal, like docker
/// compose): the user's terminal in raw mode relayed to the container's
/// pty, its size following SIGWINCH.
fn exec_tty(c: &Adopted, args: &Args, env: Vec<String>) -> anyhow::Result<u8> {
    let mut p = c.exec(
        &ExecOptions {
            args: args.command.clone(),
            env,
            workdir: args.workdir.clone(),
            user: args.user.clone(),
            tty: true,
            interactive: true,
        },
        Stdio::default(),
    )?;
    follow_window_size()?;
    let relay = match p.take_pty_master() {
        Some(master) => Some(super::container::tty::Relay::start(master, true)?),
        None => None,
    };
    let code = p.wait();
    if let Some(relay) = relay {
        relay.finish();
    }
    Ok(code?.clamp(0, 255) as u8)
}

extern "C" fn on_winch(_: libc::c_int) {
    super::container::tty::resize_requested();
}

/// SIGWINCH resizes the container's terminal.
fn follow_window_size() -> anyhow::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_winch),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only loads an atomic and issues two ioctl(2)
    // calls (TIOCGWINSZ/TIOCSWINSZ), plain system calls.
    unsafe { sigaction(Signal::SIGWINCH, &action) }.context("cannot handle SIGWINCH")?;
    Ok(())
}
