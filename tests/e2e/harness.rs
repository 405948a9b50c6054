//! The harness itself, checked with tools that are not rstack: the fixture
//! images are in the local registry in the form each test relies on, and
//! the auth registry really requires credentials.

use libtest_mimic::Trial;
use rstack_e2e::oci::{
    MEDIA_DOCKER_LAYER_GZIP, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_LAYER_ZSTD, MEDIA_OCI_MANIFEST,
};
use rstack_e2e::registry::http_status;
use rstack_e2e::{Fixture, Fixtures, Need, Registry, trial};
use serde_json::Value;

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "harness::fixtures_in_registry",
            &[Need::Registry],
            fixtures_in_registry,
        ),
        trial(
            "harness::auth_registry_requires_credentials",
            &[Need::Registry],
            auth_registry,
        ),
        trial(
            "harness::overlay_view_is_private",
            &[Need::Root, Need::Overlay],
            overlay_view_is_private,
        ),
    ]
}

fn raw_manifest(registry: &Registry, fixture: &Fixture, reference: &str) -> Value {
    let raw = registry
        .raw_manifest(&fixture.repo, reference)
        .unwrap_or_else(|e| panic!("{}: {e}", fixture.repo));
    assert_eq!(
        rstack_e2e::digest_of(raw.as_bytes()),
        fixture.manifest_digest,
        "{}: stored manifest digest",
        fixture.repo
    );
    serde_json::from_str(&raw).expect("manifest is JSON")
}

fn layer_types(manifest: &Value) -> Vec<&str> {
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect()
}

fn fixtures_in_registry() {
    let fixtures = Fixtures::shared();
    let registry = Registry::shared();
    let check = |fixture: &Fixture, manifest_type: &str, layer_type: &str| {
        let m = raw_manifest(registry, fixture, &fixture.tag);
        assert_eq!(m["mediaType"], manifest_type, "{}", fixture.repo);
        assert_eq!(
            m["config"]["digest"],
            fixture.id(),
            "{}: config digest (image ID)",
            fixture.repo
        );
        assert!(
            layer_types(&m).iter().all(|t| *t == layer_type),
            "{}: {m}",
            fixture.repo
        );
        assert_eq!(layer_types(&m).len(), fixture.image.diff_ids.len());
    };
    check(
        &fixtures.busybox_v2s2,
        MEDIA_DOCKER_MANIFEST,
        MEDIA_DOCKER_LAYER_GZIP,
    );
    check(
        &fixtures.busybox_oci,
        MEDIA_OCI_MANIFEST,
        MEDIA_OCI_LAYER_GZIP,
    );
    check(
        &fixtures.busybox_zstd,
        MEDIA_OCI_MANIFEST,
        MEDIA_OCI_LAYER_ZSTD,
    );
    check(&fixtures.busybox_plain, MEDIA_OCI_MANIFEST, MEDIA_OCI_LAYER);
    check(&fixtures.layered, MEDIA_OCI_MANIFEST, MEDIA_OCI_LAYER_GZIP);
    assert_eq!(fixtures.layered.image.diff_ids.len(), 4);
    for hostile in &fixtures.hostile {
        check(hostile, MEDIA_OCI_MANIFEST, MEDIA_OCI_LAYER_GZIP);
    }

    for (fixture, list_type, entry_type) in [
        (
            &fixtures.multiarch_list,
            MEDIA_DOCKER_LIST,
            MEDIA_DOCKER_MANIFEST,
        ),
        (
            &fixtures.multiarch_index,
            MEDIA_OCI_INDEX,
            MEDIA_OCI_MANIFEST,
        ),
    ] {
        let list = raw_manifest(registry, fixture, &fixture.tag);
        assert_eq!(list["mediaType"], list_type, "{}", fixture.repo);
        let entries = list["manifests"].as_array().expect("manifests");
        let arches: Vec<&str> = entries
            .iter()
            .map(|e| e["platform"]["architecture"].as_str().unwrap())
            .collect();
        assert_eq!(arches, ["amd64", "arm64"], "{}", fixture.repo);
        for (entry, image) in entries.iter().zip(&fixture.platforms) {
            assert_eq!(entry["mediaType"], entry_type);
            let digest = entry["digest"].as_str().unwrap();
            let raw = registry
                .raw_manifest(&fixture.repo, digest)
                .expect("platform manifest");
            let m: Value = serde_json::from_str(&raw).unwrap();
            assert_eq!(
                m["config"]["digest"],
                image.config_digest.as_str(),
                "{} {}",
                fixture.repo,
                digest
            );
        }
    }
}

fn auth_registry() {
    let registry =
        Registry::start_with_auth("e2e-user", "e2e-password").expect("start the auth registry");
    assert_eq!(
        http_status(registry.addr(), "/v2/"),
        Some(401),
        "anonymous /v2/ must be refused"
    );
    let fixtures = Fixtures::shared();
    let pushed = fixtures
        .busybox_oci
        .push_to(&registry, "e2e/private:latest")
        .expect("push with credentials");
    assert_eq!(pushed.manifest_digest, fixtures.busybox_oci.manifest_digest);
    let anonymous = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--no-creds"])
        .arg(format!("docker://{}", pushed.reference()))
        .output()
        .expect("run skopeo");
    assert!(
        !anonymous.status.success(),
        "anonymous skopeo inspect must fail"
    );
    registry
        .raw_manifest("e2e/private", "latest")
        .expect("inspect with credentials");
}

fn overlay_view_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let (upper, lower) = (dir.path().join("upper"), dir.path().join("lower"));
    for (d, name) in [(&upper, "top.txt"), (&lower, "bottom.txt")] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join(name), name).unwrap();
    }
    std::fs::write(lower.join("top.txt"), "hidden").unwrap();
    let merged = rstack_e2e::mountns::with_overlay(&[upper.clone(), lower.clone()], |merged| {
        assert_eq!(
            std::fs::read_to_string(merged.join("top.txt")).unwrap(),
            "top.txt",
            "upper wins"
        );
        assert_eq!(
            std::fs::read_to_string(merged.join("bottom.txt")).unwrap(),
            "bottom.txt"
        );
        assert_eq!(
            rstack_e2e::leaks::mounts_under(merged),
            [merged.to_owned()],
            "mounted in the private ns"
        );
        merged.to_owned()
    });
    assert!(
        rstack_e2e::leaks::mounts_under(&merged).is_empty(),
        "the mount never reaches this namespace"
    );
    assert!(rstack_e2e::leaks::mounts_under(dir.path()).is_empty());
}
