//! Pull benchmark: how fast `rstack pull` gets a large image from a
//! loopback registry onto disk, next to how fast gzip alone can inflate
//! the same layers. Prints figures; asserts nothing.
//!
//! ```text
//! cargo build -p rstack --release
//! cargo run -p rstack-e2e --release --bin bench -- pull [--runs 3] [--source DIR] [--rstack PATH]
//! ```
//!
//! The image is a Debian bookworm tree (`debootstrap --variant=minbase`
//! plus a few packages, cached in `/var/tmp/rstack-bench/rootfs`; needs
//! root and the Debian mirror), or any `--source DIR` (e.g. `/usr`, capped
//! at `--max-mb`), split into 8 gzip layers of about equal size, written as
//! an OCI layout (cached by content), pushed with skopeo to a local
//! `docker-registry`, then pulled `--runs` times into fresh roots under
//! `$TMPDIR` (set `TMPDIR=/dev/shm` to take the disk out of the figures),
//! followed by GNU tar extracting the same layers on the same filesystem.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rstack_e2e::oci::{Compression, Layer, OciLayout, Platform};
use rstack_e2e::{Registry, Rstack};
use serde_json::json;
use tar::{EntryType, Header, HeaderMode};

const BENCH_DIR: &str = "/var/tmp/rstack-bench";
const LAYERS: usize = 8;
const DEBIAN_PACKAGES: &str = "python3,perl,git,curl,ca-certificates,openssl,iproute2,procps,less,vim-tiny,xz-utils,bzip2,libsqlite3-0,vim,gnupg,locales,wget,rsync,file";

struct Options {
    runs: usize,
    source: Option<PathBuf>,
    max_bytes: u64,
    rstack: Option<PathBuf>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("pull") => {}
        _ => {
            eprintln!(
                "usage: bench pull [--runs N] [--source DIR] [--max-mb MB] [--rstack PATH]\n\
                 (cargo run -p rstack-e2e --release --bin bench -- pull)"
            );
            std::process::exit(2);
        }
    }
    let mut opts = Options {
        runs: 3,
        source: None,
        max_bytes: 390 << 20,
        rstack: None,
    };
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--runs" => {
                opts.runs = value()
                    .parse()
                    .unwrap_or_else(|_| die("--runs takes a number"))
            }
            "--source" => opts.source = Some(PathBuf::from(value())),
            "--max-mb" => {
                opts.max_bytes = value()
                    .parse::<u64>()
                    .unwrap_or_else(|_| die("--max-mb takes a number"))
                    << 20
            }
            "--rstack" => opts.rstack = Some(PathBuf::from(value())),
            other => die(&format!("unknown argument {other}")),
        }
    }
    if let Some(bin) = &opts.rstack {
        // SAFETY: single-threaded at this point; nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var("RSTACK_BIN", bin) };
    }
    if let Err(e) = run(&opts) {
        die(&e);
    }
}

fn die(message: &str) -> ! {
    eprintln!("bench: {message}");
    std::process::exit(1);
}

