//! Docker's flag string rules (`--memory 512m`, `--cpus 0.5`, `-v a:b:ro`,
//! `--ulimit nofile=1024:2048`, `--security-opt ...`, `--env-file`), shared by
//! the CLI and the Compose supervisor so both accept and reject exactly what
//! `docker run` does.

use std::path::{Path, PathBuf};

use crate::options::{MountSpec, SeccompProfile, Ulimit};

/// A flag value that does not follow Docker's syntax.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("invalid size: '{value}'")]
    Size { value: String },
    #[error("minimum memory limit allowed is 6MB, got '{value}'")]
    MemoryTooSmall { value: String },
    #[error("failed to parse '{value}' as a rational number of CPUs")]
    Cpus { value: String },
    #[error("range of CPUs is from 0.01 to {max}, got '{value}'")]
    CpusRange { value: String, max: usize },
    #[error("invalid integer '{value}' for {flag}")]
    Integer { flag: &'static str, value: String },
    #[error("invalid cpuset '{value}': expected a list like 0-2,4")]
    Cpuset { value: String },
    #[error("invalid ulimit '{value}': expected name=soft[:hard]")]
    UlimitSyntax { value: String },
    #[error("invalid ulimit type '{name}'")]
    UlimitType { name: String },
    #[error("invalid ulimit '{value}': soft limit must be less than or equal to hard limit")]
    UlimitOrder { value: String },
    #[error("invalid volume specification '{value}': {reason}")]
    Volume { value: String, reason: &'static str },
    #[error("invalid tmpfs specification '{value}': the path must be absolute")]
    Tmpfs { value: String },
    #[error("invalid --security-opt '{value}': {reason}")]
    SecurityOpt { value: String, reason: &'static str },
    #[error(
        "{path}:{line}: invalid environment variable '{text}': the name may not be empty or contain whitespace"
    )]
    EnvFileLine {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error(
        "invalid environment variable '{value}': the name may not be empty or contain whitespace"
    )]
    Env { value: String },
}

/// Docker's `RAMInBytes`: `123`, `64k`, `512m`, `1.5g`, `2GiB`, `1gb`
/// (binary multipliers, case-insensitive, optional `i`/`b`).
pub fn parse_bytes(value: &str) -> Result<i64, ParseError> {
    rstack_sys::units::ram_in_bytes(value.trim()).map_err(|_| ParseError::Size {
        value: value.to_owned(),
    })
}

/// `--memory`/`--memory-reservation`: a size of at least 6 MiB (Docker's minimum).
pub fn parse_memory(value: &str) -> Result<i64, ParseError> {
    let bytes = parse_bytes(value)?;
    if bytes < 6 * 1024 * 1024 {
        return Err(ParseError::MemoryTooSmall {
            value: value.to_owned(),
        });
    }
    Ok(bytes)
}

/// `--memory-swap`: a size, or `-1` for unlimited swap.
pub fn parse_memory_swap(value: &str) -> Result<i64, ParseError> {
    if value.trim() == "-1" {
        return Ok(-1);
    }
    parse_bytes(value)
}

/// `--cpus`: a positive decimal number of CPUs, at most the host's count.
pub fn parse_cpus(value: &str, host_cpus: usize) -> Result<f64, ParseError> {
    let cpus: f64 = value.trim().parse().map_err(|_| ParseError::Cpus {
        value: value.to_owned(),
    })?;
    if !cpus.is_finite() || cpus < 0.01 || cpus > host_cpus as f64 {
        return Err(ParseError::CpusRange {
            value: value.to_owned(),
            max: host_cpus,
        });
    }
    Ok(cpus)
}

/// An integer flag (`--cpu-shares`, `--pids-limit`).
pub fn parse_int(flag: &'static str, value: &str) -> Result<i64, ParseError> {
    value.trim().parse().map_err(|_| ParseError::Integer {
        flag,
        value: value.to_owned(),
    })
}

/// `--cpuset-cpus`: `0-2,4`.
pub fn parse_cpuset(value: &str) -> Result<String, ParseError> {
    let err = || ParseError::Cpuset {
        value: value.to_owned(),
    };
    let v = value.trim();
    if v.is_empty() {
        return Err(err());
    }
    for part in v.split(',') {
        let mut ends = part.splitn(2, '-');
        let a: u32 = ends.next().unwrap_or("").parse().map_err(|_| err())?;
        if let Some(b) = ends.next() {
            let b: u32 = b.parse().map_err(|_| err())?;
            if b < a {
                return Err(err());
            }
        }
    }
    Ok(v.to_owned())
}

const ULIMITS: &[(&str, &str)] = &[
    ("core", "RLIMIT_CORE"),
    ("cpu", "RLIMIT_CPU"),
    ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"),
    ("locks", "RLIMIT_LOCKS"),
    ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"),
    ("nice", "RLIMIT_NICE"),
    ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"),
    ("rss", "RLIMIT_RSS"),
    ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"),
    ("sigpending", "RLIMIT_SIGPENDING"),
    ("stack", "RLIMIT_STACK"),
];

