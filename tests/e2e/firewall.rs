//! rstack's networks on hosts whose firewall drops forwarded traffic by
//! default: Docker's `iptables -P FORWARD DROP` (with either iptables back
//! end), a ufw-like ruleset, an nftables `inet filter` chain with `policy
//! drop`. Each is built inside a network namespace of the test's own (so
//! the host's firewall is never touched), together with an "outside" host
//! (a second namespace on a veth). With `br_netfilter` (loaded here), even
//! frames between two containers on one bridge pass those chains.
//!
//! Each trial: a stack with a published port, a second network and an
//! internal one; containers reach each other by name, the outside host,
//! and are reached on the published port (from the namespace, from the
//! outside host, and hairpin from a container); another network and the
//! internal one stay cut off; `down` leaves `iptables-save` (both back
//! ends) and `nft list ruleset` exactly as they were.

use std::process::Child;

use libtest_mimic::Trial;
use rstack_e2e::{Need, trial};

use crate::sandbox::{DownOnPanic, NEEDS, NetNs, args, setup};

pub fn tests() -> Vec<Trial> {
    let needs = |extra: &'static str| -> Vec<Need> {
        let mut v = NEEDS.to_vec();
        v.push(Need::Command(extra));
        v
    };
    vec![
        trial(
            "firewall::iptables_nft_forward_drop",
            &needs("iptables-nft"),
            || with_firewall("iptables-nft -P FORWARD DROP"),
        ),
        trial(
            "firewall::iptables_legacy_forward_drop",
            &needs("iptables-legacy"),
            || with_firewall("iptables-legacy -P FORWARD DROP"),
        ),
        trial("firewall::ufw_like_ruleset", &needs("iptables-nft"), || {
            with_firewall(UFW_LIKE)
        }),
        trial("firewall::nftables_policy_drop", &needs("nft"), || {
            with_firewall(NFT_DROP)
        }),
    ]
}

/// ufw's shape: FORWARD policy DROP, its chains jumped to from FORWARD,
/// replies accepted there, everything else logged and dropped.
const UFW_LIKE: &str = "iptables-nft -N ufw-before-forward && \
    iptables-nft -N ufw-reject-forward && \
    iptables-nft -A FORWARD -j ufw-before-forward && \
    iptables-nft -A FORWARD -j ufw-reject-forward && \
    iptables-nft -A ufw-before-forward -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT && \
    iptables-nft -A ufw-reject-forward -j REJECT && \
    iptables-nft -P FORWARD DROP";

const NFT_DROP: &str = "printf '%s\\n' 'table inet filter {' \
    '  chain forward { type filter hook forward priority 0; policy drop;' \
    '    ct state established,related accept' \
    '  }' '}' | nft -f -";

const STACK: &str = r#"
services:
  web:
    image: IMAGE
    command: ["sh", "-c", "mkdir -p /www && echo web-ok > /www/index.html && exec httpd -f -p 80 -h /www"]
    networks: [front]
    ports: ["8080:80"]
    stop_signal: SIGKILL
  client:
    image: IMAGE
    command: ["sleep", "3600"]
    networks: [front]
    stop_signal: SIGKILL
  other:
    image: IMAGE
    command: ["sleep", "3600"]
    networks: [back]
    stop_signal: SIGKILL
  secret:
    image: IMAGE
    command: ["sleep", "3600"]
    networks: [hidden]
    stop_signal: SIGKILL
networks:
  front: {}
  back: {}
  hidden: {internal: true}
"#;

/// The host's whole firewall as text: both iptables back ends and nft.
fn firewall_state(ns: &NetNs) -> String {
    ns.sh("for t in iptables-nft-save iptables-legacy-save; do \
           command -v $t >/dev/null && { echo \"== $t\"; $t | grep -v '^#'; }; done; \
         echo '== nft'; nft list ruleset")
}