fn run(opts: &Options) -> Result<(), String> {
    let (tree, max_bytes) = match &opts.source {
        Some(dir) => (dir.clone(), opts.max_bytes),
        None => (debian_rootfs()?, u64::MAX),
    };
    let files = collect(&tree, max_bytes)?;
    let unpacked: u64 = files.iter().map(|f| f.size).sum();
    let key = rstack_e2e::sha256_hex(
        format!(
            "bench-v1 {} {:?}",
            tree.display(),
            files
                .iter()
                .map(|f| (&f.rel, f.size, f.mtime))
                .collect::<Vec<_>>()
        )
        .as_bytes(),
    );
    let layout = Path::new(BENCH_DIR).join(format!("layout-{}", &key[..16]));
    let blobs = build_layout(&tree, &files, &layout)?;
    let packed: u64 = blobs.iter().map(|b| b.len() as u64).sum();
    println!(
        "image: {} entries, {} layers, {:.1} MB unpacked (file data), {:.1} MB gzip; tree {}",
        files.len(),
        blobs.len(),
        mb(unpacked),
        mb(packed),
        tree.display()
    );

    decompression(&blobs);

    let rstack_bin = rstack_e2e::rstack::rstack_bin()?;
    println!("rstack: {}", rstack_bin.display());
    let registry = Registry::start().map_err(|e| format!("cannot start the registry: {e}"))?;
    let t = Instant::now();
    let source = format!("oci:{}:bench", layout.display());
    registry
        .push(
            &source,
            "bench/debian:latest",
            rstack_e2e::registry::Format::Preserve,
            false,
        )
        .map_err(|e| format!("skopeo push failed: {e}"))?;
    println!("push (skopeo): {:.2} s", t.elapsed().as_secs_f64());
    let reference = registry.reference("bench/debian:latest");

    let mut times = Vec::new();
    for i in 1..=opts.runs {
        let rstack = Rstack::new().with_timeout(Duration::from_secs(600));
        // Start each run with no dirty data of earlier runs (or of the
        // previous sandbox's removal) waiting to be written back.
        nix::unistd::sync();
        let t = Instant::now();
        let out = rstack.run(&["pull", "-q", &reference]);
        let elapsed = t.elapsed();
        if !out.success() {
            return Err(format!("rstack pull failed:\n{out}"));
        }
        // What the pull left for the kernel to write back (not counted).
        let t_sync = Instant::now();
        nix::unistd::sync();
        let writeback = t_sync.elapsed();
        let stored = du(&rstack.root());
        println!(
            "pull #{i}: {:.2} s  ({:.0} MB/s gzip in, {:.0} MB/s unpacked out; store {:.1} MB; sync after: {:.2} s)",
            elapsed.as_secs_f64(),
            mb(packed) / elapsed.as_secs_f64(),
            mb(unpacked) / elapsed.as_secs_f64(),
            mb(stored),
            writeback.as_secs_f64()
        );
        times.push(elapsed);
    }
    times.sort();
    let median = times[times.len() / 2].as_secs_f64();
    println!(
        "pull+unpack median of {}: {median:.2} s = {:.0} MB/s gzip, {:.0} MB/s unpacked",
        times.len(),
        mb(packed) / median,
        mb(unpacked) / median
    );
    gnu_tar_baseline(&layout, &blobs);
    Ok(())
}

/// GNU `tar -xzf` of the same layers, one after the other, into a dir on
/// the same filesystem as the pulls (`$TMPDIR`): what a plain extraction
/// costs there, from files already on disk.
fn gnu_tar_baseline(layout: &Path, blobs: &[Vec<u8>]) {
    let Ok(dir) = tempfile::Builder::new()
        .prefix("rstack-bench-tar-")
        .tempdir()
    else {
        return;
    };
    let fs = Command::new("findmnt")
        .args(["-no", "FSTYPE,TARGET", "-T"])
        .arg(dir.path())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    nix::unistd::sync();
    let t = Instant::now();
    for blob in blobs {
        let path = layout
            .join("blobs/sha256")
            .join(rstack_e2e::sha256_hex(blob));
        let ok = Command::new("tar")
            .args(["-xzf"])
            .arg(&path)
            .args(["--numeric-owner", "-C"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            println!("GNU tar baseline: tar -xzf {} failed", path.display());
            return;
        }
    }
    println!(
        "GNU tar -xzf of the same layers (sequential, blobs on disk) into {fs}: {:.2} s",
        t.elapsed().as_secs_f64()
    );
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// The cached debootstrap tree, made on first use.
fn debian_rootfs() -> Result<PathBuf, String> {
    let dir = Path::new(BENCH_DIR);
    let rootfs = dir.join("rootfs");
    let done = dir.join("rootfs.done");
    if done.exists() {
        return Ok(rootfs);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("create {BENCH_DIR}: {e}"))?;
    let staging = dir.join("rootfs.tmp");
    let _ = std::fs::remove_dir_all(&staging);
    println!(
        "debootstrap bookworm into {} (once; a few minutes)...",
        staging.display()
    );
    let status = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={DEBIAN_PACKAGES}"),
            "bookworm",
        ])
        .arg(&staging)
        .arg("http://deb.debian.org/debian")
        .status()
        .map_err(|e| {
            format!(
                "cannot run debootstrap (apt-get install debootstrap): {e}; or use --source /usr"
            )
        })?;
    if !status.success() {
        return Err(format!(
            "debootstrap failed ({status}); or use --source /usr"
        ));
    }
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::rename(&staging, &rootfs).map_err(|e| format!("rename {}: {e}", staging.display()))?;
    std::fs::write(&done, b"").map_err(|e| format!("write {}: {e}", done.display()))?;
    Ok(rootfs)
}