/// `--ulimit name=soft[:hard]` (`-1` or `unlimited` = no limit).
pub fn parse_ulimit(value: &str) -> Result<Ulimit, ParseError> {
    let syntax = || ParseError::UlimitSyntax {
        value: value.to_owned(),
    };
    let (name, limits) = value.split_once('=').ok_or_else(syntax)?;
    let resource = ULIMITS
        .iter()
        .find(|(n, _)| *n == name.trim())
        .map(|(_, r)| *r)
        .ok_or_else(|| ParseError::UlimitType {
            name: name.to_owned(),
        })?;
    let num = |s: &str| -> Result<u64, ParseError> {
        match s.trim() {
            "-1" | "unlimited" => Ok(u64::MAX),
            s => s.parse().map_err(|_| syntax()),
        }
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => {
            let v = num(limits)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(ParseError::UlimitOrder {
            value: value.to_owned(),
        });
    }
    Ok(Ulimit {
        resource,
        soft,
        hard,
    })
}

/// `-v SRC:DST[:OPTS]` with an absolute (or `./`-relative, resolved against
/// `base`) host path. Named volumes belong to the stack, not to this crate.
pub fn parse_volume(value: &str, base: &Path) -> Result<MountSpec, ParseError> {
    let err = |reason| ParseError::Volume {
        value: value.to_owned(),
        reason,
    };
    let parts: Vec<&str> = value.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        [_] => {
            return Err(err(
                "anonymous volumes need a volume store: give HOST:CONTAINER",
            ));
        }
        _ => return Err(err("too many colons")),
    };
    if src.is_empty() {
        return Err(err("the host path is empty"));
    }
    if !dst.starts_with('/') {
        return Err(err("the container path must be absolute"));
    }
    let source = if src.starts_with('/') {
        PathBuf::from(src)
    } else if src.starts_with("./") || src.starts_with("../") || src == "." || src == ".." {
        base.join(src)
    } else {
        return Err(err(
            "named volumes are not supported here: give an absolute host path",
        ));
    };
    let mut read_only = false;
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => read_only = true,
            "rw" | "z" | "Z" | "rprivate" | "private" | "rslave" | "slave" | "nocopy" => {}
            _ => return Err(err("unknown option (expected ro, rw)")),
        }
    }
    Ok(MountSpec::Bind {
        source,
        target: dst.to_owned(),
        read_only,
    })
}

