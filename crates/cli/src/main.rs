//! The `rstack` command: `docker compose`-compatible commands with no daemon.
//!
//! One file per subcommand under `commands/`; this file only parses the
//! command line (in Docker's grammar when invoked as `docker`, see
//! `personality`), sets up logging and prints errors with their whole chain.

mod commands;
mod global;
mod personality;

use std::process::ExitCode;

use clap::Parser;

use crate::global::GlobalOpts;

#[derive(Debug, Parser)]
#[command(
    name = "rstack",
    version,
    about = "Run Compose stacks with no daemon",
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    // Containers are built by this binary re-executed as a single-threaded
    // helper (libcontainer clones from the caller; see rstack_runtime::helper).
    if let Some(code) = rstack_runtime::helper::run_if_helper() {
        std::process::exit(code);
    }
    if let Ok(exe) = std::env::current_exe() {
        rstack_runtime::helper::use_helper(exe);
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let args = match personality::of(args.first().map(|a| a.as_os_str()).unwrap_or_default()) {
        personality::Personality::Docker => match personality::docker_args(args) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        },
        personality::Personality::Rstack => args,
    };
    let cli = Cli::parse_from(args);
    if cli.command.only_prints() {
        // SAFETY: signal(2) with SIG_DFL, before any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    global::init_logging(&cli.global);
    match commands::run(&cli.global, cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            print_error_chain(&err);
            ExitCode::from(1)
        }
    }
}

/// Prints an error and every cause under it, one per line, like
/// cloud-hypervisor's `cli_print_error_chain`.
fn print_error_chain(err: &anyhow::Error) {
    eprintln!("Error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
