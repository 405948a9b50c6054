//! A detached single container as the stack supervisor runs it: the
//! `docker run` flags become a one-service Compose document (JSON), which
//! the project machinery (`up -d`, the supervisor, `down`) runs like any
//! stack. That is what gives a `run -d` container restarts, healthchecks,
//! json logs, DNS and re-adoption after a supervisor crash, with no second
//! implementation of any of them.
//!
//! The service is named after the container (its DNS name, like Docker's
//! container name on a user network); `container_name` pins the name.
//! Values are resolved here, at `run` time, as Docker does (`-e NAME` takes
//! the caller's value, paths are made absolute), and every `$` is escaped
//! so the loader's interpolation leaves them as given.

use std::path::Path;

use anyhow::bail;
use serde_json::{Map, Value, json};

/// The flags of `run -d` that shape the document, resolved.
#[derive(Debug, Default)]
pub struct Flags<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub command: &'a [String],
    pub entrypoint: Option<&'a str>,
    /// `KEY=VALUE` pairs, resolved.
    pub env: &'a [String],
    pub labels: &'a [String],
    pub workdir: Option<&'a str>,
    pub user: Option<&'a str>,
    pub group_add: &'a [String],
    pub hostname: Option<&'a str>,
    pub tty: bool,
    pub interactive: bool,
    pub privileged: bool,
    pub cgroupns: Option<&'a str>,
    pub read_only: bool,
    pub cap_add: &'a [String],
    pub cap_drop: &'a [String],
    pub security_opt: &'a [String],
    pub init: bool,
    pub volumes: &'a [String],
    pub tmpfs: &'a [String],
    pub ulimits: &'a [String],
    pub shm_size: Option<&'a str>,
    pub memory: Option<&'a str>,
    pub memory_reservation: Option<&'a str>,
    pub memory_swap: Option<&'a str>,
    pub cpus: Option<&'a str>,
    pub cpu_shares: Option<&'a str>,
    pub cpuset_cpus: Option<&'a str>,
    pub pids_limit: Option<&'a str>,
    pub dns: &'a [String],
    pub dns_search: &'a [String],
    pub dns_option: &'a [String],
    pub add_host: &'a [String],
    pub stop_signal: Option<&'a str>,
    pub stop_timeout: Option<u32>,
    pub restart: Option<&'a str>,
    pub health: Health<'a>,
    pub log_driver: Option<&'a str>,
    pub log_opts: &'a [String],
    pub network: Net<'a>,
}

/// `--health-*` and `--no-healthcheck`.
#[derive(Debug, Default)]
pub struct Health<'a> {
    pub cmd: Option<&'a str>,
    pub interval: Option<&'a str>,
    pub timeout: Option<&'a str>,
    pub retries: Option<u32>,
    pub start_period: Option<&'a str>,
    pub start_interval: Option<&'a str>,
    pub none: bool,
}

/// Where the container's network goes (decided by the caller from
/// `--network` and `-p`).
#[derive(Debug, Default)]
pub enum Net<'a> {
    /// none, host, container:NAME.
    #[default]
    None,
    Mode(&'a str),
    /// A bridge network (user-defined or the default `bridge`).
    Bridge {
        network: &'a str,
        publish: &'a [String],
        aliases: &'a [String],
        ip: Option<&'a str>,
        mac: Option<&'a str>,
    },
}

/// A `-v` value, classified as Docker does: `/path` alone is an anonymous
/// volume, an absolute or `./` source a bind, any other source a named
/// volume.
#[derive(Debug, PartialEq, Eq)]
pub enum VolumeArg {
    Anonymous(String),
    Bind(String),
    Named { name: String, spec: String },
}

