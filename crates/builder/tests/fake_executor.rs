//! Whole builds on a store in a temp dir, RUN steps through a fake
//! executor (no containers, no root, no network): the stage graph, the
//! config instructions, COPY/ADD layers, RUN's request and captured layer,
//! the cache and the errors, through the crate's public entry point.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rstack_builder::{
    BuildOptions, BuildOutput, Error, ExecError, Quiet, RunExecutor, RunNetwork, RunOutcome,
    RunRequest, build,
};
use rstack_images::Store;
use rstack_images::docker_config::ImageConfig;

/// What the fake saw of a RUN step.
#[derive(Debug, Clone)]
struct Seen {
    layers: usize,
    argv: Vec<String>,
    env: Vec<String>,
    user: String,
    workdir: String,
    network: RunNetwork,
}

/// Writes `/out` (the argv joined) in the upper dir and exits `exit_code`.
struct FakeExecutor {
    exit_code: i32,
    seen: Mutex<Vec<Seen>>,
}

impl FakeExecutor {
    fn new(exit_code: i32) -> FakeExecutor {
        FakeExecutor {
            exit_code,
            seen: Mutex::new(Vec::new()),
        }
    }
}

impl RunExecutor for FakeExecutor {
    fn run(
        &self,
        req: &RunRequest<'_>,
        capture: &mut dyn FnMut(&Path) -> Result<(), ExecError>,
    ) -> Result<RunOutcome, ExecError> {
        self.seen.lock().unwrap().push(Seen {
            layers: req.layers.len(),
            argv: req.argv.clone(),
            env: req.env.clone(),
            user: req.user.clone(),
            workdir: req.workdir.clone(),
            network: req.network,
        });
        (req.output)(b"fake output\n");
        if self.exit_code == 0 {
            let upper = tempfile::tempdir()?;
            std::fs::write(upper.path().join("out"), req.argv.join(" "))?;
            capture(upper.path())?;
        }
        Ok(RunOutcome {
            exit_code: self.exit_code,
        })
    }
}

const DOCKERFILE: &str = r#"ARG BASE=scratch
FROM ${BASE} AS base
ENV A=1 B="two words"
LABEL l1=v1
WORKDIR /app
COPY --chmod=755 a.txt sub/ ./
COPY <<EOF /etc/greeting
hello $A
EOF
USER 1000:1000
EXPOSE 80 53/udp
VOLUME /data
HEALTHCHECK --interval=5s --retries=3 CMD ["true"]
STOPSIGNAL SIGTERM
SHELL ["/bin/bash", "-c"]
CMD echo hi
ENTRYPOINT ["/bin/tini"]

FROM base AS run
ARG X=y
RUN echo $X > /out
COPY --from=base /app/a.txt /copied.txt

FROM run
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    context: PathBuf,
}

fn fixture(dockerfile: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("root")).unwrap();
    let context = dir.path().join("context");
    std::fs::create_dir_all(context.join("sub")).unwrap();
    std::fs::write(context.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(context.join("a.txt"), "a\n").unwrap();
    std::fs::write(context.join("sub/b.txt"), "b\n").unwrap();
    std::fs::write(context.join("secret.txt"), "no\n").unwrap();
    std::fs::write(context.join(".dockerignore"), "secret.txt\n").unwrap();
    Fixture {
        _dir: dir,
        store,
        context,
    }
}

impl Fixture {
    fn opts(&self) -> BuildOptions {
        BuildOptions {
            context: self.context.clone(),
            tags: vec!["example.com/test:1".into()],
            build_args: BTreeMap::from([("UNUSED".into(), "1".into())]),
            labels: BTreeMap::from([("from-cli".into(), "yes".into())]),
            ..Default::default()
        }
    }

    fn build(&self, opts: &BuildOptions, exec: &FakeExecutor) -> Result<BuildOutput, Error> {
        build(&self.store, opts, exec, &Quiet)
    }

    fn config(&self, out: &BuildOutput) -> ImageConfig {
        self.store.docker_config(&out.image).unwrap()
    }
}

