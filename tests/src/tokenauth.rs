//! A real token server for distribution's token auth (the scheme of Docker
//! Hub, GHCR, Harbor...): the registry answers `401` with
//! `WWW-Authenticate: Bearer realm=...,service=...,scope=...`; the client
//! gets a JWT from the realm (basic auth with the user's credentials) and
//! sends it as `Authorization: Bearer`.
//!
//! The JWTs are RS256, signed with a key made by the `openssl` command;
//! its self-signed certificate is both the registry's `rootcertbundle` and
//! the token's `x5c` header, which is how `docker-registry` finds the key.
//! Every scope asked is granted to the right user; anyone else gets `401`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use serde_json::json;

use crate::registry::{Credentials, Error, run};

/// `service` and `iss` of the tokens (the registry checks both).
pub const SERVICE: &str = "rstack-e2e-registry";
pub const ISSUER: &str = "rstack-e2e-token-server";

/// A running token server; stops accepting when dropped.
#[derive(Debug)]
pub struct TokenServer {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    issued: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Signer {
    key: PathBuf,
    /// The certificate, DER, standard base64 (the `x5c` entry).
    x5c: String,
    creds: Credentials,
}

impl TokenServer {
    /// Makes a key and certificate and serves tokens to `username`.
    pub fn start(username: &str, password: &str) -> Result<TokenServer, Error> {
        let dir = tempfile::Builder::new()
            .prefix("rstack-e2e-token-")
            .tempdir()
            .map_err(Error::TempDir)?;
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=rstack-e2e-token-server", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert))?;
        let der = dir.path().join("cert.der");
        run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .arg("-out")
            .arg(&der))?;
        let der = std::fs::read(&der).map_err(|source| Error::Read { path: der, source })?;
        let signer = Arc::new(Signer {
            key,
            x5c: base64::engine::general_purpose::STANDARD.encode(der),
            creds: Credentials {
                username: username.to_owned(),
                password: password.to_owned(),
            },
        });
        let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::FreePort)?;
        let addr = listener.local_addr().map_err(Error::FreePort)?;
        let issued = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&issued);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let signer = Arc::clone(&signer);
                let count = Arc::clone(&count);
                std::thread::spawn(move || serve(conn, &signer, &count));
            }
        });
        Ok(TokenServer { addr, dir, issued })
    }

    /// `http://127.0.0.1:PORT/token`, the realm registries send clients to.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The certificate the registry trusts tokens from.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }
}

/// Answers one request: `GET /token?service=..&scope=..` with basic auth.
fn serve(conn: TcpStream, signer: &Signer, issued: &AtomicU64) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut authorization = None;
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(v.trim().to_owned());
        }
        line.clear();
    }
    let target = request.split(' ').nth(1).unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let user = authorization
        .as_deref()
        .and_then(|a| basic_user(a, &signer.creds));
    let (status, body) = match (path, user) {
        ("/token", Some(user)) => match token(signer, &user, query) {
            Ok(jwt) => {
                issued.fetch_add(1, Ordering::SeqCst);
                (
                    "200 OK",
                    json!({ "token": jwt, "access_token": jwt, "expires_in": 300 }),
                )
            }
            Err(e) => ("500 Internal Server Error", json!({ "error": e })),
        },
        ("/token", None) => ("401 Unauthorized", json!({ "details": "bad credentials" })),
        _ => ("404 Not Found", json!({})),
    };
    let body = body.to_string();
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The user of a `Basic` header with the right password.
fn basic_user(header: &str, creds: &Credentials) -> Option<String> {
    let encoded = header.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    (user == creds.username && password == creds.password).then(|| user.to_owned())
}

/// A signed JWT granting every scope in `query`.
fn token(signer: &Signer, user: &str, query: &str) -> Result<String, String> {
    let mut access = Vec::new();
    for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        if key != "scope" {
            continue;
        }
        let scope = percent_decode(value);
        // `repository:name:pull,push`; names may hold `:` (a port).
        let mut parts = scope.splitn(2, ':');
        let kind = parts.next().unwrap_or("");
        let rest = parts.next().unwrap_or("");
        let (name, actions) = rest.rsplit_once(':').unwrap_or((rest, ""));
        access.push(json!({
            "type": kind,
            "name": name,
            "actions": actions.split(',').filter(|a| !a.is_empty()).collect::<Vec<_>>(),
        }));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let header = json!({ "typ": "JWT", "alg": "RS256", "x5c": [signer.x5c] });
    let claims = json!({
        "iss": ISSUER, "sub": user, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", access.len()), "access": access,
    });
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!(
        "{}.{}",
        url.encode(header.to_string()),
        url.encode(claims.to_string())
    );
    let signature = sign(&signer.key, signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", url.encode(signature)))
}

/// RSA PKCS#1 v1.5 SHA-256 signature (JWT's RS256) by `openssl dgst`.
fn sign(key: &Path, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("openssl: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(data)
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(out.stdout)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_decoding() {
        assert_eq!(
            super::percent_decode("repository%3Ae2e%2Fprivate%3Apull%2Cpush"),
            "repository:e2e/private:pull,push"
        );
        assert_eq!(super::percent_decode("a%2"), "a%2");
    }
}
