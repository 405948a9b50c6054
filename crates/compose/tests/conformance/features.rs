//! Behaviour beyond the compose-go vectors: error messages with positions
//! and suggestions, discovery, profiles, environment sources, a
//! tutorial-style project, the planner.

use std::path::Path;

use indexmap::IndexMap;
use rstack_compose::{Options, Project, load};

pub(crate) fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

pub(crate) fn env(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn load_dir(
    dir: &Path,
    e: &[(&str, &str)],
) -> Result<Project, rstack_compose::loader::Error> {
    load(&Options::new(dir, env(e)))
}

pub(crate) fn err(dir: &Path, text: &str) -> String {
    write(dir, "compose.yaml", text);
    match load_dir(dir, &[]) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => crate::chain(&e),
    }
}

#[test]
fn typo_names_position_and_suggestion() {
    let d = tempfile::tempdir().unwrap();
    let e = err(
        d.path(),
        "name: t\nservices:\n  web:\n    image: nginx\n    enviroment:\n      A: b\n",
    );
    assert!(e.contains("compose.yaml:5:5"), "{e}");
    assert!(
        e.contains("unknown key `enviroment` in services.web, did you mean `environment`?"),
        "{e}"
    );
    let e = err(d.path(), "name: t\nservice:\n  web:\n    image: nginx\n");
    assert!(e.contains("did you mean `services`?"), "{e}");
}

#[test]
fn type_errors_name_the_key_path() {
    let d = tempfile::tempdir().unwrap();
    let e = err(
        d.path(),
        "name: t\nservices:\n  web:\n    image: nginx\n    environment:\n      FOO: [\"1\"]\n",
    );
    assert!(
        e.contains("services.web.environment.FOO must be a boolean, null, number or string"),
        "{e}"
    );
    assert!(e.contains("compose.yaml:6:"), "{e}");
}

#[test]
fn semantic_errors() {
    let d = tempfile::tempdir().unwrap();
    let e = err(
        d.path(),
        "name: t\nservices:\n  web:\n    image: nginx\n    networks: [front]\n",
    );
    assert!(e.contains("refers to undefined network front"), "{e}");
    assert!(e.contains("compose.yaml:5:"), "{e}");
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
    );
    assert!(e.contains("dependency cycle detected: a -> b -> a"), "{e}");
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    depends_on: [nope]\n",
    );
    assert!(e.contains("depends on undefined service \"nope\""), "{e}");
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    restart: sometimes\n",
    );
    assert!(e.contains("invalid restart policy \"sometimes\""), "{e}");
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    container_name: one\n    scale: 2\n",
    );
    assert!(e.contains("can't set container_name and scale"), "{e}");
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    ports: [\"80/xyz\"]\n",
    );
    assert!(
        e.contains("services.a.ports[0]") && e.contains("Invalid proto: xyz"),
        "{e}"
    );
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    volumes: [\"data:/data\"]\n",
    );
    assert!(e.contains("refers to undefined volume data"), "{e}");
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    secrets: [token]\n",
    );
    assert!(e.contains("refers to undefined secret token"), "{e}");
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: ${NOPE:?set NOPE}\n",
    );
    assert!(
        e.contains("required variable NOPE is missing a value: set NOPE"),
        "{e}"
    );
    assert!(e.contains("services.a.image"), "{e}");
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n  a:\n    image: y\n",
    );
    assert!(
        e.contains("mapping key \"a\" already defined at line 3"),
        "{e}"
    );
}

#[test]
fn discovery_in_parent_and_override_file() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "docker-compose.yml",
        "services:\n  web:\n    image: a\n    ports: [\"80:80\"]\n",
    );
    write(
        d.path(),
        "docker-compose.override.yml",
        "services:\n  web:\n    image: b\n    ports: [\"443:443\"]\n",
    );
    let sub = d.path().join("sub/deeper");
    std::fs::create_dir_all(&sub).unwrap();
    let p = load_dir(&sub, &[]).unwrap();
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("b"));
    assert_eq!(web.ports.len(), 2);
    assert_eq!(p.compose_files.len(), 2);
    let dirname = d
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase();
    let expected: String = dirname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert_eq!(p.name, expected.trim_start_matches(['_', '-']));
}

