use super::*;

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn config(daemon_json: &str, conf_toml: &str) -> RegistryConfig {
    let daemon_file = PathBuf::from("/root/config.json");
    let conf_path = PathBuf::from("/etc/containers/registries.conf");
    RegistryConfig {
        daemon: daemon::parse(&daemon_file, daemon_json.as_bytes()).unwrap(),
        daemon_file,
        conf: conf::parse(&conf_path, conf_toml).unwrap(),
        conf_path,
        env_insecure: Vec::new(),
    }
}

/// `(reference at the endpoint, insecure, mirror)` for `input`.
fn plan(c: &RegistryConfig, input: &str) -> Vec<(String, bool, bool)> {
    let r = Reference::parse(input).unwrap();
    c.endpoints(&r, input)
        .unwrap()
        .into_iter()
        .map(|e| (e.reference.to_string(), e.insecure, e.mirror))
        .collect()
}

fn s(text: &str, insecure: bool, mirror: bool) -> (String, bool, bool) {
    (text.to_owned(), insecure, mirror)
}

#[test]
fn no_configuration_means_the_name_itself() {
    let c = config("{}", "");
    assert_eq!(
        plan(&c, "busybox:1.35"),
        [s("docker.io/library/busybox:1.35", false, false)]
    );
    assert_eq!(
        plan(&c, "127.0.0.1:5000/e2e/app"),
        [s("127.0.0.1:5000/e2e/app:latest", true, false)]
    );
}

#[test]
fn daemon_mirrors_serve_docker_hub_names_only() {
    let c = config(
        r#"{"registry-mirrors":["http://127.0.0.1:5001","https://mirror.example.com"]}"#,
        "",
    );
    assert_eq!(
        plan(&c, "busybox:1.35"),
        [
            s("127.0.0.1:5001/library/busybox:1.35", true, true),
            s("mirror.example.com/library/busybox:1.35", false, true),
            s("docker.io/library/busybox:1.35", false, false),
        ]
    );
    assert_eq!(
        plan(&c, &format!("org/name@{D}"))[1],
        s(&format!("mirror.example.com/org/name@{D}"), false, true)
    );
    assert_eq!(
        plan(&c, "ghcr.io/o/app:1"),
        [s("ghcr.io/o/app:1", false, false)]
    );
}

#[test]
fn registries_conf_mirrors_then_location() {
    let c = config(
        r#"{"registry-mirrors":["http://hub-mirror.lan"]}"#,
        r#"
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:5002/hub"
[[registry.mirror]]
location = "secure.lan"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tags.lan"
insecure = true
pull-from-mirror = "tag-only"
"#,
    );
    assert_eq!(
        plan(&c, "busybox:1.35"),
        [
            s("hub-mirror.lan/library/busybox:1.35", true, true),
            s("127.0.0.1:5002/hub/library/busybox:1.35", true, true),
            s("tags.lan/library/busybox:1.35", true, true),
            s("docker.io/library/busybox:1.35", false, false),
        ]
    );
    // A digest pull: the digest-only mirror, not the tag-only one.
    let by_digest = plan(&c, &format!("busybox:1.35@{D}"));
    let hosts: Vec<&str> = by_digest
        .iter()
        .map(|(r, _, _)| r.split('/').next().unwrap())
        .collect();
    assert_eq!(
        hosts,
        [
            "hub-mirror.lan",
            "127.0.0.1:5002",
            "secure.lan",
            "docker.io"
        ]
    );
}

#[test]
fn longest_prefix_wins_and_locations_remap() {
    let c = config(
        "{}",
        r#"
[[registry]]
prefix = "example.com/foo"
location = "internal.lan/bar"
insecure = true
[[registry.mirror]]
location = "m0.local/mirror-for-foo"
[[registry]]
prefix = "example.com"
location = "example.com"
[[registry.mirror]]
location = "m1.local"
[[registry]]
location = "example.com/foobar"
blocked = true
"#,
    );
    assert_eq!(
        plan(&c, "example.com/foo/image:latest"),
        [
            s("m0.local/mirror-for-foo/image:latest", false, true),
            s("internal.lan/bar/image:latest", true, false),
        ]
    );
    // `example.com/foobar` is not under the `example.com/foo` prefix.
    let r = Reference::parse("example.com/foobar/x").unwrap();
    let err = c.endpoints(&r, "example.com/foobar/x").unwrap_err();
    assert!(
        matches!(&err, Error::Blocked { prefix, .. } if prefix == "example.com/foobar"),
        "{err}"
    );
    assert!(err.to_string().contains("blocked = true"), "{err}");
    assert_eq!(
        plan(&c, "example.com/other"),
        [
            s("m1.local/other:latest", false, true),
            s("example.com/other:latest", false, false),
        ]
    );
    assert_eq!(
        plan(&c, "example.company/x"),
        [s("example.company/x:latest", false, false)]
    );
}

