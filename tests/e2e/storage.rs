//! A stack's storage: writable layers kept until the container is
//! removed, named volumes until `down -v`, and `pull`/`images` of a
//! project.

use libtest_mimic::Trial;
use rstack_e2e::{Rstack, trial};

use crate::sandbox::{DownOnPanic, NEEDS, NetNs, args, find, ps, setup, wait_for};

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "stack::volumes_persist_until_down_v",
            NEEDS,
            volumes_persist_until_down_v,
        ),
        trial(
            "stack::compose_pull_and_images",
            NEEDS,
            compose_pull_and_images,
        ),
        trial(
            "stack::writable_layer_until_removed",
            NEEDS,
            writable_layer_until_removed,
        ),
        trial(
            "stack::volume_create_with_local_driver_options",
            NEEDS,
            volume_create_options,
        ),
    ]
}

const RW_STACK: &str = r#"
services:
  web:
    image: IMAGE
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $$!; done"]
    restart: always
    stop_grace_period: 1s
"#;

/// A container's own files (outside volumes) live as long as the
/// container, as with Docker: they survive `restart`, `stop`/`start` and a
/// restart by the policy, and go with `--force-recreate` and `down`.
fn writable_layer_until_removed() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(RW_STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    let cat = || {
        ns.rstack(
            &r,
            &args(&base, &["exec", "-T", "web", "cat", "/state.txt"]),
        )
        .stdout
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    ns.ok(
        &r,
        &args(
            &base,
            &["exec", "-T", "web", "sh", "-c", "echo kept > /state.txt"],
        ),
    );
    assert_eq!(cat(), "kept\n");
    let first_id = find(&ps(&ns, &r, &base), "demo-web-1")["ID"].clone();

    ns.ok(&r, &args(&base, &["restart", "web"]));
    assert_eq!(cat(), "kept\n", "lost by restart");
    ns.ok(&r, &args(&base, &["stop", "web"]));
    ns.ok(&r, &args(&base, &["start", "web"]));
    assert_eq!(cat(), "kept\n", "lost by stop/start");
    // PID 1 exits 0 on SIGTERM; `restart: always` brings it back. The
    // exec'd `kill` may itself die with the pid namespace (137) before it
    // exits: either is fine
    let killed = ns.rstack(&r, &args(&base, &["exec", "-T", "web", "kill", "1"]));
    assert!(
        matches!(killed.status.code(), Some(0 | 137)),
        "exec kill 1:\n{killed}"
    );
    wait_for(&ns, &r, &base, "a restart by the policy", |v| {
        let w = find(v, "demo-web-1");
        w["RestartCount"] == 1 && w["State"] == "running"
    });
    assert_eq!(cat(), "kept\n", "lost by a policy restart");
    // ... and it stayed the same container (same id), as with docker
    let id = find(&ps(&ns, &r, &base), "demo-web-1")["ID"].clone();
    assert_eq!(id, first_id, "a restart changed the container's id");

    ns.ok(&r, &args(&base, &["up", "-d", "--force-recreate"]));
    let gone = ns.rstack(
        &r,
        &args(&base, &["exec", "-T", "web", "cat", "/state.txt"]),
    );
    assert!(
        !gone.success(),
        "a recreated container kept the old files:\n{gone}"
    );
    assert_ne!(find(&ps(&ns, &r, &base), "demo-web-1")["ID"], first_id);
    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
    let rw = r.root().join("projects/demo/rw");
    let left: Vec<_> = std::fs::read_dir(&rw)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "down left writable layers: {left:?}");
}

const PULL_STACK: &str = r#"
services:
  web:
    image: IMAGE
    command: ["sleep", "1000"]
    stop_grace_period: 1s
  tool:
    build: ./tool
"#;

