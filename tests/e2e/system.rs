//! `rstack system df` and `rstack system prune` on a real stack: what is
//! counted as active, what a prune keeps while the stack runs, and what it
//! reclaims once the stack is down.

use libtest_mimic::Trial;
use rstack_e2e::{Fixtures, Rstack, trial};
use serde_json::Value;

use crate::sandbox::{DownOnPanic, NEEDS, NetNs, args, find, setup, wait_for};

pub fn tests() -> Vec<Trial> {
    vec![trial("system::df_and_prune", NEEDS, df_and_prune)]
}

const STACK: &str = r#"
services:
  app:
    image: IMAGE
    command: ["sh", "-c", "echo kept > /data/file; exec sleep 1000"]
    volumes:
      - data:/data
    stop_grace_period: 1s
  job:
    image: IMAGE
    command: ["sh", "-c", "exit 0"]
    restart: "no"
volumes:
  data: {}
"#;

/// `system df --format json`, keyed by Type.
fn df(ns: &NetNs, r: &Rstack) -> std::collections::BTreeMap<String, Value> {
    let out = ns.ok(r, &["system", "df", "--format", "json"]);
    let rows = out.json_lines();
    assert_eq!(rows.len(), 4, "{out}");
    rows.into_iter()
        .map(|v| (v["Type"].as_str().unwrap_or_default().to_owned(), v))
        .collect()
}

fn counts(row: &Value) -> (&str, &str) {
    (
        row["TotalCount"].as_str().unwrap_or("?"),
        row["Active"].as_str().unwrap_or("?"),
    )
}

fn df_and_prune() {
    let ns = NetNs::new();
    let (r, image, base) = setup(STACK);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    // a second image that shares busybox's layer
    let layered = Fixtures::shared().layered.reference();
    r.ok(&["pull", "-q", &layered]);
    ns.ok(&r, &args(&base, &["up", "-d"]));
    wait_for(&ns, &r, &base, "job to exit", |v| {
        find(v, "demo-job-1")["State"] == "exited" && find(v, "demo-app-1")["State"] == "running"
    });
    ns.ok(&r, &["network", "create", "spare"]);

    df_while_running(&ns, &r);
    prune_keeps_what_runs(&ns, &r, &base);
    prune_all_while_running(&ns, &r, &base, &image, &layered);

    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
    let d = df(&ns, &r);
    assert_eq!(counts(&d["Images"]), ("1", "0"), "{d:?}");
    assert_eq!(counts(&d["Containers"]), ("0", "0"), "{d:?}");
    assert_eq!(counts(&d["Local Volumes"]), ("1", "0"), "{d:?}");
    assert!(
        d["Local Volumes"]["Reclaimable"]
            .as_str()
            .unwrap()
            .ends_with("(100%)"),
        "{d:?}"
    );

    prune_after_down(&ns, &r, &image);
    volume_prune_empties(&ns, &r);
    ns.assert_clean(&r);
}

