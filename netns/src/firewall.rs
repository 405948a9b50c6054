//! Letting rstack's traffic through the host's own firewall.
//!
//! rstack's NAT and isolation live in its own nft table (see [`crate::nft`]),
//! but a packet is dropped if *any* base chain at the forward hook drops it:
//! Docker sets the iptables `filter FORWARD` policy to DROP (and loads
//! `br_netfilter`, so even frames between two containers on one bridge pass
//! that hook), ufw's `DEFAULT_FORWARD_POLICY="DROP"` and hand-written
//! nftables rulesets with `policy drop` do the same. An accept in rstack's
//! table cannot overrule them, so, as Docker and netavark do, rstack adds
//! accept rules for its bridges *to the host's firewall*:
//!
//! - **iptables** (each back end whose `filter` table exists: the one
//!   `iptables` points to, and the other one when its table is loaded): a
//!   chain of rstack's own, `RSTACK-FORWARD`, filled from the network state
//!   in one `iptables-restore --noflush` transaction, and one jump to it at
//!   the top of `FORWARD`. A dockerd restart leaves both alone (Docker only
//!   re-inserts its own jumps above it). A `filter` table that does not exist
//!   is never created: a host with no iptables ruleset is left as it was.
//! - **nftables** base chains at the forward hook in other tables (not
//!   iptables-nft's, which the above covers): the same accepts inserted at
//!   the top of each chain, marked `comment "rstack"` so they are found again
//!   by their handles and replaced or removed in one `nft -f` transaction.
//!
//! The accepts are the same in both (per rstack bridge): what comes from
//! the bridge, replies going into it, and DNATed traffic to its published
//! ports. What must stay blocked (internal networks, one network from
//! another, new connections into a bridge from elsewhere) is dropped in
//! rstack's own table, and a drop there is final whatever the host accepts.
//!
//! What is changed is recorded (`RUN/networks/.firewall`, JSON) before it is
//! changed, and removed with the last network; rules already present (a
//! crashed rstack, another project) are replaced, never doubled. The host's
//! policies and its other rules are never touched.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// rstack's own iptables chain.
pub const CHAIN: &str = "RSTACK-FORWARD";
/// The comment that marks rstack's rules in chains of other nft tables.
pub const COMMENT: &str = "rstack";

/// Errors of programming the host's firewall.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("the host refused `{command}`{}: {stderr}", rule.as_deref().map(|r| format!(" (rule: {r})")).unwrap_or_default())]
    Refused {
        command: String,
        rule: Option<String>,
        stderr: String,
    },
    #[error("cannot read `nft -j list ruleset` or write the record as JSON")]
    Parse(#[source] serde_json::Error),
    #[error("cannot record the firewall changes")]
    Record(#[from] crate::fsutil::Error),
}

/// An iptables back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Iptables {
    /// `iptables-nft`: x_tables rules kept in the nft `ip filter` table.
    Nft,
    /// `iptables-legacy`: the kernel's x_tables.
    Legacy,
}

impl Iptables {
    fn binary(self) -> &'static str {
        match self {
            Iptables::Nft => "iptables-nft",
            Iptables::Legacy => "iptables-legacy",
        }
    }
}

/// A base chain at the forward hook of another nft table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ForeignChain {
    pub family: String,
    pub table: String,
    pub chain: String,
}

impl std::fmt::Display for ForeignChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.family, self.table, self.chain)
    }
}

/// What rstack found on the host and programs (or would).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firewall {
    /// iptables back ends whose `filter` table exists.
    pub iptables: Vec<Iptables>,
    /// Forward-hook base chains of other nft tables.
    pub nft_chains: Vec<ForeignChain>,
}

impl Firewall {
    /// One line for `network inspect` / `info`: which back ends rstack uses.
    pub fn describe(&self) -> String {
        let mut parts = vec!["nftables (table ip rstack)".to_owned()];
        for b in &self.iptables {
            parts.push(format!("{} (chain {CHAIN})", b.binary()));
        }
        for c in &self.nft_chains {
            parts.push(format!("nftables chain {c} (rules marked \"{COMMENT}\")"));
        }
        parts.join(", ")
    }

    fn union(&self, other: &Firewall) -> Firewall {
        let mut u = self.clone();
        for b in &other.iptables {
            if !u.iptables.contains(b) {
                u.iptables.push(*b);
            }
        }
        for c in &other.nft_chains {
            if !u.nft_chains.contains(c) {
                u.nft_chains.push(c.clone());
            }
        }
        u.nft_chains.sort();
        u
    }
}

