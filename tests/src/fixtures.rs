//! Fixture images, built here from distro files and pushed with skopeo.
//!
//! All fixtures are written into one OCI layout (shared blobs, one
//! `index.json` ref per fixture) in `$TMPDIR/rstack-e2e-fixtures-<key>`,
//! where `<key>` hashes `/bin/busybox` (busybox-static) and
//! [`FIXTURE_VERSION`]: a run reuses the layout of an earlier run with the
//! same content, and a change of either rebuilds it. [`Fixtures::shared`]
//! pushes them once per run to [`Registry::shared`].
//!
//! The images (repository `e2e/<name>`, tag `latest` unless said):
//!
//! | field | what |
//! |---|---|
//! | `busybox_v2s2` | Docker v2 schema 2 manifest, gzip layer: `/bin/busybox` plus a hard link per applet in `/bin`, `/etc/passwd` (root, nobody, user 1000), `/tmp` 1777; `Cmd ["sh"]` |
//! | `busybox_oci` | the same layer and config under an OCI manifest |
//! | `busybox_zstd` | the same tar, zstd-compressed (`tar+zstd`), OCI manifest |
//! | `busybox_plain` | the same tar uncompressed (`.tar` media type), OCI manifest |
//! | `multiarch_list` | Docker manifest list: linux/amd64 (busybox + a layer with `/arch` = `amd64\n`) and linux/arm64 (only a layer with `/arch` = `arm64\n`, arm64 config) |
//! | `multiarch_index` | the same two images under an OCI image index |
//! | `layered` | OCI, gzip, 4 layers, see [`layered`] |
//! | `hostile` | one image per attack, see [`hostile`] |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::layer::{LayerBuilder, Meta};
use crate::oci::{Compression, ImageInfo, Layer, MEDIA_OCI_INDEX, OciLayout, Platform};
use crate::registry::{self, Format, Registry};

/// Bump when the fixture definitions change, so cached layouts rebuild.
pub const FIXTURE_VERSION: &str = "rstack-e2e-fixtures-4";

