//! Mirrors: `registry-mirrors` of config.json, registries.conf mirrors in
//! order, blocked prefixes, `pull-from-mirror`, and `up -d` of a compose
//! file with Hub names inside a test network namespace.

use rstack_e2e::Rstack;
use rstack_e2e::tcpproxy::TcpProxy;
use serde_json::json;

use super::{Hub, assert_hub_named, dead_address, inspect, write_daemon_json};
use crate::sandbox::{DownOnPanic, NetNs, args, find, ps};

/// `registry-mirrors` in ROOT/config.json: `busybox:1.35`, `org/name` and
/// a digest pull come through the mirror and keep their Hub names.
pub(crate) fn config_json_mirror() {
    let hub = Hub::start();
    let r = Rstack::new();
    write_daemon_json(
        &r,
        &json!({ "registry-mirrors": [format!("http://{}", hub.mirror.host())] }),
    );
    let out = r.ok(&["pull", "busybox:1.35"]);
    for line in [
        "1.35: Pulling from library/busybox",
        &format!("Digest: {}", hub.busybox.manifest_digest),
        "Status: Downloaded newer image for busybox:1.35",
        "docker.io/library/busybox:1.35",
    ] {
        assert!(out.stdout.contains(line), "{line:?} missing:\n{out}");
    }
    assert!(
        hub.mirror_cached("library/busybox"),
        "the pull went through the mirror"
    );
    assert_hub_named(&r, "busybox:1.35", &hub.busybox);

    r.ok(&["pull", "-q", "e2e-org/app:v1"]);
    assert_hub_named(&r, "e2e-org/app:v1", &hub.org_app);

    let by_digest = format!("busybox@{}", hub.busybox.manifest_digest);
    r.ok(&["rmi", "busybox:1.35"]);
    r.ok(&["pull", "-q", &by_digest]);
    assert_eq!(inspect(&r, &by_digest)["Id"], hub.busybox.id());

    let rows = r
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .stdout;
    let mut rows: Vec<&str> = rows.lines().collect();
    rows.sort();
    assert_eq!(
        rows,
        ["busybox:<none>", "e2e-org/app:v1"],
        "images shows Hub names"
    );
    let info = r.ok(&["info"]).stdout;
    assert!(
        info.contains(&format!(
            " Registry Mirrors:\n  http://{}",
            hub.mirror.host()
        )),
        "info shows the mirror:\n{info}"
    );
    r.assert_no_leaks();
}

/// A registries.conf mirror list with the first mirror down: the next one
/// serves (said on stderr), from `--registries-conf` and from
/// `RSTACK_REGISTRIES_CONF`; with every location down, the error names
/// each.
pub(crate) fn registries_conf_fallback() {
    let hub = Hub::start();
    let r = Rstack::new();
    let (down, primary_down) = (dead_address(), dead_address());
    let conf = r.work_dir().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            r#"
[[registry]]
prefix = "docker.io"
location = "{primary_down}"
[[registry.mirror]]
location = "{down}"
[[registry.mirror]]
location = "{mirror}"
"#,
            mirror = hub.mirror.host()
        ),
    )
    .unwrap();
    let conf_arg = conf.display().to_string();
    let out = r.ok(&["--registries-conf", &conf_arg, "pull", "busybox:1.35"]);
    assert!(
        out.stderr.contains(&format!("{down} (mirror)")) && out.stderr.contains("next location"),
        "the dead mirror is reported and skipped:\n{out}"
    );
    assert_hub_named(&r, "busybox:1.35", &hub.busybox);

    let mut cmd = r.command(&["pull", "-q", "e2e-org/app:v1"]);
    cmd.env("RSTACK_REGISTRIES_CONF", &conf);
    let out = r.run_command(cmd, None);
    assert!(out.success(), "RSTACK_REGISTRIES_CONF is read:\n{out}");
    assert_hub_named(&r, "e2e-org/app:v1", &hub.org_app);

    let info = r.ok(&["--registries-conf", &conf_arg, "info"]).stdout;
    assert!(
        info.contains(&conf_arg) && info.contains(&format!("mirror {}", hub.mirror.host())),
        "info shows the registries.conf in effect:\n{info}"
    );

    hub.mirror.stop();
    let out = r.fails(&["--registries-conf", &conf_arg, "pull", "busybox:1.36"]);
    for location in [&down, &hub.mirror.host(), &primary_down] {
        assert!(
            out.stderr.contains(location.as_str()),
            "the error names {location}:\n{out}"
        );
    }
    r.assert_no_leaks();
}

