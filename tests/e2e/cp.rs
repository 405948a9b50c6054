//! `rstack cp` both ways against a running service container: docker's
//! path rules, tar streams on stdin/stdout, ownership, and symlinks that
//! must resolve inside the container, never on the host; and against a
//! stopped one, whose own files (image and writable layer) are mounted
//! where only the `cp` process sees them.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Output, Stdio};

use libtest_mimic::Trial;
use rstack_e2e::{Rstack, trial};

use crate::sandbox::{DownOnPanic, NEEDS, NetNs, args, find, ps, setup};

pub fn tests() -> Vec<Trial> {
    vec![
        trial("cp::both_ways_streams_and_escapes", NEEDS, both_ways),
        trial("cp::stopped_container_both_ways", NEEDS, stopped_both_ways),
    ]
}

const CP_STACK: &str = r#"
services:
  app:
    image: IMAGE
    command:
      - sh
      - -c
      - >-
        mkdir -p /data/sub && echo inside > /data/sub/f &&
        echo container-shadow > /etc/shadow &&
        ln -s /etc/shadow /data/evil &&
        ln -s ../../../../../../../etc/shadow /data/evil-rel &&
        ln -s / /data/rootlink &&
        touch /data/ready && exec sleep 1000
    stop_grace_period: 1s
    volumes:
      - data:/data
volumes:
  data: {}
"#;

/// Runs rstack in the test's network namespace with raw (binary) output,
/// `stdin` fed to it and `cwd` as its working directory.
fn raw(ns: &NetNs, r: &Rstack, argv: &[&str], stdin: Option<&[u8]>, cwd: &Path) -> Output {
    let inner = r.command(argv);
    let mut cmd = ns.nsenter();
    cmd.arg(inner.get_program()).args(inner.get_args());
    r.sandbox_env(&mut cmd);
    cmd.current_dir(cwd)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run rstack");
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(data).expect("write stdin");
    }
    child.wait_with_output().expect("wait for rstack")
}

/// Runs `argv` after the base args and checks it fails with `needle` in
/// its stderr.
fn refused(ns: &NetNs, r: &Rstack, base: &[String], argv: &[&str], needle: &str) {
    let out = ns.rstack(r, &args(base, argv));
    assert!(!out.success(), "expected a failure:\n{out}");
    assert!(out.stderr.contains(needle), "missing {needle:?}:\n{out}");
}

fn exec_out(ns: &NetNs, r: &Rstack, base: &[String], script: &str) -> String {
    ns.ok(r, &args(base, &["exec", "-T", "app", "sh", "-c", script]))
        .stdout
}

fn both_ways() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(CP_STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    let host_shadow = std::fs::read("/etc/shadow").ok();

    up_and_ready(&ns, &r, &base);
    file_into_volume(&ns, &r, &base);
    directories_in(&ns, &r, &base);
    out_to_host(&ns, &r, &base);
    tar_streams(&ns, &r, &base);
    symlinks_stay_inside(&ns, &r, &base, host_shadow);
    errors_in_docker_words(&ns, &r, &base);
    stopped_refuses_volume(&ns, &r, &base);
    r.assert_no_leaks();

    ns.ok(&r, &args(&base, &["down", "-v"]));
    ns.assert_clean(&r);
}

