//! `container logs NAME` and `container exec NAME CMD...`: Docker's
//! per-container commands on any container rstack knows (found by id, name
//! or unique id prefix, in any project), through the same paths as the
//! project's `logs` and `exec`.

use anyhow::bail;
use rstack_stack::lifecycle::Env;
use rstack_stack::state::{ContainerRecord, Layout};

use crate::commands::inspect::find_container;
use crate::commands::{exec, logs};
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    pub container: String,
}

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VAL")]
    pub env: Vec<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub container: String,
    /// The command and its arguments
    #[arg(required = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The container `query` names, with its project.
fn find(global: &GlobalOpts, query: &str) -> anyhow::Result<(Layout, String, ContainerRecord)> {
    let layout = Layout::new(&global.run_root, &global.root);
    match find_container(&layout, query)? {
        Some((project, rec)) => Ok((layout, project, rec)),
        None => bail!("No such container: {query}"),
    }
}

pub fn logs(global: &GlobalOpts, a: LogsArgs) -> anyhow::Result<u8> {
    let (layout, project, rec) = find(global, &a.container)?;
    let args = logs::Args {
        follow: a.follow,
        tail: a.tail,
        timestamps: a.timestamps,
        since: a.since,
        until: a.until,
        no_color: true,
        no_log_prefix: true,
        services: Vec::new(),
    };
    logs::show(&layout.project(&project), &[rec.name], &args)
}

pub fn exec(global: &GlobalOpts, a: ExecArgs) -> anyhow::Result<u8> {
    let (_, _, rec) = find(global, &a.container)?;
    let env = Env::new(&global.run_root, &global.root);
    let args = exec::Args {
        detach: a.detach,
        no_tty: !a.tty,
        env: a.env,
        user: a.user,
        workdir: a.workdir,
        index: rec.number,
        privileged: false,
        service: rec.service.clone(),
        command: a.command,
    };
    exec::exec_record(&env, &rec, &args, a.interactive)
}