/// Classifies and resolves one `-v` (relative binds against `cwd`).
pub fn volume_arg(value: &str, cwd: &Path) -> anyhow::Result<VolumeArg> {
    let bad = |why: &str| {
        anyhow::anyhow!("invalid argument \"{value}\" for \"-v, --volume\" flag: {why}")
    };
    let parts: Vec<&str> = value.split(':').collect();
    let (src, rest) = match parts.as_slice() {
        [dst] => {
            if !dst.starts_with('/') {
                return Err(bad("the container path must be absolute"));
            }
            return Ok(VolumeArg::Anonymous((*dst).to_owned()));
        }
        [src, dst] | [src, dst, _] => {
            if !dst.starts_with('/') {
                return Err(bad("the container path must be absolute"));
            }
            (*src, &parts[1..])
        }
        _ => return Err(bad("too many colons")),
    };
    if src.is_empty() {
        return Err(bad("the source is empty"));
    }
    if let Some(opts) = rest.get(1) {
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            if !matches!(
                o,
                "ro" | "rw" | "z" | "Z" | "rprivate" | "private" | "rslave" | "slave" | "nocopy"
            ) {
                return Err(bad("unknown option (expected ro, rw, nocopy)"));
            }
        }
    }
    let tail = rest.join(":");
    if src.starts_with('/') {
        return Ok(VolumeArg::Bind(format!("{src}:{tail}")));
    }
    if src == "." || src == ".." || src.starts_with("./") || src.starts_with("../") {
        return Ok(VolumeArg::Bind(format!(
            "{}:{tail}",
            cwd.join(src).display()
        )));
    }
    let valid = src
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && src
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        return Err(bad(&format!(
            "\"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(VolumeArg::Named {
        name: src.to_owned(),
        spec: format!("{src}:{tail}"),
    })
}

/// Docker's rule for container names.
pub fn check_container_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() >= 2
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        bail!("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    Ok(())
}

/// `KEY=VALUE` list → map (a bare KEY maps to "").
fn kv_map(list: &[String]) -> Map<String, Value> {
    list.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            (k.to_owned(), Value::String(v.to_owned()))
        })
        .collect()
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().cloned().map(Value::String).collect())
}

/// `--ulimit name=soft[:hard]` → the Compose form.
fn ulimits(list: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for u in list {
        let bad = || anyhow::anyhow!("invalid argument \"{u}\" for \"--ulimit\" flag");
        let (name, limits) = u.split_once('=').ok_or_else(bad)?;
        let num = |s: &str| s.trim().parse::<i64>().map_err(|_| bad());
        let v = match limits.split_once(':') {
            Some((s, h)) => json!({"soft": num(s)?, "hard": num(h)?}),
            None => json!(num(limits)?),
        };
        out.insert(name.trim().to_owned(), v);
    }
    Ok(out)
}

