//! rstack's own registry settings in `ROOT/config.json`, named as in
//! Docker's `daemon.json`:
//!
//! ```json
//! {
//!   "registry-mirrors": ["https://mirror.example.com", "http://10.0.0.5:5000"],
//!   "insecure-registries": ["registry.lan:5000"],
//!   "max-concurrent-downloads": 3
//! }
//! ```
//!
//! `registry-mirrors` are mirrors of Docker Hub (`docker.io`) only, tried
//! in order before Docker Hub itself; an `http://` mirror is reached over
//! plain HTTP. Like dockerd, a mirror URL is a scheme and a host (and
//! port), nothing else. Other keys of the file are left to their readers.

use std::path::Path;

use serde::Deserialize;

use super::Error;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct DaemonJson {
    #[serde(default)]
    registry_mirrors: Vec<String>,
    #[serde(default)]
    insecure_registries: Vec<String>,
    max_concurrent_downloads: Option<u64>,
}

/// A Docker Hub mirror of `registry-mirrors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubMirror {
    /// As written, for display.
    pub url: String,
    /// `host[:port]`, the registry part of references to it.
    pub registry: String,
    /// `http://`: plain HTTP.
    pub insecure: bool,
}

/// The registry settings of `ROOT/config.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Daemon {
    pub hub_mirrors: Vec<HubMirror>,
    pub insecure_registries: Vec<String>,
    pub max_concurrent_downloads: Option<usize>,
}

/// Reads `path` (absent: no settings).
pub fn load(path: &Path) -> Result<Daemon, Error> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Daemon::default()),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    parse(path, &data)
}

pub fn parse(path: &Path, data: &[u8]) -> Result<Daemon, Error> {
    let json: DaemonJson = serde_json::from_slice(data).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })?;
    let mut hub_mirrors = Vec::new();
    for (i, url) in json.registry_mirrors.iter().enumerate() {
        let mirror = hub_mirror(url).map_err(|reason| Error::Invalid {
            path: path.to_owned(),
            key: format!("registry-mirrors[{i}]"),
            reason,
        })?;
        hub_mirrors.push(mirror);
    }
    let max_concurrent_downloads = match json.max_concurrent_downloads {
        Some(0) => {
            return Err(Error::Invalid {
                path: path.to_owned(),
                key: "max-concurrent-downloads".into(),
                reason: "must be at least 1".into(),
            });
        }
        n => n.map(|n| n as usize),
    };
    Ok(Daemon {
        hub_mirrors,
        insecure_registries: json.insecure_registries,
        max_concurrent_downloads,
    })
}

/// dockerd's `ValidateMirror`: `http[s]://host[:port][/]`.
fn hub_mirror(url: &str) -> Result<HubMirror, String> {
    let parsed =
        reqwest::Url::parse(url.trim()).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    let insecure = match parsed.scheme() {
        "http" => true,
        "https" => false,
        other => {
            return Err(format!(
                "{url:?}: unsupported scheme {other:?} (use http or https)"
            ));
        }
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{url:?}: credentials do not belong in a mirror URL (use `rstack login`)"
        ));
    }
    if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() || parsed.fragment().is_some()
    {
        return Err(format!(
            "{url:?}: a mirror is a scheme and a host, without a path"
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    let registry = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    Ok(HubMirror {
        url: url.to_owned(),
        registry,
        insecure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(json: &str) -> Result<Daemon, Error> {
        parse(Path::new("/r/config.json"), json.as_bytes())
    }

    #[test]
    fn mirrors_insecure_and_downloads() {
        let d = parse_str(
            r#"{"registry-mirrors":["https://mirror.gcr.io","http://127.0.0.1:5001/"],
                "insecure-registries":["lan:5000"],"max-concurrent-downloads":2,"other":1}"#,
        )
        .unwrap();
        assert_eq!(
            d.hub_mirrors,
            [
                HubMirror {
                    url: "https://mirror.gcr.io".into(),
                    registry: "mirror.gcr.io".into(),
                    insecure: false
                },
                HubMirror {
                    url: "http://127.0.0.1:5001/".into(),
                    registry: "127.0.0.1:5001".into(),
                    insecure: true
                }
            ]
        );
        assert_eq!(d.insecure_registries, ["lan:5000"]);
        assert_eq!(d.max_concurrent_downloads, Some(2));
        assert_eq!(parse_str("{}").unwrap(), Daemon::default());
    }

    #[test]
    fn bad_mirrors_are_named() {
        for (json, needle) in [
            (r#"{"registry-mirrors":["mirror.local"]}"#, "not a URL"),
            (r#"{"registry-mirrors":["ftp://m"]}"#, "unsupported scheme"),
            (
                r#"{"registry-mirrors":["https://m/path"]}"#,
                "without a path",
            ),
            (r#"{"registry-mirrors":["https://u:p@m"]}"#, "credentials"),
            (r#"{"max-concurrent-downloads":0}"#, "at least 1"),
        ] {
            let err = parse_str(json).unwrap_err().to_string();
            assert!(
                err.contains(needle) && err.contains("/r/config.json"),
                "{json}: {err}"
            );
        }
        let err = parse_str("{not json").unwrap_err().to_string();
        assert!(err.contains("/r/config.json"), "{err}");
    }
}