/// Our rules found in one foreign chain, by handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marked {
    pub chain: ForeignChain,
    pub handle: u64,
}

/// What `nft -j list ruleset` says that matters here.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Ruleset {
    /// iptables-nft's `ip filter` table with its `FORWARD` chain exists.
    pub iptables_nft_filter: bool,
    pub foreign: Vec<ForeignChain>,
    pub marked: Vec<Marked>,
}

/// iptables-nft keeps its tables under these names, with upper-case chains.
fn iptables_nft_table(family: &str, table: &str) -> bool {
    matches!(family, "ip" | "ip6")
        && matches!(table, "filter" | "nat" | "mangle" | "raw" | "security")
}

/// Reads the JSON ruleset: foreign forward-hook base chains (families that
/// see IPv4: `ip`, `inet`; not rstack's table, not iptables-nft's), and
/// rules marked with [`COMMENT`] in them.
pub(crate) fn parse_ruleset(json: &str) -> Result<Ruleset, Error> {
    #[derive(Deserialize)]
    struct Doc {
        nftables: Vec<serde_json::Value>,
    }
    let doc: Doc = serde_json::from_str(json).map_err(Error::Parse)?;
    let mut rs = Ruleset::default();
    let mut iptables_chains = Vec::new();
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    for item in &doc.nftables {
        if let Some(c) = item.get("chain") {
            let (family, table, name) = (s(c, "family"), s(c, "table"), s(c, "name"));
            if iptables_nft_table(&family, &table) && name.chars().all(|ch| !ch.is_lowercase()) {
                if family == "ip" && table == "filter" && name == "FORWARD" {
                    rs.iptables_nft_filter = true;
                }
                iptables_chains.push((family, table));
                continue;
            }
            if c["hook"] == "forward"
                && matches!(family.as_str(), "ip" | "inet")
                && !(family == "ip" && table == "rstack")
            {
                rs.foreign.push(ForeignChain {
                    family,
                    table,
                    chain: name,
                });
            }
        }
    }
    for item in &doc.nftables {
        if let Some(r) = item.get("rule")
            && r["comment"] == COMMENT
            && let Some(handle) = r["handle"].as_u64()
        {
            let chain = ForeignChain {
                family: s(r, "family"),
                table: s(r, "table"),
                chain: s(r, "chain"),
            };
            if rs.foreign.contains(&chain) {
                rs.marked.push(Marked { chain, handle });
            }
        }
    }
    rs.foreign.sort();
    Ok(rs)
}

/// `iptables-restore --noflush` input that (re)fills [`CHAIN`] for
/// `bridges` (declaring the chain flushes it in that mode).
pub(crate) fn iptables_script(bridges: &[String]) -> String {
    let mut s = format!("*filter\n:{CHAIN} - [0:0]\n");
    for br in bridges {
        let _ = writeln!(s, "-A {CHAIN} -i {br} -j ACCEPT");
        let _ = writeln!(
            s,
            "-A {CHAIN} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
        );
        let _ = writeln!(
            s,
            "-A {CHAIN} -o {br} -m conntrack --ctstate DNAT -j ACCEPT"
        );
    }
    s.push_str("COMMIT\n");
    s
}

/// The accepts for `bridges` as nft rule bodies.
fn nft_accepts(bridges: &[String]) -> Vec<String> {
    let set = bridges
        .iter()
        .map(|b| format!("\"{b}\""))
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        format!("oifname {{ {set} }} ct status dnat accept comment \"{COMMENT}\""),
        format!("oifname {{ {set} }} ct state established,related accept comment \"{COMMENT}\""),
        format!("iifname {{ {set} }} accept comment \"{COMMENT}\""),
    ]
}

/// One `nft -f` script: deletes the `marked` rules and, for a non-empty
/// `bridges`, inserts the accepts at the top of every chain of `chains`.
pub(crate) fn foreign_script(
    chains: &[ForeignChain],
    marked: &[Marked],
    bridges: &[String],
) -> String {
    let mut s = String::new();
    for m in marked {
        let c = &m.chain;
        let _ = writeln!(
            s,
            "delete rule {} {} {} handle {}",
            c.family, c.table, c.chain, m.handle
        );
    }
    if !bridges.is_empty() {
        for c in chains {
            // `insert` puts a rule first: the last inserted ends on top
            for body in nft_accepts(bridges) {
                let _ = writeln!(s, "insert rule {} {} {} {body}", c.family, c.table, c.chain);
            }
        }
    }
    s
}

