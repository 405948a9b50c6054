//! `search` against real registries' catalogs (open and with auth), a
//! server with Docker Hub's search API shape, and one with neither.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};

use rstack_e2e::{Fixtures, Registry, Rstack};
use serde_json::json;

/// A registry holding `e2e/busybox:{latest,v2}` and `e2e/app:v1`.
fn registry_with_images(registry: &Registry) {
    let fixtures = Fixtures::shared();
    for (fixture, name) in [
        (&fixtures.busybox_oci, "e2e/busybox:latest"),
        (&fixtures.busybox_oci, "e2e/busybox:v2"),
        (&fixtures.layered, "e2e/app:v1"),
    ] {
        fixture.push_to(registry, name).expect("push a fixture");
    }
}

/// The catalog of the local registry: filtered by name, tags on
/// `--format`, `--limit`, the registry from registries.conf's
/// `unqualified-search-registries`.
pub(crate) fn catalog_search() {
    let registry = Registry::start().expect("start a registry");
    registry_with_images(&registry);
    let host = registry.host();
    let r = Rstack::new();

    let out = r.ok(&["search", &format!("{host}/busy")]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("DESCRIPTION"),
        "docker's header:\n{out}"
    );
    assert_eq!(lines.len(), 2, "only busybox matches:\n{out}");
    assert!(
        lines[1].starts_with(&format!("{host}/e2e/busybox ")),
        "{out}"
    );

    let out = r.ok(&[
        "search",
        "--format",
        "{{.Name}} {{.Tags}}",
        &format!("{host}/e2e"),
    ]);
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("{host}/e2e/app [v1]"),
            format!("{host}/e2e/busybox [latest v2]")
        ],
        "{out}"
    );
    let out = r.ok(&[
        "search",
        "--limit",
        "1",
        "--format",
        "json",
        &format!("{host}/e2e"),
    ]);
    let rows = out.json_lines();
    assert_eq!(rows.len(), 1, "--limit 1:\n{out}");
    assert!(rows[0]["Tags"].is_array(), "json has the tags:\n{out}");

    let conf = r.work_dir().join("registries.conf");
    std::fs::write(
        &conf,
        format!("unqualified-search-registries = [\"{host}\"]\n"),
    )
    .unwrap();
    let out = r.ok(&[
        "--registries-conf",
        &conf.display().to_string(),
        "search",
        "--format",
        "{{.Name}}",
        "app",
    ]);
    assert_eq!(out.stdout.trim(), format!("{host}/e2e/app"), "{out}");
    r.assert_no_leaks();
}

/// A registry that wants credentials: refused with a hint, then found
/// after `rstack login`.
pub(crate) fn catalog_search_with_login() {
    let (user, password) = ("e2e-user", "e2e-search-pw");
    let registry = Registry::start_with_auth(user, password).expect("start the auth registry");
    registry_with_images(&registry);
    let host = registry.host();
    let r = Rstack::new();
    let out = r.fails(&["search", &format!("{host}/busy")]);
    out.assert_stderr_mentions(&["rstack login"]);
    r.ok(&["login", "-u", user, "-p", password, &host]);
    let out = r.ok(&["search", "--format", "{{.Name}}", &format!("{host}/busy")]);
    assert_eq!(out.stdout.trim(), format!("{host}/e2e/busybox"), "{out}");
}

/// A server without a catalog: with Docker Hub's search API, its answer
/// in Docker's columns; without, a clear error.
pub(crate) fn hub_api_and_unsupported() {
    let hub_like = FakeSearch::start(Some(json!({
    "num_results": 2, "query": "busybox", "results": [
        {"name": "busybox", "description": "Busybox base image.", "star_count": 3300,
         "is_official": true, "is_automated": false},
        {"name": "radial/busyboxplus", "description": "Full-chain, Internet enabled, busybox made from scratch. Comes in git and cURL flavors.",
         "star_count": 54, "is_official": false, "is_automated": true}
    ]})));
    let r = Rstack::new();
    let out = r.ok(&["search", &format!("{}/busybox", hub_like.addr)]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with("busybox ")
            && lines[1].contains("Busybox base image.")
            && lines[1].contains("3300")
            && lines[1].trim_end().ends_with("[OK]"),
        "{out}"
    );
    assert!(
        lines[2].contains('…') && !lines[2].contains("cURL flavors"),
        "long descriptions are truncated:\n{out}"
    );
    let out = r.ok(&[
        "search",
        "--filter",
        "is-official=true",
        "--format",
        "{{.Name}} {{.StarCount}} {{.IsOfficial}}",
        &format!("{}/busybox", hub_like.addr),
    ]);
    assert_eq!(out.stdout.trim(), "busybox 3300 true", "{out}");

    let neither = FakeSearch::start(None);
    let out = r.fails(&["search", &format!("{}/busybox", neither.addr)]);
    out.assert_stderr_mentions(&["cannot be searched"]);
    assert!(
        out.stderr.contains("/v2/_catalog") && out.stderr.contains("/v1/search"),
        "{out}"
    );
}

/// A tiny HTTP server: `/v2/` answers 200, `/v1/search` the given JSON
/// (or 404), anything else 404.
struct FakeSearch {
    addr: SocketAddr,
}

impl FakeSearch {
    fn start(answer: Option<serde_json::Value>) -> FakeSearch {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // Skip the headers.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request_line.split(' ').nth(1).unwrap_or("");
                let (status, body) = match (path, &answer) {
                    ("/v2/", _) => ("200 OK", "{}".to_owned()),
                    (p, Some(a)) if p.starts_with("/v1/search?q=busybox") => {
                        ("200 OK", a.to_string())
                    }
                    _ => ("404 Not Found", r#"{"errors":[]}"#.to_owned()),
                };
                let mut conn = conn;
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeSearch { addr }
    }
}
