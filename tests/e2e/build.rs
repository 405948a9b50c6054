//! `rstack image build`, `rstack build` and `rstack image push` as a user
//! runs them: Dockerfiles FROM the local registry's busybox fixture, RUN
//! steps in rstack's own containers, the cache, `.dockerignore`, bad
//! input, and the pushed image checked by skopeo (not by rstack).

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::Trial;
use rstack_e2e::{Fixtures, Need, Registry, Rstack, RunOutput, trial};
use serde_json::Value;

const NEEDS: &[Need] = &[Need::Root, Need::Registry, Need::Rstack, Need::Overlay];

pub fn tests() -> Vec<Trial> {
    vec![
        trial("build::two_stage_image_runs_and_pushes", NEEDS, two_stage),
        trial("build::cache_hits_and_copy_invalidation", NEEDS, cache),
        trial("build::dockerignore_keeps_files_out", NEEDS, dockerignore),
        trial(
            "build::run_deleting_a_base_file_removes_it",
            NEEDS,
            run_deletes,
        ),
        trial(
            "build::bad_input_is_clear_and_tags_nothing",
            NEEDS,
            bad_input,
        ),
        trial(
            "build::compose_build_tutorial_project",
            NEEDS,
            compose_build,
        ),
        trial(
            "build::add_archive_heredocs_shell_args",
            NEEDS,
            add_and_heredocs,
        ),
        trial("build::image_history_lists_the_steps", NEEDS, history),
    ]
}

fn base() -> String {
    Fixtures::shared().busybox_v2s2.reference()
}

/// Writes `files` (path, content) under a fresh dir of the sandbox.
fn project(rstack: &Rstack, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = rstack.work_dir().join(name);
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
    }
    dir
}

fn build(rstack: &Rstack, tag: &str, dir: &Path) -> RunOutput {
    let b = format!("BASE={}", base());
    rstack.run(&[
        "image",
        "build",
        "-t",
        tag,
        "--build-arg",
        &b,
        dir.to_str().unwrap(),
    ])
}

fn cached_steps(out: &RunOutput) -> usize {
    out.stderr
        .lines()
        .filter(|l| l.starts_with('#') && l.ends_with(" CACHED"))
        .count()
}

fn inspect(rstack: &Rstack, image: &str) -> Value {
    let out = rstack.ok(&["image", "inspect", image]);
    out.json()[0].clone()
}

fn no_image(rstack: &Rstack, image: &str) {
    let out = rstack.run(&["image", "inspect", image]);
    assert!(!out.success(), "{image} must not exist:\n{out}");
}

const TWO_STAGE: &str = r#"# a build stage that generates a file, a final stage that runs it
ARG BASE
FROM ${BASE} AS build
WORKDIR /src
COPY gen.sh .
RUN sh gen.sh > /src/out.txt

FROM ${BASE}
ENV GREETING="hello world"
LABEL org.example.app=demo org.example.tier="back end"
WORKDIR /app
COPY --from=build --chown=1000:1000 /src/out.txt ./out.txt
USER 1000
EXPOSE 8080
HEALTHCHECK --interval=5s --retries=2 CMD cat /app/out.txt
CMD ["sh", "-c", "cat out.txt; echo $GREETING; id -u; pwd; stat -c %u:%g out.txt"]
"#;

