//! Bad input, as a user could meet it: unknown images, malformed
//! references, registries that lie (wrong digests, cut-off blobs), layers
//! that try to write outside their dir, a root that cannot be written.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rstack_e2e::evil::{Attack, EvilRegistry};
use rstack_e2e::fixtures::hostile;
use rstack_e2e::{Fixtures, Registry, Rstack, leaks};

use super::{inspect, lower_dirs};

pub(super) fn unknown_image() {
    let registry = Registry::shared();
    let rstack = Rstack::new();
    let missing = registry.reference("e2e/does-not-exist:latest");
    rstack
        .fails(&["pull", &missing])
        .assert_stderr_mentions(&["does-not-exist"]);
    let missing_tag = registry.reference(&format!(
        "{}:no-such-tag",
        Fixtures::shared().busybox_oci.repo
    ));
    rstack
        .fails(&["pull", &missing_tag])
        .assert_stderr_mentions(&["no-such-tag"]);
    rstack
        .fails(&["rmi", "e2e/never-pulled"])
        .assert_stderr_mentions(&["never-pulled"]);
    rstack
        .fails(&["image", "inspect", "e2e/never-pulled"])
        .assert_stderr_mentions(&["never-pulled"]);
    let quiet = rstack.ok(&["images", "-q"]);
    assert!(
        quiet.stdout.trim().is_empty(),
        "a failed pull adds no image:\n{quiet}"
    );
    rstack.assert_no_leaks();
}

pub(super) fn bad_references() {
    let rstack = Rstack::new();
    for bad in [
        "Busybox:latest",
        "busybox:bad tag",
        "busybox@sha256:1234",
        "busybox:",
        "127.0.0.1:5000/x:a:b",
        "/leading-slash",
        "a//b",
    ] {
        let out = rstack.fails(&["pull", bad]);
        out.assert_stderr_mentions(&[bad, "reference", "invalid"]);
    }
    rstack.assert_no_leaks();
}

pub(super) fn evil_pull(attack: Attack) {
    let evil = EvilRegistry::start(attack).expect("start the evil registry");
    let rstack = Rstack::new();
    let out = rstack.fails(&["pull", "-q", &evil.reference()]);
    match attack {
        Attack::WrongLayerDigest | Attack::WrongManifestDigest => {
            out.assert_stderr_mentions(&["digest"]);
        }
        Attack::TruncatedLayer | Attack::ShortLayer => {
            out.assert_stderr_mentions(&[
                "digest",
                "size",
                "truncat",
                "eof",
                "incomplete",
                "length",
                "short",
            ]);
        }
    }
    let served = rstack_e2e::digest_of(&evil.image.served_layer);
    let digests = [evil.image.layer_digest.as_str(), served.as_str()];
    let mut found = leaks::files_matching_digests(&rstack.root(), &digests);
    if matches!(attack, Attack::TruncatedLayer | Attack::ShortLayer) {
        // What arrived of a cut-off blob is kept, unused, for the next pull
        // to resume (a prefix of the honest blob); `image prune` removes it.
        let partial = rstack.root().join(format!(
            "images/tmp/partial-{}",
            evil.image.layer_digest.trim_start_matches("sha256:")
        ));
        assert_eq!(
            found,
            std::slice::from_ref(&partial),
            "only the partial blob is kept\n{out}"
        );
        let kept = std::fs::read(&partial).unwrap();
        assert!(evil.image.layer.starts_with(&kept), "a prefix of the blob");
        rstack.ok(&["image", "prune", "-f"]);
        found = leaks::files_matching_digests(&rstack.root(), &digests);
    }
    assert!(
        found.is_empty(),
        "the rejected blob is in the store: {found:?}\n{out}"
    );
    let quiet = rstack.ok(&["images", "-q"]);
    assert!(
        quiet.stdout.trim().is_empty(),
        "a failed pull adds no image:\n{quiet}"
    );
    // Nothing of the layer's content was left unpacked anywhere either.
    let mut unpacked = Vec::new();
    leaks::walk(&rstack.root(), &mut |p| {
        if p.file_name().is_some_and(|n| n == "evil.txt") {
            unpacked.push(p.to_owned());
        }
    });
    assert!(
        unpacked.is_empty(),
        "content of a rejected layer left in the store: {unpacked:?}"
    );
    rstack.assert_no_leaks();
}