#[test]
fn tag_and_digest_prefixes_and_wildcards() {
    let c = config(
        "{}",
        r#"
[[registry]]
prefix = "docker.io/library/busybox:1.35"
location = "pinned.lan/busybox:stable"
[[registry]]
prefix = "*.corp.example"
[[registry.mirror]]
location = "cache.lan"
[[registry]]
prefix = "*.example.com"
blocked = true
[[registry]]
location = "quay.example.com"
"#,
    );
    assert_eq!(
        plan(&c, "busybox:1.35"),
        [s("pinned.lan/busybox:stable", false, false)]
    );
    assert_eq!(
        plan(&c, "busybox:1.36"),
        [s("docker.io/library/busybox:1.36", false, false)]
    );
    assert_eq!(
        plan(&c, "reg.corp.example:5000/team/app"),
        [
            s("cache.lan/team/app:latest", false, true),
            s("reg.corp.example:5000/team/app:latest", false, false),
        ]
    );
    // An exact prefix beats a wildcard of the same length.
    assert_eq!(
        plan(&c, "quay.example.com/a"),
        [s("quay.example.com/a:latest", false, false)]
    );
    let r = Reference::parse("other.example.com/a").unwrap();
    assert!(matches!(
        c.endpoints(&r, "other.example.com/a"),
        Err(Error::Blocked { .. })
    ));
}

#[test]
fn short_name_aliases_fetch_elsewhere_under_the_same_name() {
    let c = config(
        "{}",
        r#"
[aliases]
"pgadmin" = "127.0.0.1:5000/dpage/pgadmin4"
"busybox" = "quay.example.com/library/busybox"
"#,
    );
    assert_eq!(
        plan(&c, "pgadmin:8"),
        [s("127.0.0.1:5000/dpage/pgadmin4:8", true, false)]
    );
    assert_eq!(
        plan(&c, &format!("busybox@{D}")),
        [s(
            &format!("quay.example.com/library/busybox@{D}"),
            false,
            false
        )]
    );
    // Only short names are aliased.
    assert_eq!(
        plan(&c, "docker.io/library/busybox"),
        [s("docker.io/library/busybox:latest", false, false)]
    );
}

#[test]
fn insecure_lists_apply_to_every_location() {
    let mut c = config(
        r#"{"insecure-registries":["lan:5000"]}"#,
        r#"
[[registry]]
location = "tls.lan"
insecure = true
"#,
    );
    c.env_insecure = vec!["env.lan".into()];
    assert!(c.is_insecure("lan:5000"));
    assert!(c.is_insecure("env.lan"));
    assert!(c.is_insecure("tls.lan"));
    assert!(c.is_insecure("localhost:5000"));
    assert!(!c.is_insecure("ghcr.io"));
    assert!(plan(&c, "lan:5000/a")[0].1);
}

#[test]
fn duplicate_endpoints_are_tried_once() {
    let c = config(
        r#"{"registry-mirrors":["http://127.0.0.1:5001"]}"#,
        r#"
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:5001"
"#,
    );
    assert_eq!(plan(&c, "busybox").len(), 2);
}

#[test]
fn description_names_files_mirrors_and_rules() {
    let c = config(
        r#"{"registry-mirrors":["http://127.0.0.1:5001"]}"#,
        r#"
unqualified-search-registries = ["docker.io"]
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "m.lan"
pull-from-mirror = "digest-only"
"#,
    );
    let text = c.describe().join("\n");
    for needle in [
        "Registry Mirrors:\n http://127.0.0.1:5001",
        "Registries Conf:\n /etc/containers/registries.conf",
        "docker.io, mirror m.lan (digest-only)",
        "Unqualified Search Registries:\n docker.io",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }
    let json = c.to_json();
    assert_eq!(json["Mirrors"][0], "http://127.0.0.1:5001");
    assert_eq!(
        json["Registries"][0]["Mirrors"][0]["PullFromMirror"],
        "digest-only"
    );
}
