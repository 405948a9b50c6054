//! `rstack pull / images / rmi / image inspect|save|load / login / logout`
//! against the local registry and its fixtures, as a user would run them.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::Trial;

mod bad_input;
use rstack_e2e::evil::Attack;
use rstack_e2e::fixtures::{BUSYBOX, layered};
use rstack_e2e::mountns::with_overlay;
use rstack_e2e::oci::FIXED_MTIME;
use rstack_e2e::{Fixture, Fixtures, Need, Registry, Rstack, leaks, trial};
use serde_json::Value;

const NEEDS: &[Need] = &[Need::Root, Need::Registry, Need::Rstack];
const NEEDS_OVERLAY: &[Need] = &[Need::Root, Need::Registry, Need::Rstack, Need::Overlay];
const EVIL_NEEDS: &[Need] = &[Need::Root, Need::Rstack];

pub fn tests() -> Vec<Trial> {
    let single = |name: &str, pick: fn(&Fixtures) -> &Fixture| {
        trial(format!("images::pull_{name}"), NEEDS, move || {
            pull_single(pick(Fixtures::shared()))
        })
    };
    let multi = |name: &str, pick: fn(&Fixtures) -> &Fixture, arch: Option<&'static str>| {
        let label = arch.unwrap_or("default");
        trial(format!("images::pull_{name}_{label}"), NEEDS, move || {
            pull_multiarch(pick(Fixtures::shared()), arch)
        })
    };
    let evil = |name: &str, attack: Attack| {
        trial(format!("images::{name}"), EVIL_NEEDS, move || {
            bad_input::evil_pull(attack)
        })
    };
    vec![
        single("docker_v2s2_gzip", |f| &f.busybox_v2s2),
        single("oci_gzip", |f| &f.busybox_oci),
        single("oci_zstd", |f| &f.busybox_zstd),
        single("oci_uncompressed", |f| &f.busybox_plain),
        multi("manifest_list", |f| &f.multiarch_list, None),
        multi("manifest_list", |f| &f.multiarch_list, Some("arm64")),
        multi("oci_index", |f| &f.multiarch_index, None),
        multi("oci_index", |f| &f.multiarch_index, Some("arm64")),
        trial(
            "images::images_lists_pulled_images",
            NEEDS,
            images_lists_pulled,
        ),
        trial(
            "images::whiteouts_give_right_overlay_view",
            NEEDS_OVERLAY,
            overlay_view,
        ),
        trial("images::save_rmi_load_keeps_image_id", NEEDS, save_rmi_load),
        trial(
            "images::load_archives_made_by_skopeo",
            NEEDS,
            load_foreign_archives,
        ),
        trial(
            "images::concurrent_pulls_of_one_image",
            NEEDS,
            concurrent_pulls,
        ),
        trial(
            "images::docker_and_podman_auth_files_are_used",
            NEEDS,
            foreign_auth_files,
        ),
        trial(
            "images::kill_9_during_pull_then_pull_completes",
            NEEDS,
            killed_pull,
        ),
        trial(
            "images::prune_removes_dangling_keeps_shared_layers",
            NEEDS,
            prune_dangling,
        ),
        trial(
            "images::unknown_image_is_an_error",
            NEEDS,
            bad_input::unknown_image,
        ),
        trial(
            "images::bad_references_are_rejected",
            &[Need::Rstack],
            bad_input::bad_references,
        ),
        trial("images::auth_401_then_login_then_pull", NEEDS, auth_login),
        evil("wrong_layer_digest_is_rejected", Attack::WrongLayerDigest),
        evil("truncated_layer_is_rejected", Attack::TruncatedLayer),
        evil("short_layer_is_rejected", Attack::ShortLayer),
        evil(
            "wrong_manifest_digest_is_rejected",
            Attack::WrongManifestDigest,
        ),
        trial(
            "images::hostile_layers_stay_inside",
            NEEDS,
            bad_input::hostile_layers,
        ),
        trial(
            "images::root_not_writable_is_an_error",
            NEEDS,
            bad_input::root_not_writable,
        ),
    ]
}

/// `rstack image inspect REF` -> the one object of its JSON array.
fn inspect(rstack: &Rstack, reference: &str) -> Value {
    let out = rstack.ok(&["image", "inspect", reference]);
    let v = out.json();
    let arr = v
        .as_array()
        .unwrap_or_else(|| panic!("image inspect must print a JSON array:\n{out}"));
    assert_eq!(arr.len(), 1, "one image inspected:\n{out}");
    arr[0].clone()
}