#[test]
fn compose_file_env_and_profiles_and_name() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "a.yaml",
        "services:\n  web:\n    image: a\n  debug:\n    image: d\n    profiles: [debug]\n  tool:\n    image: t\n    profiles: [tools]\n    depends_on: [helper]\n  helper:\n    image: h\n    profiles: [never]\n",
    );
    write(d.path(), "b.yaml", "services:\n  web:\n    image: b\n");
    let e = [
        ("COMPOSE_FILE", "a.yaml:b.yaml"),
        ("COMPOSE_PROJECT_NAME", "demo"),
    ];
    let p = load_dir(d.path(), &e).unwrap();
    assert_eq!(p.name, "demo");
    assert_eq!(p.services["web"].image.as_deref(), Some("b"));
    assert_eq!(p.services.keys().collect::<Vec<_>>(), ["web"]);
    assert_eq!(p.all_profiles(), ["debug", "never", "tools"]);
    let p = load_dir(d.path(), &[e[0], e[1], ("COMPOSE_PROFILES", "debug,tools")]).unwrap();
    let mut names: Vec<&String> = p.services.keys().collect();
    names.sort();
    assert_eq!(names, ["debug", "helper", "tool", "web"]);
    // A service named on the command line is active whatever its profiles.
    let mut o = Options::new(d.path(), env(&e));
    o.services = vec!["debug".into()];
    let p = load(&o).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), ["debug"]);
    // -p is checked, not normalised.
    let mut o = Options::new(d.path(), env(&e));
    o.project_name = Some("My App".into());
    assert!(
        load(&o)
            .unwrap_err()
            .to_string()
            .contains("invalid project name \"My App\"")
    );
}

#[test]
fn environment_sources_and_stdin() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), ".env", "TAG=fromdotenv\nPORT=8080\n");
    write(d.path(), "other.env", "TAG=fromother\n");
    let text = "name: s\nservices:\n  web:\n    image: \"nginx:${TAG}\"\n    ports: [\"${PORT}:80\"]\n    environment:\n      - FROM_SHELL\n      - MISSING\n      - FIXED=1\n";
    let mut o = Options::new(d.path(), env(&[("PORT", "9090"), ("FROM_SHELL", "yes")]));
    o.files = vec!["-".into()];
    o.stdin = Some(text.into());
    let p = load(&o).unwrap();
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("nginx:fromdotenv"));
    assert_eq!(
        web.ports[0].published.as_deref(),
        Some("9090"),
        "the shell wins over .env"
    );
    assert_eq!(web.environment["FROM_SHELL"].as_deref(), Some("yes"));
    assert_eq!(web.environment["MISSING"], None);
    assert_eq!(web.environment["FIXED"].as_deref(), Some("1"));
    o.env_files = vec!["other.env".into()];
    let p = load(&o).unwrap();
    assert_eq!(p.services["web"].image.as_deref(), Some("nginx:fromother"));
}

#[test]
fn obsolete_version_is_a_warning() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "compose.yaml",
        "version: \"3.8\"\nservices:\n  web:\n    image: a\n",
    );
    let p = load_dir(d.path(), &[]).unwrap();
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("`version` is obsolete")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn extends_resolves_paths_against_the_base_file() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "common/base.yaml",
        "services:\n  base:\n    build: ./app\n    env_file: base.env\n    volumes: [\"./data:/data\"]\n    environment: {A: \"1\"}\n",
    );
    write(d.path(), "common/base.env", "B=2\n");
    write(
        d.path(),
        "compose.yaml",
        "name: x\nservices:\n  web:\n    extends: {file: common/base.yaml, service: base}\n    environment: {C: \"3\"}\n",
    );
    let p = load_dir(d.path(), &[]).unwrap();
    let web = &p.services["web"];
    let root = d.path().display().to_string();
    assert_eq!(
        web.build.as_ref().unwrap().context.as_deref(),
        Some(format!("{root}/common/app").as_str())
    );
    assert_eq!(
        web.volumes[0].source.as_deref(),
        Some(format!("{root}/common/data").as_str())
    );
    assert_eq!(web.env_file[0].path, format!("{root}/common/base.env"));
    let env: Vec<(&str, Option<&str>)> = web
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref()))
        .collect();
    assert_eq!(env, [("B", Some("2")), ("A", Some("1")), ("C", Some("3"))]);
}

