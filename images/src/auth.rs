//! Registry credentials: `rstack login` and the auth files of Docker and
//! Podman.
//!
//! All use Docker's `config.json` shape: `{"auths": {"<server>": {"auth":
//! base64("user:password")}}}`. rstack writes its own file
//! (`$RSTACK_CONFIG/config.json`, default `~/.rstack/config.json`, mode
//! 0600) and reads, in order: its own, `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`,
//! `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`).
//! A file may name credential helpers (`credHelpers` per registry,
//! `credsStore` for all; see [`helper`]): for a registry with one, the
//! helper is asked first, then the file's `auths`, like Docker does.
//! `rstack login`/`logout` store in and erase from the helper that
//! rstack's own file names for the registry, if any.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

#[path = "auth/helper.rs"]
mod helper;

/// Docker Hub's key in auth files.
const HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read credentials file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("credentials file {path} is not valid JSON")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("credentials file {path}: entry {server:?} has an invalid `auth` value")]
    BadEntry { path: PathBuf, server: String },
    #[error("cannot write credentials file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot find the home directory (HOME is not set); set RSTACK_CONFIG")]
    NoHome,
    #[error("unauthorized: incorrect username or password for {server}")]
    BadCredentials { server: String },
    #[error("cannot verify credentials with {server}")]
    Verify {
        server: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("registry {server} answered {status} to the login check")]
    VerifyStatus { server: String, status: u16 },
    #[error("not logged in to {server}")]
    NotLoggedIn { server: String },
    #[error("cannot run credential helper {program} (named in {file}); is it on PATH?")]
    HelperMissing {
        program: String,
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("credential helper {program} failed to {action} credentials for {server}: {message}")]
    Helper {
        program: String,
        action: String,
        server: String,
        message: String,
    },
    #[error(
        "credential helper {program} has an identity token for {server}; identity tokens are not supported (use `rstack login {server}` with a password or access token)"
    )]
    IdentityToken { program: String, server: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(
        rename = "credHelpers",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    cred_helpers: BTreeMap<String, String>,
    #[serde(
        rename = "credsStore",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    creds_store: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

impl AuthFile {
    /// The credential helper for a (normalised) server: its `credHelpers`
    /// entry, else `credsStore`.
    fn helper_for(&self, server: &str) -> Option<&str> {
        self.cred_helpers
            .iter()
            .find(|(k, _)| normalize_server(k) == server)
            .map(|(_, v)| v.as_str())
            .or(self.creds_store.as_deref())
            .filter(|h| !h.is_empty())
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// rstack's own credentials file.
pub fn rstack_config_file() -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os("RSTACK_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    Ok(home().ok_or(Error::NoHome)?.join(".rstack/config.json"))
}

/// Every file credentials are read from, in priority order.
pub fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(own) = rstack_config_file() {
        files.push(own);
    }
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        files.push(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        files.push(PathBuf::from(d).join("containers/auth.json"));
    }
    if let Some(h) = home() {
        files.push(h.join(".config/containers/auth.json"));
    }
    match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(d) => files.push(PathBuf::from(d).join("config.json")),
        None => {
            if let Some(h) = home() {
                files.push(h.join(".docker/config.json"));
            }
        }
    }
    files
}

/// The key a registry is stored under (Docker's convention for the Hub).
pub fn server_key(registry: &str) -> String {
    match normalize_server(registry).as_str() {
        "docker.io" => HUB_KEY.to_owned(),
        other => other.to_owned(),
    }
}

/// `https://host:5000/v2/` -> `host:5000`; the Hub's aliases -> `docker.io`.
fn normalize_server(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    match s {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        other => other.to_owned(),
    }
}

fn read_file(path: &Path) -> Result<Option<AuthFile>, Error> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|source| Error::Parse {
            path: path.to_owned(),
            source,
        })
}

