//! `rstack network connect/disconnect` on a running stack container, as
//! `docker network connect` does it: an interface appears or goes live,
//! and reachability by name follows both ways.

use libtest_mimic::Trial;
use rstack_e2e::trial;

use crate::sandbox::{DownOnPanic, NEEDS, NetNs, args, setup};

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "network::connect_and_disconnect_a_running_container",
        NEEDS,
        connect_disconnect,
    )]
}

const TWO_NETS: &str = r#"
services:
  a:
    image: IMAGE
    command: ["sh", "-c", "mkdir -p /www && echo a here > /www/index.html && exec httpd -f -p 80 -h /www"]
    networks: [one]
    stop_signal: SIGKILL
  b:
    image: IMAGE
    command: ["sh", "-c", "mkdir -p /www && echo b here > /www/index.html && exec httpd -f -p 80 -h /www"]
    networks: [two]
    stop_signal: SIGKILL
networks:
  one: {}
  two: {}
"#;

fn connect_disconnect() {
    let ns = NetNs::new();
    let (r, _image, base) = setup(TWO_NETS);
    let _guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    let get = |from: &str, host: &str| {
        let url = format!("http://{host}/");
        ns.rstack(
            &r,
            &args(
                &base,
                &[
                    "exec", "-T", from, "timeout", "5", "wget", "-q", "-O", "-", &url,
                ],
            ),
        )
    };
    assert!(!get("a", "b").success(), "a and b share no network yet");
    ns.ok(
        &r,
        &[
            "network", "connect", "--alias", "bee", "demo_two", "demo-a-1",
        ],
    );
    let out = get("a", "b");
    assert_eq!(out.stdout, "b here\n", "{out}");
    let out = get("b", "bee");
    assert_eq!(out.stdout, "a here\n", "{out}");
    let eth = ns.ok(
        &r,
        &args(
            &base,
            &["exec", "-T", "a", "sh", "-c", "ip -o link | grep -c eth"],
        ),
    );
    assert_eq!(eth.stdout, "2\n", "{eth}");
    let again = ns.rstack(&r, &["network", "connect", "demo_two", "demo-a-1"]);
    assert!(!again.success(), "{again}");
    again.assert_stderr_mentions(&["already exists in network demo_two"]);

    ns.ok(&r, &["network", "disconnect", "demo_two", "demo-a-1"]);
    assert!(!get("a", "b").success(), "disconnected");
    let eth = ns.ok(
        &r,
        &args(
            &base,
            &["exec", "-T", "a", "sh", "-c", "ip -o link | grep -c eth"],
        ),
    );
    assert_eq!(eth.stdout, "1\n", "{eth}");
    let not = ns.rstack(&r, &["network", "disconnect", "demo_two", "demo-a-1"]);
    assert!(!not.success(), "{not}");
    not.assert_stderr_mentions(&["is not connected to network demo_two"]);
    ns.ok(&r, &["network", "disconnect", "-f", "demo_two", "demo-a-1"]);
    let none = ns.rstack(&r, &["network", "connect", "demo_two", "nope"]);
    assert!(!none.success(), "{none}");
    none.assert_stderr_mentions(&["No such container: nope"]);

    // connected again, then taken down with the project: nothing is left
    ns.ok(&r, &["network", "connect", "demo_two", "demo-a-1"]);
    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
    ns.assert_clean(&r);
}
