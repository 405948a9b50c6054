//! The `docker` and `docker-compose` personalities: invoked under those
//! names (a symlink, as podman-docker does), rstack takes Docker's
//! top-level grammar or Compose's. `docker-compose` is rstack's own
//! grammar; `docker` maps each of Docker's commands onto rstack's
//! (`docker build` = `image build`, `docker run` = `container run`,
//! `docker compose ...` = rstack's compose commands, `docker ps` = `container
//! ls`, `stop`/`start`/`rm`/`logs`/`exec`... of a container). Docker's
//! commands that rstack does not have yet (`rename`, `top`, ...) are
//! refused with a message saying so, never run as something else.

use std::ffi::{OsStr, OsString};
use std::path::Path;

/// Which grammar the command line is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    Rstack,
    Docker,
}

/// The personality of a program name (`argv[0]`).
pub fn of(argv0: &OsStr) -> Personality {
    match Path::new(argv0).file_name().and_then(OsStr::to_str) {
        Some("docker") => Personality::Docker,
        _ => Personality::Rstack,
    }
}

/// Docker commands that keep their name in rstack's grammar.
const SAME: &[&str] = &[
    "compose",
    "container",
    "image",
    "images",
    "network",
    "volume",
    "system",
    "info",
    "version",
    "inspect",
    "login",
    "logout",
    "rmi",
    "search",
    "help",
];

/// Docker commands that are `image` sub-commands in rstack.
const IMAGE: &[&str] = &["build", "pull", "push", "tag", "history", "save", "load"];

/// Docker commands that are `container` sub-commands in rstack.
const CONTAINER: &[&str] = &[
    "run", "ps", "logs", "exec", "stop", "start", "restart", "kill", "rm", "pause", "unpause",
    "top", "port", "wait", "stats", "cp", "rename", "create", "update",
];

/// Docker's commands on single containers, not in rstack yet.
const SINGLE: &[&str] = &["attach", "commit", "export", "diff", "events", "import"];

/// rstack's arguments (program name first) for `args` given to `docker`.
pub fn docker_args(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let mut out: Vec<OsString> = vec!["rstack".into()];
    let mut rest = args.into_iter().skip(1).peekable();
    // Docker's global flags before the command: only the ones that mean
    // the same here pass (`--help`, `--version`)
    while let Some(a) = rest.peek() {
        let s = a.to_string_lossy();
        if !s.starts_with('-') {
            break;
        }
        match s.as_ref() {
            "-h" | "--help" | "-v" | "--version" => out.push(rest.next().unwrap_or_default()),
            other => {
                return Err(format!(
                    "docker: the global option {other} is not supported by rstack"
                ));
            }
        }
    }
    let Some(cmd) = rest.next() else {
        return Ok(out);
    };
    let name = cmd.to_string_lossy().into_owned();
    if SAME.contains(&name.as_str()) {
        out.push(cmd);
    } else if IMAGE.contains(&name.as_str()) {
        out.push("image".into());
        out.push(cmd);
    } else if CONTAINER.contains(&name.as_str()) {
        out.push("container".into());
        out.push(cmd);
    } else if SINGLE.contains(&name.as_str()) {
        return Err(format!(
            "docker {name}: not supported by rstack yet; for a Compose project, use `docker compose {name}`"
        ));
    } else {
        return Err(format!("docker: '{name}' is not a docker command"));
    }
    out.extend(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(args: &[&str]) -> Result<Vec<String>, String> {
        docker_args(args.iter().map(OsString::from).collect()).map(|v| {
            v.into_iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        })
    }

    #[test]
    fn program_names() {
        assert_eq!(of(OsStr::new("/usr/local/bin/docker")), Personality::Docker);
        assert_eq!(of(OsStr::new("docker-compose")), Personality::Rstack);
        assert_eq!(of(OsStr::new("rstack")), Personality::Rstack);
    }

    #[test]
    fn docker_commands_map_to_rstack_ones() {
        assert_eq!(
            t(&["docker", "build", "-t", "x", "."]).unwrap(),
            ["rstack", "image", "build", "-t", "x", "."]
        );
        assert_eq!(
            t(&["docker", "run", "--rm", "img"]).unwrap(),
            ["rstack", "container", "run", "--rm", "img"]
        );
        assert_eq!(
            t(&["docker", "compose", "-f", "c.yaml", "up", "-d"]).unwrap(),
            ["rstack", "compose", "-f", "c.yaml", "up", "-d"]
        );
        assert_eq!(t(&["docker", "images"]).unwrap(), ["rstack", "images"]);
        assert_eq!(
            t(&["docker", "ps", "-a"]).unwrap(),
            ["rstack", "container", "ps", "-a"]
        );
        assert_eq!(
            t(&["docker", "tag", "a", "b"]).unwrap(),
            ["rstack", "image", "tag", "a", "b"]
        );
        assert_eq!(
            t(&["docker", "--version"]).unwrap(),
            ["rstack", "--version"]
        );
        assert_eq!(t(&["docker"]).unwrap(), ["rstack"]);
    }

    #[test]
    fn what_rstack_lacks_is_refused_by_name() {
        assert_eq!(
            t(&["docker", "rename", "a", "b"]).unwrap(),
            ["rstack", "container", "rename", "a", "b"]
        );
        let e = t(&["docker", "attach", "web"]).unwrap_err();
        assert!(e.contains("docker compose attach"), "{e}");
        assert_eq!(
            t(&["docker", "rm", "-f", "web"]).unwrap(),
            ["rstack", "container", "rm", "-f", "web"]
        );
        assert_eq!(
            t(&["docker", "logs", "-f", "web"]).unwrap(),
            ["rstack", "container", "logs", "-f", "web"]
        );
        let e = t(&["docker", "frobnicate"]).unwrap_err();
        assert!(e.contains("'frobnicate' is not a docker command"), "{e}");
        let e = t(&["docker", "-H", "tcp://x", "images"]).unwrap_err();
        assert!(e.contains("-H"), "{e}");
    }
}
