//! Compose behaviour where rstack must act as `docker compose` v2 does on
//! real-world files (each trial written from a reproduction).

use libtest_mimic::Trial;
use rstack_e2e::trial;

use crate::sandbox::{DownOnPanic, NEEDS, NetNs, args, setup};

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
        trial(
            "compose::env_files_and_links_of_the_services_acted_on",
            NEEDS,
            env_files_and_links,
        ),
        trial(
            "compose::local_driver_opts_mount_the_volume",
            NEEDS,
            local_driver_opts,
        ),
        trial("compose::dotenv_of_cwd_and_project", NEEDS, dotenv_rules),
        trial(
            "compose::commands_act_on_their_own_files_services",
            NEEDS,
            two_files_one_project,
        ),
        trial(
            "compose::shared_container_name_conflicts_at_creation",
            NEEDS,
            shared_container_name,
        ),
        trial(
            "compose::changed_network_is_recreated",
            NEEDS,
            changed_network,
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

const LINKS: &str = r#"
services:
  app:
    image: IMAGE
    command: ["sleep", "3600"]
    links: ["db:database"]
    stop_signal: SIGKILL
  other:
    image: IMAGE
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
  db:
    image: IMAGE
    command: ["sh", "-c", "mkdir -p /www && echo db here > /www/index.html && exec httpd -f -p 80 -h /www"]
    stop_signal: SIGKILL
  broken:
    image: IMAGE
    env_file: /doesnotexist/.env
"#;

/// `up -d app other` needs only the env files of the services it acts on
/// (a missing one of `broken` does not block it, as with docker compose);
/// `links: [db:database]` makes `database` a name of db's container for
/// `app` only.
fn env_files_and_links() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(LINKS);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    let bad = ns.rstack(&r, &args(&base, &["up", "-d", "broken"]));
    assert!(!bad.success(), "{bad}");
    bad.assert_stderr_mentions(&["services.broken.env_file", "/doesnotexist/.env"]);
    ns.ok(&r, &args(&base, &["up", "-d", "app", "other"]));
    let get = |svc: &str| {
        ns.rstack(
            &r,
            &args(
                &base,
                &[
                    "exec",
                    "-T",
                    svc,
                    "timeout",
                    "10",
                    "wget",
                    "-q",
                    "-O",
                    "-",
                    "http://database/",
                ],
            ),
        )
    };
    let out = get("app");
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout, "db here\n", "{out}");
    let out = get("other");
    assert!(
        !out.success(),
        "only the linking container resolves the alias: {out}"
    );
    let ps = ns.ok(&r, &args(&base, &["ps", "--format", "{{.Service}}"]));
    let mut services: Vec<&str> = ps.stdout.lines().collect();
    services.sort();
    assert_eq!(services, ["app", "db", "other"], "{ps}");
    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
    ns.assert_clean(&r);
}

/// Named volumes with the local driver's `driver_opts` are mounts, as
/// Docker makes them: `type: none, o: bind` binds a host directory (whose
/// files outlive `down -v`), `type: tmpfs` is one memory file system
/// shared by the containers; a bad option names the volume and creates
/// nothing.
fn local_driver_opts() {
    let ns = NetNs::new();
    let (r, image, base) = setup("services: {}\n");
    let host_dir = r.work_dir().join("host-data");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("before"), "from the host\n").unwrap();
    let compose = format!(
        r#"
services:
  a:
    image: {image}
    command: ["sh", "-c", "echo from a > /b/a; echo shared > /m/f; exec sleep 3600"]
    volumes: [bound:/b, mem:/m]
    stop_signal: SIGKILL
  b:
    image: {image}
    command: ["sleep", "3600"]
    volumes: [mem:/m]
    depends_on: [a]
    stop_signal: SIGKILL
volumes:
  bound:
    driver: local
    driver_opts: {{type: none, o: bind, device: {dir}}}
  mem:
    driver_opts: {{type: tmpfs, device: tmpfs, o: "size=1m,mode=0777"}}
"#,
        dir = host_dir.display()
    );
    std::fs::write(&base[1], compose).unwrap();
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    let sh = |svc: &str, cmd: &str| ns.ok(&r, &args(&base, &["exec", "-T", svc, "sh", "-c", cmd]));
    let mut seen = String::new();
    for _ in 0..50 {
        seen = sh(
            "b",
            "cat /m/f 2>/dev/null; grep ' /m ' /proc/self/mountinfo | grep -c tmpfs",
        )
        .stdout;
        if seen.starts_with("shared") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(seen, "shared\n1\n", "b sees a's tmpfs volume");
    let out = sh("a", "cat /b/before");
    assert_eq!(out.stdout, "from the host\n", "{out}");
    assert_eq!(
        std::fs::read_to_string(host_dir.join("a")).unwrap(),
        "from a\n"
    );
    let inspect = ns.ok(&r, &["volume", "inspect", "demo_bound"]);
    assert!(
        inspect
            .stdout
            .contains(&format!("\"device\": \"{}\"", host_dir.display())),
        "{inspect}"
    );
    ns.ok(&r, &args(&base, &["down", "-v", "-t", "0"]));
    assert!(host_dir.join("before").exists() && host_dir.join("a").exists());
    assert!(!r.root().join("volumes/demo_bound").exists());
    ns.assert_clean(&r);

    std::fs::write(
        &base[1],
        format!(
            "services:\n  a:\n    image: {image}\n    volumes: [v:/v]\nvolumes:\n  v:\n    \
             driver_opts: {{tpye: none, device: /tmp}}\n"
        ),
    )
    .unwrap();
    let bad = ns.rstack(&r, &args(&base, &["up", "-d"]));
    assert!(!bad.success(), "{bad}");
    bad.assert_stderr_mentions(&["volume demo_v", "\"tpye\""]);
    assert!(!r.root().join("volumes/demo_v").exists());
    ns.rstack(&r, &args(&base, &["down"]));
    ns.assert_clean(&r);
}