#[test]
fn normalisation_and_files_of_values() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "raw.env", "A=\"quoted\" $NOT # kept\n");
    write(d.path(), "labels.txt", "team=core\nowner=ops\n");
    write(
        d.path(),
        "compose.yaml",
        "name: n\nservices:\n  vpn:\n    build: .\n  app:\n    image: a:${UNSET_TAG}\n    network_mode: service:vpn\n    volumes_from: [store:ro]\n    env_file: [{path: raw.env, format: raw}]\n    label_file: [labels.txt]\n    labels: {owner: me}\n  store:\n    image: s\n",
    );
    let p = load_dir(d.path(), &[]).unwrap();
    let app = &p.services["app"];
    assert_eq!(
        app.environment["A"].as_deref(),
        Some("\"quoted\" $NOT # kept")
    );
    assert_eq!(app.labels["team"], "core");
    assert_eq!(app.labels["owner"], "me");
    let deps: Vec<&String> = app.depends_on.keys().collect();
    assert_eq!(deps, ["vpn", "store"]);
    assert_eq!(
        p.services["vpn"]
            .build
            .as_ref()
            .unwrap()
            .dockerfile
            .as_deref(),
        Some("Dockerfile")
    );
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("\"UNSET_TAG\" variable is not set")),
        "{:?}",
        p.warnings
    );
    let plan = p.plan().unwrap();
    assert_eq!(plan.start_layers[0], ["vpn", "store"]);
    assert_eq!(plan.start_layers[1], ["app"]);
}

#[test]
fn bad_durations_and_sizes_have_positions() {
    let d = tempfile::tempdir().unwrap();
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    mem_limit: 12x\n",
    );
    assert!(
        e.contains("compose.yaml:5:16")
            && e.contains("services.a.mem_limit")
            && e.contains("invalid size"),
        "{e}"
    );
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    healthcheck:\n      interval: 10\n",
    );
    assert!(e.contains("services.a.healthcheck.interval"), "{e}");
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    healthcheck:\n      interval: soon\n",
    );
    assert!(
        e.contains("compose.yaml:6:17") && e.contains("invalid duration"),
        "{e}"
    );
}

#[test]
fn tutorial_style_projects_load() {
    let base = crate::data_dir().join("realworld");
    let wp = load_dir(&base.join("wordpress"), &[]).unwrap();
    assert_eq!(wp.name, "wordpress");
    assert_eq!(
        wp.services["db"].command.as_deref().unwrap(),
        ["--default-authentication-plugin=mysql_native_password"]
    );
    assert_eq!(wp.services["db"].expose, ["3306", "33060"]);
    assert_eq!(wp.volume_name("db_data"), "wordpress_db_data");
    assert_eq!(wp.plan().unwrap().start_layers.len(), 1);

    let fl = load_dir(&base.join("flask-redis"), &[]).unwrap();
    assert!(fl.warnings.iter().any(|w| w.contains("obsolete")));
    assert_eq!(
        fl.services["web"].build.as_ref().unwrap().target.as_deref(),
        Some("builder")
    );
    assert_eq!(
        fl.services["proxy"].secrets[0].mode,
        Some(rstack_compose::units::FileMode(0o440))
    );
    assert_eq!(fl.plan().unwrap().start_order(), ["redis", "web", "proxy"]);

    let e = crate::chain(&load_dir(&base.join("monitoring"), &[]).unwrap_err());
    assert!(
        e.contains("required variable GF_PASSWORD is missing a value: set GF_PASSWORD"),
        "{e}"
    );
    let mon = load_dir(
        &base.join("monitoring"),
        &[("GF_PASSWORD", "pw"), ("COMPOSE_PROFILES", "ui")],
    )
    .unwrap();
    let g = &mon.services["grafana"];
    assert_eq!(g.image.as_deref(), Some("grafana/grafana:10.2.0"));
    assert_eq!(g.ports[0].published.as_deref(), Some("3000"));
    assert_eq!(
        g.logging.as_ref().unwrap().options["max-file"].as_deref(),
        Some("3")
    );
    assert_eq!(
        mon.services["prometheus"].configs[0].target.as_deref(),
        Some("/etc/prometheus/prometheus.yml")
    );
}

