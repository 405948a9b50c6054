//! Where a pull goes: mirrors, remapped locations, blocked registries.
//!
//! An image reference is a *name* (`busybox:1.35` is
//! `docker.io/library/busybox:1.35`), kept as it is in the store, `images`,
//! `ps` and `inspect`. Where its bytes come from is configured apart from
//! the name, in two places users already have:
//!
//! - `ROOT/config.json`, Docker's `daemon.json` keys (`registry-mirrors`
//!   for Docker Hub, `insecure-registries`; [`daemon`]);
//! - containers-registries.conf(5) (`/etc/containers/registries.conf` and
//!   its `registries.conf.d/*.conf`, or the file given with
//!   `--registries-conf` / `RSTACK_REGISTRIES_CONF`; [`conf`]).
//!
//! [`RegistryConfig::endpoints`] turns a reference into the ordered list of
//! locations to try: the Docker Hub mirrors of config.json (for `docker.io`
//! names), then the mirrors of the registries.conf entry with the longest
//! matching prefix (those its `pull-from-mirror` allows for this reference),
//! then the entry's primary location. A short name with a registries.conf
//! alias is fetched from the alias' target, still under its own name.
//! Digests are verified the same whichever location serves them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::reference::{self, Reference};

pub mod conf;
pub mod daemon;

pub use conf::Alias;
pub use daemon::HubMirror;

/// registries.conf's place when none is given.
pub const DEFAULT_REGISTRIES_CONF: &str = "/etc/containers/registries.conf";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML")]
    Toml {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{path} is not valid JSON")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {key}: {reason}")]
    Invalid {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error(
        "pulling {reference} is blocked: the registry entry with prefix {prefix:?} in {path} has `blocked = true`"
    )]
    Blocked {
        reference: String,
        prefix: String,
        path: PathBuf,
    },
    #[error("{path}: {what} {location:?} gives {rewritten:?}, which is not an image reference")]
    BadRewrite {
        path: PathBuf,
        what: &'static str,
        location: String,
        rewritten: String,
        #[source]
        source: Box<reference::Error>,
    },
}

/// `pull-from-mirror` of a `[[registry.mirror]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFromMirror {
    All,
    DigestOnly,
    TagOnly,
}

impl PullFromMirror {
    fn as_str(self) -> &'static str {
        match self {
            PullFromMirror::All => "all",
            PullFromMirror::DigestOnly => "digest-only",
            PullFromMirror::TagOnly => "tag-only",
        }
    }

    /// Whether a pull of `r` may use a mirror with this setting: a
    /// reference with a digest is a digest pull (its tag, if any, is not
    /// what is fetched).
    fn allows(self, r: &Reference) -> bool {
        match self {
            PullFromMirror::All => true,
            PullFromMirror::DigestOnly => r.digest().is_some(),
            PullFromMirror::TagOnly => r.digest().is_none(),
        }
    }
}

/// One `[[registry]]` of registries.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `host[:port][/path]`, or `*.domain` (a wildcard on the registry host).
    pub prefix: String,
    /// Where the prefix really is; empty for a wildcard prefix (the name's
    /// own registry).
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirrors: Vec<RuleMirror>,
    /// The file that set it.
    pub file: PathBuf,
}

/// One `[[registry.mirror]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMirror {
    pub location: String,
    pub insecure: bool,
    pub pull_from_mirror: PullFromMirror,
}

/// One place to pull a reference from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The reference at that place (its registry is the host to contact).
    pub reference: Reference,
    /// Plain HTTP (and, over HTTPS, no certificate check is asked for).
    pub insecure: bool,
    /// A mirror, rather than the primary location.
    pub mirror: bool,
}

impl Endpoint {
    /// `127.0.0.1:5001 (mirror)`, for messages.
    pub fn describe(&self) -> String {
        let mut s = self.reference.registry().to_owned();
        if self.mirror {
            s.push_str(" (mirror)");
        }
        s
    }
}

/// The effective registry configuration: config.json and registries.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    pub daemon_file: PathBuf,
    pub daemon: daemon::Daemon,
    /// The registries.conf asked for (read or not).
    pub conf_path: PathBuf,
    pub conf: conf::Conf,
    /// `RSTACK_INSECURE_REGISTRIES` (comma-separated).
    pub env_insecure: Vec<String>,
}