fn two_stage() {
    let rstack = Rstack::new();
    let dir = project(
        &rstack,
        "app",
        &[
            ("Dockerfile", TWO_STAGE),
            (
                "gen.sh",
                "echo generated-$(echo 6 7 | awk '{print $1*$2}')\n",
            ),
        ],
    );
    let out = build(&rstack, "localbuild/app:1", &dir);
    assert!(out.success(), "{out}");
    out.assert_stderr_mentions(&[
        "[build 4/4] RUN sh gen.sh",
        "[stage-1 3/3] COPY --from=build",
    ]);
    let run = rstack.ok(&["container", "run", "--rm", "localbuild/app:1"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        vec!["generated-42", "hello world", "1000", "/app", "1000:1000"],
        "{run}"
    );
    let info = inspect(&rstack, "localbuild/app:1");
    let config = &info["Config"];
    assert_eq!(config["User"], "1000");
    assert_eq!(config["WorkingDir"], "/app");
    assert_eq!(config["Labels"]["org.example.app"], "demo");
    assert_eq!(config["Labels"]["org.example.tier"], "back end");
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "GREETING=hello world"),
        "{config}"
    );
    assert_eq!(
        config["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "cat /app/out.txt"])
    );
    assert_eq!(config["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(config["Healthcheck"]["Retries"], 2);
    assert!(config["ExposedPorts"].get("8080/tcp").is_some(), "{config}");
    let layers = info["RootFS"]["Layers"].as_array().unwrap().len();
    assert_eq!(layers, 3, "base + WORKDIR + COPY: {info}");

    // Push to the local registry; skopeo (not rstack) reads it back.
    let registry = Registry::shared();
    let remote = registry.reference("built/app:1");
    rstack.ok(&["image", "tag", "localbuild/app:1", &remote]);
    let pushed = rstack.ok(&["image", "push", &remote]);
    assert!(pushed.stdout.contains("1: digest: sha256:"), "{pushed}");
    let sk = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{remote}"),
        ])
        .output()
        .unwrap();
    assert!(
        sk.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&sk.stderr)
    );
    let v: Value = serde_json::from_slice(&sk.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), layers, "{v}");
    assert_eq!(v["Labels"]["org.example.app"], "demo");
    // Pushing again: every blob is already there.
    let again = rstack.ok(&["image", "push", &remote]);
    assert!(again.stdout.contains("Layer already exists"), "{again}");
    // And it pulls back into a fresh store and runs.
    let other = Rstack::new();
    let run = other.ok(&["container", "run", "--rm", &remote]);
    assert!(run.stdout.starts_with("generated-42\n"), "{run}");
    rstack.assert_no_leaks();
}

fn cache() {
    let rstack = Rstack::new();
    let dir = project(
        &rstack,
        "cached",
        &[
            (
                "Dockerfile",
                "ARG BASE\nFROM $BASE\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy-a\nCOPY b.txt /b.txt\nRUN cat /b.txt > /copy-b\nCMD cat /copy-a /copy-b\n",
            ),
            ("a.txt", "A1\n"),
            ("b.txt", "B1\n"),
        ],
    );
    let first = build(&rstack, "cache:1", &dir);
    assert!(first.success(), "{first}");
    assert_eq!(cached_steps(&first), 0, "{first}");
    let second = build(&rstack, "cache:2", &dir);
    assert!(second.success(), "{second}");
    assert_eq!(cached_steps(&second), 4, "all steps reused:\n{second}");
    assert_eq!(
        inspect(&rstack, "cache:1")["Id"],
        inspect(&rstack, "cache:2")["Id"].clone(),
        "same layers and config: same image"
    );
    std::fs::write(dir.join("b.txt"), "B2\n").unwrap();
    let third = build(&rstack, "cache:3", &dir);
    assert!(third.success(), "{third}");
    assert_eq!(
        cached_steps(&third),
        2,
        "only the steps before COPY b.txt:\n{third}"
    );
    let run = rstack.ok(&["container", "run", "--rm", "cache:3"]);
    assert_eq!(run.stdout, "A1\nB2\n", "{run}");
    let no_cache = rstack.run(&[
        "image",
        "build",
        "--no-cache",
        "-t",
        "cache:4",
        "--build-arg",
        &format!("BASE={}", base()),
        dir.to_str().unwrap(),
    ]);
    assert!(no_cache.success(), "{no_cache}");
    assert_eq!(cached_steps(&no_cache), 0, "{no_cache}");
}

fn dockerignore() {
    let rstack = Rstack::new();
    let dir = project(
        &rstack,
        "ignoring",
        &[
            (
                "Dockerfile",
                "ARG BASE\nFROM $BASE\nCOPY . /ctx\nCMD find /ctx -type f\n",
            ),
            (
                ".dockerignore",
                "# secrets stay home\n*.secret\nlogs\n**/*.tmp\n!logs/keep.log\n",
            ),
            ("app.py", "print(1)\n"),
            ("db.secret", "hunter2\n"),
            ("logs/a.log", "x\n"),
            ("logs/keep.log", "kept\n"),
            ("src/x.tmp", "tmp\n"),
            ("src/main.py", "main\n"),
        ],
    );
    let out = build(&rstack, "ignoring:1", &dir);
    assert!(out.success(), "{out}");
    let run = rstack.ok(&["container", "run", "--rm", "ignoring:1"]);
    let mut files: Vec<&str> = run.stdout.lines().collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            "/ctx/.dockerignore",
            "/ctx/Dockerfile",
            "/ctx/app.py",
            "/ctx/logs/keep.log",
            "/ctx/src/main.py"
        ],
        "{run}"
    );
    // Naming an ignored file is "not found", as with docker.
    std::fs::write(
        dir.join("Dockerfile"),
        "ARG BASE\nFROM $BASE\nCOPY db.secret /\n",
    )
    .unwrap();
    let out = build(&rstack, "ignoring:2", &dir);
    assert!(!out.success(), "{out}");
    out.assert_stderr_mentions(&["db.secret", "not found", "dockerignore"]);
    no_image(&rstack, "ignoring:2");
}