fn file_in(layers: &[PathBuf], rel: &str) -> Option<PathBuf> {
    layers
        .iter()
        .rev()
        .map(|l| l.join(rel))
        .find(|p| p.exists())
}

#[test]
fn multi_stage_build_config_layers_and_run_request() {
    let f = fixture(DOCKERFILE);
    let exec = FakeExecutor::new(0);
    let out = f.build(&f.opts(), &exec).unwrap();
    // WORKDIR (new dir), 2 COPY, RUN, COPY --from
    assert_eq!((out.steps, out.cached), (5, 0));
    let c = f.config(&out);
    let rc = &c.config;
    assert_eq!(
        rc.env.as_deref().unwrap(),
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=1",
            "B=two words"
        ]
    );
    assert_eq!(rc.working_dir.as_deref(), Some("/app"));
    assert_eq!(rc.user.as_deref(), Some("1000:1000"));
    let labels = rc.labels.as_ref().unwrap();
    assert_eq!(labels["l1"], "v1");
    assert_eq!(labels["from-cli"], "yes");
    let ports: Vec<&String> = rc.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(ports, ["53/udp", "80/tcp"]);
    let vols: Vec<&String> = rc.volumes.as_ref().unwrap().keys().collect();
    assert_eq!(vols, ["/data"]);
    let hc = rc.healthcheck.as_ref().unwrap();
    assert_eq!(hc.test, ["CMD", "true"]);
    assert_eq!((hc.interval, hc.retries), (5_000_000_000, 3));
    assert_eq!(rc.stop_signal.as_deref(), Some("SIGTERM"));
    assert_eq!(rc.cmd.as_deref().unwrap(), ["/bin/bash", "-c", "echo hi"]);
    assert_eq!(rc.entrypoint.as_deref().unwrap(), ["/bin/tini"]);
    let history: Vec<(&str, bool)> = c
        .history
        .iter()
        .map(|h| (h.created_by.as_deref().unwrap(), h.empty_layer))
        .collect();
    // ARG has no history entry
    assert_eq!(history.len(), 15, "{history:?}");
    assert_eq!(history[0], ("ENV A=1 B=\"two words\"", true));
    assert_eq!(history[2], ("WORKDIR /app", false));
    assert_eq!(history[12], ("ENTRYPOINT [\"/bin/tini\"]", true));
    assert_eq!(history[13], ("RUN echo $X > /out", false));
    assert_eq!(c.rootfs.diff_ids.len(), 5);

    let seen = exec.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let run = &seen[0];
    assert_eq!(run.layers, 3);
    assert_eq!(run.argv, ["/bin/bash", "-c", "echo $X > /out"]);
    assert!(run.env.contains(&"A=1".to_owned()), "{:?}", run.env);
    assert!(run.env.contains(&"X=y".to_owned()), "{:?}", run.env);
    assert_eq!(run.user, "1000:1000");
    assert_eq!(run.workdir, "/app");
    assert_eq!(run.network, RunNetwork::Host);

    let layers = &out.image.layer_dirs;
    let a = file_in(layers, "app/a.txt").unwrap();
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "a\n");
    assert_eq!(
        std::fs::metadata(&a).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    assert!(
        file_in(layers, "app/b.txt").is_some(),
        "sub/ copies its content"
    );
    assert!(file_in(layers, "app/secret.txt").is_none());
    assert_eq!(
        std::fs::read_to_string(file_in(layers, "etc/greeting").unwrap()).unwrap(),
        "hello 1\n"
    );
    assert_eq!(
        std::fs::read_to_string(file_in(layers, "out").unwrap()).unwrap(),
        "/bin/bash -c echo $X > /out"
    );
    assert!(file_in(layers, "copied.txt").is_some());
    let tagged = f.store.lookup("example.com/test:1").unwrap().unwrap();
    assert_eq!(tagged.id, out.image.id);
}