/// `--tmpfs /path[:opt,opt]`.
pub fn parse_tmpfs(value: &str) -> Result<MountSpec, ParseError> {
    let (target, opts) = value.split_once(':').unwrap_or((value, ""));
    if !target.starts_with('/') {
        return Err(ParseError::Tmpfs {
            value: value.to_owned(),
        });
    }
    Ok(MountSpec::Tmpfs {
        target: target.to_owned(),
        options: opts
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// The parts of `--security-opt` this runtime implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityOpt {
    Seccomp(SeccompProfile),
    NoNewPrivileges(bool),
}

/// `--security-opt seccomp=unconfined|FILE`, `no-new-privileges[:true|false]`.
pub fn parse_security_opt(value: &str) -> Result<SecurityOpt, ParseError> {
    let err = |reason| ParseError::SecurityOpt {
        value: value.to_owned(),
        reason,
    };
    if value == "no-new-privileges" {
        return Ok(SecurityOpt::NoNewPrivileges(true));
    }
    let (key, val) = value
        .split_once('=')
        .or_else(|| value.split_once(':'))
        .ok_or_else(|| err("expected KEY=VALUE"))?;
    match key {
        "seccomp" => Ok(SecurityOpt::Seccomp(match val {
            "unconfined" => SeccompProfile::Unconfined,
            "" => return Err(err("seccomp needs 'unconfined' or a profile file")),
            path => SeccompProfile::File(PathBuf::from(path)),
        })),
        "no-new-privileges" => match val {
            "true" => Ok(SecurityOpt::NoNewPrivileges(true)),
            "false" => Ok(SecurityOpt::NoNewPrivileges(false)),
            _ => Err(err("no-new-privileges takes true or false")),
        },
        "apparmor" | "label" | "systempaths" | "writable-cgroups" => {
            Err(err("not supported by rstack"))
        }
        _ => Err(err("unknown security option")),
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace)
}

/// `-e KEY=VALUE` or `-e KEY` (the value then comes from `lookup`, and the
/// variable is left out when the caller has none, as docker does).
pub fn parse_env(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, ParseError> {
    match value.split_once('=') {
        Some((name, _)) if valid_env_name(name) => Ok(Some(value.to_owned())),
        None if valid_env_name(value) => Ok(lookup(value).map(|v| format!("{value}={v}"))),
        _ => Err(ParseError::Env {
            value: value.to_owned(),
        }),
    }
}

/// The lines of an `--env-file`: `KEY=VALUE`, `KEY` (from `lookup`),
/// `#` comments and blank lines.
pub fn parse_env_file(
    path: &Path,
    content: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in content.lines().enumerate() {
        let text = line.trim_start();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let name = text.split_once('=').map_or(text, |(n, _)| n);
        if !valid_env_name(name) {
            return Err(ParseError::EnvFileLine {
                path: path.to_owned(),
                line: i + 1,
                text: line.to_owned(),
            });
        }
        if text.contains('=') {
            out.push(text.to_owned());
        } else if let Some(v) = lookup(text) {
            out.push(format!("{text}={v}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_follow_docker_units() {
        assert_eq!(parse_bytes("123").unwrap(), 123);
        assert_eq!(parse_bytes("64k").unwrap(), 64 * 1024);
        assert_eq!(parse_bytes("32m").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("32MB").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        // go-units reads a leading `.` as 0.x, as Go's ParseFloat does
        assert_eq!(parse_bytes(".5m").unwrap(), 1 << 19);
        for bad in ["12x", "", "m", "1.2.3m", "-5m", "5 mm"] {
            assert!(parse_bytes(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            parse_memory("12x").unwrap_err().to_string(),
            "invalid size: '12x'"
        );
        assert!(matches!(
            parse_memory("4m"),
            Err(ParseError::MemoryTooSmall { .. })
        ));
        assert_eq!(parse_memory_swap("-1").unwrap(), -1);
    }

    #[test]
    fn cpus_and_integers() {
        assert_eq!(parse_cpus("0.5", 2).unwrap(), 0.5);
        assert!(parse_cpus("3", 2).is_err());
        assert!(parse_cpus("abc", 2).is_err());
        assert!(parse_cpus("0", 2).is_err());
        assert_eq!(parse_int("--pids-limit", "20").unwrap(), 20);
        assert!(parse_int("--pids-limit", "2x").is_err());
        assert_eq!(parse_cpuset("0-1,3").unwrap(), "0-1,3");
        assert!(parse_cpuset("1-0").is_err());
        assert!(parse_cpuset("a").is_err());
    }

    #[test]
    fn ulimits() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.resource, u.soft, u.hard), ("RLIMIT_NOFILE", 1024, 2048));
        let u = parse_ulimit("core=-1").unwrap();
        assert_eq!((u.soft, u.hard), (u64::MAX, u64::MAX));
        assert!(matches!(
            parse_ulimit("bogus=1"),
            Err(ParseError::UlimitType { .. })
        ));
        assert!(matches!(
            parse_ulimit("nofile=20:10"),
            Err(ParseError::UlimitOrder { .. })
        ));
        assert!(parse_ulimit("nofile").is_err());
    }

    #[test]
    fn volumes_and_tmpfs() {
        let base = Path::new("/base");
        assert_eq!(
            parse_volume("/a:/b:ro", base).unwrap(),
            MountSpec::Bind {
                source: "/a".into(),
                target: "/b".into(),
                read_only: true
            }
        );
        assert_eq!(
            parse_volume("./x:/b", base).unwrap(),
            MountSpec::Bind {
                source: "/base/./x".into(),
                target: "/b".into(),
                read_only: false
            }
        );
        assert!(parse_volume("named:/b", base).is_err());
        assert!(parse_volume("/a:rel", base).is_err());
        assert!(parse_volume("/a:/b:bogus", base).is_err());
        assert!(parse_volume("/a", base).is_err());
        assert_eq!(
            parse_tmpfs("/run:size=1m,mode=1777").unwrap(),
            MountSpec::Tmpfs {
                target: "/run".into(),
                options: vec!["size=1m".into(), "mode=1777".into()]
            }
        );
        assert!(parse_tmpfs("run").is_err());
    }

    #[test]
    fn security_opts() {
        assert_eq!(
            parse_security_opt("seccomp=unconfined").unwrap(),
            SecurityOpt::Seccomp(SeccompProfile::Unconfined)
        );
        assert_eq!(
            parse_security_opt("seccomp=/p.json").unwrap(),
            SecurityOpt::Seccomp(SeccompProfile::File("/p.json".into()))
        );
        assert_eq!(
            parse_security_opt("no-new-privileges").unwrap(),
            SecurityOpt::NoNewPrivileges(true)
        );
        assert_eq!(
            parse_security_opt("no-new-privileges:false").unwrap(),
            SecurityOpt::NoNewPrivileges(false)
        );
        assert!(parse_security_opt("apparmor=x").is_err());
        assert!(parse_security_opt("weird").is_err());
    }

    #[test]
    fn env_and_env_files() {
        let lookup = |k: &str| (k == "HOSTVAR").then(|| "v".to_owned());
        assert_eq!(parse_env("A=1", &lookup).unwrap(), Some("A=1".into()));
        assert_eq!(
            parse_env("HOSTVAR", &lookup).unwrap(),
            Some("HOSTVAR=v".into())
        );
        assert_eq!(parse_env("MISSING", &lookup).unwrap(), None);
        assert!(parse_env("=x", &lookup).is_err());
        let got =
            parse_env_file(Path::new("f.env"), "# c\n\nA=1\nHOSTVAR\nB=x=y\n", &lookup).unwrap();
        assert_eq!(got, ["A=1", "HOSTVAR=v", "B=x=y"]);
        let err = parse_env_file(Path::new("f.env"), "A=1\nbad name=2\n", &lookup).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.env:2: invalid environment variable 'bad name=2': the name may not be empty or contain whitespace"
        );
    }
}