fn run_deletes() {
    let rstack = Rstack::new();
    let dir = project(
        &rstack,
        "deleting",
        &[(
            "Dockerfile",
            "ARG BASE\nFROM $BASE\nRUN rm /bin/vi && rm -rf /tmp && mkdir -m 1777 /tmp && touch /tmp/new\nCMD [\"sh\", \"-c\", \"test -e /bin/vi && echo vi-present || echo vi-gone; ls -A /tmp; test -e /bin/ls && echo ls-present\"]\n",
        )],
    );
    let out = build(&rstack, "deleting:1", &dir);
    assert!(out.success(), "{out}");
    let run = rstack.ok(&["container", "run", "--rm", "deleting:1"]);
    assert_eq!(run.stdout, "vi-gone\nnew\nls-present\n", "{run}");
}

fn bad_input() {
    let rstack = Rstack::new();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "ARG BASE\nFROM $BASE\n\nFROBNICATE now\n",
            "bad:unknown",
            &["Dockerfile:4", "unknown instruction 'FROBNICATE'"],
        ),
        (
            "ARG BASE\nFROM $BASE\nCOPY missing.txt /x\n",
            "bad:missing",
            &["Dockerfile:3", "missing.txt", "not found"],
        ),
        (
            "ARG BASE\nFROM $BASE\nRUN echo step-output-before-failing; exit 7\nCMD true\n",
            "bad:run",
            &["step-output-before-failing", "Dockerfile:3", "exit code: 7"],
        ),
        (
            "ARG BASE\nFROM $BASE\nCOPY --from=nosuchstage /x /x\n",
            "bad:stage",
            &["Dockerfile:3", "no build stage named \"nosuchstage\""],
        ),
        (
            "ARG BASE\nFROM $BASE\nRUN true\n",
            "bad:target",
            &["target stage \"nope\" could not be found"],
        ),
    ];
    for (i, (dockerfile, tag, needles)) in cases.iter().enumerate() {
        let dir = project(&rstack, &format!("bad{i}"), &[("Dockerfile", dockerfile)]);
        let mut args = vec![
            "image".to_owned(),
            "build".into(),
            "-t".into(),
            tag.to_string(),
            "--build-arg".into(),
            format!("BASE={}", base()),
        ];
        if *tag == "bad:target" {
            args.extend(["--target".into(), "nope".into()]);
        }
        args.push(dir.to_str().unwrap().into());
        let out = rstack.fails(&args);
        out.assert_stderr_mentions(needles);
        no_image(&rstack, tag);
    }
    rstack.assert_no_leaks();
    let left: Vec<_> = std::fs::read_dir(rstack.root().join("containers"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "RUN containers left: {left:?}");
}

fn compose_build() {
    let rstack = Rstack::new();
    let compose = format!(
        "services:\n  web:\n    build:\n      context: .\n      args:\n        BASE: {}\n      labels:\n        com.example.built-by: compose\n",
        base()
    );
    let dir = project(
        &rstack,
        "tutorial",
        &[
            ("compose.yaml", &compose),
            (
                "Dockerfile",
                "ARG BASE\nFROM $BASE\nWORKDIR /code\nCOPY requirements.txt requirements.txt\nRUN sed 's/^/installed /' requirements.txt > installed.txt\nCOPY . .\nCMD [\"sh\", \"-c\", \"cat installed.txt app.py\"]\n",
            ),
            ("requirements.txt", "flask\nredis\n"),
            ("app.py", "print('hello')\n"),
        ],
    );
    let mut cmd = rstack.command(&["build"]);
    cmd.current_dir(&dir);
    let out = rstack.run_command(cmd, None);
    assert!(out.success(), "{out}");
    out.assert_stderr_mentions(&["[stage-0 4/5] RUN sed", "Service web  Built"]);
    let run = rstack.ok(&["container", "run", "--rm", "tutorial-web"]);
    assert_eq!(
        run.stdout, "installed flask\ninstalled redis\nprint('hello')\n",
        "{run}"
    );
    let info = inspect(&rstack, "tutorial-web");
    assert_eq!(info["Config"]["Labels"]["com.example.built-by"], "compose");
    // Unchanged project: everything comes from the cache.
    let mut cmd = rstack.command(&["build", "web"]);
    cmd.current_dir(&dir);
    let again = rstack.run_command(cmd, None);
    assert!(again.success(), "{again}");
    assert_eq!(cached_steps(&again), 4, "{again}");
}