/// `blocked = true` (in a drop-in) refuses before any network access;
/// a `digest-only` mirror serves digest pulls but not tag pulls.
pub(crate) fn blocked_and_digest_only() {
    let hub = Hub::start();
    let r = Rstack::new();
    let primary_down = dead_address();
    let conf = r.work_dir().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            r#"
unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "docker.io"
location = "{primary_down}"
[[registry.mirror]]
location = "{mirror}"
pull-from-mirror = "digest-only"
"#,
            mirror = hub.mirror.host()
        ),
    )
    .unwrap();
    let drop_ins = r.work_dir().join("registries.conf.d");
    std::fs::create_dir(&drop_ins).unwrap();
    let block = drop_ins.join("50-block.conf");
    std::fs::write(
        &block,
        "[[registry]]\nprefix = \"docker.io/e2e-org\"\nlocation = \"docker.io/e2e-org\"\nblocked = true\n",
    )
    .unwrap();
    let conf_arg = conf.display().to_string();

    let out = r.fails(&["--registries-conf", &conf_arg, "pull", "e2e-org/app:v1"]);
    assert!(
        out.stderr.contains("blocked") && out.stderr.contains(&block.display().to_string()),
        "the blocking file is named:\n{out}"
    );

    let out = r.fails(&["--registries-conf", &conf_arg, "pull", "busybox:1.35"]);
    assert!(
        out.stderr.contains(&primary_down) && !out.stderr.contains(&hub.mirror.host()),
        "a tag pull skips the digest-only mirror:\n{out}"
    );
    let by_digest = format!("busybox@{}", hub.busybox.manifest_digest);
    r.ok(&["--registries-conf", &conf_arg, "pull", "-q", &by_digest]);
    assert_eq!(inspect(&r, &by_digest)["Id"], hub.busybox.id());
    r.assert_no_leaks();
}

const COMPOSE: &str = r#"
services:
  box:
    image: busybox:1.35
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
  app:
    image: e2e-org/app:v1
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
"#;

/// A compose file naming images as on Docker Hub starts with `up -d`
/// when only a mirror is configured; the network namespace of the test
/// reaches the mirror through a forwarder on its own loopback.
pub(crate) fn compose_up_through_mirror() {
    let hub = Hub::start();
    let ns = NetNs::new();
    let forward = TcpProxy::start_in_netns(ns.pid(), hub.mirror.addr())
        .expect("forward the netns loopback to the mirror");
    let r = Rstack::new().with_timeout(std::time::Duration::from_secs(180));
    write_daemon_json(
        &r,
        &json!({ "registry-mirrors": [format!("http://{}", forward.addr())] }),
    );
    let file = r.work_dir().join("compose.yaml");
    std::fs::write(&file, COMPOSE).unwrap();
    let base = vec![
        "-f".to_owned(),
        file.display().to_string(),
        "-p".to_owned(),
        "hub".to_owned(),
    ];
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    assert!(forward.served() > 0, "the images came through the mirror");
    let v = ps(&ns, &r, &base);
    for (name, image) in [
        ("hub-box-1", "busybox:1.35"),
        ("hub-app-1", "e2e-org/app:v1"),
    ] {
        let c = find(&v, name);
        assert_eq!(c["State"], "running", "{c}");
        assert_eq!(c["Image"], image, "ps shows the Hub name: {c}");
    }
    assert_hub_named(&r, "busybox:1.35", &hub.busybox);
    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
    ns.assert_clean(&r);
}
