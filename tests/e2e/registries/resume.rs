//! Interrupted pulls resume: a connection dropped mid-blob (by a
//! forwarder in front of the registry, counting what it serves) and a
//! `kill -9` half-way both lead to a pull that transfers only the rest, and
//! to the same image, byte for byte, as a clean pull.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rstack_e2e::layer::{LayerBuilder, Meta};
use rstack_e2e::oci::{Compression, Layer, OciLayout, Platform};
use rstack_e2e::registry::Format;
use rstack_e2e::tcpproxy::TcpProxy;
use rstack_e2e::{Registry, Rstack};
use serde_json::json;

/// Size of the big file of the test image (its gzip blob is a bit larger:
/// the bytes do not compress).
const BIG: usize = 16 << 20;
/// Allowance for what is not the layer blob: manifest, config, HTTP
/// headers, the `/v2/` probes.
const OVERHEAD: u64 = 64 << 10;

/// An image of one gzip layer holding `big.bin` ([`BIG`] noise bytes).
pub(crate) struct BigImage {
    pub(crate) id: String,
    pub(crate) blob_digest: String,
    pub(crate) blob_size: u64,
    pub(crate) data: Vec<u8>,
}

/// Deterministic bytes that gzip cannot shrink (xorshift64).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Builds the big image and pushes it to `registry` as `repo_and_tag`.
pub(crate) fn push_big_image(registry: &Registry, repo_and_tag: &str) -> BigImage {
    let data = noise(BIG);
    let mut tar = LayerBuilder::new();
    tar.file("big.bin", Meta::mode(0o644), &data);
    let layer = Layer::new(&tar.finish(), Compression::Gzip);
    let dir = tempfile::tempdir().expect("layout dir");
    let mut layout = OciLayout::create(dir.path()).expect("create the layout");
    let platform = Platform {
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
    };
    let info = layout
        .add_image(&platform, &[layer], json!({ "Cmd": ["sh"] }))
        .expect("write the image");
    layout.tag(&info.manifest, "big");
    layout.finish().expect("finish the layout");
    let source = format!("oci:{}:big", dir.path().display());
    registry
        .push(&source, repo_and_tag, Format::Preserve, false)
        .expect("push the big image");
    BigImage {
        id: info.config_digest,
        blob_digest: info.layers[0].digest.clone(),
        blob_size: info.layers[0].size,
        data,
    }
}

fn partial_path(r: &Rstack, img: &BigImage) -> PathBuf {
    r.root().join(format!(
        "images/tmp/partial-{}",
        img.blob_digest.trim_start_matches("sha256:")
    ))
}

/// The pulled image is the one pushed: same id, the stored blob has the
/// digest it is named by, the unpacked file has every byte.
fn assert_image_complete(r: &Rstack, reference: &str, img: &BigImage) {
    let v = super::inspect(r, reference);
    assert_eq!(v["Id"], img.id, "image id");
    let blob = r.root().join(format!(
        "blobs/sha256/{}",
        img.blob_digest.trim_start_matches("sha256:")
    ));
    let stored = std::fs::read(&blob).expect("the layer blob is stored");
    assert_eq!(stored.len() as u64, img.blob_size);
    assert_eq!(
        rstack_e2e::digest_of(&stored),
        img.blob_digest,
        "stored blob"
    );
    let upper = v["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .expect("LowerDir")
        .to_owned();
    let file = Path::new(&upper).join("big.bin");
    let unpacked = std::fs::read(&file).expect("big.bin unpacked");
    assert!(unpacked == img.data, "big.bin has the pushed bytes");
    assert!(
        !partial_path(r, img).exists(),
        "the partial blob became the stored blob"
    );
}

/// A clean pull through a forwarder: how many bytes it takes.
fn clean_pull_bytes(registry: &Registry, img: &BigImage) -> u64 {
    let proxy = TcpProxy::start(registry.addr()).expect("start the forwarder");
    let r = Rstack::new();
    r.ok(&["pull", "-q", &format!("{}/e2e/big:v1", proxy.addr())]);
    assert_image_complete(&r, &format!("{}/e2e/big:v1", proxy.addr()), img);
    proxy.served()
}

/// The registry's connection drops mid-blob: the same pull asks for the
/// rest (`Range`) and completes; the blob crossed the link once.
pub(crate) fn dropped_connection() {
    let registry = Registry::start().expect("start a registry");
    let img = push_big_image(&registry, "e2e/big:v1");
    let clean = clean_pull_bytes(&registry, &img);
    assert!(clean >= img.blob_size, "a clean pull transfers the blob");

    let proxy = TcpProxy::start(registry.addr()).expect("start the forwarder");
    let reference = format!("{}/e2e/big:v1", proxy.addr());
    proxy.cut_after(img.blob_size / 3);
    let r = Rstack::new();
    let out = r.ok(&["pull", &reference]);
    assert_eq!(proxy.cuts(), 1, "the connection was cut:\n{out}");
    assert!(
        out.stderr.contains("resuming"),
        "the retry says it resumes:\n{out}"
    );
    assert!(
        out.stdout.contains("Resuming download at"),
        "progress shows the resumed bytes:\n{out}"
    );
    assert!(
        proxy.served() <= clean + OVERHEAD,
        "only the rest was fetched again: {} bytes served, a clean pull takes {clean}",
        proxy.served()
    );
    assert_image_complete(&r, &reference, &img);
    r.assert_no_leaks();
}

/// `kill -9` after a third of the blob: the partial blob stays, and the
/// next pull transfers only what is missing.
pub(crate) fn killed_pull_resumes() {
    let registry = Registry::start().expect("start a registry");
    let img = push_big_image(&registry, "e2e/big:v1");
    let clean = clean_pull_bytes(&registry, &img);

    let proxy = TcpProxy::start(registry.addr()).expect("start the forwarder");
    let reference = format!("{}/e2e/big:v1", proxy.addr());
    proxy.set_rate(4 << 20);
    let r = Rstack::new();
    let mut child = r
        .command(&["pull", "-q", &reference])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn rstack pull");
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.served() < img.blob_size / 3 {
        assert!(Instant::now() < deadline, "the pull does not progress");
        assert!(
            child.try_wait().expect("poll the pull").is_none(),
            "the pull ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("kill -9 the pull");
    child.wait().expect("reap the pull");
    let kept = std::fs::metadata(partial_path(&r, &img))
        .expect("the partial blob is kept")
        .len();
    assert!(kept > 0 && kept < img.blob_size, "kept {kept} bytes");

    proxy.set_rate(0);
    let before = proxy.served();
    let out = r.ok(&["pull", &reference]);
    let second = proxy.served() - before;
    assert!(
        out.stdout
            .contains(&format!("Resuming download at {kept} of {}", img.blob_size)),
        "the pull resumes where the killed one stopped:\n{out}"
    );
    assert!(
        second + kept <= clean + OVERHEAD && second < clean - kept / 2,
        "the second pull took {second} bytes; {kept} were kept, a clean pull takes {clean}"
    );
    assert_image_complete(&r, &reference, &img);
    r.assert_no_leaks();
}
