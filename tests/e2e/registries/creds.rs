//! Credentials as users keep them: Docker's `credHelpers` / `credsStore`
//! (a `docker-credential-*` helper, here a shell script), against a
//! registry with token auth served by a real token server.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rstack_e2e::tokenauth::TokenServer;
use rstack_e2e::{Fixtures, Registry, Rstack, RunOutput};
use serde_json::json;

const USER: &str = "e2e-token-user";
const PASSWORD: &str = "e2e-token-pw";

/// Writes `docker-credential-e2e` into `bin`: secrets in `bin/store/`
/// (one file per server), every call logged to `bin/calls.log`.
fn helper(bin: &Path) {
    std::fs::create_dir_all(bin.join("store")).unwrap();
    let script = bin.join("docker-credential-e2e");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
d={dir}
key() {{ echo "$1" | tr '/:' '__'; }}
case "$1" in
get) read s; echo "get $s" >> "$d/calls.log"; f="$d/store/$(key "$s")"
     if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store) j=$(cat); s=$(echo "$j" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
     echo "store $s" >> "$d/calls.log"; echo "$j" > "$d/store/$(key "$s")" ;;
erase) read s; echo "erase $s" >> "$d/calls.log"; rm -f "$d/store/$(key "$s")" ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
"#,
            dir = bin.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn calls(bin: &Path) -> String {
    std::fs::read_to_string(bin.join("calls.log")).unwrap_or_default()
}

/// `rstack <args>` with `bin` first on PATH and `docker` as DOCKER_CONFIG.
fn run_with(r: &Rstack, bin: &Path, docker: Option<&Path>, args: &[&str]) -> RunOutput {
    let mut cmd: Command = r.command(args);
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin.display()));
    if let Some(d) = docker {
        cmd.env("DOCKER_CONFIG", d);
    }
    let out = r.run_command(cmd, None);
    assert!(out.success(), "expected success:\n{out}");
    out
}

fn token_registry() -> (TokenServer, Registry) {
    let tokens = TokenServer::start(USER, PASSWORD).expect("start the token server");
    let registry =
        Registry::start_with_token(&tokens, USER, PASSWORD).expect("start the token registry");
    (tokens, registry)
}

/// `credHelpers` of Docker's config give the credentials a pull and a
/// search need from a registry with token auth.
pub(crate) fn cred_helpers_with_token_auth() {
    let (tokens, registry) = token_registry();
    let fixture = Fixtures::shared()
        .busybox_oci
        .push_to(&registry, "e2e/private:v1")
        .expect("push through token auth");
    assert!(tokens.issued() > 0, "the push used the token server");
    let host = registry.host();
    let r = Rstack::new();
    let out = r.fails(&["pull", "-q", &fixture.reference()]);
    out.assert_stderr_mentions(&["unauthorized"]);

    let bin = r.work_dir().join("bin");
    helper(&bin);
    std::fs::write(
        bin.join("store").join(host.replace(':', "_")),
        json!({ "ServerURL": host, "Username": USER, "Secret": PASSWORD }).to_string(),
    )
    .unwrap();
    let docker: PathBuf = r.work_dir().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        json!({ "credHelpers": { &host: "e2e" } }).to_string(),
    )
    .unwrap();
    let before = tokens.issued();
    run_with(
        &r,
        &bin,
        Some(&docker),
        &["pull", "-q", &fixture.reference()],
    );
    assert!(
        calls(&bin).contains(&format!("get {host}")),
        "the helper was asked: {}",
        calls(&bin)
    );
    assert!(tokens.issued() > before, "the pull used a token");
    let v = super::inspect(&r, &fixture.reference());
    assert_eq!(v["Id"], fixture.id());

    let out = run_with(
        &r,
        &bin,
        Some(&docker),
        &[
            "search",
            "--format",
            "{{.Name}}",
            &format!("{host}/private"),
        ],
    );
    assert_eq!(out.stdout.trim(), format!("{host}/e2e/private"), "{out}");
    r.assert_no_leaks();
}

/// `credsStore` in rstack's own config: `login` stores the secret with
/// the helper (the file only lists the server), pulls get it back, and
/// `logout` erases it.
pub(crate) fn creds_store_for_login() {
    let (_tokens, registry) = token_registry();
    let fixture = Fixtures::shared()
        .busybox_oci
        .push_to(&registry, "e2e/private:v1")
        .expect("push through token auth");
    let host = registry.host();
    let r = Rstack::new();
    let bin = r.work_dir().join("bin");
    helper(&bin);
    let own = r.config_dir().join("config.json");
    std::fs::write(&own, r#"{"credsStore":"e2e"}"#).unwrap();

    run_with(
        &r,
        &bin,
        None,
        &["login", "-u", USER, "-p", PASSWORD, &host],
    );
    assert!(
        calls(&bin).contains(&format!("store {host}")),
        "{}",
        calls(&bin)
    );
    let text = std::fs::read_to_string(&own).unwrap();
    assert!(
        text.contains(&host) && !text.contains(PASSWORD) && !text.contains("\"auth\""),
        "the file lists the server, the helper keeps the secret: {text}"
    );
    run_with(&r, &bin, None, &["pull", "-q", &fixture.reference()]);
    assert_eq!(super::inspect(&r, &fixture.reference())["Id"], fixture.id());

    run_with(&r, &bin, None, &["logout", &host]);
    assert!(
        calls(&bin).contains(&format!("erase {host}")),
        "{}",
        calls(&bin)
    );
    r.ok(&["rmi", &fixture.reference()]);
    let mut cmd = r.command(&["pull", "-q", &fixture.reference()]);
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin.display()));
    let out = r.run_command(cmd, None);
    assert!(!out.success(), "logged out: the pull is refused:\n{out}");
    r.assert_no_leaks();
}
