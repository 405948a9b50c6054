//! Behaviour beyond the compose-go vectors: error messages with positions
//! and suggestions, discovery, profiles, environment sources, a
//! tutorial-style project, the planner.

use std::path::Path;

use indexmap::IndexMap;
use rstack_compose::{Options, Project, load};

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn env(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_dir(dir: &Path, e: &[(&str, &str)]) -> Result<Project, rstack_compose::loader::Error> {
    load(&Options::new(dir, env(e)))
}

fn err(dir: &Path, text: &str) -> String {
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

const TUTORIAL: &str = r#"
name: shop
x-common: &common
  restart: unless-stopped
  logging:
    driver: json-file
    options: {max-size: 10m}
services:
  web:
    <<: *common
    build:
      context: ./web
      args: [VERSION=1.2, HTTP_PROXY, NO_SUCH_ARG]
    ports:
      - "127.0.0.1:8080:80"
      - target: 443
        published: 8443
    volumes:
      - static:/srv/static:ro
      - type: bind
        source: ./conf
        target: /etc/nginx/conf.d
    environment:
      API_URL: http://api:5000
    env_file: [web.env]
    networks:
      front:
      back:
        aliases: [www]
        ipv4_address: 172.28.0.10
    depends_on:
      api:
        condition: service_healthy
      cache:
        condition: service_started
        required: false
    extra_hosts:
      - "host.docker.internal:host-gateway"
    labels:
      - traefik.enable=true
  api:
    <<: *common
    image: shop/api:1.0
    command: gunicorn -b 0.0.0.0:5000 'app:create()'
    healthcheck:
      test: curl -f http://localhost:5000/health
      interval: 1m30s
      timeout: 10s
      retries: 3
      start_period: 40s
    deploy:
      resources:
        limits: {cpus: "0.50", memory: 512M}
        reservations: {memory: 128M}
    ulimits:
      nofile: {soft: 1024, hard: 4096}
      nproc: 512
    secrets: [db_password]
    networks: [back]
    stop_grace_period: 30s
  db:
    image: postgres:16
    profiles: [db]
    volumes: [pgdata:/var/lib/postgresql/data]
    networks: [back]
    shm_size: 256m
    devices: ["/dev/fuse:/dev/fuse:rwm"]
networks:
  front: {}
  back:
    ipam:
      config: [{subnet: 172.28.0.0/16}]
volumes:
  static:
  pgdata:
secrets:
  db_password:
    file: ./secrets/db.txt
"#;

#[test]
fn tutorial_project_with_override() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "compose.yaml", TUTORIAL);
    write(d.path(), "web.env", "DEBUG=0\n");
    write(d.path(), ".env", "HTTP_PROXY=http://proxy:3128\n");
    write(
        d.path(),
        "compose.override.yaml",
        "services:\n  web:\n    environment:\n      DEBUG: \"1\"\n    ports: !override [\"9000:80\"]\n  api:\n    command: !reset null\n",
    );
    let p = load_dir(d.path(), &[]).unwrap();
    let root = d.path().display().to_string();
    assert_eq!(p.name, "shop");
    let web = &p.services["web"];
    assert_eq!(web.restart.as_deref(), Some("unless-stopped"));
    assert_eq!(
        web.logging.as_ref().unwrap().driver.as_deref(),
        Some("json-file")
    );
    assert_eq!(
        web.build.as_ref().unwrap().args["VERSION"].as_deref(),
        Some("1.2")
    );
    assert_eq!(web.ports.len(), 1, "!override replaced the ports");
    assert_eq!(
        (web.ports[0].target, web.ports[0].published.as_deref()),
        (80, Some("9000"))
    );
    assert_eq!(web.volumes[0].kind, "volume");
    assert_eq!(web.volumes[0].read_only, Some(true));
    assert_eq!(
        web.volumes[1].source.as_deref(),
        Some(format!("{root}/conf").as_str())
    );
    assert_eq!(web.environment["DEBUG"].as_deref(), Some("1"));
    assert_eq!(
        web.environment["API_URL"].as_deref(),
        Some("http://api:5000")
    );
    let back = web.networks["back"].as_ref().unwrap();
    assert_eq!(back.aliases, ["www"]);
    assert_eq!(back.ipv4_address.as_deref(), Some("172.28.0.10"));
    assert!(web.networks["front"].is_none());
    assert_eq!(web.extra_hosts, ["host.docker.internal=host-gateway"]);
    assert_eq!(web.labels["traefik.enable"], "true");
    assert_eq!(web.depends_on["api"].condition, "service_healthy");
    assert!(!web.depends_on["cache"].required);
    let api = &p.services["api"];
    assert!(api.command.is_none(), "!reset removed the command");
    let hc = api.healthcheck.as_ref().unwrap();
    assert_eq!(
        hc.test,
        ["CMD-SHELL", "curl -f http://localhost:5000/health"]
    );
    assert_eq!(hc.interval.unwrap().as_std().as_secs(), 90);
    assert_eq!(hc.interval.unwrap().to_string(), "1m30s");
    let limits = api
        .deploy
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap()
        .limits
        .as_ref()
        .unwrap();
    assert_eq!(limits.cpus, Some(0.5));
    assert_eq!(limits.memory.unwrap().0, 512 * 1024 * 1024);
    assert_eq!(api.ulimits["nofile"].soft(), 1024);
    assert_eq!(api.ulimits["nproc"].hard(), 512);
    assert_eq!(
        api.secrets[0].target.as_deref(),
        Some("/run/secrets/db_password")
    );
    assert_eq!(api.stop_grace_period.unwrap().as_std().as_secs(), 30);
    assert!(
        !p.services.contains_key("db"),
        "db is in a disabled profile"
    );
    assert!(p.disabled_services.contains_key("db"));
    assert_eq!(p.networks["back"].name.as_deref(), Some("shop_back"));
    assert_eq!(p.volumes["pgdata"].name.as_deref(), Some("shop_pgdata"));
    assert_eq!(
        p.secrets["db_password"].file.as_deref(),
        Some(format!("{root}/secrets/db.txt").as_str())
    );
    let plan = p.plan().unwrap();
    assert_eq!(
        plan.start_layers,
        vec![vec!["api".to_string()], vec!["web".to_string()]]
    );
    assert_eq!(plan.stop_order(), ["web", "api"]);

    let mut o = Options::new(d.path(), IndexMap::new());
    o.profiles = vec!["db".into()];
    let p = load(&o).unwrap();
    let db = &p.services["db"];
    assert_eq!(db.shm_size.unwrap().0, 256 * 1024 * 1024);
    assert_eq!(db.devices[0].target, "/dev/fuse");
    // The YAML rendering reloads to the same model.
    let text = rstack_compose::render::yaml(&p).unwrap();
    let mut o2 = Options::new(d.path(), IndexMap::new());
    o2.files = vec!["-".into()];
    o2.stdin = Some(text.clone());
    o2.profiles = vec!["db".into()];
    let again = load(&o2).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(&p).unwrap(),
        "{text}"
    );
}

