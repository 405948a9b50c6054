//! `rstack login`: check credentials against a registry, then store them
//! like `docker login` (in `$RSTACK_CONFIG/config.json`, default
//! `~/.rstack/config.json`).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use rstack_images::auth::{self, Credentials};

use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password (prefer --password-stdin)
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin", conflicts_with = "password")]
    password_stdin: bool,
    /// Registry server (default: Docker Hub)
    server: Option<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let server = args
        .server
        .clone()
        .unwrap_or_else(|| "docker.io".to_owned());
    let registry = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let registry = registry.split('/').next().unwrap_or(&registry).to_owned();
    let stdin = std::io::stdin();
    let username = match args.username {
        Some(u) => u,
        None if args.password_stdin => anyhow::bail!("--password-stdin needs --username"),
        None => {
            if !stdin.is_terminal() {
                anyhow::bail!("cannot perform an interactive login from a non TTY device");
            }
            prompt("Username: ")?
        }
    };
    let password = if args.password_stdin {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else if let Some(p) = args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        if !stdin.is_terminal() {
            anyhow::bail!("cannot perform an interactive login from a non TTY device");
        }
        prompt_hidden("Password: ")?
    };
    if username.is_empty() || password.is_empty() {
        anyhow::bail!("username and password must not be empty");
    }
    let creds = Credentials { username, password };
    let store = global.store()?;
    let plain_http = store.registry_config()?.is_insecure(&registry);
    let rt = crate::global::tokio_runtime()?;
    rt.block_on(auth::verify(&registry, &creds, plain_http))?;
    let path = auth::store(&registry, &creds)?;
    tracing::info!(file = %path.display(), "credentials stored");
    println!("Login Succeeded");
    Ok(0)
}

fn prompt(text: &str) -> anyhow::Result<String> {
    print!("{text}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

/// Reads a line with terminal echo off (restored on every path).
fn prompt_hidden(text: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("cannot read terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("cannot turn off echo")?;
    let result = prompt(text);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    println!();
    result
}
