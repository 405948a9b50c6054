//! `rstack cp`: copy files/folders between a service container and the
//! local filesystem, like `docker compose cp`.
//!
//! The container is found from the state files (no supervisor needed). A
//! running container's filesystem is reached through its init's
//! `/proc/<pid>/root`, volumes and bind mounts included; a stopped one's
//! through its image layers and kept writable layer, mounted in a private
//! mount namespace of this process, so its own files only (see
//! `rstack_stack::copy::container`). This process must still be
//! single-threaded when it opens a stopped container: nothing here starts
//! a thread (no tokio runtime) before that.

use std::io::{Read, Write};

use anyhow::{Context, bail};
use rstack_stack::copy::{self, Access, Dest, Opened, Options, Source, paths};
use rstack_stack::state::ContainerRecord;

use super::stack_common::{self, Ctx};
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
#[command(
    override_usage = "rstack cp [OPTIONS] SERVICE:SRC_PATH DEST_PATH|-\n       \
                            rstack cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH"
)]
pub struct Args {
    /// Include containers created by the run command
    #[arg(long)]
    pub all: bool,
    /// Index of the container if service has multiple replicas (default:
    /// every replica when copying to a service, the first when copying from)
    #[arg(long)]
    pub index: Option<u32>,
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// SERVICE:SRC_PATH, or a local SRC_PATH (`-`: a tar stream on stdin)
    pub source: String,
    /// SERVICE:DEST_PATH, or a local DEST_PATH (`-`: a tar stream on stdout)
    pub destination: String,
}

/// compose's `splitCpArg`: `SERVICE:PATH`, unless the argument is an
/// absolute or `.`-relative local path (which may contain a colon).
pub(crate) fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((svc, path)) if !svc.starts_with('.') => (Some(svc), path),
        _ => (None, arg),
    }
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let (src_svc, src_path) = split_cp_arg(&args.source);
    let (dst_svc, dst_path) = split_cp_arg(&args.destination);
    let (service, from_service) = match (src_svc, dst_svc) {
        (Some(_), Some(_)) => bail!("copying between services is not supported"),
        (None, None) => bail!("unknown copy direction"),
        (Some(s), None) => (s, true),
        (None, Some(s)) => (s, false),
    };
    let ctx = stack_common::load(global, &[])?;
    if !ctx.project.services.contains_key(service) {
        bail!("no such service: {service}");
    }
    let targets = targets(
        &stack_common::containers_of(&ctx.pp, service)?,
        service,
        &args,
        from_service,
    )?;
    let opts = Options {
        archive: args.archive,
        follow_link: args.follow_link,
    };
    transfer(&ctx, &targets, from_service, (src_path, dst_path), opts)
}

/// Copies out of the first of `targets` (`from_container`), or into each
/// of them; `paths` are the source and destination paths.
pub(crate) fn transfer(
    ctx: &Ctx,
    targets: &[ContainerRecord],
    from_container: bool,
    paths: (&str, &str),
    opts: Options,
) -> anyhow::Result<u8> {
    let (src_path, dst_path) = paths;
    let from_service = from_container;
    let cwd = std::env::current_dir().context("find the current directory")?;
    let cwd = cwd.to_string_lossy();
    if from_service {
        let rec = &targets[0];
        let opened = open(ctx, rec, Access::Read)?;
        if dst_path == "-" {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            copy::copy_out(opened.root(), src_path, Dest::Tar(&mut out), opts)?;
            out.flush().context("write to stdout")?;
            opened.close()?;
        } else {
            let dst = paths::host_abs(dst_path, &cwd);
            let done = copy::copy_out(opened.root(), src_path, Dest::Path(&dst), opts)?;
            opened.close()?;
            eprintln!(
                "Successfully copied {} to {}",
                super::images::human_size(done.bytes),
                dst
            );
        }
        return Ok(0);
    }
    // A tar stream on stdin is read once, whatever the number of replicas.
    let stdin_tar = if src_path == "-" && targets.len() > 1 {
        let mut v = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut v)
            .context("read the tar stream on stdin")?;
        Some(v)
    } else {
        None
    };
    let src = paths::host_abs(src_path, &cwd);
    for rec in targets {
        let opened = open(ctx, rec, Access::Write)?;
        let root = opened.root();
        let done = if src_path == "-" {
            match &stdin_tar {
                Some(data) => {
                    copy::copy_into(root, Source::Tar(&mut data.as_slice()), dst_path, opts)?
                }
                None => {
                    let stdin = std::io::stdin();
                    let mut input = stdin.lock();
                    copy::copy_into(root, Source::Tar(&mut input), dst_path, opts)?
                }
            }
        } else {
            copy::copy_into(root, Source::Path(&src), dst_path, opts)?
        };
        opened.close()?;
        if src_path != "-" {
            eprintln!(
                "Successfully copied {} to {}:{}",
                super::images::human_size(done.bytes),
                rec.name,
                done.dest
            );
        }
    }
    Ok(0)
}

/// compose's `listContainersTargetedForCopy`: `--index N` is that replica;
/// otherwise every container of the service (one-off `run` containers only
/// with `--all`), of which a copy from the service uses the first.
fn targets(
    recs: &[ContainerRecord],
    service: &str,
    args: &Args,
    from_service: bool,
) -> anyhow::Result<Vec<ContainerRecord>> {
    if let Some(index) = args.index.filter(|i| *i > 0) {
        return match recs.iter().find(|r| !r.oneoff && r.number == index) {
            Some(r) => Ok(vec![r.clone()]),
            None => bail!("service \"{service}\" is not running container #{index}"),
        };
    }
    let mut v: Vec<ContainerRecord> = recs
        .iter()
        .filter(|r| args.all || !r.oneoff)
        .cloned()
        .collect();
    if v.is_empty() {
        bail!("no container found for service \"{service}\"");
    }
    if from_service {
        v.truncate(1);
    }
    Ok(v)
}

/// The filesystem of container `rec`, running or not.
fn open(ctx: &Ctx, rec: &ContainerRecord, access: Access) -> anyhow::Result<Opened> {
    Ok(copy::container::open(
        &ctx.env,
        &ctx.pp,
        &ctx.project,
        rec,
        access,
    )?)
}

#[cfg(test)]
mod tests {
    use super::split_cp_arg;

    #[test]
    fn cp_args_split_like_compose() {
        assert_eq!(split_cp_arg("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split_cp_arg("web:rel/path"), (Some("web"), "rel/path"));
        assert_eq!(split_cp_arg("/abs/a:b"), (None, "/abs/a:b"));
        assert_eq!(split_cp_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_cp_arg("file.txt"), (None, "file.txt"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
    }
}