fn decode(path: &Path, server: &str, auth: &str) -> Result<Credentials, Error> {
    let bad = || Error::BadEntry {
        path: path.to_owned(),
        server: server.to_owned(),
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (username, password) = text.split_once(':').ok_or_else(bad)?;
    Ok(Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// Credentials for `registry` from the first auth file that has them.
pub fn lookup(registry: &str) -> Result<Option<Credentials>, Error> {
    lookup_in(&auth_files(), registry)
}

pub(crate) fn lookup_in(files: &[PathBuf], registry: &str) -> Result<Option<Credentials>, Error> {
    let want = normalize_server(registry);
    for path in files {
        let Some(file) = read_file(path)? else {
            continue;
        };
        if let Some(helper) = file.helper_for(&want)
            && let Some(creds) = helper::get(helper, &server_key(registry), path)?
        {
            tracing::debug!(file = %path.display(), registry, helper, "using a credential helper");
            return Ok(Some(creds));
        }
        for (server, entry) in &file.auths {
            if normalize_server(server) == want
                && let Some(auth) = &entry.auth
            {
                tracing::debug!(file = %path.display(), registry, "using stored credentials");
                return decode(path, server, auth).map(Some);
            }
        }
    }
    Ok(None)
}

/// Stores credentials in rstack's own file (atomically, mode 0600).
pub fn store(registry: &str, creds: &Credentials) -> Result<PathBuf, Error> {
    let path = rstack_config_file()?;
    store_in(&path, registry, Some(creds))?;
    Ok(path)
}

/// Removes the credentials of `registry` from rstack's own file.
pub fn remove(registry: &str) -> Result<PathBuf, Error> {
    let path = rstack_config_file()?;
    store_in(&path, registry, None)?;
    Ok(path)
}

pub(crate) fn store_in(
    path: &Path,
    registry: &str,
    creds: Option<&Credentials>,
) -> Result<(), Error> {
    let mut file = read_file(path)?.unwrap_or_default();
    let want = normalize_server(registry);
    let before = file.auths.len();
    file.auths
        .retain(|server, _| normalize_server(server) != want);
    let helper = file.helper_for(&want).map(str::to_owned);
    match (creds, &helper) {
        // The helper keeps the secret; the file only lists the server.
        (Some(c), Some(helper)) => {
            helper::store(helper, &server_key(registry), c, path)?;
            file.auths
                .insert(server_key(registry), AuthEntry::default());
        }
        (Some(c), None) => {
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.username, c.password));
            file.auths.insert(
                server_key(registry),
                AuthEntry {
                    auth: Some(auth),
                    other: BTreeMap::new(),
                },
            );
        }
        (None, Some(helper)) => {
            helper::erase(helper, &server_key(registry), path)?;
        }
        (None, None) if file.auths.len() == before => {
            return Err(Error::NotLoggedIn {
                server: registry.to_owned(),
            });
        }
        (None, None) => {}
    }
    let werr = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(werr)?;
    let data = serde_json::to_vec_pretty(&file).map_err(|e| werr(io::Error::other(e)))?;
    rstack_sys::fs::write_atomic_mode(path, &data, 0o600).map_err(|e| werr(e.into_io()))?;
    Ok(())
}

/// The API endpoint of a registry (`docker.io` is served elsewhere).
pub(crate) fn api_host(registry: &str) -> &str {
    if normalize_server(registry) == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// Checks credentials against the registry, like `docker login`: the
/// `/v2/` endpoint with basic auth, or a token request at the realm of its
/// bearer challenge.
pub async fn verify(registry: &str, creds: &Credentials, plain_http: bool) -> Result<(), Error> {
    let server = normalize_server(registry);
    let host = api_host(&server);
    let scheme = if plain_http { "http" } else { "https" };
    crate::tls::init();
    let client = reqwest::Client::builder()
        .build()
        .map_err(|source| Error::Verify {
            server: server.clone(),
            source,
        })?;
    let verr = |source| Error::Verify {
        server: server.clone(),
        source,
    };
    let url = format!("{scheme}://{host}/v2/");
    let res = client.get(&url).send().await.map_err(verr)?;
    if res.status().is_success() {
        // An open registry: the credentials cannot be checked, keep them.
        return Ok(());
    }
    if res.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Err(Error::VerifyStatus {
            server,
            status: res.status().as_u16(),
        });
    }
    let challenge = res
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let res = if let Some(params) = strip_scheme(&challenge, "bearer") {
        let params = parse_params(params);
        let realm = params.get("realm").cloned().unwrap_or_default();
        let mut query: Vec<(&str, &str)> = vec![("account", creds.username.as_str())];
        if let Some(service) = params.get("service") {
            query.push(("service", service.as_str()));
        }
        client
            .get(&realm)
            .query(&query)
            .basic_auth(&creds.username, Some(&creds.password))
            .send()
            .await
            .map_err(verr)?
    } else {
        client
            .get(&url)
            .basic_auth(&creds.username, Some(&creds.password))
            .send()
            .await
            .map_err(verr)?
    };
    match res.status() {
        s if s.is_success() => Ok(()),
        reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN => {
            Err(Error::BadCredentials { server })
        }
        s => Err(Error::VerifyStatus {
            server,
            status: s.as_u16(),
        }),
    }
}

pub(crate) fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = header.trim().split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// `realm="https://x",service="y"` -> map (quoted values may hold commas).
pub(crate) fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_lowercase();
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.insert(key, value.to_owned());
        rest = after.trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_lookup_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let own = tmp.path().join("rstack/config.json");
        let docker = tmp.path().join("docker.json");
        std::fs::write(
            &docker,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"other:5000":{"auth":"YTpiOmM="}},"detachKeys":"x"}"#,
        )
        .unwrap();
        let files = vec![own.clone(), docker.clone()];
        let hub = lookup_in(&files, "docker.io").unwrap().unwrap();
        assert_eq!(
            hub,
            Credentials {
                username: "u".into(),
                password: "p".into()
            }
        );
        let other = lookup_in(&files, "other:5000").unwrap().unwrap();
        assert_eq!(other.password, "b:c");
        assert_eq!(lookup_in(&files, "nothere").unwrap(), None);

        let c = Credentials {
            username: "me".into(),
            password: "pw".into(),
        };
        store_in(&own, "https://other:5000", Some(&c)).unwrap();
        assert_eq!(lookup_in(&files, "other:5000").unwrap().unwrap(), c);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&own).unwrap().permissions().mode() & 0o777,
            0o600
        );
        store_in(&own, "other:5000", None).unwrap();
        assert_eq!(
            lookup_in(&files, "other:5000").unwrap().unwrap().username,
            "a"
        );
        assert!(matches!(
            store_in(&own, "other:5000", None),
            Err(Error::NotLoggedIn { .. })
        ));
    }

    #[test]
    fn bad_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("c.json");
        std::fs::write(&f, "{not json").unwrap();
        let err = lookup_in(std::slice::from_ref(&f), "x").unwrap_err();
        assert!(err.to_string().contains("c.json"), "{err}");
        std::fs::write(&f, r#"{"auths":{"x":{"auth":"!!"}}}"#).unwrap();
        assert!(matches!(lookup_in(&[f], "x"), Err(Error::BadEntry { .. })));
    }

    /// A helper script keeping one secret per server in files of `dir`.
    fn helper_script(dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join("docker-credential-e2e");
        std::fs::write(
            &script,
            format!(
                r#"#!/bin/sh
d={dir}
case "$1" in
get) read s; f="$d/$(echo "$s" | tr '/:' '__')"
     if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store) j=$(cat); s=$(echo "$j" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
     echo "$j" > "$d/$(echo "$s" | tr '/:' '__')" ;;
erase) read s; rm -f "$d/$(echo "$s" | tr '/:' '__')" ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
"#,
                dir = dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn credential_helpers_first_then_auths() {
        let tmp = tempfile::tempdir().unwrap();
        helper_script(tmp.path());
        helper::TEST_DIR.with(|d| *d.borrow_mut() = Some(tmp.path().to_owned()));
        let own = tmp.path().join("own.json");
        std::fs::write(
            &own,
            r#"{"credHelpers":{"helped:5000":"e2e"},"auths":{"helped:5000":{"auth":"ZmlsZTpmaWxl"},"plain:5000":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        let files = vec![own.clone()];
        // The helper has nothing yet: the file's entry serves.
        assert_eq!(
            lookup_in(&files, "helped:5000").unwrap().unwrap().username,
            "file"
        );
        let c = Credentials {
            username: "me".into(),
            password: "s3cret".into(),
        };
        store_in(&own, "helped:5000", Some(&c)).unwrap();
        assert_eq!(lookup_in(&files, "helped:5000").unwrap(), Some(c.clone()));
        let text = std::fs::read_to_string(&own).unwrap();
        assert!(
            !text.contains("s3cret") && text.contains("credHelpers"),
            "{text}"
        );
        assert_eq!(
            lookup_in(&files, "plain:5000").unwrap().unwrap().username,
            "a"
        );
        store_in(&own, "helped:5000", None).unwrap();
        assert_eq!(lookup_in(&files, "helped:5000").unwrap(), None);

        // credsStore serves every registry; a missing helper is named.
        std::fs::write(&own, r#"{"credsStore":"e2e"}"#).unwrap();
        store_in(&own, "docker.io", Some(&c)).unwrap();
        assert_eq!(lookup_in(&files, "index.docker.io").unwrap(), Some(c));
        std::fs::write(&own, r#"{"credsStore":"nonesuch"}"#).unwrap();
        let err = lookup_in(&files, "x").unwrap_err().to_string();
        assert!(
            err.contains("docker-credential-nonesuch") && err.contains("own.json"),
            "{err}"
        );
        helper::TEST_DIR.with(|d| *d.borrow_mut() = None);
    }

    #[test]
    fn challenge_params() {
        let p = parse_params(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="a,b""#,
        );
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "a,b");
        assert_eq!(strip_scheme("Bearer realm=x", "bearer"), Some("realm=x"));
    }
}