/// `GraphDriver.Data.LowerDir` (top first), each an existing directory.
fn lower_dirs(inspected: &Value) -> Vec<PathBuf> {
    let lower = inspected["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap_or_else(|| panic!("no GraphDriver.Data.LowerDir in {inspected:#}"));
    let dirs: Vec<PathBuf> = lower.split(':').map(PathBuf::from).collect();
    for d in &dirs {
        assert!(
            d.is_dir(),
            "LowerDir entry {} is not a directory",
            d.display()
        );
    }
    dirs
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The busybox base layer, unpacked: the binary is the host's, applets are
/// hard links to it, the dirs have their modes.
fn assert_busybox_layer(dir: &Path) {
    let want = std::fs::read(BUSYBOX).expect("read the host busybox");
    let got = std::fs::read(dir.join("bin/busybox")).expect("bin/busybox in the layer");
    assert!(got == want, "bin/busybox differs from {BUSYBOX}");
    let bb = std::fs::metadata(dir.join("bin/busybox")).unwrap();
    let sh = std::fs::metadata(dir.join("bin/sh")).expect("bin/sh in the layer");
    assert_eq!(
        sh.ino(),
        bb.ino(),
        "bin/sh must be a hard link to bin/busybox"
    );
    assert!(
        bb.nlink() > 100,
        "every applet is a hard link (nlink {})",
        bb.nlink()
    );
    assert_eq!(bb.permissions().mode() & 0o7777, 0o755);
    let tmp = std::fs::metadata(dir.join("tmp")).unwrap();
    assert_eq!(
        tmp.permissions().mode() & 0o7777,
        0o1777,
        "tmp keeps its sticky bit"
    );
    let root = std::fs::metadata(dir.join("root")).unwrap();
    assert_eq!(root.permissions().mode() & 0o7777, 0o700);
    assert!(
        std::fs::read_to_string(dir.join("etc/passwd"))
            .unwrap()
            .contains("user:x:1000:1000")
    );
}

fn assert_tagged(inspected: &Value, fixture: &Fixture) {
    assert_eq!(inspected["Id"], fixture.id(), "Id is the config digest");
    let tags = strings(&inspected["RepoTags"]);
    assert!(
        tags.contains(&fixture.reference()),
        "RepoTags {tags:?} lacks {}",
        fixture.reference()
    );
    let digests = strings(&inspected["RepoDigests"]);
    let want = format!(
        "{}/{}@{}",
        fixture.host, fixture.repo, fixture.manifest_digest
    );
    assert!(
        digests.contains(&want),
        "RepoDigests {digests:?} lacks {want}"
    );
}

fn pull_single(fixture: &Fixture) {
    let rstack = Rstack::new();
    let reference = fixture.reference();
    // Not a terminal: plain lines like docker's, ending with the digest.
    let out = rstack.ok(&["pull", &reference]);
    assert!(
        out.stdout
            .contains(&format!("Digest: {}", fixture.manifest_digest)),
        "pull prints the manifest digest:\n{out}"
    );
    let v = inspect(&rstack, &reference);
    assert_tagged(&v, fixture);
    assert_eq!(strings(&v["Config"]["Cmd"]), ["sh"], "Config.Cmd");
    assert!(
        strings(&v["Config"]["Env"])
            .iter()
            .any(|e| e.starts_with("PATH=")),
        "Config.Env has PATH: {v:#}"
    );
    let lowers = lower_dirs(&v);
    assert_eq!(lowers.len(), 1, "one layer");
    assert_busybox_layer(&lowers[0]);
    // Pulling what is already there succeeds and changes nothing; `-q`
    // prints only the image name.
    let out = rstack.ok(&["pull", "-q", &reference]);
    assert_eq!(
        out.stdout.trim(),
        reference,
        "pull -q prints the name:\n{out}"
    );
    assert_eq!(lower_dirs(&inspect(&rstack, &reference)), lowers);
    rstack.assert_no_leaks();
}

/// The architecture name of this host in OCI terms.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn pull_multiarch(fixture: &Fixture, arch: Option<&str>) {
    let rstack = Rstack::new();
    let reference = fixture.reference();
    let want_arch = arch.unwrap_or(host_arch());
    let mut args = vec!["pull", "-q"];
    let platform = arch.map(|a| format!("linux/{a}"));
    if let Some(p) = &platform {
        args.extend(["--platform", p.as_str()]);
    }
    args.push(&reference);
    if arch.is_none() && !matches!(want_arch, "amd64" | "arm64") {
        // The fixture has no image for this host: the pull must say so.
        rstack.fails(&args);
        return;
    }
    rstack.ok(&args);
    let image = fixture.platform(want_arch);
    let v = inspect(&rstack, &reference);
    assert_eq!(
        v["Id"],
        image.config_digest.as_str(),
        "the {want_arch} image was picked"
    );
    let digests = strings(&v["RepoDigests"]);
    let want = format!(
        "{}/{}@{}",
        fixture.host, fixture.repo, fixture.manifest_digest
    );
    assert!(
        digests.contains(&want),
        "RepoDigests {digests:?} lacks the list digest {want}"
    );
    let lowers = lower_dirs(&v);
    assert_eq!(lowers.len(), image.diff_ids.len());
    let marker = std::fs::read_to_string(lowers[0].join("arch")).expect("top layer has /arch");
    assert_eq!(marker, format!("{want_arch}\n"));
    if want_arch == "amd64" {
        assert_busybox_layer(&lowers[1]);
    }
    rstack.assert_no_leaks();
}

fn images_lists_pulled() {
    let fixtures = Fixtures::shared();
    let rstack = Rstack::new();
    let pulled = [
        &fixtures.busybox_v2s2,
        &fixtures.busybox_oci,
        &fixtures.busybox_zstd,
        &fixtures.layered,
    ];
    for f in pulled {
        rstack.ok(&["pull", "-q", &f.reference()]);
    }
    // The busybox images share their one layer: unpacked once.
    let lower = |f: &Fixture| lower_dirs(&inspect(&rstack, &f.reference()));
    let base = lower(&fixtures.busybox_v2s2);
    assert_eq!(
        lower(&fixtures.busybox_oci),
        base,
        "same diff-id, same layer dir"
    );
    assert_eq!(
        lower(&fixtures.busybox_zstd),
        base,
        "same diff-id (zstd), same layer dir"
    );
    assert_eq!(
        lower(&fixtures.layered).last(),
        base.last(),
        "layered shares the busybox base layer"
    );

    let table = rstack.ok(&["images"]);
    let header = table.stdout.lines().next().unwrap_or_default();
    for column in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(column), "header lacks {column}:\n{table}");
    }
    for f in pulled {
        let repo = format!("{}/{}", f.host, f.repo);
        let short = &f.id()["sha256:".len()..][..12];
        assert!(
            table
                .stdout
                .lines()
                .any(|l| l.contains(&repo) && l.contains(&f.tag) && l.contains(short)),
            "no row for {repo}:{} with id {short}:\n{table}",
            f.tag
        );
    }

    let json = rstack.ok(&["images", "--format", "json"]);
    let rows = json.json_lines();
    assert_eq!(
        rows.len(),
        pulled.len(),
        "one JSON object per image:\n{json}"
    );
    for f in pulled {
        let repo = format!("{}/{}", f.host, f.repo);
        let row = rows
            .iter()
            .find(|r| r["Repository"] == repo.as_str())
            .unwrap_or_else(|| panic!("no JSON row for {repo}:\n{json}"));
        assert_eq!(row["Tag"], f.tag.as_str());
        let id = row["ID"].as_str().expect("ID is a string");
        let hex = &f.id()["sha256:".len()..];
        assert!(
            !id.is_empty() && hex.starts_with(id.trim_start_matches("sha256:")),
            "ID {id} is not {hex}"
        );
        for key in ["CreatedAt", "Size", "Digest"] {
            assert!(row.get(key).is_some(), "JSON row lacks {key}: {row}");
        }
        assert_eq!(
            row["Digest"],
            f.manifest_digest.as_str(),
            "Digest of {repo}"
        );
    }

    let quiet = rstack.ok(&["images", "-q"]);
    let ids: Vec<&str> = quiet
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(!ids.is_empty(), "images -q lists ids:\n{quiet}");
    for id in &ids {
        let id = id.trim().trim_start_matches("sha256:");
        assert!(
            pulled
                .iter()
                .any(|f| f.id()["sha256:".len()..].starts_with(id)),
            "images -q printed an unknown id {id}"
        );
    }
    rstack.assert_no_leaks();
}

