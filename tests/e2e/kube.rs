//! `rstack kube generate` as a user runs it, and its manifests checked by
//! the real Kubernetes API schemas (`kubernetes-validate --strict`: unknown
//! fields are errors) for the three newest Kubernetes minor versions the
//! installed validator ships (tests/install-deps.sh installs it; CI fails
//! without it).
//!
//! - every Compose file of the repo's test fixtures (the loader's
//!   conformance cases, the merge cases, the real-world projects, the demo
//!   stack) and the tutorial stacks of crates/kube/tests/data: whatever
//!   `rstack config` accepts generates manifests that validate, whatever it
//!   rejects `kube generate` rejects with the same error;
//! - `kube generate` without root, over a store it cannot read;
//! - `--push`: a `build:` service built, pushed to the local registry and
//!   named by digest, its image's HEALTHCHECK as probes, a named USER
//!   resolved in the image's /etc/passwd for `runAsNonRoot`.

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::Trial;
use rstack_e2e::{Fixtures, Need, Registry, Rstack, RunOutput, trial};

const VALIDATOR: &str = "kubernetes-validate";

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "kube::manifests_validate_strictly",
            &[Need::Rstack, Need::Command(VALIDATOR)],
            manifests_validate,
        ),
        trial(
            "kube::generate_without_root",
            &[Need::Root, Need::Rstack, Need::Command("setpriv")],
            without_root,
        ),
        trial(
            "kube::push_build_service_and_image_facts",
            &[
                Need::Root,
                Need::Registry,
                Need::Rstack,
                Need::Overlay,
                Need::Command(VALIDATOR),
            ],
            push_and_facts,
        ),
    ]
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_owned()
}

/// One project to generate: its Compose files (`-f`, in `dir`), extra
/// flags and environment.
#[derive(Debug, Clone)]
struct Case {
    dir: PathBuf,
    files: Vec<String>,
    flags: Vec<String>,
    env: Vec<(String, String)>,
    /// Must generate (a tutorial or real-world stack, not a loader case).
    must_generate: bool,
}

impl Case {
    fn new(dir: PathBuf, files: &[&str]) -> Case {
        Case {
            dir,
            files: files.iter().map(|f| f.to_string()).collect(),
            flags: Vec::new(),
            env: Vec::new(),
            must_generate: false,
        }
    }

    fn label(&self) -> String {
        let rel = self.dir.strip_prefix(repo()).unwrap_or(&self.dir);
        format!("{} {:?} {:?}", rel.display(), self.files, self.flags)
    }

    fn run(&self, r: &Rstack, command: &[&str]) -> RunOutput {
        let mut args: Vec<String> = Vec::new();
        for f in &self.files {
            args.extend(["-f".to_owned(), f.clone()]);
        }
        args.extend(self.flags.iter().cloned());
        args.extend(command.iter().map(|s| s.to_string()));
        let mut cmd = r.command(&args);
        cmd.current_dir(&self.dir).env("RSTACK_LOG", "error");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        r.run_command(cmd, None)
    }
}

/// Every `*.yml`/`*.yaml` under `dir`.
fn compose_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "expected") {
                continue; // generated manifests, not Compose files
            }
            compose_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(p);
        }
    }
}

/// The fixture projects: each Compose file alone, the multi-file inputs
/// the fixtures describe, and the stacks that must generate.
fn cases() -> Vec<Case> {
    let root = repo();
    let mut files = Vec::new();
    for d in [
        "crates/compose/tests/data",
        "tests/demo",
        "crates/kube/tests/data",
    ] {
        compose_files(&root.join(d), &mut files);
    }
    let mut out: Vec<Case> = files
        .iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            Case::new(f.parent().unwrap().to_owned(), &[&name])
        })
        .collect();
    // merge fixtures: the base and its override, as one project
    let merge = root.join("crates/compose/tests/data/merge");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&merge)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for d in dirs
        .into_iter()
        .filter(|d| d.join("override.yaml").is_file())
    {
        out.push(Case::new(d, &["base.yaml", "override.yaml"]));
    }
    let data = root.join("crates/compose/tests/data");
    out.push(Case::new(
        data.join("loader/27-reset-across-files"),
        &["base.yml", "override.yml"],
    ));
    // the stacks that must generate, as their users run them
    let kube = root.join("crates/kube/tests/data");
    let mut must = vec![
        Case::new(kube.join("golden"), &[]),
        Case::new(kube.join("tutorial/gateway"), &[]),
        Case::new(kube.join("tutorial/db-app-admin"), &[]),
        Case::new(kube.join("tutorial/build"), &[]),
        Case::new(root.join("tests/demo"), &[]),
        Case::new(data.join("realworld/wordpress"), &[]),
        Case::new(data.join("realworld/flask-redis"), &[]),
    ];
    let mut debug = Case::new(kube.join("tutorial/db-app-admin"), &[]);
    debug.flags = vec!["--profile".into(), "debug".into()];
    must.push(debug);
    let mut mon = Case::new(data.join("realworld/monitoring"), &[]);
    mon.env = vec![
        ("GF_PASSWORD".into(), "pw".into()),
        ("COMPOSE_PROFILES".into(), "ui".into()),
    ];
    must.push(mon);
    for mut c in must {
        c.must_generate = true;
        out.push(c);
    }
    out
}

