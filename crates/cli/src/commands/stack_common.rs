//! What the stack commands (`up`, `down`, `ps`, `logs`, `exec`, `stop`...)
//! share: loading the project, reaching its state and its supervisor,
//! published ports, coloured log prefixes.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use rstack_compose::Project;
use rstack_stack::control::{self, Request, Response};
use rstack_stack::lifecycle::Env;
use rstack_stack::state::{ContainerRecord, ProjectPaths};

use crate::global::GlobalOpts;

/// The loaded project and where its state lives.
pub struct Ctx {
    pub project: Project,
    pub env: Env,
    pub pp: ProjectPaths,
}

/// Loads the Compose project of the global flags for a command acting on
/// `services` (all when empty): only their `env_file`s must exist, as with
/// docker compose.
pub fn load(global: &GlobalOpts, services: &[String]) -> anyhow::Result<Ctx> {
    let mut opts = super::config::compose_options(global)?;
    opts.acting_on = services.to_vec();
    let project = rstack_compose::load(&opts)?;
    for w in &project.warnings {
        eprintln!("WARN[0000] {w}");
    }
    let env = Env::new(&global.run_root, &global.root);
    let pp = env.layout.project(&project.name);
    Ok(Ctx { project, env, pp })
}

/// The services a command acts on: those named, else every service of
/// this command line's model. Like docker compose, `-f a.yaml stop` acts
/// on a.yaml's services, whatever else the project's supervisor runs.
pub fn acted_on(project: &Project, named: &[String]) -> Vec<String> {
    if named.is_empty() {
        project.services.keys().cloned().collect()
    } else {
        named.to_vec()
    }
}

/// The project name and state without needing the Compose file (`-p`
/// alone is enough, like `docker compose -p x down`).
pub fn load_or_name(
    global: &GlobalOpts,
    services: &[String],
) -> anyhow::Result<(Option<Project>, Env, ProjectPaths)> {
    let env = Env::new(&global.run_root, &global.root);
    match load(global, services) {
        Ok(ctx) => Ok((Some(ctx.project), ctx.env, ctx.pp)),
        Err(e) => match &global.compose.project_name {
            Some(name) => {
                let pp = env.layout.project(name);
                Ok((None, env, pp))
            }
            None => Err(e),
        },
    }
}

/// Sends a request to the running supervisor, if there is one.
pub fn ask(
    pp: &ProjectPaths,
    req: &Request,
    timeout: Duration,
) -> anyhow::Result<Option<Response>> {
    if rstack_stack::supervisor::running_supervisor(pp).is_none() {
        return Ok(None);
    }
    let r = control::request(&pp.control_socket(), req, timeout)
        .context("ask the project's supervisor")?;
    Ok(Some(r))
}

/// Sends `req` to the supervisor and prints its answer; no supervisor is
/// an error (nothing runs that could be acted upon).
pub fn relay(pp: &ProjectPaths, req: &Request, timeout: Duration) -> anyhow::Result<u8> {
    match ask(pp, req, timeout)? {
        Some(r) => {
            for l in r.lines {
                eprintln!(" {l}");
            }
            Ok(0)
        }
        None => anyhow::bail!("no supervisor runs for this project (start it with `rstack up -d`)"),
    }
}

/// The service's containers, in number order.
pub fn containers_of(pp: &ProjectPaths, service: &str) -> anyhow::Result<Vec<ContainerRecord>> {
    let mut v: Vec<ContainerRecord> = pp
        .containers()?
        .into_iter()
        .filter(|r| r.service == service)
        .collect();
    v.sort_by_key(|r| r.number);
    Ok(v)
}

/// A published port as recorded (`0.0.0.0:8080->80/tcp`), in parts.
#[derive(Debug, PartialEq, Eq)]
pub struct Published<'a> {
    pub host_ip: &'a str,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: &'a str,
}

/// Splits a recorded port; `None` for a string of another shape.
pub fn parse_published(p: &str) -> Option<Published<'_>> {
    let (host, rest) = p.split_once("->")?;
    let (host_ip, host_port) = host.rsplit_once(':')?;
    let (container_port, protocol) = rest.split_once('/')?;
    Some(Published {
        host_ip,
        host_port: host_port.parse().ok()?,
        container_port: container_port.parse().ok()?,
        protocol,
    })
}

/// Whether to colour output (a terminal, no NO_COLOR, no --no-color).
pub fn use_color(no_color: bool) -> bool {
    !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

const COLORS: [u8; 6] = [36, 33, 32, 35, 34, 31];

/// `name  | ` padded to `width`, coloured by index.
pub fn prefix(name: &str, width: usize, index: usize, color: bool) -> String {
    if color {
        format!(
            "\x1b[{}m{name:<width$} |\x1b[0m ",
            COLORS[index % COLORS.len()]
        )
    } else {
        format!("{name:<width$} | ")
    }
}

/// Prints each of `items` once, in first-seen order (`ps --services`,
/// `compose images -q`).
pub fn print_unique<'a>(items: impl IntoIterator<Item = &'a str>) {
    let mut seen: Vec<&str> = Vec::new();
    for i in items {
        if !seen.contains(&i) {
            println!("{i}");
            seen.push(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_split() {
        assert_eq!(
            parse_published("0.0.0.0:8080->80/tcp"),
            Some(Published {
                host_ip: "0.0.0.0",
                host_port: 8080,
                container_port: 80,
                protocol: "tcp",
            })
        );
        assert_eq!(
            parse_published("::1:53->53/udp").map(|p| p.host_ip),
            Some("::1")
        );
        assert_eq!(parse_published("80/tcp"), None);
    }
}