fn overlay_view() {
    let fixture = &Fixtures::shared().layered;
    let rstack = Rstack::new();
    rstack.ok(&["pull", "-q", &fixture.reference()]);
    let v = inspect(&rstack, &fixture.reference());
    assert_tagged(&v, fixture);
    let lowers = lower_dirs(&v);
    assert_eq!(lowers.len(), 4, "four layers");
    assert_busybox_layer(&lowers[3]);
    with_overlay(&lowers, |merged| {
        let p = |rel: &str| merged.join(rel);
        let read = |rel: &str| std::fs::read(p(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"));
        // Whiteouts.
        assert!(!p("etc/removed.txt").exists(), "a whited-out file is gone");
        assert!(
            !p("data/gone-dir").exists(),
            "a whited-out directory is gone"
        );
        assert_eq!(
            read("data/readded.txt"),
            b"v3\n",
            "deleted then added again in a higher layer"
        );
        assert_eq!(read("etc/motd"), b"v2\n", "the upper version wins");
        let mut replaced: Vec<String> = std::fs::read_dir(p("opt/replaced"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        replaced.sort();
        assert_eq!(
            replaced,
            ["new.txt"],
            "an opaque dir shows only the new content"
        );
        assert_eq!(read("opt/kept/a.txt"), b"a\n");
        leaks::walk(merged, &mut |path| {
            let name = path.file_name().unwrap().to_string_lossy();
            assert!(
                !name.starts_with(".wh."),
                "whiteout marker visible in the merged view: {}",
                path.display()
            );
        });
        // Special files.
        let file = std::fs::metadata(p("data/file")).unwrap();
        assert_eq!(read("data/file"), layered::FILE_CONTENT);
        assert_eq!(file.mtime() as u64, FIXED_MTIME, "mtime kept");
        let hardlink = std::fs::metadata(p("data/hardlink")).unwrap();
        assert_eq!(hardlink.ino(), file.ino(), "hard link shares the inode");
        assert_eq!(file.nlink(), 2);
        assert_eq!(
            std::fs::read_link(p("data/symlink")).unwrap(),
            Path::new("file")
        );
        assert_eq!(read("data/symlink"), layered::FILE_CONTENT);
        let suid = std::fs::metadata(p("data/suid")).unwrap();
        assert_eq!(
            suid.permissions().mode() & 0o7777,
            0o4755,
            "setuid bit kept"
        );
        let home = std::fs::metadata(p("home/user")).unwrap();
        assert_eq!(
            (home.uid(), home.gid()),
            (1000, 1000),
            "directory owner kept"
        );
        let owned = std::fs::metadata(p("home/user/owned")).unwrap();
        assert_eq!((owned.uid(), owned.gid()), (1000, 1000), "file owner kept");
        assert_eq!(owned.permissions().mode() & 0o7777, 0o600);
        let value = xattr::get(p("data/xattr"), layered::XATTR_NAME).expect("getxattr");
        assert_eq!(value.as_deref(), Some(layered::XATTR_VALUE), "xattr kept");
        assert!(
            std::fs::symlink_metadata(p("data/fifo"))
                .unwrap()
                .file_type()
                .is_fifo(),
            "fifo kept"
        );
        let null = std::fs::symlink_metadata(p("data/null")).unwrap();
        assert!(null.file_type().is_char_device(), "char device kept");
        assert_eq!(
            (
                nix::sys::stat::major(null.rdev()),
                nix::sys::stat::minor(null.rdev())
            ),
            (1, 3),
            "device numbers kept"
        );
        let sh = std::fs::metadata(p("bin/sh")).unwrap();
        assert_eq!(sh.ino(), std::fs::metadata(p("bin/busybox")).unwrap().ino());
    });
    rstack.assert_no_leaks();
}

fn save_rmi_load() {
    let fixture = &Fixtures::shared().layered;
    let rstack = Rstack::new();
    let reference = fixture.reference();
    rstack.ok(&["pull", "-q", &reference]);
    let id = inspect(&rstack, &reference)["Id"].clone();
    assert_eq!(id, fixture.id());
    let archive = rstack.work_dir().join("layered.tar");
    let archive_arg = archive.to_str().unwrap();
    rstack.ok(&["image", "save", "-o", archive_arg, &reference]);
    assert!(
        std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0) > 0,
        "save wrote {archive_arg}"
    );

    rstack.ok(&["rmi", &reference]);
    rstack.fails(&["image", "inspect", &reference]);
    let quiet = rstack.ok(&["images", "-q"]);
    assert!(
        quiet.stdout.trim().is_empty(),
        "no image left after rmi:\n{quiet}"
    );

    rstack.ok(&["image", "load", "-i", archive_arg]);
    let v = inspect(&rstack, &reference);
    assert_eq!(v["Id"], id, "same image id after save, rmi, load");
    assert!(
        strings(&v["RepoTags"]).contains(&reference),
        "the tag comes back: {v:#}"
    );
    assert_eq!(lower_dirs(&v).len(), 4);
    rstack.assert_no_leaks();

    // An offline machine: a store that never saw the registry.
    let other = Rstack::new();
    other.ok(&["image", "load", "-i", archive_arg]);
    let v = inspect(&other, &reference);
    assert_eq!(v["Id"], id, "same image id in a fresh store");
    let lowers = lower_dirs(&v);
    assert_busybox_layer(&lowers[3]);
    assert_eq!(
        std::fs::read(lowers[1].join("data/file")).unwrap(),
        layered::FILE_CONTENT
    );
    other.assert_no_leaks();
}

/// `image load` of archives written by another tool: a `docker save`
/// style docker-archive and an OCI archive, both made by skopeo.
fn load_foreign_archives() {
    let fixture = &Fixtures::shared().layered;
    let rstack = Rstack::new();
    for (transport, name) in [
        ("docker-archive", "e2e/from-docker-archive:v1"),
        ("oci-archive", "e2e/from-oci-archive:v1"),
    ] {
        let archive = rstack.work_dir().join(format!("{transport}.tar"));
        let dest = format!("{transport}:{}:{name}", archive.display());
        let out = Command::new("skopeo")
            .args(["copy", "--quiet", &fixture.layout_source(), &dest])
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy to {dest}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        rstack.ok(&["image", "load", "-i", archive.to_str().unwrap()]);
        let rows = rstack.ok(&["images", "--format", "json"]).json_lines();
        let hex = &fixture.id()["sha256:".len()..];
        assert!(
            rows.iter().any(|r| r["ID"].as_str().is_some_and(
                |id| !id.is_empty() && hex.starts_with(id.trim_start_matches("sha256:"))
            )),
            "{transport}: no image with id {hex} after load: {rows:?}"
        );
        rstack.ok(&["rmi", fixture.id()]);
    }
    rstack.assert_no_leaks();
}

/// Two processes pulling the same image into one store at once both
/// succeed and leave one consistent image.
fn concurrent_pulls() {
    let fixture = &Fixtures::shared().layered;
    let rstack = Rstack::new();
    let reference = fixture.reference();
    let spawn = || {
        let mut cmd = rstack.command(&["pull", "-q", &reference]);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().expect("spawn rstack pull")
    };
    let children = [spawn(), spawn(), spawn()];
    for child in children {
        let out = child.wait_with_output().expect("wait for rstack pull");
        assert!(
            out.status.success(),
            "a concurrent pull failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v = inspect(&rstack, &reference);
    assert_tagged(&v, fixture);
    let lowers = lower_dirs(&v);
    assert_busybox_layer(&lowers[3]);
    assert_eq!(
        std::fs::read(lowers[1].join("data/file")).unwrap(),
        layered::FILE_CONTENT
    );
    let rows = rstack.ok(&["images", "--format", "json"]).json_lines();
    assert_eq!(rows.len(), 1, "one image after concurrent pulls: {rows:?}");
    rstack.assert_no_leaks();
}

/// `kill -9` of a pull at some point (wherever it happens to be), then a
/// new pull: it succeeds and the image is complete and correct.
fn killed_pull() {
    let fixture = &Fixtures::shared().layered;
    let reference = fixture.reference();
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80] {
        let rstack = Rstack::new();
        let mut child = rstack
            .command(&["pull", "-q", &reference])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn rstack pull");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        rstack.ok(&["pull", "-q", &reference]);
        let v = inspect(&rstack, &reference);
        assert_tagged(&v, fixture);
        let lowers = lower_dirs(&v);
        assert_busybox_layer(&lowers[3]);
        assert_eq!(
            std::fs::read(lowers[0].join("data/readded.txt")).unwrap(),
            b"v3\n",
            "killed after {delay_ms} ms: top layer complete"
        );
        assert_eq!(
            std::fs::read(lowers[1].join("data/file")).unwrap(),
            layered::FILE_CONTENT,
            "killed after {delay_ms} ms"
        );
        rstack.assert_no_leaks();
    }
}

/// A tag moved to another image leaves the old one dangling; `image prune`
/// removes it but not the layers the remaining image still uses.
fn prune_dangling() {
    let fixtures = Fixtures::shared();
    let registry = Registry::start().expect("start a registry");
    let rstack = Rstack::new();
    let moving = fixtures
        .busybox_oci
        .push_to(&registry, "e2e/moving:latest")
        .expect("push busybox");
    rstack.ok(&["pull", "-q", &moving.reference()]);
    fixtures
        .layered
        .push_to(&registry, "e2e/moving:latest")
        .expect("push layered over the tag");
    rstack.ok(&["pull", "-q", &moving.reference()]);
    let v = inspect(&rstack, &moving.reference());
    assert_eq!(
        v["Id"],
        fixtures.layered.id(),
        "the tag now names the layered image"
    );

    let rows = rstack.ok(&["images", "--format", "json"]).json_lines();
    assert_eq!(
        rows.len(),
        2,
        "the old image is still there, dangling: {rows:?}"
    );
    rstack.ok(&["image", "prune", "-f"]);
    let rows = rstack.ok(&["images", "--format", "json"]).json_lines();
    assert_eq!(rows.len(), 1, "prune removed the dangling image: {rows:?}");
    let hex = &fixtures.busybox_oci.id()["sha256:".len()..];
    assert!(
        rows.iter().all(|r| r["ID"]
            .as_str()
            .is_some_and(|id| !hex.starts_with(id.trim_start_matches("sha256:")))),
        "the dangling busybox image is gone: {rows:?}"
    );
    let lowers = lower_dirs(&inspect(&rstack, &moving.reference()));
    assert_busybox_layer(&lowers[3]);
    rstack.assert_no_leaks();
}

fn auth_login() {
    let (user, password) = ("e2e-user", "e2e-pass-word");
    let registry = Registry::start_with_auth(user, password).expect("start the auth registry");
    let fixtures = Fixtures::shared();
    let first = fixtures
        .busybox_oci
        .push_to(&registry, "e2e/private:one")
        .expect("push with credentials");
    let second = fixtures
        .busybox_oci
        .push_to(&registry, "e2e/private:two")
        .expect("push with credentials");
    let rstack = Rstack::new();
    let host = registry.host();

    rstack
        .fails(&["pull", "-q", &first.reference()])
        .assert_stderr_mentions(&["401", "unauthorized", "authentication", "credentials"]);
    rstack.fails(&["login", "-u", user, "-p", "wrong-password", &host]);
    rstack.ok(&["login", "-u", user, "-p", password, &host]);
    let stored = leaks::tree(&rstack.config_dir());
    assert!(
        !stored.is_empty(),
        "login stores credentials under RSTACK_CONFIG"
    );
    for rel in &stored {
        let meta = std::fs::metadata(rstack.config_dir().join(rel)).unwrap();
        if meta.is_file() {
            let mode = meta.permissions().mode() & 0o777;
            assert_eq!(
                mode & 0o077,
                0,
                "credentials file {} is readable by others ({mode:o})",
                rel.display()
            );
        }
    }
    rstack.ok(&["pull", "-q", &first.reference()]);
    assert_eq!(
        inspect(&rstack, &first.reference())["Id"],
        fixtures.busybox_oci.id()
    );

    rstack.ok(&["logout", &host]);
    rstack.fails(&["pull", "-q", &second.reference()]);
    let out = rstack.run_with_stdin(
        &["login", "-u", user, "--password-stdin", &host],
        format!("{password}\n").as_bytes(),
    );
    assert!(out.success(), "login --password-stdin:\n{out}");
    rstack.ok(&["pull", "-q", &second.reference()]);
    rstack.assert_no_leaks();
}

/// Credentials rstack never stored itself: Docker's `~/.docker/config.json`
/// and Podman's `~/.config/containers/auth.json` are used for pulls.
fn foreign_auth_files() {
    let (user, password) = ("e2e-user", "e2e-pass-word");
    let registry = Registry::start_with_auth(user, password).expect("start the auth registry");
    let fixture = Fixtures::shared()
        .busybox_oci
        .push_to(&registry, "e2e/private:latest")
        .expect("push with credentials");
    let auth = base64_encode(format!("{user}:{password}").as_bytes());
    let config = format!(
        r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
        registry.host()
    );
    for file in [".docker/config.json", ".config/containers/auth.json"] {
        let rstack = Rstack::new();
        rstack.fails(&["pull", "-q", &fixture.reference()]);
        let path = rstack.home().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &config).unwrap();
        rstack.ok(&["pull", "-q", &fixture.reference()]);
        assert_eq!(
            inspect(&rstack, &fixture.reference())["Id"],
            fixture.id(),
            "pulled with ~/{file}"
        );
        rstack.assert_no_leaks();
    }
}

/// Standard base64 with padding (the `auth` field of Docker's config.json).
fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
