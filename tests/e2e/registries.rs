//! Registries as users configure them: Docker Hub names pulled through a
//! mirror (a real pull-through cache) configured in `ROOT/config.json` or
//! a registries.conf, with fallback, blocking and compose files that use
//! Hub names; pulls over a link that drops or a pull that is killed
//! resume where they stopped; `search`; credential helpers and token
//! auth.
//!
//! There is no Docker Hub here: an upstream `docker-registry` plays it
//! (the fixtures pushed under Hub names: `library/busybox:1.35`,
//! `e2e-org/app:v1`) and a second one, started with `proxy.remoteurl`
//! pointing at it, is the mirror. Docker Hub itself is never contacted:
//! the mirror serves first, and trials where the primary location must be
//! tried remap it to a dead loopback port.

use std::net::TcpListener;

use libtest_mimic::Trial;
use rstack_e2e::{Fixture, Fixtures, Need, Registry, Rstack, trial};
use serde_json::Value;

mod creds;
mod mirrors;
mod resume;
mod search;

const NEEDS: &[Need] = &[Need::Root, Need::Registry, Need::Rstack];
const NEEDS_TOKEN: &[Need] = &[
    Need::Root,
    Need::Registry,
    Need::Rstack,
    Need::Command("openssl"),
];

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "registries::hub_names_through_config_json_mirror",
            NEEDS,
            mirrors::config_json_mirror,
        ),
        trial(
            "registries::registries_conf_mirror_falls_back_in_order",
            NEEDS,
            mirrors::registries_conf_fallback,
        ),
        trial(
            "registries::blocked_and_digest_only_rules",
            NEEDS,
            mirrors::blocked_and_digest_only,
        ),
        trial(
            "registries::compose_with_hub_names_up_through_mirror",
            crate::sandbox::NEEDS,
            mirrors::compose_up_through_mirror,
        ),
        trial(
            "registries::dropped_connection_resumes_mid_blob",
            NEEDS,
            resume::dropped_connection,
        ),
        trial(
            "registries::kill_9_mid_blob_then_pull_transfers_the_rest",
            NEEDS,
            resume::killed_pull_resumes,
        ),
        trial(
            "registries::search_the_catalog_of_a_registry",
            NEEDS,
            search::catalog_search,
        ),
        trial(
            "registries::search_a_registry_that_wants_login",
            NEEDS,
            search::catalog_search_with_login,
        ),
        trial(
            "registries::search_hub_api_shape_and_unsupported",
            &[Need::Rstack],
            search::hub_api_and_unsupported,
        ),
        trial(
            "registries::cred_helpers_with_a_token_server",
            NEEDS_TOKEN,
            creds::cred_helpers_with_token_auth,
        ),
        trial(
            "registries::creds_store_keeps_login_secrets",
            NEEDS_TOKEN,
            creds::creds_store_for_login,
        ),
    ]
}

/// An upstream registry with fixtures under Docker Hub names, and a
/// pull-through cache of it.
pub(crate) struct Hub {
    /// Kept running: the mirror fetches from it.
    pub(crate) _upstream: Registry,
    pub(crate) mirror: Registry,
    /// busybox as `library/busybox:1.35` (Docker's manifest format).
    pub(crate) busybox: Fixture,
    /// The four-layer fixture as `e2e-org/app:v1`.
    pub(crate) org_app: Fixture,
}

impl Hub {
    pub(crate) fn start() -> Hub {
        let fixtures = Fixtures::shared();
        let upstream = Registry::start().expect("start the upstream registry");
        let busybox = fixtures
            .busybox_v2s2
            .push_to(&upstream, "library/busybox:1.35")
            .expect("push library/busybox:1.35");
        let org_app = fixtures
            .layered
            .push_to(&upstream, "e2e-org/app:v1")
            .expect("push e2e-org/app:v1");
        let mirror = Registry::start_mirror_of(&upstream).expect("start the mirror");
        Hub {
            _upstream: upstream,
            mirror,
            busybox,
            org_app,
        }
    }

    /// Whether the mirror keeps a copy of `repo` (it fetched it).
    pub(crate) fn mirror_cached(&self, repo: &str) -> bool {
        self.mirror
            .storage_dir()
            .join("docker/registry/v2/repositories")
            .join(repo)
            .is_dir()
    }
}

/// A loopback address where nothing listens (a registry that is down).
pub(crate) fn dead_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    addr.to_string()
}

/// Writes `ROOT/config.json` of `r`.
pub(crate) fn write_daemon_json(r: &Rstack, json: &Value) {
    std::fs::write(r.root().join("config.json"), json.to_string()).expect("write config.json");
}

/// `rstack image inspect REF` -> its one object.
pub(crate) fn inspect(r: &Rstack, reference: &str) -> Value {
    let out = r.ok(&["image", "inspect", reference]);
    out.json()[0].clone()
}

/// The image is stored under its Hub name with the digest the upstream
/// has, whichever location served it.
pub(crate) fn assert_hub_named(r: &Rstack, name: &str, fixture: &Fixture) {
    let v = inspect(r, name);
    assert_eq!(v["Id"], fixture.id(), "{name}: image id");
    let tags: Vec<&str> = v["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let (repo, _) = name.rsplit_once(':').unwrap_or((name, ""));
    assert_eq!(tags, [name], "RepoTags are the Hub name: {v:#}");
    let digests: Vec<&str> = v["RepoDigests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        digests,
        [format!("{repo}@{}", fixture.manifest_digest)],
        "RepoDigests are the Hub name: {v:#}"
    );
}