struct FileEntry {
    rel: PathBuf,
    size: u64,
    mtime: i64,
}

/// Every entry of `tree` in a stable order (dirs before their content),
/// without the contents of `dev`, `proc`, `sys` and apt's caches, up to
/// `max_bytes` of file data.
fn collect(tree: &Path, max_bytes: u64) -> Result<Vec<FileEntry>, String> {
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![PathBuf::new()];
    let skipped = ["dev", "proc", "sys", "var/cache/apt", "var/lib/apt/lists"];
    while let Some(rel) = stack.pop() {
        if !rel.as_os_str().is_empty() {
            if skipped
                .iter()
                .any(|p| rel.starts_with(p) && rel != Path::new(p))
            {
                continue;
            }
            let meta = std::fs::symlink_metadata(tree.join(&rel))
                .map_err(|e| format!("stat {}: {e}", rel.display()))?;
            let size = if meta.is_file() { meta.len() } else { 0 };
            if total + size > max_bytes {
                break;
            }
            total += size;
            out.push(FileEntry {
                rel: rel.clone(),
                size,
                mtime: meta.mtime(),
            });
            if !meta.is_dir() {
                continue;
            }
        }
        let mut children: Vec<PathBuf> = std::fs::read_dir(tree.join(&rel))
            .map_err(|e| format!("read {}: {e}", tree.join(&rel).display()))?
            .filter_map(Result::ok)
            .map(|e| rel.join(e.file_name()))
            .collect();
        children.sort();
        // Depth first in sorted order: push in reverse.
        stack.extend(children.into_iter().rev());
    }
    Ok(out)
}

/// Splits `files` into [`LAYERS`] layers of about equal data, writes them
/// as gzip blobs into an OCI layout at `layout` (unless already there) and
/// returns the blobs.
fn build_layout(tree: &Path, files: &[FileEntry], layout: &Path) -> Result<Vec<Vec<u8>>, String> {
    let done = layout.join("bench.done");
    if !done.exists() {
        let t = Instant::now();
        let total: u64 = files.iter().map(|f| f.size).sum();
        let per_layer = total.div_ceil(LAYERS as u64);
        let mut groups: Vec<Vec<&FileEntry>> = vec![Vec::new()];
        let mut acc = 0u64;
        for f in files {
            if acc >= per_layer && groups.len() < LAYERS {
                groups.push(Vec::new());
                acc = 0;
            }
            acc += f.size;
            groups.last_mut().expect("one group").push(f);
        }
        let tars: Vec<Vec<u8>> = groups
            .iter()
            .map(|g| layer_tar(tree, g))
            .collect::<Result<_, _>>()?;
        let threads = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1);
        let layers: Vec<Layer> = std::thread::scope(|s| {
            let chunks: Vec<_> = tars
                .chunks(tars.len().div_ceil(threads))
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|t| Layer::new(t, Compression::Gzip))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            chunks
                .into_iter()
                .flat_map(|h| h.join().expect("compress thread"))
                .collect()
        });
        let _ = std::fs::remove_dir_all(layout);
        let mut oci = OciLayout::create(layout).map_err(|e| e.to_string())?;
        let platform = Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        };
        let config = json!({ "Env": [rstack_e2e::fixtures::PATH_ENV], "Cmd": ["bash"] });
        let info = oci
            .add_image(&platform, &layers, config)
            .map_err(|e| e.to_string())?;
        oci.tag(&info.manifest, "bench");
        oci.finish().map_err(|e| e.to_string())?;
        std::fs::write(&done, serde_json::to_vec(&info.layers).expect("json"))
            .map_err(|e| e.to_string())?;
        println!(
            "built {} layers in {:.1} s into {}",
            layers.len(),
            t.elapsed().as_secs_f64(),
            layout.display()
        );
    }
    let descs: Vec<rstack_e2e::oci::Descriptor> =
        serde_json::from_slice(&std::fs::read(&done).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    descs
        .iter()
        .map(|d| {
            let path = layout
                .join("blobs/sha256")
                .join(&d.digest["sha256:".len()..]);
            std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))
        })
        .collect()
}