/// The three newest Kubernetes minor versions whose schemas the installed
/// validator ships (asked of its own Python package).
fn newest_versions() -> Vec<String> {
    let bin = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(VALIDATOR))
        .find(|p| p.is_file())
        .expect("kubernetes-validate on PATH");
    let bin = std::fs::canonicalize(&bin).unwrap_or(bin);
    let script = std::fs::read_to_string(&bin).expect("read the kubernetes-validate script");
    let python = script
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .map(str::trim)
        .unwrap_or_else(|| {
            panic!(
                "{} has no #! line: not a pip-installed script",
                bin.display()
            )
        });
    let out = Command::new(python)
        .args([
            "-c",
            "from kubernetes_validate.utils import all_versions\nprint('\\n'.join(all_versions()))",
        ])
        .output()
        .expect("run the validator's Python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut minors: Vec<(u32, u32, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|v| {
            let mut it = v.split('.');
            let (maj, min) = (it.next()?.parse().ok()?, it.next()?.parse().ok()?);
            Some((maj, min, v.to_owned()))
        })
        .collect();
    minors.sort();
    minors.dedup_by(|a, b| (a.0, a.1) == (b.0, b.1));
    let newest: Vec<String> = minors.iter().rev().take(3).map(|m| m.2.clone()).collect();
    assert_eq!(
        newest.len(),
        3,
        "the validator ships fewer than three Kubernetes versions: {minors:?}"
    );
    newest
}