/// `system df` while the stack runs: the table, counts, shared layers, `-v`.
fn df_while_running(ns: &NetNs, r: &Rstack) {
    let table = ns.ok(r, &["system", "df"]);
    assert!(
        table
            .stdout
            .starts_with("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n"),
        "{table}"
    );
    let d = df(ns, r);
    assert_eq!(counts(&d["Images"]), ("2", "1"), "{d:?}");
    assert_eq!(counts(&d["Containers"]), ("2", "1"), "{d:?}");
    assert_eq!(counts(&d["Local Volumes"]), ("1", "1"), "{d:?}");
    assert_eq!(counts(&d["Build Cache"]), ("0", "0"), "{d:?}");
    // only the layered image's own layers are reclaimable: the shared base
    // layer is counted once and stays with the busybox image in use
    let recl = d["Images"]["Reclaimable"].as_str().unwrap();
    let pct: u32 = recl
        .rsplit_once('(')
        .and_then(|(_, p)| p.strip_suffix("%)"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no percentage in {recl:?}"));
    assert!(
        pct < 50 && !recl.starts_with("0B"),
        "images reclaimable {recl}"
    );
    assert_eq!(d["Local Volumes"]["Reclaimable"], "0B (0%)", "{d:?}");
    let verbose = ns.ok(r, &["system", "df", "-v"]).stdout;
    assert!(verbose.contains("Images space usage:"), "{verbose}");
    assert!(verbose.contains("demo_data "), "{verbose}");
    assert!(verbose.contains("demo-app-1"), "{verbose}");
}

/// `system prune -f`: nothing in use goes, the exited job and spare network do.
fn prune_keeps_what_runs(ns: &NetNs, r: &Rstack, base: &[String]) {
    // nothing in use goes: the exited job and the spare network do
    let p = ns.ok(r, &["system", "prune", "-f"]);
    assert!(
        p.stdout.contains("Deleted Containers:\ndemo-job-1\n"),
        "{p}"
    );
    assert!(p.stdout.contains("Deleted Networks:\nspare\n"), "{p}");
    assert!(!p.stdout.contains("demo-app-1"), "{p}");
    assert!(!p.stdout.contains("demo_default"), "{p}");
    assert!(
        !p.stdout.contains("Deleted Images"),
        "no dangling image: {p}"
    );
    assert!(p.stdout.contains("Total reclaimed space: "), "{p}");
    let v = wait_for(ns, r, base, "job forgotten", |v| v.len() == 1);
    assert_eq!(find(&v, "demo-app-1")["State"], "running");
    let nets = ns.ok(r, &["network", "ls"]).stdout;
    assert!(
        nets.contains("demo_default") && !nets.contains("spare"),
        "{nets}"
    );
}

/// `prune -a` while the stack runs: the unused image goes, the used one stays.
fn prune_all_while_running(ns: &NetNs, r: &Rstack, base: &[String], image: &str, layered: &str) {
    // -a while the stack runs: the unused image goes, the used one and its
    // (shared) layer stay
    let p = ns.ok(r, &["system", "prune", "-a", "-f"]);
    assert!(p.stdout.contains("Deleted Images:\nuntagged: "), "{p}");
    assert!(p.stdout.contains("layered"), "{p}");
    assert!(!p.stdout.contains("e2e/busybox"), "{p}");
    r.ok(&["image", "inspect", image]);
    r.fails(&["image", "inspect", layered]);
    let file = ns.ok(
        r,
        &args(
            base,
            &[
                "exec",
                "-T",
                "app",
                "sh",
                "-c",
                "cat /data/file; ls /bin/busybox",
            ],
        ),
    );
    assert_eq!(file.stdout, "kept\n/bin/busybox\n");
    let d = df(ns, r);
    assert_eq!(counts(&d["Images"]), ("1", "1"), "{d:?}");
    assert_eq!(d["Images"]["Reclaimable"], "0B (0%)", "{d:?}");
}

/// After `down`: refused without `-f`, then images go and the named volume stays.
fn prune_after_down(ns: &NetNs, r: &Rstack, image: &str) {
    // without a terminal and without -f: refused, nothing removed
    let refused = ns.rstack(r, &["system", "prune", "-a", "--volumes"]);
    assert!(!refused.success(), "{refused}");
    assert!(refused.stderr.contains("--force"), "{refused}");
    r.ok(&["image", "inspect", image]);

    let p = ns.ok(r, &["system", "prune", "-a", "--volumes", "-f"]);
    assert!(p.stdout.contains("Deleted Images:\nuntagged: "), "{p}");
    assert!(p.stdout.contains("deleted: sha256:"), "{p}");
    let total = p
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("no total: {p}"));
    assert_ne!(total, "0B", "{p}");
    r.fails(&["image", "inspect", image]);
    // Docker 25: `system prune --volumes` prunes anonymous volumes only,
    // even with -a; the named volume stays for `volume prune -a`
    assert!(!p.stdout.contains("demo_data"), "{p}");
    assert!(r.root().join("volumes/demo_data/_data/file").exists());
    let d = df(ns, r);
    assert_eq!(counts(&d["Images"]), ("0", "0"), "{d:?}");
    assert_eq!(d["Images"]["Size"], "0B", "{d:?}");
    assert_eq!(counts(&d["Local Volumes"]), ("1", "0"), "{d:?}");
}

/// `volume prune -a` takes the named volume: nothing left to count or reclaim.
fn volume_prune_empties(ns: &NetNs, r: &Rstack) {
    let v = ns.ok(r, &["volume", "prune", "-a", "-f"]);
    assert!(v.stdout.contains("demo_data"), "{v}");
    let d = df(ns, r);
    for (kind, row) in &d {
        assert_eq!(counts(row), ("0", "0"), "{kind}: {d:?}");
        assert_eq!(row["Size"], "0B", "{kind}: {d:?}");
        assert_eq!(
            row["Reclaimable"], "0B",
            "{kind}: nothing to reclaim: {d:?}"
        );
    }
    let empty = ns.ok(r, &["system", "prune", "-a", "--volumes", "-f"]);
    assert_eq!(empty.stdout, "Total reclaimed space: 0B\n", "{empty}");
}
