//! containers-registries.conf(5): the TOML file podman, skopeo, buildah
//! and CRI-O read (`/etc/containers/registries.conf`), and its drop-ins
//! (containers-registries.conf.d(5): `registries.conf.d/*.conf`, read in
//! lexical order after the main file).
//!
//! Version 2 is `[[registry]]` tables (`prefix`, `location`, `insecure`,
//! `blocked`, `mirror-by-digest-only`, `[[registry.mirror]]` with
//! `location`, `insecure`, `pull-from-mirror`), `unqualified-search-registries`
//! and `[aliases]`. Version 1 (`[registries.search|insecure|block]`) is
//! read as the equivalent version 2 entries. Drop-ins merge as
//! containers/image merges them: a `[[registry]]` replaces the one of the
//! same prefix, `unqualified-search-registries` and `short-name-mode`
//! replace earlier values when set, aliases merge key by key (an empty
//! value erases one). Keys this format defines but rstack has no use for
//! (`credential-helpers`, `short-name-mode`, ...) are accepted; any other
//! key is an error naming the file and the key.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Error, PullFromMirror, Rule, RuleMirror};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    unqualified_search_registries: Option<Vec<String>>,
    short_name_mode: Option<String>,
    #[allow(dead_code)]
    credential_helpers: Option<Vec<String>>,
    #[allow(dead_code)]
    additional_layer_store_auth_helper: Option<String>,
    #[serde(default)]
    registry: Vec<RegistryToml>,
    aliases: Option<BTreeMap<String, String>>,
    /// Version 1.
    registries: Option<V1>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RegistryToml {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<MirrorToml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct MirrorToml {
    location: String,
    #[serde(default)]
    insecure: bool,
    pull_from_mirror: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct V1 {
    search: Option<V1List>,
    insecure: Option<V1List>,
    block: Option<V1List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct V1List {
    #[serde(default)]
    registries: Vec<String>,
}

/// What registries.conf and its drop-ins say, merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conf {
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    pub rules: Vec<Rule>,
    pub unqualified_search: Vec<String>,
    pub short_name_mode: Option<String>,
    /// Short name -> fully qualified name (no tag or digest).
    pub aliases: BTreeMap<String, Alias>,
}

/// One `[aliases]` entry and the file that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub target: String,
    pub file: PathBuf,
}

/// The drop-in directory of a registries.conf: `<path>.d`
/// (`/etc/containers/registries.conf.d`).
pub fn drop_in_dir(main: &Path) -> PathBuf {
    let mut s = main.as_os_str().to_owned();
    s.push(".d");
    PathBuf::from(s)
}

/// Reads `main` (missing is fine unless `required`) and its drop-ins.
pub fn load(main: &Path, required: bool) -> Result<Conf, Error> {
    let mut conf = Conf::default();
    match std::fs::read_to_string(main) {
        Ok(text) => conf.merge(parse(main, &text)?),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !required => {}
        Err(source) => {
            return Err(Error::Read {
                path: main.to_owned(),
                source,
            });
        }
    }
    let dir = drop_in_dir(main);
    let mut drop_ins: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(Error::Read { path: dir, source }),
    };
    drop_ins.sort();
    for path in drop_ins {
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        conf.merge(parse(&path, &text)?);
    }
    Ok(conf)
}

impl Conf {
    /// Applies a later file over this one (containers/image's order).
    fn merge(&mut self, later: Conf) {
        self.files.extend(later.files);
        for rule in later.rules {
            match self.rules.iter_mut().find(|r| r.prefix == rule.prefix) {
                Some(slot) => *slot = rule,
                None => self.rules.push(rule),
            }
        }
        if !later.unqualified_search.is_empty() {
            self.unqualified_search = later.unqualified_search;
        }
        if later.short_name_mode.is_some() {
            self.short_name_mode = later.short_name_mode;
        }
        for (name, alias) in later.aliases {
            if alias.target.is_empty() {
                self.aliases.remove(&name);
            } else {
                self.aliases.insert(name, alias);
            }
        }
    }
}

/// Parses one file (version 1 or 2) into its rules.
pub fn parse(path: &Path, text: &str) -> Result<Conf, Error> {
    let file: File = toml::from_str(text).map_err(|source| Error::Toml {
        path: path.to_owned(),
        source: Box::new(source),
    })?;
    let invalid = |key: String, reason: String| Error::Invalid {
        path: path.to_owned(),
        key,
        reason,
    };
    let v2 = !file.registry.is_empty()
        || file.unqualified_search_registries.is_some()
        || file.aliases.is_some();
    let mut conf = Conf {
        files: vec![path.to_owned()],
        ..Default::default()
    };
    if let Some(v1) = file.registries {
        if v2 {
            return Err(invalid(
                "registries".into(),
                "mixes the version 1 tables ([registries.*]) with version 2 keys".into(),
            ));
        }
        conf.rules = v1_rules(path, v1)?;
        return Ok(conf);
    }
    let mut rules: Vec<Rule> = Vec::new();
    for (i, reg) in file.registry.into_iter().enumerate() {
        let rule = rule(path, i, reg)?;
        if rules.iter().any(|r| r.prefix == rule.prefix) {
            return Err(invalid(
                format!("registry[{i}].prefix"),
                format!("prefix {:?} is defined more than once", rule.prefix),
            ));
        }
        rules.push(rule);
    }
    conf.rules = rules;
    conf.unqualified_search = file.unqualified_search_registries.unwrap_or_default();
    for (i, host) in conf.unqualified_search.iter().enumerate() {
        check_location(host)
            .map_err(|reason| invalid(format!("unqualified-search-registries[{i}]"), reason))?;
    }
    if let Some(mode) = &file.short_name_mode
        && !matches!(mode.as_str(), "enforcing" | "permissive" | "disabled" | "")
    {
        return Err(invalid(
            "short-name-mode".into(),
            format!("{mode:?} is not enforcing, permissive or disabled"),
        ));
    }
    conf.short_name_mode = file.short_name_mode.filter(|m| !m.is_empty());
    for (name, target) in file.aliases.unwrap_or_default() {
        check_alias(&name, &target)
            .map_err(|reason| invalid(format!("aliases.{name:?}"), reason))?;
        conf.aliases.insert(
            name,
            Alias {
                target,
                file: path.to_owned(),
            },
        );
    }
    Ok(conf)
}