/// One layer tar: its entries plus every parent dir they need (taken from
/// the tree). Hard links point to an earlier entry of the same layer, or
/// the data is stored again when that entry is in another layer.
fn layer_tar(tree: &Path, entries: &[&FileEntry]) -> Result<Vec<u8>, String> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs_done = std::collections::HashSet::new();
    let mut inodes: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for entry in entries {
        let mut parents: Vec<&Path> = entry
            .rel
            .ancestors()
            .skip(1)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        parents.reverse();
        for parent in parents {
            if dirs_done.insert(parent.to_owned()) {
                append(&mut b, tree, parent, &mut inodes)?;
            }
        }
        let meta = std::fs::symlink_metadata(tree.join(&entry.rel)).map_err(|e| e.to_string())?;
        if meta.is_dir() && !dirs_done.insert(entry.rel.clone()) {
            continue;
        }
        append(&mut b, tree, &entry.rel, &mut inodes)?;
    }
    b.into_inner().map_err(|e| e.to_string())
}

fn append(
    b: &mut tar::Builder<Vec<u8>>,
    tree: &Path,
    rel: &Path,
    inodes: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), String> {
    let path = tree.join(rel);
    let meta =
        std::fs::symlink_metadata(&path).map_err(|e| format!("stat {}: {e}", path.display()))?;
    let mut header = Header::new_gnu();
    header.set_metadata_in_mode(&meta, HeaderMode::Complete);
    let err = |e: std::io::Error| format!("tar {}: {e}", rel.display());
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(&path).map_err(err)?;
        header.set_size(0);
        b.append_link(&mut header, rel, target).map_err(err)
    } else if ft.is_file() {
        if meta.nlink() > 1 {
            if let Some(first) = inodes.get(&(meta.dev(), meta.ino())) {
                header.set_entry_type(EntryType::Link);
                header.set_size(0);
                return b.append_link(&mut header, rel, first).map_err(err);
            }
            inodes.insert((meta.dev(), meta.ino()), rel.to_owned());
        }
        let file = std::fs::File::open(&path).map_err(err)?;
        b.append_data(&mut header, rel, file).map_err(err)
    } else {
        // Directories, and device nodes / fifos (as their header says).
        header.set_size(0);
        b.append_data(&mut header, rel, std::io::empty())
            .map_err(err)
    }
}

/// gzip inflate throughput of the layer blobs with flate2 (zlib-rs): one
/// thread, then all layers spread over the available cores.
fn decompression(blobs: &[Vec<u8>]) {
    let inflate = |blob: &[u8]| -> u64 {
        let mut dec = flate2::read::GzDecoder::new(blob);
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            match dec.read(&mut buf) {
                Ok(0) => break n,
                Ok(k) => n += k as u64,
                Err(e) => die(&format!("inflate: {e}")),
            }
        }
    };
    let t = Instant::now();
    let out: u64 = blobs.iter().map(|b| inflate(b)).sum();
    let one = t.elapsed().as_secs_f64();
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    let t = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                s.spawn(move || {
                    blobs
                        .iter()
                        .skip(i)
                        .step_by(threads)
                        .map(|b| inflate(b))
                        .sum::<u64>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("inflate thread"))
            .sum::<u64>()
    });
    let all = t.elapsed().as_secs_f64();
    let packed: u64 = blobs.iter().map(|b| b.len() as u64).sum();
    println!(
        "gzip inflate alone (flate2 zlib-rs), tar bytes out: 1 thread {one:.2} s = {:.0} MB/s; {threads} threads {all:.2} s = {:.0} MB/s ({:.0} MB/s gzip in)",
        mb(out) / one,
        mb(out) / all,
        mb(packed) / all
    );
}

/// Bytes of file data under `dir` (each inode once).
fn du(dir: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    rstack_e2e::leaks::walk(dir, &mut |p| {
        if let Ok(m) = std::fs::symlink_metadata(p)
            && m.is_file()
            && seen.insert((m.dev(), m.ino()))
        {
            total += m.len();
        }
    });
    total
}