/// `rstack compose pull` / `rstack pull` (no image) pull the services'
/// images (not the build-only one); `rstack compose images` lists the
/// images of the project's containers; project flags may follow `compose`.
fn compose_pull_and_images() {
    let ns = NetNs::new();
    let (r, image, base) = setup(PULL_STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    let tool = r.work_dir().join("tool");
    std::fs::create_dir_all(&tool).unwrap();
    std::fs::write(tool.join("Dockerfile"), format!("FROM {image}\n")).unwrap();
    let listed = |r: &Rstack| -> bool {
        let out = r.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        out.stdout.lines().any(|l| l == image)
    };

    // the registry is on the host's loopback: pull outside the namespace
    r.ok(&["rmi", &image]);
    assert!(!listed(&r));
    let (file, project) = (&base[1], &base[3]);
    let pull = r.ok(&["compose", "-f", file, "-p", project, "pull"]);
    assert!(pull.stderr.contains("web Pulled"), "{pull}");
    assert!(
        !pull.stderr.contains("tool"),
        "a build-only service was pulled:\n{pull}"
    );
    assert!(listed(&r));
    r.ok(&["rmi", &image]);
    let pull = r.ok(&args(&base, &["pull", "-q"]));
    assert!(pull.stderr.is_empty(), "{pull}");
    assert!(listed(&r));
    // an unknown service is an error that names it
    let bad = r.fails(&args(&base, &["compose", "pull", "nope"]));
    assert!(bad.stderr.contains("no such service: nope"), "{bad}");

    ns.ok(&r, &args(&base, &["compose", "up", "-d", "web"]));
    let json = ns
        .ok(&r, &args(&base, &["compose", "images", "--format", "json"]))
        .json();
    let rows = json.as_array().expect("a JSON array");
    assert_eq!(rows.len(), 1, "{json}");
    let (repo, tag) = image.rsplit_once(':').unwrap();
    assert_eq!(rows[0]["ContainerName"], "demo-web-1");
    assert_eq!(rows[0]["Repository"], repo);
    assert_eq!(rows[0]["Tag"], tag);
    assert!(rows[0]["Size"].as_u64().unwrap() > 0, "{json}");
    let id = rows[0]["ID"].as_str().unwrap().to_owned();
    let table = ns.ok(&r, &args(&base, &["compose", "images"])).stdout;
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("  ")
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header.iter().map(|c| c.trim()).collect::<Vec<_>>(),
        ["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"]
    );
    let row = lines.next().expect("a row");
    assert!(row.starts_with("demo-web-1 "), "{table}");
    assert!(
        row.contains(&id["sha256:".len().."sha256:".len() + 12]),
        "{table}"
    );
    let quiet = ns.ok(&r, &args(&base, &["compose", "images", "-q"]));
    assert_eq!(quiet.stdout.trim(), id);
    // project flags after `compose` win
    let v = ns
        .ok(
            &r,
            &[
                "compose", "-f", file, "-p", project, "ps", "--format", "json",
            ],
        )
        .json_lines();
    assert_eq!(v.len(), 1, "{v:?}");
    ns.ok(&r, &args(&base, &["compose", "down", "-t", "0"]));
}

const VOLUME_STACK: &str = r#"
services:
  app:
    image: IMAGE
    command: ["sh", "-c", "echo boot >> /data/boots; exec sleep 1000"]
    stop_grace_period: 1s
    volumes:
      - data:/data
      - bins:/bin
      - ./site:/site:ro
    secrets: [token]
    configs: [{source: conf, target: /etc/app.conf}]
volumes:
  data: {}
  bins: {}
secrets:
  token: {file: ./token.txt}
configs:
  conf: {content: "a=1"}
"#;

