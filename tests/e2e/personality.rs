//! rstack invoked as `docker` (and `docker-compose`) through a symlink,
//! as a tutorial's commands type it: Docker's grammar mapped onto
//! rstack's commands (`docker ps` lists the stacks' containers), and a
//! clear refusal for what rstack lacks.

use std::path::Path;
use std::process::Command;

use libtest_mimic::Trial;
use rstack_e2e::{Fixtures, Rstack, RunOutput, trial};

use crate::sandbox::{NEEDS, NetNs};

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "docker::personality_runs_tutorial_commands",
        NEEDS,
        personality,
    )]
}

/// `name ARGS` (a symlink to rstack) in the test's network namespace, on
/// the sandbox's root and run root.
pub(crate) fn as_named(ns: &NetNs, r: &Rstack, link: &Path, args: &[&str]) -> RunOutput {
    let mut cmd: Command = ns.nsenter();
    cmd.arg(link).args(args);
    r.sandbox_env(&mut cmd);
    cmd.env("RSTACK_ROOT", r.root())
        .env("RSTACK_RUN", r.run_root());
    r.run_command(cmd, None)
}

fn personality() {
    let ns = NetNs::new();
    let r = Rstack::new().with_timeout(std::time::Duration::from_secs(180));
    let image = Fixtures::shared().busybox_v2s2.reference();
    r.ok(&["pull", "-q", &image]);
    let bin = r.bin().to_path_buf();
    let docker = r.work_dir().join("docker");
    let compose = r.work_dir().join("docker-compose");
    std::os::unix::fs::symlink(&bin, &docker).unwrap();
    std::os::unix::fs::symlink(&bin, &compose).unwrap();
    let ok = |link: &Path, args: &[&str]| {
        let out = as_named(&ns, &r, link, args);
        assert!(out.success(), "{out}");
        out
    };
    images_and_volumes(&ns, &r, &docker, &image);

    let file = r.work_dir().join("compose.yaml");
    std::fs::write(
        &file,
        format!(
            "services:\n  web:\n    image: {image}\n    command: [\"sh\", \"-c\", \"echo hello from web; exec sleep 3600\"]\n    stop_signal: SIGKILL\n"
        ),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    ok(&compose, &["-f", f, "-p", "demo", "config", "-q"]);
    ok(&docker, &["compose", "-f", f, "-p", "demo", "up", "-d"]);
    let ps = ok(
        &docker,
        &[
            "compose",
            "-f",
            f,
            "-p",
            "demo",
            "ps",
            "--format",
            "{{.Name}}",
        ],
    );
    assert_eq!(ps.stdout, "demo-web-1\n", "{ps}");
    assert!(
        ok(&docker, &["network", "ls"])
            .stdout
            .contains("demo_default")
    );
    let ps = ok(&docker, &["ps"]);
    let lines: Vec<&str> = ps.stdout.lines().collect();
    assert!(lines[0].starts_with("CONTAINER ID   IMAGE"), "{ps}");
    assert!(lines.len() == 2 && lines[1].ends_with("demo-web-1"), "{ps}");
    let names = ok(
        &docker,
        &[
            "ps",
            "-a",
            "--filter",
            "label=com.docker.compose.service=web",
            "--format",
            "{{.Names}} {{.State}}",
        ],
    );
    assert_eq!(
        names.stdout,
        "demo-web-1 running
",
        "{names}"
    );
    let mut logs = String::new();
    for _ in 0..50 {
        logs = ok(&docker, &["logs", "demo-web-1"]).stdout;
        if !logs.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(logs, "hello from web\n");
    let exec = ok(&docker, &["exec", "demo-web-1", "echo", "hi from exec"]);
    assert_eq!(exec.stdout, "hi from exec\n", "{exec}");
    // a stack's container by name, as docker's commands do it
    assert_eq!(ok(&docker, &["stop", "demo-web-1"]).stdout, "demo-web-1\n");
    assert_eq!(ok(&docker, &["start", "demo-web-1"]).stdout, "demo-web-1\n");
    single_container(&ns, &r, &docker);
    let lacking = as_named(&ns, &r, &docker, &["attach", "demo-web-1"]);
    assert!(!lacking.success(), "{lacking}");
    lacking.assert_stderr_mentions(&["docker attach", "docker compose attach"]);
    ok(
        &docker,
        &["compose", "-f", f, "-p", "demo", "down", "-t", "0"],
    );
    ns.assert_clean(&r);
}

/// A single container, as the tutorials teach them: `run -d` with a named
/// volume, `ps -q`, `exec`, `rm -f`.
fn single_container(ns: &NetNs, r: &Rstack, docker: &Path) {
    let ok = |link: &Path, args: &[&str]| {
        let out = as_named(ns, r, link, args);
        assert!(out.success(), "{out}");
        out
    };
    let id = ok(
        docker,
        &[
            "run",
            "-d",
            "--name",
            "app",
            "-v",
            "dados-app:/data",
            "minha-imagem",
            "sleep",
            "3600",
        ],
    );
    let ids = ok(docker, &["ps", "-q"]).stdout;
    assert!(ids.lines().any(|l| id.stdout.starts_with(l)), "{ids}");
    assert_eq!(
        ok(docker, &["exec", "app", "cat", "/built"]).stdout,
        "built\n"
    );
    assert_eq!(ok(docker, &["rm", "-f", "app"]).stdout, "app\n");
    ok(docker, &["volume", "rm", "dados-app"]);
    ok(docker, &["network", "rm", "bridge"]);
}

/// `images`, `volume create|ls|rm`, `build -t`, `run --rm`, `history`,
/// `tag`, `rmi`.
fn images_and_volumes(ns: &NetNs, r: &Rstack, docker: &Path, image: &str) {
    let ok = |link: &Path, args: &[&str]| {
        let out = as_named(ns, r, link, args);
        assert!(out.success(), "{out}");
        out
    };
    let images = ok(docker, &["images"]);
    assert!(images.stdout.contains("e2e/busybox"), "{images}");
    ok(docker, &["volume", "create", "dados-app"]);
    assert!(ok(docker, &["volume", "ls"]).stdout.contains("dados-app"));
    ok(docker, &["volume", "rm", "dados-app"]);

    let dir = r.work_dir().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {image}\nRUN echo built > /built\nCMD [\"cat\", \"/built\"]\n"),
    )
    .unwrap();
    ok(
        docker,
        &["build", "-t", "minha-imagem", dir.to_str().unwrap()],
    );
    let run = ok(docker, &["run", "--rm", "minha-imagem"]);
    assert_eq!(run.stdout, "built\n", "{run}");
    let history = ok(docker, &["history", "minha-imagem"]);
    assert!(history.stdout.contains("echo built"), "{history}");
    ok(docker, &["tag", "minha-imagem", "minha-imagem:v2"]);
    ok(docker, &["rmi", "minha-imagem:v2"]);
}