/// The host's firewall, programmed from a run dir's record.
#[derive(Debug, Clone)]
pub struct Host {
    nft: PathBuf,
    record: PathBuf,
}

impl Host {
    pub fn new(nft: &Path, record: &Path) -> Host {
        Host {
            nft: nft.to_owned(),
            record: record.to_owned(),
        }
    }

    /// What the host has now.
    pub fn detect(&self) -> Result<Firewall, Error> {
        Ok(self.detect_with(&self.ruleset()?))
    }

    fn detect_with(&self, rs: &Ruleset) -> Firewall {
        let mut iptables = Vec::new();
        if rs.iptables_nft_filter && on_path("iptables-nft") {
            iptables.push(Iptables::Nft);
        }
        let legacy_tables =
            std::fs::read_to_string("/proc/net/ip_tables_names").unwrap_or_default();
        if legacy_tables.lines().any(|l| l.trim() == "filter") && on_path("iptables-legacy") {
            iptables.push(Iptables::Legacy);
        }
        Firewall {
            iptables,
            nft_chains: rs.foreign.clone(),
        }
    }

    fn ruleset(&self) -> Result<Ruleset, Error> {
        let out = run(
            Command::new(&self.nft).args(["-j", "list", "ruleset"]),
            None,
            None,
        )?;
        parse_ruleset(&out)
    }

    fn load_record(&self) -> Firewall {
        std::fs::read(&self.record)
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default()
    }

    fn save_record(&self, fw: &Firewall) -> Result<(), Error> {
        let data = serde_json::to_vec_pretty(fw).map_err(Error::Parse)?;
        Ok(crate::fsutil::write_atomic(&self.record, &data)?)
    }

    /// Opens the host's firewall for exactly `bridges` (all of rstack's
    /// non-empty set), or removes everything rstack added when empty.
    pub fn sync(&self, bridges: &[String]) -> Result<(), Error> {
        let rs = self.ruleset()?;
        let now = self.detect_with(&rs);
        let recorded = self.load_record();
        if bridges.is_empty() {
            let all = recorded.union(&now);
            let mut errors = Vec::new();
            for b in &all.iptables {
                if let Err(e) = remove_iptables(*b) {
                    errors.push(e);
                }
            }
            if !rs.marked.is_empty() {
                let script = foreign_script(&rs.foreign, &rs.marked, &[]);
                if let Err(e) = self.nft_script(&script) {
                    errors.push(e);
                }
            }
            if errors.is_empty() {
                let _ = std::fs::remove_file(&self.record);
            }
            return errors.into_iter().next().map_or(Ok(()), Err);
        }
        // recorded before anything is created
        self.save_record(&recorded.union(&now))?;
        for b in &now.iptables {
            apply_iptables(*b, bridges)?;
        }
        // back ends recorded earlier but gone now (e.g. their table was
        // flushed away): nothing of ours can be left there to update
        if !now.nft_chains.is_empty() || !rs.marked.is_empty() {
            self.nft_script(&foreign_script(&now.nft_chains, &rs.marked, bridges))?;
        }
        Ok(())
    }

    fn nft_script(&self, script: &str) -> Result<(), Error> {
        run(
            Command::new(&self.nft).args(["-f", "-"]),
            Some(script),
            Some(script.trim()),
        )
        .map(|_| ())
    }
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

fn apply_iptables(b: Iptables, bridges: &[String]) -> Result<(), Error> {
    let bin = b.binary();
    let script = iptables_script(bridges);
    run(
        Command::new(format!("{bin}-restore")).args(["-w", "--noflush"]),
        Some(&script),
        Some(script.trim()),
    )?;
    let jump = ["FORWARD", "-j", CHAIN];
    let present = Command::new(bin)
        .args(["-w", "-C"])
        .args(jump)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        run(
            Command::new(bin).args(["-w", "-I", "FORWARD", "1", "-j", CHAIN]),
            None,
            Some(&format!("-I FORWARD 1 -j {CHAIN}")),
        )?;
    }
    Ok(())
}

fn remove_iptables(b: Iptables) -> Result<(), Error> {
    let bin = b.binary();
    // every jump (a crashed rstack may have left two), then the chain
    for _ in 0..16 {
        let deleted = Command::new(bin)
            .args(["-w", "-D", "FORWARD", "-j", CHAIN])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !deleted {
            break;
        }
    }
    let exists = Command::new(bin)
        .args(["-w", "-n", "-L", CHAIN])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if exists {
        run(Command::new(bin).args(["-w", "-F", CHAIN]), None, None)?;
        run(Command::new(bin).args(["-w", "-X", CHAIN]), None, None)?;
    }
    Ok(())
}