/// Where the busybox-static package puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The `PATH` in every fixture config.
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path} (install busybox-static)")]
    Busybox {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot list the applets of {path}")]
    Applets {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the fixture layout in {path}")]
    Layout {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Oci(#[from] crate::oci::Error),
    #[error("cannot push fixture {name}")]
    Push {
        name: String,
        source: registry::Error,
    },
}

/// One image (or image list) in a registry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fixture {
    /// Repository in the registry, e.g. `e2e/busybox`.
    pub repo: String,
    pub tag: String,
    /// `127.0.0.1:PORT` of the registry it was pushed to (empty until pushed).
    pub host: String,
    /// Digest of the manifest (or list / index) as the registry stores it.
    pub manifest_digest: String,
    /// The image for linux/amd64 (or the only image). `manifest` is the OCI
    /// manifest in the layout; for v2s2 fixtures the registry holds its
    /// Docker conversion (same config and layer blobs).
    pub image: ImageInfo,
    /// Every image of a list / index (just `image` for single images).
    pub platforms: Vec<ImageInfo>,
    layout_tag: String,
    #[serde(skip)]
    layout: PathBuf,
    format: FixtureFormat,
    all: bool,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum FixtureFormat {
    Preserve,
    DockerV2s2,
}

impl Fixture {
    /// `HOST/REPO:TAG`, what a user types after `rstack pull`.
    pub fn reference(&self) -> String {
        format!("{}/{}:{}", self.host, self.repo, self.tag)
    }

    /// The fixture in its cached OCI layout as a containers-transports
    /// name (`oci:DIR:TAG`), for `skopeo copy` to other formats
    /// (`docker-archive:`, `oci-archive:`).
    pub fn layout_source(&self) -> String {
        format!("oci:{}:{}", self.layout.display(), self.layout_tag)
    }

    /// `HOST/REPO@sha256:...` of what the registry stores.
    pub fn digest_reference(&self) -> String {
        format!("{}/{}@{}", self.host, self.repo, self.manifest_digest)
    }

    /// The image ID (`sha256:` + config digest) of the linux/amd64 image.
    pub fn id(&self) -> &str {
        &self.image.config_digest
    }

    /// The image for `architecture` (e.g. `arm64`) of a multi-arch fixture.
    pub fn platform(&self, architecture: &str) -> &ImageInfo {
        self.platforms
            .iter()
            .find(|i| {
                i.manifest
                    .platform
                    .as_ref()
                    .is_some_and(|p| p.architecture == architecture)
            })
            .unwrap_or_else(|| panic!("fixture {} has no {architecture} image", self.repo))
    }

    /// Pushes this fixture (from the cached layout) to another registry
    /// (e.g. one with auth) as `repo_and_tag`; returns a copy describing it there.
    pub fn push_to(&self, registry: &Registry, repo_and_tag: &str) -> Result<Fixture, Error> {
        let mut copy = self.clone();
        let (repo, tag) = repo_and_tag
            .rsplit_once(':')
            .unwrap_or((repo_and_tag, "latest"));
        copy.repo = repo.to_owned();
        copy.tag = tag.to_owned();
        copy.push(registry)?;
        Ok(copy)
    }

    fn push(&mut self, registry: &Registry) -> Result<(), Error> {
        let source = self.layout_source();
        let format = match self.format {
            FixtureFormat::Preserve => Format::Preserve,
            FixtureFormat::DockerV2s2 => Format::DockerV2s2,
        };
        self.manifest_digest = registry
            .push(
                &source,
                &format!("{}:{}", self.repo, self.tag),
                format,
                self.all,
            )
            .map_err(|source| Error::Push {
                name: self.repo.clone(),
                source,
            })?;
        self.host = registry.host();
        Ok(())
    }
}

/// Every fixture, pushed to one registry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fixtures {
    pub busybox_v2s2: Fixture,
    pub busybox_oci: Fixture,
    pub busybox_zstd: Fixture,
    pub busybox_plain: Fixture,
    pub multiarch_list: Fixture,
    pub multiarch_index: Fixture,
    pub layered: Fixture,
    /// One image per attack, see [`hostile`].
    pub hostile: Vec<Fixture>,
    /// The OCI layout holding all of them.
    pub layout: PathBuf,
}

impl Fixtures {
    /// The fixtures of this run, built (or taken from the cache) and pushed
    /// to [`Registry::shared`] by the first caller. Panics with the reason
    /// if that fails; declare [`crate::Need::Registry`] in trials using it.
    pub fn shared() -> &'static Fixtures {
        static SHARED: OnceLock<Result<Fixtures, String>> = OnceLock::new();
        let result = SHARED.get_or_init(|| {
            let registry = Registry::shared();
            Fixtures::build_cached(&std::env::temp_dir())
                .and_then(|mut f| f.push_all(registry).map(|()| f))
                .map_err(|e| registry::error_chain(&e))
        });
        match result {
            Ok(f) => f,
            Err(message) => panic!("cannot build or push the fixture images: {message}"),
        }
    }

    /// Builds the fixture layout under `cache_root`, or reuses one built
    /// there earlier from the same content. Not pushed anywhere yet.
    pub fn build_cached(cache_root: &Path) -> Result<Fixtures, Error> {
        let busybox = std::fs::read(BUSYBOX).map_err(|source| Error::Busybox {
            path: BUSYBOX.into(),
            source,
        })?;
        let key = crate::sha256_hex(&[FIXTURE_VERSION.as_bytes(), b"\0", &busybox].concat());
        let dir = cache_root.join(format!("rstack-e2e-fixtures-{}", &key[..16]));
        let meta_path = dir.join("fixtures.json");
        if let Ok(data) = std::fs::read(&meta_path)
            && let Ok(mut fixtures) = serde_json::from_slice::<Fixtures>(&data)
        {
            fixtures.set_layout(&dir.join("layout"));
            return Ok(fixtures);
        }
        let staging = cache_root.join(format!(
            "rstack-e2e-fixtures-{}.tmp-{}",
            &key[..16],
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&staging);
        let layout_err = |source| Error::Layout {
            path: staging.clone(),
            source,
        };
        let mut fixtures = build(&busybox, &staging.join("layout"))?;
        fixtures.set_layout(&dir.join("layout"));
        std::fs::write(
            staging.join("fixtures.json"),
            serde_json::to_vec_pretty(&fixtures).expect("json"),
        )
        .map_err(layout_err)?;
        match std::fs::rename(&staging, &dir) {
            Ok(()) => Ok(fixtures),
            Err(_) if meta_path.exists() => {
                // Another test process finished the same layout first; it
                // has the same content.
                let _ = std::fs::remove_dir_all(&staging);
                Ok(fixtures)
            }
            Err(source) => Err(Error::Layout { path: dir, source }),
        }
    }

    fn set_layout(&mut self, layout: &Path) {
        self.layout = layout.to_owned();
        self.all_mut()
            .into_iter()
            .for_each(|f| f.layout = layout.to_owned());
    }

    fn all_mut(&mut self) -> Vec<&mut Fixture> {
        let mut all: Vec<&mut Fixture> = vec![
            &mut self.busybox_v2s2,
            &mut self.busybox_oci,
            &mut self.busybox_zstd,
            &mut self.busybox_plain,
            &mut self.multiarch_list,
            &mut self.multiarch_index,
            &mut self.layered,
        ];
        all.extend(self.hostile.iter_mut());
        all
    }

    /// Pushes every fixture to `registry` (skopeo, several at once).
    pub fn push_all(&mut self, registry: &Registry) -> Result<(), Error> {
        let mut all = self.all_mut();
        // Two skopeo processes at a time: enough to overlap their start-up
        // without starving the other tests of CPU.
        let chunk = all.len().div_ceil(2);
        std::thread::scope(|s| {
            let handles: Vec<_> = all
                .chunks_mut(chunk)
                .map(|group| s.spawn(move || group.iter_mut().try_for_each(|f| f.push(registry))))
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().expect("push thread panicked"))
        })
    }
}

fn fixture(
    repo: &str,
    layout_tag: &str,
    image: ImageInfo,
    platforms: Vec<ImageInfo>,
    format: FixtureFormat,
) -> Fixture {
    // A list / index: push every image of it.
    let all = !platforms.is_empty();
    Fixture {
        repo: format!("e2e/{repo}"),
        tag: "latest".to_owned(),
        host: String::new(),
        manifest_digest: String::new(),
        platforms: if platforms.is_empty() {
            vec![image.clone()]
        } else {
            platforms
        },
        image,
        layout_tag: layout_tag.to_owned(),
        layout: PathBuf::new(),
        all,
        format,
    }
}

fn linux(arch: &str) -> Platform {
    Platform {
        os: "linux".to_owned(),
        architecture: arch.to_owned(),
        variant: (arch == "arm64").then(|| "v8".to_owned()),
    }
}

fn build(busybox: &[u8], layout_dir: &Path) -> Result<Fixtures, Error> {
    let mut layout = OciLayout::create(layout_dir)?;
    let base_tar = busybox_layer(busybox)?;
    let config = json!({ "Env": [PATH_ENV], "Cmd": ["sh"] });
    let amd64 = linux("amd64");

    let single = add_single_images(&mut layout, &amd64, &base_tar, &config)?;
    let (amd64_image, multi) = add_multiarch(&mut layout, &amd64, &base_tar, &config)?;

    let layered_layers: Vec<Layer> = layered::layers(&base_tar)
        .iter()
        .map(|t| Layer::new(t, Compression::Gzip))
        .collect();
    let layered_image = layout.add_image(&amd64, &layered_layers, config.clone())?;
    layout.tag(&layered_image.manifest, "layered");

    let hostile_fixtures = add_hostile(&mut layout, &amd64, &config)?;
    layout.finish()?;

    Ok(Fixtures {
        busybox_v2s2: fixture(
            "busybox",
            "busybox",
            single["busybox"].clone(),
            vec![],
            FixtureFormat::DockerV2s2,
        ),
        busybox_oci: fixture(
            "busybox-oci",
            "busybox",
            single["busybox"].clone(),
            vec![],
            FixtureFormat::Preserve,
        ),
        busybox_zstd: fixture(
            "busybox-zstd",
            "busybox-zstd",
            single["busybox-zstd"].clone(),
            vec![],
            FixtureFormat::Preserve,
        ),
        busybox_plain: fixture(
            "busybox-plain",
            "busybox-plain",
            single["busybox-plain"].clone(),
            vec![],
            FixtureFormat::Preserve,
        ),
        multiarch_list: fixture(
            "multiarch-list",
            "multiarch-list",
            amd64_image.clone(),
            multi.clone(),
            FixtureFormat::DockerV2s2,
        ),
        multiarch_index: fixture(
            "multiarch-index",
            "multiarch-index",
            amd64_image,
            multi,
            FixtureFormat::Preserve,
        ),
        layered: fixture(
            "layered",
            "layered",
            layered_image,
            vec![],
            FixtureFormat::Preserve,
        ),
        hostile: hostile_fixtures,
        layout: layout_dir.to_owned(),
    })
}

/// The single-platform busybox images, one per layer compression, by tag.
fn add_single_images(
    layout: &mut OciLayout,
    amd64: &Platform,
    base_tar: &[u8],
    config: &serde_json::Value,
) -> Result<BTreeMap<&'static str, ImageInfo>, Error> {
    let mut single = BTreeMap::new();
    for (tag, compression) in [
        ("busybox", Compression::Gzip),
        ("busybox-zstd", Compression::Zstd),
        ("busybox-plain", Compression::None),
    ] {
        let info = layout.add_image(amd64, &[Layer::new(base_tar, compression)], config.clone())?;
        layout.tag(&info.manifest, tag);
        single.insert(tag, info);
    }
    Ok(single)
}

