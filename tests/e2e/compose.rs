//! Compose behaviour where rstack must act as `docker compose` v2 does on
//! real-world files (each trial written from a reproduction).

use libtest_mimic::Trial;
use rstack_e2e::trial;

use crate::stack::{DownOnPanic, NEEDS, NetNs, args, setup};

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "compose::ps_lists_exposed_ports_and_takes_templates",
            NEEDS,
            ps_ports_and_templates,
        ),
        trial(
            "compose::exec_by_project_name_from_anywhere",
            NEEDS,
            exec_by_project_name,
        ),
        trial(
            "compose::run_on_a_fresh_project",
            NEEDS,
            run_on_a_fresh_project,
        ),
        trial(
            "compose::image_volume_is_an_anonymous_volume",
            NEEDS,
            image_volume,
        ),
    ]
}

/// `-p NAME exec SERVICE` outside the project directory finds the
/// project's containers (as `-p NAME down` does), like docker compose.
fn exec_by_project_name() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(EXPOSE);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    let elsewhere = |a: &[&str]| {
        let inner = r.command(a);
        let mut cmd = ns.nsenter();
        cmd.arg(inner.get_program())
            .args(inner.get_args())
            .current_dir(r.home());
        r.sandbox_env(&mut cmd);
        r.run_command(cmd, None)
    };
    let out = elsewhere(&["-p", "demo", "exec", "-T", "web", "echo", "hi from web"]);
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout, "hi from web\n");
    let out = elsewhere(&["-p", "demo", "exec", "-T", "nope", "true"]);
    assert!(!out.success(), "{out}");
    out.assert_stderr_mentions(&["service \"nope\" is not running"]);
    let out = elsewhere(&["exec", "-T", "web", "true"]);
    assert!(!out.success(), "no -p, no file: {out}");
    out.assert_stderr_mentions(&["no configuration file provided"]);
    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
}

/// `run` on a project that was never up (and whose image is not pulled):
/// docker compose pulls the image and creates the networks and volumes, as
/// `up` would; `down` removes them.
fn run_on_a_fresh_project() {
    let ns = NetNs::new();
    let r = rstack_e2e::Rstack::new().with_timeout(std::time::Duration::from_secs(180));
    let image = rstack_e2e::Fixtures::shared().busybox_v2s2.reference();
    let file = r.work_dir().join("compose.yaml");
    std::fs::write(
        &file,
        format!(
            "services:\n  app:\n    image: {image}\n    networks: [back]\n    volumes: [data:/data]\n  \
             solo:\n    image: {image}\n    network_mode: none\n\
             networks:\n  back: {{}}\nvolumes:\n  data: {{}}\n"
        ),
    )
    .unwrap();
    let base = vec![
        "-f".to_owned(),
        file.display().to_string(),
        "-p".to_owned(),
        "demo".to_owned(),
    ];
    // the registry is on the host's loopback: the pull is checked with a
    // service without network (nothing is created on the host), the
    // networks in the test's namespace
    let solo = r.ok(&args(
        &base,
        &["run", "--rm", "-T", "solo", "echo", "pulled"],
    ));
    assert_eq!(solo.stdout, "pulled\n", "{solo}");
    solo.assert_stderr_mentions(&["Pulled"]);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    let out = ns.ok(
        &r,
        &args(
            &base,
            &[
                "run",
                "--rm",
                "-T",
                "app",
                "sh",
                "-c",
                "echo hi > /data/f; cat /data/f; ip -4 -o addr show eth0 | wc -l",
            ],
        ),
    );
    assert_eq!(out.stdout, "hi\n1\n", "{out}");
    out.assert_stderr_mentions(&["Network demo_back  Created"]);
    ns.ok(&r, &args(&base, &["down", "-v", "-t", "0"]));
    ns.assert_clean(&r);
}

/// An image `VOLUME` becomes an anonymous volume filled from the image,
/// kept across a restart, gone with the container (postgres keeps its data
/// in one); a service mount at the same path replaces it.
fn image_volume() {
    let ns = NetNs::new();
    let (r, image, base) = setup(
        "services:\n  db:\n    image: e2e/with-volume:1\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n  \
         other:\n    image: e2e/with-volume:1\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n    \
         tmpfs: [/data]\n",
    );
    let dir = r.work_dir().join("img");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {image}\nRUN mkdir -p /data && echo seed > /data/seed\nVOLUME /data\n"),
    )
    .unwrap();
    r.ok(&[
        "image",
        "build",
        "-t",
        "e2e/with-volume:1",
        dir.to_str().unwrap(),
    ]);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    let sh = |svc: &str, cmd: &str| ns.ok(&r, &args(&base, &["exec", "-T", svc, "sh", "-c", cmd]));
    let out = sh(
        "db",
        "grep -c ' /data ' /proc/self/mountinfo; cat /data/seed; echo kept > /data/new",
    );
    assert_eq!(
        out.stdout, "1\nseed\n",
        "a volume at /data, filled from the image:\n{out}"
    );
    ns.ok(&r, &args(&base, &["restart", "db"]));
    let out = sh("db", "cat /data/new");
    assert_eq!(
        out.stdout, "kept\n",
        "the volume outlives a restart:\n{out}"
    );
    // the service's own mount at the path wins: a tmpfs, empty
    let out = sh(
        "other",
        "grep ' /data ' /proc/self/mountinfo | grep -c tmpfs; ls /data | wc -l",
    );
    assert_eq!(out.stdout, "1\n0\n", "{out}");
    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
    let anon = r.root().join("projects/demo/anon");
    let left = rstack_e2e::leaks::tree(&anon);
    assert!(left.is_empty(), "anonymous volumes left: {left:?}");
}

const EXPOSE: &str = r#"
services:
  web:
    image: IMAGE
    command: ["sleep", "3600"]
    expose: ["8080", "80", "443"]
    stop_signal: SIGKILL
  pub:
    image: IMAGE
    command: ["sleep", "3600"]
    ports: ["8081:80"]
    expose: ["80", "443"]
    stop_signal: SIGKILL
"#;

/// `ps` PORTS lists expose-only ports after the published ones, and
/// `--format` takes Go templates (docker compose v2).
fn ps_ports_and_templates() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(EXPOSE);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    let out = ns.ok(&r, &args(&base, &["ps"]));
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{out}"))
            .to_owned()
    };
    assert!(
        line("demo-web-1").ends_with("80/tcp, 443/tcp, 8080/tcp"),
        "{out}"
    );
    assert!(
        line("demo-pub-1").ends_with("0.0.0.0:8081->80/tcp, 443/tcp"),
        "{out}"
    );
    let json = ns.ok(&r, &args(&base, &["ps", "--format", "json"]));
    let web = json
        .json_lines()
        .into_iter()
        .find(|v| v["Name"] == "demo-web-1")
        .unwrap();
    assert_eq!(web["Ports"], "80/tcp, 443/tcp, 8080/tcp");

    let t = ns.ok(
        &r,
        &args(&base, &["ps", "--format", "{{.Name}}\\t{{.State}}"]),
    );
    let mut lines: Vec<&str> = t.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["demo-pub-1\trunning", "demo-web-1\trunning"], "{t}");
    let bad = ns.rstack(&r, &args(&base, &["ps", "--format", "{{.Name"]));
    assert!(!bad.success(), "{bad}");
    bad.assert_stderr_mentions(&["unclosed"]);
    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
}