#[test]
fn rebuild_is_cached_and_gives_the_same_image() {
    let f = fixture(DOCKERFILE);
    let first = f.build(&f.opts(), &FakeExecutor::new(0)).unwrap();
    let exec = FakeExecutor::new(0);
    let again = f.build(&f.opts(), &exec).unwrap();
    assert_eq!((again.steps, again.cached), (5, 5));
    assert_eq!(again.image.id, first.image.id);
    assert!(
        exec.seen.lock().unwrap().is_empty(),
        "RUN came from the cache"
    );

    // A changed source invalidates its step and the ones after it.
    std::fs::write(f.context.join("sub/b.txt"), "changed\n").unwrap();
    let exec = FakeExecutor::new(0);
    let changed = f.build(&f.opts(), &exec).unwrap();
    assert_eq!((changed.steps, changed.cached), (5, 1));
    assert_eq!(exec.seen.lock().unwrap().len(), 1);
    assert_ne!(changed.image.id, first.image.id);

    let mut opts = f.opts();
    opts.no_cache = true;
    let uncached = f.build(&opts, &FakeExecutor::new(0)).unwrap();
    assert_eq!(uncached.cached, 0);
}

#[test]
fn target_stage_builds_only_what_it_needs() {
    let f = fixture(DOCKERFILE);
    let mut opts = f.opts();
    opts.target = Some("base".into());
    let exec = FakeExecutor::new(0);
    let out = f.build(&opts, &exec).unwrap();
    assert_eq!(out.steps, 3);
    assert!(exec.seen.lock().unwrap().is_empty());
}

fn error_of(dockerfile: &str, exec: &FakeExecutor, target: Option<&str>) -> String {
    let f = fixture(dockerfile);
    let mut opts = f.opts();
    opts.target = target.map(str::to_owned);
    let e = f.build(&opts, exec).unwrap_err();
    let file = f.context.join("Dockerfile");
    let file = std::fs::canonicalize(&file).unwrap_or(file);
    e.to_string()
        .replace(&file.display().to_string(), "Dockerfile")
}

#[test]
fn errors_name_the_file_line_and_step() {
    let ok = FakeExecutor::new(0);
    assert_eq!(
        error_of(DOCKERFILE, &FakeExecutor::new(3), None),
        "Dockerfile:21: RUN echo $X > /out: did not complete successfully: exit code: 3"
    );
    assert_eq!(
        error_of(DOCKERFILE, &ok, Some("nope")),
        "target stage \"nope\" could not be found"
    );
    assert_eq!(
        error_of("FROM scratch\nCOPY missing.txt /\n", &ok, None),
        "Dockerfile:2: COPY missing.txt /: \"missing.txt\": not found in the build context (or excluded by .dockerignore)"
    );
    assert_eq!(
        error_of("FROM scratch\nCOPY secret.txt /\n", &ok, None),
        "Dockerfile:2: COPY secret.txt /: \"secret.txt\": not found in the build context (or excluded by .dockerignore)"
    );
    assert_eq!(
        error_of("FROM scratch\nRUN true\n", &ok, None),
        "Dockerfile:2: RUN true: RUN needs a base image with files (the stage starts FROM scratch)"
    );
    assert_eq!(
        error_of(
            "FROM scratch\nCOPY --from=later a.txt /\nFROM scratch AS later\nFROM scratch\nCOPY --from=0 / /\n",
            &ok,
            None
        ),
        "Dockerfile:2: COPY --from=later a.txt /: stage \"later\" is not defined before this stage (a stage can only copy from earlier stages)"
    );
    assert_eq!(
        error_of("FROM scratch\nCOPY --from=nostage a.txt /\n", &ok, None),
        "Dockerfile:2: COPY --from=nostage a.txt /: --from=nostage: no build stage named \"nostage\" (stages before this one: none) and no local image nostage"
    );
    assert_eq!(
        error_of("ENV A=1\nFROM scratch\n", &ok, None),
        "Dockerfile:1: expected FROM"
    );
    assert_eq!(
        error_of(
            "FROM scratch\nHEALTHCHECK --interval=5 CMD true\n",
            &ok,
            None
        ),
        "Dockerfile:2: HEALTHCHECK --interval=5 CMD true: --interval=5: invalid duration"
    );
    assert_eq!(
        error_of("FROM scratch\nCOPY --chmod=9 a.txt /\n", &ok, None),
        "Dockerfile:2: COPY --chmod=9 a.txt /: --chmod=9: expected an octal mode like 755"
    );
}