impl RegistryConfig {
    /// Reads `ROOT/config.json` and registries.conf: `conf_override`
    /// (which must exist) or [`DEFAULT_REGISTRIES_CONF`] (if it exists),
    /// each with its `.d` drop-ins.
    pub fn load(root: &Path, conf_override: Option<&Path>) -> Result<RegistryConfig, Error> {
        let daemon_file = root.join("config.json");
        let daemon = daemon::load(&daemon_file)?;
        let conf_path = conf_override
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_REGISTRIES_CONF));
        let conf = conf::load(&conf_path, conf_override.is_some())?;
        let env_insecure = std::env::var("RSTACK_INSECURE_REGISTRIES")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        Ok(RegistryConfig {
            daemon_file,
            daemon,
            conf_path,
            conf,
            env_insecure,
        })
    }

    /// Plain HTTP for `registry` (`host[:port]`) outside any rule: loopback
    /// hosts, `insecure-registries`, `RSTACK_INSECURE_REGISTRIES`.
    fn listed_insecure(&self, registry: &str) -> bool {
        let loopback =
            Reference::parse(&format!("{registry}/x")).is_ok_and(|r| r.is_loopback_registry());
        loopback
            || self
                .daemon
                .insecure_registries
                .iter()
                .any(|s| s == registry)
            || self.env_insecure.iter().any(|s| s == registry)
    }

    /// Plain HTTP for `registry`, for push and login: listed, or a
    /// registries.conf entry for it says `insecure = true`.
    pub fn is_insecure(&self, registry: &str) -> bool {
        if self.listed_insecure(registry) {
            return true;
        }
        Reference::parse(&format!("{registry}/x"))
            .ok()
            .and_then(|r| self.rule_for(&r))
            .is_some_and(|(rule, _)| rule.insecure)
    }

    /// The rule with the longest prefix matching `r`, and the length of
    /// `r`'s full text it matched.
    fn rule_for(&self, r: &Reference) -> Option<(&Rule, usize)> {
        let full = r.to_string();
        let mut best: Option<(&Rule, usize, bool)> = None;
        for rule in &self.conf.rules {
            let Some((len, wildcard)) = prefix_match(&full, r.registry(), &rule.prefix) else {
                continue;
            };
            let better = match best {
                None => true,
                Some((_, l, w)) => len > l || (len == l && w && !wildcard),
            };
            if better {
                best = Some((rule, len, wildcard));
            }
        }
        best.map(|(rule, len, _)| (rule, len))
    }

    /// The places to pull `r` from, in order (see the module docs).
    /// `input` is the reference as the user wrote it (short-name aliases
    /// apply only to short names).
    pub fn endpoints(&self, r: &Reference, input: &str) -> Result<Vec<Endpoint>, Error> {
        let source = self.aliased(r, input)?;
        let source = source.as_ref().unwrap_or(r);
        let mut out: Vec<Endpoint> = Vec::new();
        let rule = self.rule_for(source);
        if let Some((rule, _)) = rule
            && rule.blocked
        {
            return Err(Error::Blocked {
                reference: source.familiar(),
                prefix: rule.prefix.clone(),
                path: rule.file.clone(),
            });
        }
        if source.registry() == reference::DOCKER_HUB {
            for m in &self.daemon.hub_mirrors {
                let at = rewrite(source, &m.registry, reference::DOCKER_HUB.len())
                    .map_err(|e| self.bad_rewrite("registry-mirrors entry", &m.url, e))?;
                out.push(Endpoint {
                    insecure: m.insecure || self.listed_insecure(at.registry()),
                    reference: at,
                    mirror: true,
                });
            }
        }
        match rule {
            Some((rule, len)) => {
                for m in rule
                    .mirrors
                    .iter()
                    .filter(|m| m.pull_from_mirror.allows(source))
                {
                    let at = rewrite(source, &m.location, len)
                        .map_err(|e| rule_rewrite_error(rule, "mirror location", &m.location, e))?;
                    out.push(Endpoint {
                        insecure: m.insecure || self.listed_insecure(at.registry()),
                        reference: at,
                        mirror: true,
                    });
                }
                let at = if rule.location.is_empty() {
                    source.clone()
                } else {
                    rewrite(source, &rule.location, len)
                        .map_err(|e| rule_rewrite_error(rule, "location", &rule.location, e))?
                };
                out.push(Endpoint {
                    insecure: rule.insecure || self.listed_insecure(at.registry()),
                    reference: at,
                    mirror: false,
                });
            }
            None => out.push(Endpoint {
                insecure: self.listed_insecure(source.registry()),
                reference: source.clone(),
                mirror: false,
            }),
        }
        let mut seen = Vec::new();
        out.retain(|e| {
            let new = !seen.contains(&e.reference);
            seen.push(e.reference.clone());
            new
        });
        Ok(out)
    }

    /// The alias target of a short name (with the input's tag or digest).
    fn aliased(&self, r: &Reference, input: &str) -> Result<Option<Reference>, Error> {
        if !reference::is_short_name(input) {
            return Ok(None);
        }
        let name = input.split('@').next().unwrap_or(input);
        let name = match name.rsplit_once(':') {
            Some((n, _)) => n,
            None => name,
        };
        let Some(alias) = self.conf.aliases.get(name) else {
            return Ok(None);
        };
        let mut text = alias.target.clone();
        if let Some(tag) = r.tag() {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = r.digest() {
            text.push('@');
            text.push_str(digest);
        }
        Reference::parse(&text)
            .map(Some)
            .map_err(|source| Error::BadRewrite {
                path: alias.file.clone(),
                what: "alias",
                location: alias.target.clone(),
                rewritten: text,
                source: Box::new(source),
            })
    }

    fn bad_rewrite(&self, what: &'static str, location: &str, e: RewriteError) -> Error {
        Error::BadRewrite {
            path: self.daemon_file.clone(),
            what,
            location: location.to_owned(),
            rewritten: e.text,
            source: Box::new(e.source),
        }
    }

    /// The configuration as `rstack info --format json` shows it.
    pub fn to_json(&self) -> serde_json::Value {
        let rules: Vec<serde_json::Value> = self
            .conf
            .rules
            .iter()
            .map(|r| {
                serde_json::json!({
                    "Prefix": r.prefix,
                    "Location": r.location,
                    "Insecure": r.insecure,
                    "Blocked": r.blocked,
                    "Mirrors": r.mirrors.iter().map(|m| serde_json::json!({
                        "Location": m.location,
                        "Insecure": m.insecure,
                        "PullFromMirror": m.pull_from_mirror.as_str(),
                    })).collect::<Vec<_>>(),
                    "File": r.file,
                })
            })
            .collect();
        let aliases: BTreeMap<&str, &str> = self
            .conf
            .aliases
            .iter()
            .map(|(k, v)| (k.as_str(), v.target.as_str()))
            .collect();
        let mut insecure = self.daemon.insecure_registries.clone();
        insecure.extend(self.env_insecure.iter().cloned());
        serde_json::json!({
            "Mirrors": self.daemon.hub_mirrors.iter().map(|m| &m.url).collect::<Vec<_>>(),
            "InsecureRegistries": insecure,
            "RegistriesConf": self.conf_path,
            "RegistriesConfFiles": self.conf.files,
            "Registries": rules,
            "UnqualifiedSearchRegistries": self.conf.unqualified_search,
            "Aliases": aliases,
        })
    }

    /// Text lines for `rstack info` (Docker's `Registry Mirrors:` and
    /// `Insecure Registries:` blocks, then registries.conf).
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut block = |title: &str, items: Vec<String>| {
            if !items.is_empty() {
                out.push(format!("{title}:"));
                out.extend(items.into_iter().map(|i| format!(" {i}")));
            }
        };
        block(
            "Registry Mirrors",
            self.daemon
                .hub_mirrors
                .iter()
                .map(|m| m.url.clone())
                .collect(),
        );
        let mut insecure = self.daemon.insecure_registries.clone();
        insecure.extend(self.env_insecure.iter().cloned());
        insecure.push("127.0.0.0/8 (loopback)".into());
        block("Insecure Registries", insecure);
        let files = if self.conf.files.is_empty() {
            vec![format!("{} (not present)", self.conf_path.display())]
        } else {
            self.conf
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect()
        };
        block("Registries Conf", files);
        block(
            "Registries",
            self.conf.rules.iter().map(describe_rule).collect(),
        );
        block(
            "Unqualified Search Registries",
            self.conf.unqualified_search.clone(),
        );
        block(
            "Short-Name Aliases",
            self.conf
                .aliases
                .iter()
                .map(|(k, v)| format!("{k} = {}", v.target))
                .collect(),
        );
        out
    }
}