/// Which `.env` is read (compose v2): the one where the command starts
/// gives its `COMPOSE_*` variables (the files, the name, the profiles), the
/// project directory's gives the variables of the file; the shell wins.
fn dotenv_rules() {
    let r = rstack_e2e::Rstack::new();
    let top = r.work_dir().join("top");
    let sub = top.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let compose = "services:\n  web:\n    image: busybox\n    environment:\n      FOO: ${FOO:-unset}\n      \
                   BAR: ${BAR:-unset}\n  extra:\n    image: busybox\n    profiles: [extra]\n";
    // the file is found in a parent directory
    std::fs::write(top.join("compose.yaml"), compose).unwrap();
    std::fs::write(top.join(".env"), "FOO=project\n").unwrap();
    std::fs::write(
        sub.join(".env"),
        "COMPOSE_PROJECT_NAME=fromcwd\nCOMPOSE_PROFILES=extra\nFOO=cwd\n",
    )
    .unwrap();
    let config = |dir: &std::path::Path, env: &[(&str, &str)]| {
        let mut cmd = r.command(&["config", "--format", "json"]);
        cmd.current_dir(dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = r.run_command(cmd, None);
        assert!(out.success(), "{out}");
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = config(&sub, &[]);
    assert_eq!(v["name"], "fromcwd");
    assert_eq!(v["services"]["web"]["environment"]["FOO"], "project");
    assert!(v["services"].get("extra").is_some(), "{v}");
    let v = config(&sub, &[("FOO", "shell")]);
    assert_eq!(v["services"]["web"]["environment"]["FOO"], "shell");
    // COMPOSE_FILE from the .env names a file in another directory
    std::fs::remove_file(top.join("compose.yaml")).unwrap();
    std::fs::write(sub.join("compose.yaml"), compose).unwrap();
    std::fs::write(sub.join(".env"), "BAR=sub\n").unwrap();
    std::fs::write(
        top.join(".env"),
        "COMPOSE_FILE=sub/compose.yaml\nCOMPOSE_PROJECT_NAME=named\nFOO=top\n",
    )
    .unwrap();
    let v = config(&top, &[]);
    assert_eq!(v["name"], "named");
    assert_eq!(v["services"]["web"]["environment"]["BAR"], "sub");
    assert_eq!(v["services"]["web"]["environment"]["FOO"], "unset");
}

/// One project brought up from two files in turn: the second `up` leaves
/// the first file's containers running (an orphan warning) and the
/// supervisor still knows them; `-f a.yaml stop` stops a.yaml's services
/// (not b.yaml's), and `-f a.yaml start simple` starts it again.
fn two_files_one_project() {
    let ns = NetNs::new();
    let (r, image, _) = setup("services: {}\n");
    let file = |name: &str, services: &[&str]| {
        let mut text = String::from("services:\n");
        for s in services {
            text.push_str(&format!(
                "  {s}:\n    image: {image}\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n"
            ));
        }
        let path = r.work_dir().join(name);
        std::fs::write(&path, text).unwrap();
        vec![
            "-f".to_owned(),
            path.display().to_string(),
            "-p".to_owned(),
            "demo".to_owned(),
        ]
    };
    let a = file("a.yaml", &["simple", "another"]);
    let b = file("b.yaml", &["third"]);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &a,
    };
    ns.ok(&r, &args(&a, &["up", "-d"]));
    let up_b = ns.ok(&r, &args(&b, &["up", "-d"]));
    up_b.assert_stderr_mentions(&["Found orphan containers", "demo-simple-1"]);
    let states = |base: &[String]| {
        let mut v: Vec<String> = ns
            .ok(
                &r,
                &args(base, &["ps", "-a", "--format", "{{.Name}} {{.State}}"]),
            )
            .stdout
            .lines()
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    let all = [
        "demo-another-1 running",
        "demo-simple-1 running",
        "demo-third-1 running",
    ];
    assert_eq!(states(&a), all);
    ns.ok(&r, &args(&a, &["stop"]));
    assert_eq!(
        states(&a),
        [
            "demo-another-1 exited",
            "demo-simple-1 exited",
            "demo-third-1 running"
        ]
    );
    ns.ok(&r, &args(&a, &["start", "simple"]));
    assert_eq!(
        states(&b),
        [
            "demo-another-1 exited",
            "demo-simple-1 running",
            "demo-third-1 running"
        ]
    );
    ns.ok(&r, &args(&b, &["stop"]));
    assert_eq!(
        states(&b),
        [
            "demo-another-1 exited",
            "demo-simple-1 running",
            "demo-third-1 exited"
        ]
    );
    let down = ns.ok(&r, &args(&a, &["down", "-t", "0"]));
    down.assert_stderr_mentions(&["demo-third-1  Removed", "demo-simple-1  Removed"]);
    ns.assert_clean(&r);
}

const SHARED_NAME: &str = r#"
services:
  one:
    image: IMAGE
    command: ["sleep", "3600"]
    container_name: shared
    stop_signal: SIGKILL
  two:
    image: IMAGE
    command: ["sleep", "3600"]
    container_name: shared
    stop_signal: SIGKILL
"#;

/// Two services with one `container_name`: the model loads and either can
/// run; the second fails only when both would exist, with Docker's
/// conflict, and creates nothing.
fn shared_container_name() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(SHARED_NAME);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["config", "-q"]));
    ns.ok(&r, &args(&base, &["up", "-d", "one"]));
    let conflict = ns.rstack(&r, &args(&base, &["up", "-d", "two"]));
    assert!(!conflict.success(), "{conflict}");
    conflict.assert_stderr_mentions(&[
        "Conflict. The container name \"/shared\" is already in use",
        "service \"one\"",
    ]);
    let ps = ns.ok(
        &r,
        &args(
            &base,
            &["ps", "-a", "--format", "{{.Name}} {{.Service}} {{.State}}"],
        ),
    );
    assert_eq!(ps.stdout, "shared one running\n", "{ps}");
    let both = ns.rstack(&r, &args(&base, &["up", "-d"]));
    assert!(!both.success(), "{both}");
    both.assert_stderr_mentions(&["Conflict. The container name \"/shared\""]);
    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
    ns.ok(&r, &args(&base, &["up", "-d", "two"]));
    let ps = ns.ok(
        &r,
        &args(&base, &["ps", "--format", "{{.Name}} {{.Service}}"]),
    );
    assert_eq!(ps.stdout, "shared two\n", "{ps}");
    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
    ns.assert_clean(&r);
}