/// Starts the stack and waits until the container has set up `/data`.
fn up_and_ready(ns: &NetNs, r: &Rstack, base: &[String]) {
    ns.ok(r, &args(base, &["up", "-d"]));
    let mut ready = false;
    for _ in 0..100 {
        let out = ns.rstack(
            r,
            &args(base, &["exec", "-T", "app", "test", "-e", "/data/ready"]),
        );
        if out.success() {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ready, "the container never set up /data");
}

/// A host file into the volume: mode kept, owner the container's root unless `-a`.
fn file_into_volume(ns: &NetNs, r: &Rstack, base: &[String]) {
    let work = r.work_dir();
    let w = |p: &str| work.join(p).display().to_string();
    // a host file into an existing dir of a named volume: goes inside,
    // keeps its mode, owned by the container's root unless -a
    std::fs::write(w("hello.txt"), "hello\n").unwrap();
    std::fs::set_permissions(w("hello.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(w("hello.txt"), Some(1234), Some(4321)).unwrap();
    let cp = ns.ok(r, &args(base, &["cp", &w("hello.txt"), "app:/data/"]));
    assert!(
        cp.stderr
            .contains("Successfully copied 2.05kB to demo-app-1:/data/"),
        "{cp}"
    );
    assert_eq!(
        exec_out(
            ns,
            r,
            base,
            "cat /data/hello.txt; stat -c '%a %u:%g' /data/hello.txt"
        ),
        "hello\n640 0:0\n"
    );
    // a relative source, onto a new name, with -a
    let out = raw(
        ns,
        r,
        &args(base, &["cp", "-a", "hello.txt", "app:data/kept.txt"]),
        None,
        &work,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        exec_out(ns, r, base, "stat -c '%a %u:%g' /data/kept.txt"),
        "640 1234:4321\n"
    );
}

/// Directories in: a new path takes the name, `dir/.` copies the contents.
fn directories_in(ns: &NetNs, r: &Rstack, base: &[String]) {
    let work = r.work_dir();
    let w = |p: &str| work.join(p).display().to_string();
    // a directory: to a new path it takes that name; `dir/.` copies the
    // contents into an existing directory
    std::fs::create_dir_all(w("site/nested")).unwrap();
    std::fs::write(w("site/index.html"), "<h1>hi</h1>\n").unwrap();
    std::fs::write(w("site/nested/deep.txt"), "deep\n").unwrap();
    std::os::unix::fs::symlink("index.html", w("site/link")).unwrap();
    ns.ok(r, &args(base, &["cp", &w("site"), "app:/data/www"]));
    ns.ok(
        r,
        &args(base, &["cp", &format!("{}/.", w("site")), "app:/data/sub"]),
    );
    ns.ok(r, &args(base, &["cp", &w("site"), "app:/data/sub"]));
    assert_eq!(
        exec_out(
            ns,
            r,
            base,
            "cat /data/www/nested/deep.txt /data/sub/index.html /data/sub/site/link; readlink /data/www/link; cat /data/sub/f"
        ),
        "deep\n<h1>hi</h1>\n<h1>hi</h1>\nindex.html\ninside\n"
    );
}

/// Out to the host: a file, a directory with its links, hard links kept.
fn out_to_host(ns: &NetNs, r: &Rstack, base: &[String]) {
    let work = r.work_dir();
    let w = |p: &str| work.join(p).display().to_string();
    // out to the host: a file, then a directory (symlinks kept as links)
    let cp = ns.ok(r, &args(base, &["cp", "app:/data/sub/f", &w("out.txt")]));
    assert!(cp.stderr.contains("Successfully copied"), "{cp}");
    assert_eq!(std::fs::read_to_string(w("out.txt")).unwrap(), "inside\n");
    ns.ok(r, &args(base, &["cp", "app:/data/www", &w("www-out")]));
    assert_eq!(
        std::fs::read_to_string(w("www-out/nested/deep.txt")).unwrap(),
        "deep\n"
    );
    assert_eq!(
        std::fs::read_link(w("www-out/link")).unwrap(),
        Path::new("index.html")
    );
    // into an existing directory it goes inside; hard links stay links
    std::fs::create_dir(w("bins")).unwrap();
    ns.ok(r, &args(base, &["cp", "app:/bin", &w("bins")]));
    let a = std::fs::metadata(w("bins/bin/busybox")).unwrap();
    let b = std::fs::metadata(w("bins/bin/ls")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard links copied as separate files");
    assert_eq!(a.mode() & 0o7777, 0o755);
}

/// Tar streams on stdout and stdin, extracted only into a directory.
fn tar_streams(ns: &NetNs, r: &Rstack, base: &[String]) {
    let work = r.work_dir();
    // `-`: a tar stream on stdout...
    let out = raw(
        ns,
        r,
        &args(base, &["cp", "app:/data/www", "-"]),
        None,
        &work,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(out.stdout.as_slice());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        if name == "www/index.html" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            assert_eq!(s, "<h1>hi</h1>\n");
        }
        names.push(name);
    }
    for n in ["www", "www/index.html", "www/link", "www/nested/deep.txt"] {
        assert!(
            names.iter().any(|x| x.trim_end_matches('/') == n),
            "{n} missing from {names:?}"
        );
    }
    // ...and on stdin, extracted into an existing directory
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(7);
    h.set_mode(0o600);
    h.set_uid(99);
    h.set_gid(99);
    b.append_data(&mut h, "fromtar/a.txt", &b"streamd"[..])
        .unwrap();
    let tarball = b.into_inner().unwrap();
    let out = raw(
        ns,
        r,
        &args(base, &["cp", "-", "app:/data"]),
        Some(&tarball),
        &work,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        exec_out(
            ns,
            r,
            base,
            "cat /data/fromtar/a.txt; stat -c ' %a %u' /data/fromtar/a.txt"
        ),
        "streamd 600 0\n"
    );
    let out = raw(
        ns,
        r,
        &args(base, &["cp", "-", "app:/data/fromtar/a.txt"]),
        Some(&tarball),
        &work,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("must be a directory"),
        "{err}"
    );
}

/// Symlinks resolve inside the container, and archives cannot climb out.
fn symlinks_stay_inside(ns: &NetNs, r: &Rstack, base: &[String], host_shadow: Option<Vec<u8>>) {
    let work = r.work_dir();
    let w = |p: &str| work.join(p).display().to_string();
    // symlinks resolve inside the container: reading through them...
    for link in [
        "app:/data/evil",
        "app:/data/evil-rel",
        "app:/data/rootlink/etc/shadow",
        "app:../../../../etc/shadow",
    ] {
        let dst = w("shadow-copy");
        let _ = std::fs::remove_file(&dst);
        ns.ok(r, &args(base, &["cp", "-L", link, &dst]));
        assert_eq!(
            std::fs::read_to_string(&dst).unwrap(),
            "container-shadow\n",
            "{link} was not resolved in the container"
        );
    }
    // ...without -L the link itself is copied
    ns.ok(r, &args(base, &["cp", "app:/data/evil", &w("evil-link")]));
    assert_eq!(
        std::fs::read_link(w("evil-link")).unwrap(),
        Path::new("/etc/shadow")
    );
    // ...and writing through them
    std::fs::write(w("pwned"), "pwned\n").unwrap();
    ns.ok(r, &args(base, &["cp", &w("pwned"), "app:/data/evil"]));
    ns.ok(
        r,
        &args(base, &["cp", &w("pwned"), "app:/data/rootlink/etc/"]),
    );
    assert_eq!(
        exec_out(ns, r, base, "cat /etc/shadow /etc/pwned"),
        "pwned\npwned\n"
    );
    assert_eq!(
        std::fs::read("/etc/shadow").ok(),
        host_shadow,
        "the host's /etc/shadow changed"
    );
    assert!(
        !Path::new("/etc/pwned").exists(),
        "wrote on the host's /etc"
    );
    // a tar stream whose entries climb out is refused
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    let name = b"../../../../../tmp/escaped";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let evil = b.into_inner().unwrap();
    let out = raw(
        ns,
        r,
        &args(base, &["cp", "-", "app:/data"]),
        Some(&evil),
        &work,
    );
    assert!(!out.status.success(), "an escaping archive was accepted");
    assert!(
        !Path::new("/tmp/escaped").exists(),
        "wrote on the host's /tmp"
    );
}

/// Errors, in docker's words.
fn errors_in_docker_words(ns: &NetNs, r: &Rstack, base: &[String]) {
    let work = r.work_dir();
    let w = |p: &str| work.join(p).display().to_string();
    // errors, in docker's words
    let fails = |argv: &[&str], needle: &str| refused(ns, r, base, argv, needle);
    fails(&["cp", "nope:/x", &w("x")], "no such service: nope");
    fails(
        &["cp", "app:/does/not/exist", &w("x")],
        "Could not find the file /does/not/exist in container demo-app-1",
    );
    fails(
        &["cp", &w("hello.txt"), "app:/no/such/dir/x"],
        "Could not find the file /no/such/dir in container demo-app-1",
    );
    fails(
        &["cp", &w("hello.txt"), "app:/data/newdir/"],
        "no such directory",
    );
    fails(
        &["cp", &w("site"), "app:/data/hello.txt"],
        "cannot copy directory",
    );
    fails(
        &["cp", "app:/data/sub/f", &w("no/such/dir/x")],
        "invalid output path: directory",
    );
    fails(
        &["cp", &w("missing"), "app:/data/"],
        "No such file or directory",
    );
    fails(&["cp", &w("a"), &w("b")], "unknown copy direction");
    fails(
        &["cp", "app:/a", "app:/b"],
        "copying between services is not supported",
    );
    fails(
        &["cp", "--index", "2", "app:/data", &w("x")],
        "is not running container #2",
    );
}

/// A stopped container shows its own files only: its volume is refused.
fn stopped_refuses_volume(ns: &NetNs, r: &Rstack, base: &[String]) {
    let work = r.work_dir();
    let w = |p: &str| work.join(p).display().to_string();
    let fails = |argv: &[&str], needle: &str| refused(ns, r, base, argv, needle);
    // a stopped container shows its own files only: its volume is refused
    ns.ok(r, &args(base, &["stop", "app"]));
    fails(
        &["cp", "app:/data/sub/f", &w("x")],
        "/data/sub/f is on /data, a volume, bind mount or tmpfs of container demo-app-1",
    );
    let cp = ns.ok(
        r,
        &args(base, &["cp", "app:/etc/shadow", &w("stopped-shadow")]),
    );
    assert!(cp.stderr.contains("Successfully copied"), "{cp}");
    assert_eq!(
        std::fs::read_to_string(w("stopped-shadow")).unwrap(),
        "pwned\n"
    );
}

const STOPPED_STACK: &str = r#"
services:
  web:
    image: IMAGE
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $$!; done"]
    stop_grace_period: 1s
    volumes:
      - data:/data
volumes:
  data: {}
"#;

/// `cp` with a stopped container, as `docker compose cp` allows: out of
/// it (its writable layer over its image, deletions included) and into
/// it (seen once it runs again), its volume refused, and no mount or
/// scratch dir left on the host.
fn stopped_both_ways() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(STOPPED_STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    let work = r.work_dir();
    let w = |p: &str| work.join(p).display().to_string();
    let fails = |argv: &[&str], needle: &str| refused(&ns, &r, &base, argv, needle);

    stop_with_changes(&ns, &r, &base);
    stopped_out(&ns, &r, &base);
    stopped_in(&ns, &r, &base);
    restarted_sees_copies(&ns, &r, &base);

    ns.ok(&r, &args(&base, &["down", "-v"]));
    // after down, the container and its kept files are gone
    fails(
        &["cp", "web:/out.txt", &w("x")],
        "no container found for service",
    );
    ns.assert_clean(&r);
}

/// Starts the stack, changes files in the container, and stops it.
fn stop_with_changes(ns: &NetNs, r: &Rstack, base: &[String]) {
    ns.ok(r, &args(base, &["up", "-d"]));
    let script = "echo hi > /out.txt && rm /bin/vi && echo vol > /data/v.txt";
    ns.ok(r, &args(base, &["exec", "-T", "web", "sh", "-c", script]));
    ns.ok(r, &args(base, &["stop", "web"]));
    assert_eq!(find(&ps(ns, r, base), "demo-web-1")["State"], "exited");
    r.assert_no_leaks();
}

/// Out of the stopped container: its files, a tar stream, its volume refused.
fn stopped_out(ns: &NetNs, r: &Rstack, base: &[String]) {
    let work = r.work_dir();
    let w = |p: &str| work.join(p).display().to_string();
    let fails = |argv: &[&str], needle: &str| refused(ns, r, base, argv, needle);
    // out: the container's own file, an image file, a deleted image file
    let cp = ns.ok(r, &args(base, &["cp", "web:/out.txt", &w("out.txt")]));
    assert!(
        cp.stderr
            .contains(&format!("Successfully copied 2.05kB to {}", w("out.txt"))),
        "{cp}"
    );
    assert_eq!(std::fs::read_to_string(w("out.txt")).unwrap(), "hi\n");
    ns.ok(r, &args(base, &["cp", "web:/etc/passwd", &w("passwd")]));
    let passwd = std::fs::read_to_string(w("passwd")).unwrap();
    assert!(passwd.starts_with("root:"), "{passwd}");
    fails(
        &["cp", "web:/bin/vi", &w("vi")],
        "Could not find the file /bin/vi in container demo-web-1",
    );
    // a tar stream too
    let out = raw(
        ns,
        r,
        &args(base, &["cp", "web:/out.txt", "-"]),
        None,
        &work,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ar = tar::Archive::new(out.stdout.as_slice());
    let mut e = ar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.path().unwrap(), Path::new("out.txt"));
    let mut s = String::new();
    std::io::Read::read_to_string(&mut e, &mut s).unwrap();
    assert_eq!(s, "hi\n");
    // the volume is not mounted: refused both ways, not an empty dir
    fails(
        &["cp", "web:/data/v.txt", &w("v.txt")],
        "is on /data, a volume, bind mount or tmpfs of container demo-web-1",
    );
    std::fs::write(w("in.txt"), "in\n").unwrap();
    fails(&["cp", &w("in.txt"), "web:/data/"], "is on /data, a volume");
    r.assert_no_leaks();
}

/// Into the stopped container: a relative path, a directory, over an image file.
fn stopped_in(ns: &NetNs, r: &Rstack, base: &[String]) {
    let work = r.work_dir();
    let w = |p: &str| work.join(p).display().to_string();
    // in: a relative host path, then a directory; seen once it runs
    let out = raw(
        ns,
        r,
        &args(base, &["cp", "./in.txt", "web:/in.txt"]),
        None,
        &work,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("Successfully copied 2.05kB to demo-web-1:/in.txt"),
        "{err}"
    );
    std::fs::create_dir_all(w("site/nested")).unwrap();
    std::fs::write(w("site/nested/deep.txt"), "deep\n").unwrap();
    ns.ok(r, &args(base, &["cp", &w("site"), "web:/"]));
    ns.ok(r, &args(base, &["cp", &w("in.txt"), "web:/bin/vi"]));
    r.assert_no_leaks();
    assert_eq!(find(&ps(ns, r, base), "demo-web-1")["State"], "exited");
}

/// Started again, it sees what was copied in, and its volume copies out.
fn restarted_sees_copies(ns: &NetNs, r: &Rstack, base: &[String]) {
    let work = r.work_dir();
    let w = |p: &str| work.join(p).display().to_string();
    ns.ok(r, &args(base, &["start", "web"]));
    let cat = ns.ok(
        r,
        &args(
            base,
            &[
                "exec",
                "-T",
                "web",
                "cat",
                "/in.txt",
                "/site/nested/deep.txt",
                "/bin/vi",
                "/out.txt",
                "/data/v.txt",
            ],
        ),
    );
    assert_eq!(cat.stdout, "in\ndeep\nin\nhi\nvol\n", "{cat}");
    // running again: through /proc/<pid>/root, the volume included
    ns.ok(r, &args(base, &["cp", "web:/data/v.txt", &w("v.txt")]));
    assert_eq!(std::fs::read_to_string(w("v.txt")).unwrap(), "vol\n");
}
