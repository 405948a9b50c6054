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
    #[command(flatten)]
    pub read: logs::Reading,
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

/// A running single container whose supervisor is gone gets a new one
/// (it re-adopts the container): its logs flow and its policy applies.
fn readopt(global: &GlobalOpts, layout: &Layout, project: &str, rec: &ContainerRecord) {
    if let Some(sp) = super::SingleProject::of(layout, project)
        && rstack_stack::status::is_alive(rec)
        && let Err(e) = sp.ensure_supervisor(global)
    {
        eprintln!("WARNING: cannot re-adopt container {}: {e:#}", rec.name);
    }
}

pub fn logs(global: &GlobalOpts, a: LogsArgs) -> anyhow::Result<u8> {
    let (layout, project, rec) = find(global, &a.container)?;
    readopt(global, &layout, &project, &rec);
    logs::show(&layout.project(&project), &[rec.name], &a.read, None)
}

pub fn exec(global: &GlobalOpts, a: ExecArgs) -> anyhow::Result<u8> {
    let (layout, project, rec) = find(global, &a.container)?;
    readopt(global, &layout, &project, &rec);
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