/// The amd64 + arm64 images and the index over them: the amd64 image and both.
fn add_multiarch(
    layout: &mut OciLayout,
    amd64: &Platform,
    base_tar: &[u8],
    config: &serde_json::Value,
) -> Result<(ImageInfo, Vec<ImageInfo>), Error> {
    let base_gz = Layer::new(base_tar, Compression::Gzip);
    let arch_layer = |arch: &str| {
        let mut b = LayerBuilder::new();
        b.file("arch", Meta::mode(0o644), format!("{arch}\n").as_bytes());
        Layer::new(&b.finish(), Compression::Gzip)
    };
    let amd64_image = layout.add_image(
        amd64,
        &[base_gz.clone(), arch_layer("amd64")],
        config.clone(),
    )?;
    let arm64_image = layout.add_image(&linux("arm64"), &[arch_layer("arm64")], config.clone())?;
    let multi = vec![amd64_image.clone(), arm64_image.clone()];
    // Both lists start as an OCI index; skopeo `--format v2s2 --all` writes
    // the Docker manifest list form of it.
    let index = layout.add_index(
        MEDIA_OCI_INDEX,
        &[amd64_image.manifest.clone(), arm64_image.manifest.clone()],
    )?;
    layout.tag(&index, "multiarch-list");
    layout.tag(&index, "multiarch-index");
    Ok((amd64_image, multi))
}