/// `kubernetes-validate --strict` of `files` against each of `versions`.
fn validate(files: &[PathBuf], versions: &[String]) {
    assert!(!files.is_empty(), "nothing to validate");
    for v in versions {
        for chunk in files.chunks(500) {
            let out = Command::new(VALIDATOR)
                .args(["--strict", "--quiet", "-k", v])
                .args(chunk)
                .output()
                .expect("run kubernetes-validate");
            assert!(
                out.status.success(),
                "manifests do not validate against Kubernetes {v}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The YAML files of a generated directory.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("kustomization.yaml"));
    v.sort();
    v
}

fn first_error_line(out: &RunOutput) -> String {
    out.stderr
        .lines()
        .find(|l| l.starts_with("Error:"))
        .unwrap_or_default()
        .to_owned()
}

fn manifests_validate() {
    let r = Rstack::new();
    let versions = newest_versions();
    let out_root = r.work_dir().join("manifests");
    let (mut generated, mut rejected) = (0, 0);
    let mut files = Vec::new();
    for (i, case) in cases().iter().enumerate() {
        let dir = out_root.join(i.to_string());
        let generate = case.run(&r, &["kube", "generate", "-o", dir.to_str().unwrap()]);
        if generate.success() {
            let written = yaml_files(&dir);
            assert!(
                written
                    .iter()
                    .any(|p| p.to_string_lossy().ends_with("-namespace.yaml")),
                "{}: no Namespace written:\n{generate}",
                case.label()
            );
            files.extend(written);
            generated += 1;
            continue;
        }
        // not a project rstack loads: `config` must reject it the same way
        assert!(
            !case.must_generate,
            "{}: kube generate failed:\n{generate}",
            case.label()
        );
        let config = case.run(&r, &["config", "-q"]);
        assert!(
            !config.success(),
            "{}: config accepts it but kube generate fails:\n{generate}",
            case.label()
        );
        assert_eq!(
            first_error_line(&generate),
            first_error_line(&config),
            "{}: kube generate and config fail differently",
            case.label()
        );
        rejected += 1;
    }
    eprintln!(
        "kube: {generated} projects generated ({} files), {rejected} rejected by the loader; validating against Kubernetes {versions:?}",
        files.len()
    );
    assert!(
        generated >= 100,
        "only {generated} fixture projects generated"
    );
    validate(&files, &versions);
}

/// Copies `from` into `to` (files and directories, modes kept).
fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .args(["-a", &format!("{}/.", from.display()), to.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

fn without_root() {
    let r = Rstack::new();
    // a copy nobody can read, of the binary too (the build tree may not be)
    let dir = tempfile::Builder::new()
        .prefix("rstack-kube-")
        .tempdir()
        .unwrap();
    let project = dir.path().join("gateway");
    std::fs::create_dir(&project).unwrap();
    copy_tree(&repo().join("crates/kube/tests/data/golden"), &project);
    let bin = dir.path().join("rstack");
    std::fs::copy(r.bin(), &bin).unwrap();
    let chmod = Command::new("chmod")
        .args(["-R", "a+rX", dir.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(chmod.success());
    // a store that exists but is root's alone
    std::fs::create_dir_all(r.root().join("images")).unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args([
            "--root",
            r.root().to_str().unwrap(),
            "--run-root",
            r.run_root().to_str().unwrap(),
        ])
        .args(["kube", "generate"])
        .current_dir(&project)
        .env("HOME", "/nonexistent")
        .env("RSTACK_LOG", "error");
    let out = r.run_command(cmd, None);
    assert!(out.success(), "kube generate as nobody:\n{out}");
    assert!(out.stdout.contains("kind: Deployment\n"), "{out}");
    assert!(out.stdout.contains("name: gateway-published\n"), "{out}");
    assert!(
        out.stderr
            .contains("services.gateway.ulimits: not carried over"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("image users, healthchecks and ports not read"),
        "{out}"
    );
}

/// The build tutorial with the local registry's busybox, a named USER
/// service, and `--push` to the local registry.
fn push_and_facts() {
    let r = Rstack::new().with_timeout(std::time::Duration::from_secs(300));
    let base = Fixtures::shared().busybox_v2s2.reference();
    r.ok(&["pull", "-q", &base]);
    let dir = r.work_dir().join("build");
    std::fs::create_dir_all(&dir).unwrap();
    copy_tree(&repo().join("crates/kube/tests/data/tutorial/build"), &dir);
    let compose = std::fs::read_to_string(dir.join("compose.yaml"))
        .unwrap()
        .replace("busybox:1.37", &base)
        + &format!(
            "  nobody:\n    image: {base}\n    user: nobody\n    command: [sleep, \"1000\"]\n"
        );
    std::fs::write(dir.join("compose.yaml"), compose).unwrap();
    let registry = Registry::shared().host();
    let out_dir = r.work_dir().join("k8s");
    let mut cmd = r.command(&[
        "kube",
        "generate",
        "--push",
        &registry,
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    cmd.current_dir(&dir);
    let out = r.run_command(cmd, None);
    assert!(out.success(), "{out}");
    out.assert_stderr_mentions(&["Service web  Built", "Pushing"]);
    let web = std::fs::read_to_string(out_dir.join("web-deployment.yaml")).unwrap();
    // named by the digest the registry has
    let image = web
        .lines()
        .find_map(|l| l.trim().strip_prefix("image: "))
        .unwrap_or_else(|| panic!("no image in\n{web}"));
    let (name, digest) = image
        .split_once('@')
        .unwrap_or_else(|| panic!("not by digest: {image}"));
    assert_eq!(name, format!("{registry}/build-web"));
    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{name}")])
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        info["Digest"], digest,
        "the manifests name what the registry holds"
    );
    // the image's HEALTHCHECK became the probes; probe waits for web's port
    assert!(web.contains("readinessProbe:"), "{web}");
    assert!(web.contains("http://127.0.0.1:5000/"), "{web}");
    let probe = std::fs::read_to_string(out_dir.join("probe-deployment.yaml")).unwrap();
    assert!(probe.contains("until nc -z -w 2 web 5000;"), "{probe}");
    // `user: nobody` resolved in the image's own /etc/passwd
    let nobody = std::fs::read_to_string(out_dir.join("nobody-deployment.yaml")).unwrap();
    assert!(
        nobody.contains("runAsUser: 65534\n") && nobody.contains("runAsNonRoot: true\n"),
        "{nobody}"
    );
    validate(&yaml_files(&out_dir), &newest_versions());
}