/// A second namespace joined to the test's by a veth: 10.124.0.1 on the
/// test side, 10.124.0.2 on the outside, with a page to serve on port 8000.
fn outside_host(ns: &NetNs, www: &std::path::Path) -> NetNs {
    let outside = NetNs::new();
    ns.sh(&format!(
        "ip link add fw-in type veth peer name fw-out netns {} && \
         ip addr add 10.124.0.1/24 dev fw-in && ip link set fw-in up",
        outside.pid()
    ));
    outside.sh(
        "ip addr add 10.124.0.2/24 dev fw-out && ip link set fw-out up && \
         ip route add default via 10.124.0.1",
    );
    std::fs::write(www.join("index.html"), "outside-ok\n").expect("the outside page");
    outside
}

fn with_firewall(setup_firewall: &str) {
    let ns = NetNs::new();
    let www = tempfile::tempdir().expect("the outside host's pages");
    let outside = outside_host(&ns, www.path());
    // the outside host's web server, started in the background
    let _server = Killed(
        outside
            .nsenter()
            .args(["busybox", "httpd", "-f", "-p", "10.124.0.2:8000"])
            .arg("-h")
            .arg(www.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("busybox httpd outside"),
    );
    let out = ns.sh(&format!("{setup_firewall} && echo firewall-ready"));
    assert!(
        out.contains("firewall-ready"),
        "setting up the firewall failed: {out}"
    );
    ns.sh("sysctl -qw net.ipv4.ip_forward=1");
    let before = firewall_state(&ns);

    let (r, _image, base) = setup(STACK);
    let guard = DownOnPanic {
        ns: &ns,
        r: &r,
        base: &base,
    };
    ns.ok(&r, &args(&base, &["up", "-d"]));
    let info = ns.ok(&r, &["info"]);
    assert!(
        info.stdout.contains("Firewall: nftables (table ip rstack)"),
        "{info}"
    );

    let exec =
        |svc: &str, cmd: &str| ns.rstack(&r, &args(&base, &["exec", "-T", svc, "sh", "-c", cmd]));
    let fetch = |svc: &str, url: &str| exec(svc, &format!("timeout 5 wget -q -O - {url}"));
    let web_ip = exec(
        "web",
        "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1",
    )
    .stdout
    .trim()
    .to_owned();
    assert!(web_ip.contains('.'), "web's address: {web_ip:?}");

    // between two containers of one network, by name (through br_netfilter)
    let got = fetch("client", "http://web/");
    assert_eq!(got.stdout, "web-ok\n", "client -> web by name:\n{got}");
    // from a container out (masquerade, forwarded to the outside host)
    let got = fetch("client", "http://10.124.0.2:8000/");
    assert_eq!(got.stdout, "outside-ok\n", "client -> outside:\n{got}");
    // the published port: from the host, from outside, hairpin
    let host = ns.sh("timeout 5 busybox wget -q -O - http://127.0.0.1:8080/");
    assert_eq!(host, "web-ok\n", "host -> published port");
    let from_outside = outside.sh("timeout 5 busybox wget -q -O - http://10.124.0.1:8080/");
    assert_eq!(from_outside, "web-ok\n", "outside -> published port");
    let got = fetch("client", "http://10.124.0.1:8080/");
    assert_eq!(
        got.stdout, "web-ok\n",
        "hairpin through the published port:\n{got}"
    );
    // the host to a container directly
    let direct = ns.sh(&format!("timeout 5 busybox wget -q -O - http://{web_ip}/"));
    assert_eq!(direct, "web-ok\n", "host -> container address");

    // another network is cut off, the internal one too
    let got = fetch("other", &format!("http://{web_ip}/"));
    assert!(!got.success(), "another network reached web:\n{got}");
    let got = fetch("secret", "http://10.124.0.2:8000/");
    assert!(
        !got.success(),
        "the internal network reached outside:\n{got}"
    );
    let from_outside = outside.sh(&format!(
        "timeout 3 busybox wget -q -O - http://{web_ip}/ || echo cut-off"
    ));
    assert_eq!(
        from_outside, "cut-off\n",
        "outside reached a container address unpublished"
    );

    ns.ok(&r, &args(&base, &["down", "-t", "0"]));
    drop(guard);
    let after = firewall_state(&ns);
    assert_eq!(
        after, before,
        "down must leave the host's firewall as it was"
    );
    ns.sh("ip link del fw-in");
    ns.assert_clean(&r);
}

/// A child killed and reaped when dropped (also when the test panics).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