/// Runs a command (stdin from `input`), its stdout on success; a refusal
/// names the command and, when given, the rule.
fn run(cmd: &mut Command, input: Option<&str>, rule: Option<&str>) -> Result<String, Error> {
    let command = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let spawn = |source| Error::Spawn {
        command: command.clone(),
        source,
    };
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(data.as_bytes()).map_err(spawn)?;
    }
    let out = child.wait_with_output().map_err(spawn)?;
    if !out.status.success() {
        return Err(Error::Refused {
            command,
            rule: rule.map(str::to_owned),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULESET: &str = r#"{"nftables": [
      {"metainfo": {"version": "1.0.6"}},
      {"table": {"family": "ip", "name": "filter", "handle": 1}},
      {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 2, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
      {"chain": {"family": "ip", "table": "filter", "name": "DOCKER-USER", "handle": 3}},
      {"chain": {"family": "inet", "table": "filter", "name": "forward", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
      {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 2, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
      {"chain": {"family": "ip6", "table": "v6", "name": "fwd", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
      {"chain": {"family": "ip", "table": "rstack", "name": "forward", "handle": 9, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
      {"rule": {"family": "inet", "table": "filter", "chain": "forward", "handle": 7, "comment": "rstack", "expr": []}},
      {"rule": {"family": "inet", "table": "filter", "chain": "forward", "handle": 8, "expr": []}},
      {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 5, "comment": "rstack", "expr": []}}
    ]}"#;

    #[test]
    fn ruleset_finds_foreign_forward_chains_and_our_rules() {
        let rs = parse_ruleset(RULESET).unwrap();
        assert!(rs.iptables_nft_filter);
        let inet = ForeignChain {
            family: "inet".into(),
            table: "filter".into(),
            chain: "forward".into(),
        };
        assert_eq!(rs.foreign, vec![inet.clone()]);
        assert_eq!(
            rs.marked,
            vec![Marked {
                chain: inet,
                handle: 7
            }]
        );
        let empty = parse_ruleset(r#"{"nftables": [{"metainfo": {}}]}"#).unwrap();
        assert_eq!(empty, Ruleset::default());
        assert!(parse_ruleset("not json").is_err());
    }

    #[test]
    fn iptables_chain_accepts_each_bridge() {
        let s = iptables_script(&["br-a".into(), "br-b".into()]);
        assert!(s.starts_with("*filter\n:RSTACK-FORWARD - [0:0]\n"), "{s}");
        for line in [
            "-A RSTACK-FORWARD -i br-a -j ACCEPT",
            "-A RSTACK-FORWARD -o br-b -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A RSTACK-FORWARD -o br-b -m conntrack --ctstate DNAT -j ACCEPT",
        ] {
            assert!(s.contains(line), "missing {line:?} in\n{s}");
        }
        assert!(s.ends_with("COMMIT\n"));
        assert_eq!(
            iptables_script(&[]),
            "*filter\n:RSTACK-FORWARD - [0:0]\nCOMMIT\n"
        );
    }

    #[test]
    fn foreign_script_replaces_our_rules_in_one_transaction() {
        let c = ForeignChain {
            family: "inet".into(),
            table: "filter".into(),
            chain: "forward".into(),
        };
        let marked = vec![Marked {
            chain: c.clone(),
            handle: 7,
        }];
        let s = foreign_script(std::slice::from_ref(&c), &marked, &["br-a".into()]);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "delete rule inet filter forward handle 7");
        assert_eq!(
            lines[3],
            "insert rule inet filter forward iifname { \"br-a\" } accept comment \"rstack\""
        );
        assert_eq!(lines.len(), 4);
        // the last network gone: only deletions
        assert_eq!(
            foreign_script(&[c], &marked, &[]),
            "delete rule inet filter forward handle 7\n"
        );
    }

    #[test]
    fn describe_names_every_back_end() {
        let fw = Firewall {
            iptables: vec![Iptables::Nft],
            nft_chains: vec![ForeignChain {
                family: "inet".into(),
                table: "filter".into(),
                chain: "forward".into(),
            }],
        };
        assert_eq!(
            fw.describe(),
            "nftables (table ip rstack), iptables-nft (chain RSTACK-FORWARD), \
             nftables chain inet filter forward (rules marked \"rstack\")"
        );
        assert_eq!(Firewall::default().describe(), "nftables (table ip rstack)");
    }
}