/// The healthcheck section, when any health flag is given.
fn healthcheck(h: &Health) -> Option<Value> {
    if h.none {
        return Some(json!({"disable": true}));
    }
    let mut m = Map::new();
    if let Some(c) = h.cmd {
        m.insert("test".into(), json!(["CMD-SHELL", c]));
    }
    for (k, v) in [
        ("interval", h.interval),
        ("timeout", h.timeout),
        ("start_period", h.start_period),
        ("start_interval", h.start_interval),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(r) = h.retries {
        m.insert("retries".into(), json!(r));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// Puts `value` under `key` unless it is empty/absent.
fn put(m: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(b) => !b,
        _ => false,
    };
    if !empty {
        m.insert(key.to_owned(), value);
    }
}

/// The one-service Compose document of `f`; `cwd` resolves relative binds.
pub fn document(f: &Flags, cwd: &Path) -> anyhow::Result<Value> {
    let mut svc = Map::new();
    let mut top_volumes = Map::new();
    let mut top_networks = Map::new();
    svc.insert("image".into(), json!(f.image));
    svc.insert("container_name".into(), json!(f.name));
    if !f.command.is_empty() {
        svc.insert("command".into(), strings(f.command));
    }
    if let Some(e) = f.entrypoint {
        let v = if e.is_empty() { json!([]) } else { json!([e]) };
        svc.insert("entrypoint".into(), v);
    }
    put(&mut svc, "environment", Value::Object(kv_map(f.env)));
    put(&mut svc, "labels", Value::Object(kv_map(f.labels)));
    put(&mut svc, "working_dir", json!(f.workdir));
    put(&mut svc, "user", json!(f.user));
    put(&mut svc, "group_add", strings(f.group_add));
    put(&mut svc, "hostname", json!(f.hostname));
    put(&mut svc, "tty", json!(f.tty));
    put(&mut svc, "stdin_open", json!(f.interactive));
    put(&mut svc, "privileged", json!(f.privileged));
    put(&mut svc, "cgroup", json!(f.cgroupns));
    put(&mut svc, "read_only", json!(f.read_only));
    put(&mut svc, "cap_add", strings(f.cap_add));
    put(&mut svc, "cap_drop", strings(f.cap_drop));
    put(&mut svc, "security_opt", strings(f.security_opt));
    put(&mut svc, "init", json!(f.init));
    let mut vols = Vec::new();
    for v in f.volumes {
        match volume_arg(v, cwd)? {
            VolumeArg::Anonymous(p) | VolumeArg::Bind(p) => vols.push(json!(p)),
            VolumeArg::Named { name, spec } => {
                top_volumes.insert(name, json!({"external": true}));
                vols.push(json!(spec));
            }
        }
    }
    put(&mut svc, "volumes", Value::Array(vols));
    put(&mut svc, "tmpfs", strings(f.tmpfs));
    put(&mut svc, "ulimits", Value::Object(ulimits(f.ulimits)?));
    put(&mut svc, "shm_size", json!(f.shm_size));
    resources(f, &mut svc);
    put(&mut svc, "dns", strings(f.dns));
    put(&mut svc, "dns_search", strings(f.dns_search));
    put(&mut svc, "dns_opt", strings(f.dns_option));
    put(&mut svc, "extra_hosts", strings(f.add_host));
    put(&mut svc, "stop_signal", json!(f.stop_signal));
    if let Some(t) = f.stop_timeout {
        svc.insert("stop_grace_period".into(), json!(format!("{t}s")));
    }
    put(&mut svc, "restart", json!(f.restart));
    if let Some(h) = healthcheck(&f.health) {
        svc.insert("healthcheck".into(), h);
    }
    logging(f, &mut svc)?;
    network(&f.network, &mut svc, &mut top_networks);
    let mut doc = Map::new();
    doc.insert("services".into(), json!({ f.name: Value::Object(svc) }));
    put(&mut doc, "volumes", Value::Object(top_volumes));
    put(&mut doc, "networks", Value::Object(top_networks));
    Ok(escape(Value::Object(doc)))
}

/// `-m`, `--cpus` and the other cgroup flags (validated by the caller).
fn resources(f: &Flags, svc: &mut Map<String, Value>) {
    put(svc, "mem_limit", json!(f.memory));
    put(svc, "mem_reservation", json!(f.memory_reservation));
    put(svc, "memswap_limit", json!(f.memory_swap));
    put(svc, "cpus", json!(f.cpus));
    put(
        svc,
        "cpu_shares",
        json!(f.cpu_shares.and_then(|c| c.parse::<i64>().ok())),
    );
    put(svc, "cpuset", json!(f.cpuset_cpus));
    put(
        svc,
        "pids_limit",
        json!(f.pids_limit.and_then(|c| c.parse::<i64>().ok())),
    );
}

/// `--log-driver` (json-file only) and `--log-opt KEY=VALUE`.
fn logging(f: &Flags, svc: &mut Map<String, Value>) -> anyhow::Result<()> {
    if let Some(d) = f.log_driver
        && d != "json-file"
    {
        bail!(
            "invalid argument \"{d}\" for \"--log-driver\" flag: rstack keeps json-file logs only"
        );
    }
    let mut opts = Map::new();
    for o in f.log_opts {
        let Some((k, v)) = o.split_once('=') else {
            bail!("invalid argument \"{o}\" for \"--log-opt\" flag: expected KEY=VALUE");
        };
        if !matches!(
            k,
            "max-size" | "max-file" | "compress" | "labels" | "env" | "tag"
        ) {
            bail!("unknown log opt '{k}' for json-file log driver");
        }
        opts.insert(k.to_owned(), json!(v));
    }
    if !opts.is_empty() {
        svc.insert(
            "logging".into(),
            json!({"driver": "json-file", "options": opts}),
        );
    }
    Ok(())
}

fn network(net: &Net, svc: &mut Map<String, Value>, top: &mut Map<String, Value>) {
    match net {
        Net::None => {
            svc.insert("network_mode".into(), json!("none"));
        }
        Net::Mode(m) => {
            svc.insert("network_mode".into(), json!(m));
        }
        Net::Bridge {
            network,
            publish,
            aliases,
            ip,
            mac,
        } => {
            let mut ep = Map::new();
            put(&mut ep, "aliases", strings(aliases));
            put(&mut ep, "ipv4_address", json!(ip));
            put(&mut ep, "mac_address", json!(mac));
            let ep = if ep.is_empty() {
                Value::Null
            } else {
                Value::Object(ep)
            };
            svc.insert("networks".into(), json!({ *network: ep }));
            put(svc, "ports", strings(publish));
            top.insert((*network).to_owned(), json!({"external": true}));
        }
    }
}

/// Every `$` doubled, in keys and values: the document holds final
/// values, and the loader's interpolation turns `$$` back into `$`.
fn escape(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace('$', "$$")),
        Value::Array(a) => Value::Array(a.into_iter().map(escape).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k.replace('$', "$$"), escape(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A name like Docker's (`adjective_surname`) for a container run without
/// `--name`; `pick` gives two random indexes.
pub fn generated_name(pick: (usize, usize)) -> String {
    const LEFT: [&str; 16] = [
        "admiring", "bold", "brave", "clever", "eager", "focused", "gifted", "happy", "jolly",
        "keen", "nifty", "quirky", "serene", "sharp", "vibrant", "zealous",
    ];
    const RIGHT: [&str; 16] = [
        "babbage", "curie", "darwin", "euler", "hopper", "kepler", "lovelace", "newton", "noether",
        "pascal", "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak",
    ];
    format!(
        "{}_{}",
        LEFT[pick.0 % LEFT.len()],
        RIGHT[pick.1 % RIGHT.len()]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base<'a>() -> Flags<'a> {
        Flags {
            name: "app",
            image: "busybox:1.36",
            ..Default::default()
        }
    }

    #[test]
    fn volumes_are_classified_like_docker() {
        let cwd = Path::new("/home/u/p");
        assert_eq!(
            volume_arg("/data", cwd).unwrap(),
            VolumeArg::Anonymous("/data".into())
        );
        assert_eq!(
            volume_arg("/srv:/app:ro", cwd).unwrap(),
            VolumeArg::Bind("/srv:/app:ro".into())
        );
        assert_eq!(
            volume_arg("./src:/app", cwd).unwrap(),
            VolumeArg::Bind("/home/u/p/./src:/app".into())
        );
        assert_eq!(
            volume_arg("dados-app:/usr/src/app/data", cwd).unwrap(),
            VolumeArg::Named {
                name: "dados-app".into(),
                spec: "dados-app:/usr/src/app/data".into()
            }
        );
        for bad in ["a:b", "x y:/d", "/a:/b:bogus", "a:/b:c:d", ":/x"] {
            assert!(volume_arg(bad, cwd).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(check_container_name("web-1.a_b").is_ok());
        for bad in ["-x", "a", "a/b", "a b", ""] {
            assert!(check_container_name(bad).is_err(), "{bad}");
        }
        assert!(generated_name((3, 14)).contains('_'));
    }

    #[test]
    fn document_carries_the_flags() {
        let env = vec!["A=1".to_owned(), "P=$HOME".to_owned()];
        let publish = vec!["8080:80".to_owned()];
        let vols = vec!["data:/d".to_owned()];
        let f = Flags {
            env: &env,
            volumes: &vols,
            restart: Some("on-failure:3"),
            health: Health {
                cmd: Some("true"),
                interval: Some("1s"),
                retries: Some(2),
                ..Default::default()
            },
            network: Net::Bridge {
                network: "bridge",
                publish: &publish,
                aliases: &[],
                ip: None,
                mac: None,
            },
            ..base()
        };
        let d = document(&f, Path::new("/")).unwrap();
        let s = &d["services"]["app"];
        assert_eq!(s["container_name"], "app");
        assert_eq!(s["environment"]["P"], "$$HOME");
        assert_eq!(s["restart"], "on-failure:3");
        assert_eq!(s["healthcheck"]["test"], json!(["CMD-SHELL", "true"]));
        assert_eq!(s["healthcheck"]["retries"], 2);
        assert_eq!(s["ports"], json!(["8080:80"]));
        assert_eq!(s["networks"], json!({"bridge": null}));
        assert_eq!(d["networks"]["bridge"]["external"], true);
        assert_eq!(d["volumes"]["data"]["external"], true);
        assert!(s.get("tty").is_none());
    }

    #[test]
    fn no_network_and_no_healthcheck() {
        let f = Flags {
            health: Health {
                none: true,
                ..Default::default()
            },
            ..base()
        };
        let d = document(&f, Path::new("/")).unwrap();
        assert_eq!(d["services"]["app"]["network_mode"], "none");
        assert_eq!(d["services"]["app"]["healthcheck"]["disable"], true);
    }

    #[test]
    fn bad_log_options_and_ulimits_are_refused() {
        let opts = vec!["bogus=1".to_owned()];
        let f = Flags {
            log_opts: &opts,
            ..base()
        };
        assert!(document(&f, Path::new("/")).is_err());
        let ul = vec!["nofile=abc".to_owned()];
        let f = Flags {
            ulimits: &ul,
            ..base()
        };
        assert!(document(&f, Path::new("/")).is_err());
        let f = Flags {
            log_driver: Some("syslog"),
            ..base()
        };
        assert!(document(&f, Path::new("/")).is_err());
    }
}
