//! Real-world shaped projects: a tutorial project with an override
//! file, and one service using many keys of the spec at once.

use indexmap::IndexMap;
use rstack_compose::model::Service;
use rstack_compose::{Options, Project, load};

use crate::features::{env, load_dir, write};

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
    check_web(&p, &root);
    check_api(&p);
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

/// The web service: the anchor, build args, the overrides, volumes, env, networks.
fn check_web(p: &Project, root: &str) {
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
}

/// The api service: `!reset`, healthcheck, limits, ulimits, secrets.
fn check_api(p: &Project) {
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
}

/// One service using many keys of the spec at once, and one on the host's
/// network.
const MANY_KEYS: &str = r#"
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
"#;

#[test]
fn many_real_world_keys() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "compose.yaml", MANY_KEYS);
    let p = load_dir(d.path(), &[("TOKEN", "t")]).unwrap();
    let app = &p.services["app"];
    check_many_app(app);
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

/// The app service: every key of it, as loaded.
fn check_many_app(app: &Service) {
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
}