const LABELLED_NET: &str = r#"
services:
  app:
    image: IMAGE
    command: ["sleep", "3600"]
    networks: [front]
    stop_signal: SIGKILL
networks:
  front:
    labels:
      - foo=${FOO:-foo}
"#;

/// A network whose config changed (`labels: [foo=${FOO:-foo}]`, then
/// `FOO=bar up -d`) is recreated, its containers stopped first and
/// recreated on it, as docker compose does; an unchanged one is kept.
fn changed_network() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(LABELLED_NET);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    let up = |value: Option<&str>| {
        let inner = r.command(&args(&base, &["up", "-d"]));
        let mut cmd = ns.nsenter();
        cmd.arg(inner.get_program()).args(inner.get_args());
        r.sandbox_env(&mut cmd);
        if let Some(v) = value {
            cmd.env("FOO", v);
        }
        let out = r.run_command(cmd, None);
        assert!(out.success(), "{out}");
        out
    };
    let label = || {
        let out = ns.ok(&r, &["network", "inspect", "demo_front"]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v[0]["Labels"]["foo"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let app_id = || {
        let out = ns.ok(&r, &args(&base, &["ps", "--format", "{{.ID}} {{.State}}"]));
        out.stdout.trim().to_owned()
    };
    up(None);
    assert_eq!(label(), "foo");
    let before = app_id();
    let again = up(None);
    assert!(!again.stderr.contains("Recreate"), "{again}");
    let changed = up(Some("bar"));
    changed.assert_stderr_mentions(&["Network demo_front  Recreate"]);
    assert_eq!(label(), "bar");
    let after = app_id();
    assert!(after.ends_with(" running"), "{after}");
    assert_ne!(before, after, "the container is recreated");
    let addr = ns.ok(
        &r,
        &args(
            &base,
            &[
                "exec",
                "-T",
                "app",
                "sh",
                "-c",
                "ip -4 -o addr show eth0 | wc -l",
            ],
        ),
    );
    assert_eq!(addr.stdout, "1\n", "{addr}");
    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
    ns.assert_clean(&r);
}