#[test]
fn many_real_world_keys() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "compose.yaml",
        r#"
name: keys
services:
  app:
    image: app
    ports: [8080:80, 80, "9000-9001:9000-9001/udp", "[::1]:53:53/udp"]
    expose: [3000, "4000"]
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost"]
      disable: false
    mem_limit: 1g
    memswap_limit: -1
    restart: "no"
    volumes:
      - type: tmpfs
        target: /tmp
        tmpfs: {size: 100M, mode: 1777}
      - type: volume
        source: data
        target: /data
        volume: {nocopy: true, subpath: sub}
    logging:
      options: {max-file: 3, max-size: 10m}
    sysctls: {net.core.somaxconn: 1024}
    ulimits: {nofile: 65535}
    cap_add: [NET_ADMIN]
    tmpfs: /run
    stop_signal: SIGINT
    init: true
    user: "1000:1000"
    working_dir: /srv
    secrets:
      - source: token
        target: token.txt
        uid: "103"
        mode: 0440
    configs:
      - cfg
    extra_hosts: {db.local: 10.0.0.2, multi: ["10.0.0.3", "::1"]}
    labels: {version: 2, debug: true}
    devices:
      - source: /dev/null
        target: /dev/zero
        permissions: r
    dns: 1.1.1.1
    pids_limit: 100
    cpus: 1.5
    oom_score_adj: -500
    stdin_open: true
    tty: true
    security_opt: [no-new-privileges:true]
    group_add: [audio]
    hostname: app
    platform: linux/amd64
    pull_policy: missing
    read_only: true
    shm_size: 64m
    stop_grace_period: 1m
    models: [llm]
  host:
    image: busybox
    network_mode: host
    build:
      context: .
      ssh: [default]
      secrets: [token]
      extra_hosts: ["a:1.2.3.4"]
