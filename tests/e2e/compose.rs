//! Compose behaviour where rstack must act as `docker compose` v2 does on
//! real-world files (each trial written from a reproduction).

use libtest_mimic::Trial;
use rstack_e2e::trial;

use crate::stack::{DownOnPanic, NEEDS, NetNs, args, setup};

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "compose::ps_lists_exposed_ports_and_takes_templates",
        NEEDS,
        ps_ports_and_templates,
    )]
}

const EXPOSE: &str = r#"
services:
  web:
    image: IMAGE
    command: ["sleep", "3600"]
    expose: ["8080", "80", "443"]
    stop_signal: SIGKILL
  pub:
    image: IMAGE
    command: ["sleep", "3600"]
    ports: ["8081:80"]
    expose: ["80", "443"]
    stop_signal: SIGKILL
"#;

/// `ps` PORTS lists expose-only ports after the published ones, and
/// `--format` takes Go templates (docker compose v2).
fn ps_ports_and_templates() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(EXPOSE);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    let out = ns.ok(&r, &args(&base, &["ps"]));
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{out}"))
            .to_owned()
    };
    assert!(
        line("demo-web-1").ends_with("80/tcp, 443/tcp, 8080/tcp"),
        "{out}"
    );
    assert!(
        line("demo-pub-1").ends_with("0.0.0.0:8081->80/tcp, 443/tcp"),
        "{out}"
    );
    let json = ns.ok(&r, &args(&base, &["ps", "--format", "json"]));
    let web = json
        .json_lines()
        .into_iter()
        .find(|v| v["Name"] == "demo-web-1")
        .unwrap();
    assert_eq!(web["Ports"], "80/tcp, 443/tcp, 8080/tcp");

    let t = ns.ok(
        &r,
        &args(&base, &["ps", "--format", "{{.Name}}\\t{{.State}}"]),
    );
    let mut lines: Vec<&str> = t.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["demo-pub-1\trunning", "demo-web-1\trunning"], "{t}");
    let bad = ns.rstack(&r, &args(&base, &["ps", "--format", "{{.Name"]));
    assert!(!bad.success(), "{bad}");
    bad.assert_stderr_mentions(&["unclosed"]);
    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
}