fn add_and_heredocs() {
    let rstack = Rstack::new();
    let dir = project(
        &rstack,
        "adding",
        &[(
            "Dockerfile",
            "# escape=\\\nARG BASE\nFROM $BASE\nARG WHO=world\nSHELL [\"/bin/sh\", \"-c\"]\nADD bundle.tar.gz /opt/\nADD plain.txt /opt/plain.txt\nCOPY --chmod=750 <<EOF /usr/local/bin/greet\n#!/bin/sh\necho hello $WHO\nEOF\nRUN <<EOF\nset -e\necho \"built for $WHO\" > /opt/built\nEOF\nRUN echo one \\\n && echo two > /opt/two\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"greet; cat /opt/built /opt/two /opt/bundle/inside.txt /opt/plain.txt; stat -c %a /usr/local/bin/greet\"]\n",
        )],
    );
    // A gzip tarball ADD extracts, and a plain file it copies.
    let staging = rstack.tmp_dir().join("bundle");
    std::fs::create_dir_all(staging.join("bundle")).unwrap();
    std::fs::write(staging.join("bundle/inside.txt"), "from the tarball\n").unwrap();
    let tar = Command::new("tar")
        .args([
            "-czf",
            dir.join("bundle.tar.gz").to_str().unwrap(),
            "-C",
            staging.to_str().unwrap(),
            "bundle",
        ])
        .status()
        .unwrap();
    assert!(tar.success());
    std::fs::write(dir.join("plain.txt"), "plain\n").unwrap();
    let b = format!("BASE={}", base());
    let out = rstack.run(&[
        "image",
        "build",
        "-t",
        "adding:1",
        "--build-arg",
        &b,
        "--build-arg",
        "WHO=rstack",
        dir.to_str().unwrap(),
    ]);
    assert!(out.success(), "{out}");
    let run = rstack.ok(&["container", "run", "--rm", "adding:1"]);
    assert_eq!(
        run.stdout, "hello rstack\nbuilt for rstack\ntwo\nfrom the tarball\nplain\n750\n",
        "{run}"
    );
    // ARG values are not part of the image's environment.
    let info = inspect(&rstack, "adding:1");
    assert!(!info["Config"]["Env"].to_string().contains("WHO"), "{info}");
}

/// `image history` lists the build's steps newest first, as `docker
/// history`: the image id on top, `<missing>` below, the RUN step's layer
/// with a size, config-only steps `0B`.
fn history() {
    let rstack = Rstack::new();
    let dir = project(
        &rstack,
        "history",
        &[(
            "Dockerfile",
            "ARG BASE\nFROM $BASE\nRUN head -c 300000 /dev/zero > /big\nENV STAGE=history-test\n",
        )],
    );
    let out = build(&rstack, "history:1", &dir);
    assert!(out.success(), "{out}");
    let table = rstack.ok(&["image", "history", "history:1"]);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("IMAGE"), "{table}");
    let id = inspect(&rstack, "history:1")["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        lines[1].starts_with(&id["sha256:".len()..][..12]),
        "{table}"
    );
    assert!(
        lines[1].contains("ENV STAGE=history-test") && lines[1].contains("0B"),
        "{table}"
    );
    assert!(
        lines[2].contains("head -c 300000") && lines[2].contains("kB"),
        "{table}"
    );
    assert!(lines[3].starts_with("<missing>"), "{table}");
    let q = rstack.ok(&["image", "history", "-q", "history:1"]);
    assert_eq!(q.stdout.lines().count(), lines.len() - 1, "{q}");
    let json = rstack.ok(&[
        "image",
        "history",
        "--format",
        "json",
        "--no-trunc",
        "history:1",
    ]);
    let first: Value = serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["ID"], id.as_str());
    let t = rstack.ok(&["image", "history", "--format", "{{.Size}}", "history:1"]);
    assert_eq!(t.stdout.lines().next(), Some("0B"), "{t}");
    let missing = rstack.run(&["image", "history", "nope:1"]);
    assert!(!missing.success(), "{missing}");
    missing.assert_stderr_mentions(&["No such image: nope:1"]);
}