#[test]
fn nested_typos_get_suggestions() {
    let d = tempfile::tempdir().unwrap();
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    healthcheck:\n      intervl: 5s\n",
    );
    assert!(
        e.contains("compose.yaml:6:7") && e.contains("did you mean `interval`?"),
        "{e}"
    );
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    ports:\n      - target: 80\n        publised: 8080\n",
    );
    assert!(
        e.contains("compose.yaml:7:9") && e.contains("did you mean `published`?"),
        "{e}"
    );
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\nnetworks:\n  n:\n    drivr: bridge\n",
    );
    assert!(e.contains("did you mean `driver`?"), "{e}");
    let e = err(
        d.path(),
        "name: t\nservices:\n  web:\n    image: x\n    depends_on: [dbb]\n  db:\n    image: y\n",
    );
    assert!(e.contains("did you mean \"db\"?"), "{e}");
}

#[test]
fn a_service_needs_an_image_or_a_build() {
    let d = tempfile::tempdir().unwrap();
    let e = err(d.path(), "name: t\nservices:\n  a:\n    command: [x]\n");
    assert!(
        e.contains("compose.yaml:3:3") && e.contains("has neither an image nor a build context"),
        "{e}"
    );
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    volumes_from: [b]\n",
    );
    assert!(e.contains("undefined service \"b\" in volumes_from"), "{e}");
}

#[test]
fn every_unknown_key_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    imgae: x\n    comand: [x]\n",
    );
    assert!(
        e.contains("compose.yaml:4:5: unknown key `imgae`") && e.contains("did you mean `image`?"),
        "{e}"
    );
    assert!(
        e.contains("compose.yaml:5:5: unknown key `comand`")
            && e.contains("did you mean `command`?"),
        "{e}"
    );
}

#[test]
fn enums_the_schema_lets_through() {
    let d = tempfile::tempdir().unwrap();
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    pull_policy: alwayss\n",
    );
    assert!(
        e.contains("compose.yaml:5:5") && e.contains("invalid pull policy \"alwayss\""),
        "{e}"
    );
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    ports:\n      - target: 80\n        protocol: icmp\n",
    );
    assert!(
        e.contains("services.a.ports[0].protocol: invalid value \"icmp\""),
        "{e}"
    );
    write(
        d.path(),
        "compose.yaml",
        "name: t\nservices:\n  a:\n    image: x\n    pull_policy: every_12h\n",
    );
    load_dir(d.path(), &[]).unwrap();
}

#[test]
fn addresses_and_names_are_checked() {
    let d = tempfile::tempdir().unwrap();
    // a shared container_name loads (docker compose fails only when both
    // containers would exist at once)
    write(
        d.path(),
        "compose.yaml",
        "name: t\nservices:\n  a:\n    image: x\n    container_name: cc\n  b:\n    image: x\n    container_name: cc\n",
    );
    let p = load_dir(d.path(), &[]).unwrap();
    assert_eq!(p.container_name("a", 1), p.container_name("b", 1));
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    networks:\n      n:\n        ipv4_address: 10.0.0.300\nnetworks:\n  n:\n    ipam:\n      config:\n        - subnet: 10.0.0.0/33\n          gateway: nope\n",
    );
    assert!(e.contains("\"10.0.0.300\" is not an IPv4 address"), "{e}");
    assert!(e.contains("\"10.0.0.0/33\" is not a CIDR"), "{e}");
    assert!(e.contains("\"nope\" is not an IP address"), "{e}");
}

#[test]
fn typed_model_errors_have_positions() {
    let d = tempfile::tempdir().unwrap();
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    healthcheck:\n      retries: many\n",
    );
    assert!(
        e.contains("compose.yaml:6:7: services.a.healthcheck.retries: invalid value"),
        "{e}"
    );
}