/// One `[[registry]]` table, checked.
fn rule(path: &Path, i: usize, reg: RegistryToml) -> Result<Rule, Error> {
    let invalid = |key: &str, reason: String| Error::Invalid {
        path: path.to_owned(),
        key: format!("registry[{i}].{key}"),
        reason,
    };
    let location = reg.location.unwrap_or_default();
    let prefix = reg.prefix.unwrap_or_else(|| location.clone());
    if prefix.is_empty() {
        return Err(invalid(
            "location",
            "neither prefix nor location is set".into(),
        ));
    }
    let wildcard = prefix.starts_with("*.");
    // `location` defaults to the prefix (containers-registries.conf(5)).
    let location = if location.is_empty() && !wildcard {
        prefix.clone()
    } else {
        location
    };
    if wildcard {
        check_location(&prefix[2..]).map_err(|r| invalid("prefix", r))?;
        if !location.is_empty() && location != prefix {
            return Err(invalid(
                "location",
                format!("cannot be set with the wildcard prefix {prefix:?}"),
            ));
        }
    } else {
        check_location(&location).map_err(|r| invalid("location", r))?;
        check_location(&prefix).map_err(|r| invalid("prefix", r))?;
    }
    let mut mirrors = Vec::new();
    for (j, m) in reg.mirror.into_iter().enumerate() {
        let key = |k: &str| format!("mirror[{j}].{k}");
        check_location(&m.location).map_err(|r| invalid(&key("location"), r))?;
        let pull_from_mirror = match m.pull_from_mirror.as_deref() {
            None | Some("") | Some("all") => PullFromMirror::All,
            Some("digest-only") => PullFromMirror::DigestOnly,
            Some("tag-only") => PullFromMirror::TagOnly,
            Some(other) => {
                return Err(invalid(
                    &key("pull-from-mirror"),
                    format!("{other:?} is not all, digest-only or tag-only"),
                ));
            }
        };
        if reg.mirror_by_digest_only && pull_from_mirror != PullFromMirror::All {
            return Err(invalid(
                &key("pull-from-mirror"),
                "cannot be set when the registry has mirror-by-digest-only = true".into(),
            ));
        }
        mirrors.push(RuleMirror {
            location: m.location,
            insecure: m.insecure,
            pull_from_mirror: if reg.mirror_by_digest_only {
                PullFromMirror::DigestOnly
            } else {
                pull_from_mirror
            },
        });
    }
    Ok(Rule {
        location: if wildcard { String::new() } else { location },
        prefix,
        insecure: reg.insecure,
        blocked: reg.blocked,
        mirrors,
        file: path.to_owned(),
    })
}

/// Version 1 lists as version 2 rules (one per registry named).
fn v1_rules(path: &Path, v1: V1) -> Result<Vec<Rule>, Error> {
    let mut rules: Vec<Rule> = Vec::new();
    let lists = [
        ("registries.insecure", v1.insecure, true, false),
        ("registries.block", v1.block, false, true),
        ("registries.search", v1.search, false, false),
    ];
    for (key, list, insecure, blocked) in lists {
        for (i, host) in list
            .map(|l| l.registries)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            check_location(&host).map_err(|reason| Error::Invalid {
                path: path.to_owned(),
                key: format!("{key}.registries[{i}]"),
                reason,
            })?;
            match rules.iter_mut().find(|r| r.prefix == host) {
                Some(rule) => {
                    rule.insecure |= insecure;
                    rule.blocked |= blocked;
                }
                None => rules.push(Rule {
                    prefix: host.clone(),
                    location: host,
                    insecure,
                    blocked,
                    mirrors: Vec::new(),
                    file: path.to_owned(),
                }),
            }
        }
    }
    Ok(rules)
}

/// `host[:port][/path...]` without a scheme, spaces or a trailing `/`.
fn check_location(location: &str) -> Result<(), String> {
    if location.is_empty() {
        return Err("is empty".into());
    }
    if location.contains("://") {
        return Err(format!(
            "{location:?} must not have a scheme (write host[:port][/path])"
        ));
    }
    if location.ends_with('/') || location.chars().any(char::is_whitespace) {
        return Err(format!("{location:?} is not host[:port][/path]"));
    }
    Ok(())
}

/// An alias maps a short name to a fully qualified name, neither with a
/// tag or digest.
fn check_alias(name: &str, target: &str) -> Result<(), String> {
    if !crate::reference::is_short_name(name) || name.contains([':', '@']) {
        return Err("the name must be a short name without tag or digest".into());
    }
    if target.is_empty() {
        return Ok(());
    }
    if crate::reference::is_short_name(target) {
        return Err(format!("{target:?} must name its registry"));
    }
    match crate::Reference::parse(target) {
        Ok(r)
            if r.digest().is_none()
                && !target.ends_with(&format!(":{}", r.tag().unwrap_or(""))) =>
        {
            Ok(())
        }
        Ok(_) => Err(format!("{target:?} must not have a tag or digest")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
#[path = "conf_tests.rs"]
mod tests;