/// The hostile images, one per hostile layer, as fixtures.
fn add_hostile(
    layout: &mut OciLayout,
    amd64: &Platform,
    config: &serde_json::Value,
) -> Result<Vec<Fixture>, Error> {
    let mut hostile_fixtures = Vec::new();
    for (name, tar) in hostile::layers() {
        let info = layout.add_image(
            amd64,
            &[Layer::new(&tar, Compression::Gzip)],
            config.clone(),
        )?;
        let tag = format!("hostile-{name}");
        layout.tag(&info.manifest, &tag);
        hostile_fixtures.push(fixture(&tag, &tag, info, vec![], FixtureFormat::Preserve));
    }
    Ok(hostile_fixtures)
}

/// The busybox base layer: `/bin/busybox`, one hard link to it per applet
/// in `/bin` (like Docker Hub's busybox image), the usual top-level dirs,
/// `/etc/passwd` and `/etc/group` with root, nobody and user (1000).
pub fn busybox_layer(busybox: &[u8]) -> Result<Vec<u8>, Error> {
    let out = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .map_err(|source| Error::Applets {
            path: BUSYBOX.into(),
            source,
        })?;
    let list = String::from_utf8_lossy(&out.stdout);
    let mut applets: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .collect();
    applets.sort_unstable();
    applets.dedup();

    let mut b = LayerBuilder::new();
    for dir in [
        "bin", "dev", "etc", "home", "proc", "sys", "usr", "usr/bin", "var",
    ] {
        b.dir(dir, Meta::mode(0o755));
    }
    b.dir("root", Meta::mode(0o700))
        .dir("tmp", Meta::mode(0o1777));
    b.file("bin/busybox", Meta::mode(0o755), busybox);
    for applet in applets {
        b.hardlink(&format!("bin/{applet}"), "bin/busybox");
    }
    b.file(
        "etc/passwd",
        Meta::mode(0o644),
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    );
    b.file(
        "etc/group",
        Meta::mode(0o644),
        b"root:x:0:\nnogroup:x:65534:\nuser:x:1000:\n",
    );
    Ok(b.finish())
}