fn volumes_persist_until_down_v() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(VOLUME_STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    std::fs::create_dir_all(r.work_dir().join("site")).unwrap();
    std::fs::write(r.work_dir().join("site/index.html"), "hi\n").unwrap();
    std::fs::write(r.work_dir().join("token.txt"), "s3cret").unwrap();
    let up = ns.ok(&r, &args(&base, &["up", "-d"]));
    assert!(up.stderr.contains("Volume demo_data  Created"), "{up}");
    let vols = r.root().join("volumes");
    // an empty named volume is filled with the image's content at the mount point
    assert!(
        vols.join("demo_bins/_data/busybox").exists(),
        "bins not copied from the image"
    );
    // bind mount, read-only
    let site = ns.ok(
        &r,
        &args(&base, &["exec", "-T", "app", "cat", "/site/index.html"]),
    );
    assert_eq!(site.stdout, "hi\n");
    let ro = ns.rstack(&r, &args(&base, &["exec", "-T", "app", "touch", "/site/x"]));
    assert_ne!(ro.status.code(), Some(0), "a :ro bind mount was writable");
    // secrets and configs, read-only
    let sec = ns.ok(
        &r,
        &args(
            &base,
            &[
                "exec",
                "-T",
                "app",
                "cat",
                "/run/secrets/token",
                "/etc/app.conf",
            ],
        ),
    );
    assert_eq!(sec.stdout, "s3creta=1");
    ns.ok(&r, &args(&base, &["down"]));
    assert!(
        vols.join("demo_data/_data/boots").exists(),
        "down removed a named volume"
    );
    ns.ok(&r, &args(&base, &["up", "-d"]));
    let boots = ns.ok(
        &r,
        &args(&base, &["exec", "-T", "app", "cat", "/data/boots"]),
    );
    assert_eq!(
        boots.stdout, "boot\nboot\n",
        "the volume did not survive down/up"
    );
    let down = ns.ok(&r, &args(&base, &["down", "-v"]));
    assert!(down.stderr.contains("Volume demo_data  Removed"), "{down}");
    assert!(!vols.join("demo_data").exists());
    assert!(!vols.join("demo_bins").exists());
    ns.assert_clean(&r);
}

/// `volume create --opt type=tmpfs ...` as Docker's local driver: an
/// external volume of a project is that file system, mounted at first use
/// and unmounted by `down`; bad options and names are refused, creating
/// nothing.
fn volume_create_options() {
    let ns = NetNs::new();
    let (r, image, base) = setup("services: {}\n");
    let bad = ns.rstack(&r, &["volume", "create", "--opt", "type=tmpfs", "nodevice"]);
    assert!(!bad.success(), "{bad}");
    bad.assert_stderr_mentions(&["volume nodevice", "needs `device`"]);
    let bad = ns.rstack(&r, &["volume", "create", "a/b"]);
    assert!(!bad.success(), "{bad}");
    bad.assert_stderr_mentions(&["includes invalid characters for a local volume name"]);
    assert!(!r.root().join("volumes/nodevice").exists());
    let made = ns.ok(
        &r,
        &[
            "volume",
            "create",
            "--opt",
            "type=tmpfs",
            "--opt",
            "device=tmpfs",
            "--opt",
            "o=size=2m",
            "--label",
            "team=a",
            "mem",
        ],
    );
    assert_eq!(made.stdout, "mem\n");
    let inspect = ns.ok(&r, &["volume", "inspect", "mem"]);
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(v[0]["Options"]["type"], "tmpfs", "{inspect}");
    assert_eq!(v[0]["Labels"]["team"], "a", "{inspect}");
    std::fs::write(
        &base[1],
        format!(
            "services:\n  a:\n    image: {image}\n    command: [\"sleep\", \"3600\"]\n    \
             stop_signal: SIGKILL\n    volumes: [mem:/m]\nvolumes:\n  mem:\n    external: true\n"
        ),
    )
    .unwrap();
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    let out = ns.ok(
        &r,
        &args(
            &base,
            &[
                "exec",
                "-T",
                "a",
                "sh",
                "-c",
                "grep ' /m ' /proc/self/mountinfo | grep -c tmpfs",
            ],
        ),
    );
    assert_eq!(out.stdout, "1\n", "{out}");
    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
    ns.ok(&r, &["volume", "rm", "mem"]);
    ns.assert_clean(&r);
}