fn describe_rule(r: &Rule) -> String {
    let mut s = r.prefix.clone();
    if !r.location.is_empty() && r.location != r.prefix {
        s.push_str(&format!(" -> {}", r.location));
    }
    if r.insecure {
        s.push_str(" (insecure)");
    }
    if r.blocked {
        s.push_str(" (blocked)");
    }
    for m in &r.mirrors {
        s.push_str(&format!(", mirror {}", m.location));
        if m.insecure {
            s.push_str(" (insecure)");
        }
        if m.pull_from_mirror != PullFromMirror::All {
            s.push_str(&format!(" ({})", m.pull_from_mirror.as_str()));
        }
    }
    s
}

/// How much of `full` (a reference's text) `prefix` matches, and whether
/// by wildcard: the name must start with the prefix and go on with `/`,
/// `:`, `@` or end there; `*.domain` matches registry hosts ending in
/// `.domain`.
fn prefix_match(full: &str, registry: &str, prefix: &str) -> Option<(usize, bool)> {
    if let Some(domain) = prefix.strip_prefix("*.") {
        let host = reference::registry_host(registry);
        let suffix = format!(".{domain}");
        return (host.len() > suffix.len() && host.ends_with(&suffix))
            .then_some((registry.len(), true));
    }
    let rest = full.strip_prefix(prefix)?;
    match rest.chars().next() {
        None | Some('/' | ':' | '@') => Some((prefix.len(), false)),
        Some(_) => None,
    }
}

struct RewriteError {
    text: String,
    source: reference::Error,
}

/// `r`'s text with its first `len` bytes replaced by `location`.
fn rewrite(r: &Reference, location: &str, len: usize) -> Result<Reference, RewriteError> {
    let full = r.to_string();
    let text = format!("{location}{}", &full[len..]);
    Reference::parse(&text).map_err(|source| RewriteError { text, source })
}

fn rule_rewrite_error(rule: &Rule, what: &'static str, location: &str, e: RewriteError) -> Error {
    Error::BadRewrite {
        path: rule.file.clone(),
        what,
        location: location.to_owned(),
        rewritten: e.text,
        source: Box::new(e.source),
    }
}

#[cfg(test)]
#[path = "registries/tests.rs"]
mod tests;