/// The `layered` fixture: four gzip layers whose merged view checks
/// whiteouts and special files.
///
/// 1. the busybox base layer;
/// 2. files: `etc/removed.txt`, `etc/motd` (`v1`), `opt/replaced/old1.txt`,
///    `opt/replaced/sub/old2.txt`, `opt/kept/a.txt`, `data/gone-dir/x.txt`,
///    `data/readded.txt` (`v1`);
/// 3. changes: whiteouts of `etc/removed.txt`, `data/gone-dir` (a whole
///    directory) and `data/readded.txt`; `etc/motd` = `v2`; `opt/replaced`
///    made opaque with only `new.txt`; and special files: `data/file`
///    (`hello\n`) with hard link `data/hardlink`, symlink `data/symlink` ->
///    `file`, setuid `data/suid` (04755), `home/user` (dir, 1000:1000) with
///    `home/user/owned` (1000:1000, 0600), `data/xattr` with `user.rstack` =
///    `e2e`, fifo `data/fifo`, char device `data/null` (1:3);
/// 4. `data/readded.txt` again (`v3`).
pub mod layered {
    use super::*;

    /// Content of `data/file` (and its hard link).
    pub const FILE_CONTENT: &[u8] = b"hello\n";
    pub const XATTR_NAME: &str = "user.rstack";
    pub const XATTR_VALUE: &[u8] = b"e2e";

    pub fn layers(base: &[u8]) -> Vec<Vec<u8>> {
        let d = || Meta::mode(0o755);
        let f = || Meta::mode(0o644);
        let mut files = LayerBuilder::new();
        files
            .dir("etc", d())
            .file("etc/removed.txt", f(), b"removed\n")
            .file("etc/motd", f(), b"v1\n")
            .dir("opt", d())
            .dir("opt/replaced", d())
            .file("opt/replaced/old1.txt", f(), b"old1\n")
            .dir("opt/replaced/sub", d())
            .file("opt/replaced/sub/old2.txt", f(), b"old2\n")
            .dir("opt/kept", d())
            .file("opt/kept/a.txt", f(), b"a\n")
            .dir("data", d())
            .dir("data/gone-dir", d())
            .file("data/gone-dir/x.txt", f(), b"x\n")
            .file("data/readded.txt", f(), b"v1\n");

        let mut changes = LayerBuilder::new();
        changes
            .dir("etc", d())
            .whiteout("etc/removed.txt")
            .file("etc/motd", f(), b"v2\n")
            .dir("opt", d())
            .dir("opt/replaced", d())
            .opaque("opt/replaced")
            .file("opt/replaced/new.txt", f(), b"new\n")
            .dir("data", d())
            .whiteout("data/gone-dir")
            .whiteout("data/readded.txt")
            .file("data/file", f(), FILE_CONTENT)
            .hardlink("data/hardlink", "data/file")
            .symlink("data/symlink", "file")
            .file("data/suid", Meta::mode(0o4755), b"#!/bin/sh\n")
            .dir("home", d())
            .dir("home/user", d().owner(1000, 1000))
            .file(
                "home/user/owned",
                Meta::mode(0o600).owner(1000, 1000),
                b"mine\n",
            )
            .file("data/xattr", f().xattr(XATTR_NAME, XATTR_VALUE), b"x\n")
            .fifo("data/fifo", f())
            .char_device("data/null", Meta::mode(0o666), 1, 3);

        let mut readd = LayerBuilder::new();
        readd
            .dir("data", d())
            .file("data/readded.txt", f(), b"v3\n");

        vec![
            base.to_vec(),
            files.finish(),
            changes.finish(),
            readd.finish(),
        ]
    }
}