volumes:
  data:
    driver_opts: {type: none, o: bind, device: ./data}
secrets:
  token:
    environment: TOKEN
configs:
  cfg:
    content: |
      hello
models:
  llm:
    model: ai/smollm2
"#,
    );
    let p = load_dir(d.path(), &[("TOKEN", "t")]).unwrap();
    let app = &p.services["app"];
    assert_eq!(app.ports.len(), 5);
    assert_eq!(app.ports[0].published.as_deref(), Some("8080"));
    assert_eq!(app.ports[4].host_ip.as_deref(), Some("::1"));
    assert_eq!(app.expose, ["3000", "4000"]);
    assert_eq!(app.mem_limit.unwrap().0, 1 << 30);
    assert_eq!(app.memswap_limit.unwrap().0, -1);
    assert_eq!(
        app.volumes[0].tmpfs.as_ref().unwrap().size.unwrap().0,
        100 << 20
    );
    assert_eq!(
        app.volumes[1].volume.as_ref().unwrap().subpath.as_deref(),
        Some("sub")
    );
    assert_eq!(
        app.logging.as_ref().unwrap().options["max-file"].as_deref(),
        Some("3")
    );
    assert_eq!(app.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(app.ulimits["nofile"].soft(), 65535);
    assert_eq!(app.tmpfs, ["/run"]);
    assert_eq!(
        app.secrets[0].mode,
        Some(rstack_compose::units::FileMode(0o440))
    );
    assert_eq!(app.secrets[0].uid.as_deref(), Some("103"));
    assert_eq!(app.configs[0].source, "cfg");
    assert_eq!(
        app.extra_hosts,
        ["db.local=10.0.0.2", "multi=10.0.0.3", "multi=::1"]
    );
    assert_eq!(app.labels["version"], "2");
    assert_eq!(app.labels["debug"], "true");
    assert_eq!(app.devices[0].permissions.as_deref(), Some("r"));
    assert_eq!(app.dns, ["1.1.1.1"]);
    assert_eq!(app.cpus, Some(1.5));
    assert_eq!(app.stop_grace_period.unwrap().to_string(), "1m0s");
    let host = &p.services["host"];
    assert_eq!(host.network_mode.as_deref(), Some("host"));
    assert!(host.networks.is_empty());
    assert_eq!(host.build.as_ref().unwrap().extra_hosts, ["a=1.2.3.4"]);
    let dev = &p.volumes["data"].driver_opts["device"];
    assert_eq!(dev, &format!("{}/data", d.path().display()));
    assert_eq!(p.configs["cfg"].content.as_deref(), Some("hello\n"));
    assert_eq!(p.models["llm"]["model"], "ai/smollm2");
    assert_eq!(
        p.secrets["token"].content.as_deref(),
        Some("t"),
        "content from the environment"
    );
    assert_eq!(
        app.models.as_ref().unwrap(),
        &serde_json::json!({"llm": null})
    );
    // JSON and YAML renderings both load back to the same model.
    let json = serde_json::to_string(&rstack_compose::render::sorted(&p)).unwrap();
    for text in [json, rstack_compose::render::yaml(&p).unwrap()] {
        let mut o = Options::new(d.path(), env(&[("TOKEN", "t")]));
        o.files = vec!["-".into()];
        o.stdin = Some(text.clone());
        let again = load(&o).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            serde_json::to_value(&again).unwrap(),
            serde_json::to_value(&p).unwrap(),
            "{text}"
        );
    }
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
    let e = err(
        d.path(),
        "name: t\nservices:\n  a:\n    image: x\n    container_name: cc\n  b:\n    image: x\n    container_name: cc\n",
    );
    assert!(e.contains("have the same container_name \"cc\""), "{e}");
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