pub(super) fn hostile_layers() {
    let fixtures = Fixtures::shared();
    // The targets have fixed names (they are inside the fixture layers):
    // serialise with any other e2e run on this host.
    let _lock = rstack_sys::lock::lock(
        std::path::Path::new("/tmp/rstack-e2e-escape.lock"),
        rstack_sys::lock::Mode::Exclusive,
    )
    .expect("flock /tmp/rstack-e2e-escape.lock");
    for path in [
        hostile::ESCAPE_DOTDOT,
        hostile::ESCAPE_ABS,
        hostile::ESCAPE_DIR,
        hostile::ESCAPE_TARGET,
    ] {
        let _ = std::fs::remove_dir_all(path);
        let _ = std::fs::remove_file(path);
    }
    std::fs::create_dir(hostile::ESCAPE_DIR).expect("create the escape target dir");
    std::fs::write(hostile::ESCAPE_TARGET, b"secret\n").expect("create the escape target file");
    let _cleanup = Cleanup;

    for fixture in &fixtures.hostile {
        let rstack = Rstack::new();
        let out = rstack.run(&["pull", "-q", &fixture.reference()]);
        let allowed: Vec<PathBuf> = if out.success() {
            lower_dirs(&inspect(&rstack, &fixture.reference()))
        } else {
            assert!(
                !out.stderr.trim().is_empty(),
                "a refused layer must be explained:\n{out}"
            );
            Vec::new()
        };
        // Nothing outside the sandbox.
        assert!(
            !Path::new(hostile::ESCAPE_DOTDOT).exists(),
            "{}: wrote {}\n{out}",
            fixture.repo,
            hostile::ESCAPE_DOTDOT
        );
        assert!(
            !Path::new(hostile::ESCAPE_ABS).exists(),
            "{}: wrote {}\n{out}",
            fixture.repo,
            hostile::ESCAPE_ABS
        );
        let in_dir = leaks::tree(Path::new(hostile::ESCAPE_DIR));
        assert!(
            in_dir.is_empty(),
            "{}: wrote into {}: {in_dir:?}\n{out}",
            fixture.repo,
            hostile::ESCAPE_DIR
        );
        let target = std::fs::metadata(hostile::ESCAPE_TARGET).unwrap();
        assert_eq!(
            target.nlink(),
            1,
            "{}: hard-linked {}\n{out}",
            fixture.repo,
            hostile::ESCAPE_TARGET
        );
        assert_eq!(
            std::fs::read(hostile::ESCAPE_TARGET).unwrap(),
            b"secret\n",
            "{}: overwrote the target",
            fixture.repo
        );
        // Inside the sandbox, escapees may only exist within a layer dir.
        leaks::walk(rstack.dir(), &mut |p| {
            let name = p.file_name().unwrap().to_string_lossy();
            if hostile::MARKERS.contains(&name.as_ref()) {
                assert!(
                    allowed.iter().any(|dir| p.starts_with(dir)),
                    "{}: {} is outside every layer dir\n{out}",
                    fixture.repo,
                    p.display()
                );
            }
        });
        rstack.assert_no_leaks();
    }
}

/// Removes the hostile fixtures' targets when the test ends, pass or fail.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(hostile::ESCAPE_DIR);
        for path in [
            hostile::ESCAPE_DOTDOT,
            hostile::ESCAPE_ABS,
            hostile::ESCAPE_TARGET,
        ] {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub(super) fn root_not_writable() {
    let fixture = &Fixtures::shared().busybox_oci;
    let rstack = Rstack::new();
    let root = rstack.root();
    // A read-only bind mount of the root, in a private mount namespace of
    // the command only: as root, permission bits alone would not stop it.
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("set -e; mount --bind \"$1\" \"$1\"; mount -o remount,bind,ro \"$1\"; shift; exec \"$@\"")
        .arg("sh")
        .arg(&root)
        .arg(rstack.bin())
        .arg("--root")
        .arg(&root)
        .arg("--run-root")
        .arg(rstack.run_root())
        .args(["pull", "-q", &fixture.reference()]);
    rstack.sandbox_env(&mut cmd);
    let out = rstack.run_command(cmd, None);
    assert!(
        !out.success(),
        "pull into a read-only root must fail:\n{out}"
    );
    out.assert_stderr_mentions(&[root.to_str().unwrap(), "read-only"]);
    assert!(
        leaks::tree(&root).is_empty(),
        "nothing written into the read-only root"
    );

    // A root path that cannot be a directory (under a regular file).
    let file = rstack.work_dir().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let bad_root = file.join("root");
    let mut cmd = Command::new(rstack.bin());
    cmd.arg("--root")
        .arg(&bad_root)
        .arg("--run-root")
        .arg(rstack.run_root());
    cmd.args(["pull", "-q", &fixture.reference()]);
    rstack.sandbox_env(&mut cmd);
    let out = rstack.run_command(cmd, None);
    assert!(
        !out.success(),
        "pull into a root under a file must fail:\n{out}"
    );
    out.assert_stderr_mentions(&[file.to_str().unwrap()]);
    rstack.assert_no_leaks();
}