/// Hostile fixtures: single-layer images whose tar tries to write outside
/// the layer dir. Each is `e2e/hostile-<name>:latest`; the paths they aim at
/// are under `/tmp` with fixed names ([`ESCAPE_DOTDOT`], ...), so a test can
/// check that nothing appeared there (create [`ESCAPE_DIR`] and
/// [`ESCAPE_TARGET`] before pulling, they are the targets).
///
/// - `dotdot`: `ok.txt`, `../escape-dotdot`, and `../`×12 + `tmp/rstack-e2e-escape-dotdot`;
/// - `absolute`: `/tmp/rstack-e2e-escape-abs`;
/// - `symlink`: `link` -> [`ESCAPE_DIR`] then `link/pwned`, and a relative
///   `rel` -> `../`×12 + `tmp/rstack-e2e-escape-dir` then `rel/pwned-rel`;
/// - `hardlink`: `hl` hard-linked to [`ESCAPE_TARGET`] (absolute), `hl2`
///   to `../`×12 + the same, then a regular file `hl` (`pwned`) that would
///   write through the link.
pub mod hostile {
    use tar::EntryType;

    use super::*;

    pub const ESCAPE_DOTDOT: &str = "/tmp/rstack-e2e-escape-dotdot";
    pub const ESCAPE_ABS: &str = "/tmp/rstack-e2e-escape-abs";
    /// A directory the `symlink` fixture writes through links into.
    pub const ESCAPE_DIR: &str = "/tmp/rstack-e2e-escape-dir";
    /// A file the `hardlink` fixture links to and overwrites.
    pub const ESCAPE_TARGET: &str = "/tmp/rstack-e2e-escape-target";
    /// File names that must only ever appear inside a layer dir.
    pub const MARKERS: &[&str] = &[
        "escape-dotdot",
        "rstack-e2e-escape-dotdot",
        "rstack-e2e-escape-abs",
        "pwned",
        "pwned-rel",
    ];

    fn up() -> String {
        "../".repeat(12)
    }

    pub fn layers() -> Vec<(&'static str, Vec<u8>)> {
        let up = up();
        let mut dotdot = LayerBuilder::new();
        dotdot
            .file("ok.txt", Meta::mode(0o644), b"ok\n")
            .raw("../escape-dotdot", EntryType::Regular, None, b"escaped\n")
            .raw(
                &format!("{up}tmp/rstack-e2e-escape-dotdot"),
                EntryType::Regular,
                None,
                b"escaped\n",
            );

        let mut absolute = LayerBuilder::new();
        absolute.file("ok.txt", Meta::mode(0o644), b"ok\n").raw(
            ESCAPE_ABS,
            EntryType::Regular,
            None,
            b"escaped\n",
        );

        let mut symlink = LayerBuilder::new();
        symlink
            .file("ok.txt", Meta::mode(0o644), b"ok\n")
            .symlink("link", ESCAPE_DIR)
            .raw("link/pwned", EntryType::Regular, None, b"escaped\n")
            .symlink("rel", &format!("{up}tmp/rstack-e2e-escape-dir"))
            .raw("rel/pwned-rel", EntryType::Regular, None, b"escaped\n");

        let mut hardlink = LayerBuilder::new();
        hardlink
            .file("ok.txt", Meta::mode(0o644), b"ok\n")
            .raw("hl", EntryType::Link, Some(ESCAPE_TARGET), b"")
            .raw(
                "hl2",
                EntryType::Link,
                Some(&format!("{up}tmp/rstack-e2e-escape-target")),
                b"",
            )
            .raw("hl", EntryType::Regular, None, b"pwned\n");

        vec![
            ("dotdot", dotdot.finish()),
            ("absolute", absolute.finish()),
            ("symlink", symlink.finish()),
            ("hardlink", hardlink.finish()),
        ]
    }
}
