//! A malicious registry: the smallest HTTP/1.1 server (std::net, one
//! thread per connection, `Connection: close`) that speaks enough of the
//! distribution API (`/v2/`, manifests, blobs) for a pull, and lies in one
//! chosen way. The real registry validates what it stores, so this is the
//! only way to make a client face a wrong digest or a cut-off blob.
//!
//! It serves one image, `e2e/evil:latest`: a valid config and one gzip
//! layer (a tar with `evil.txt`). What [`Attack`] changes is served to the
//! client; the manifest keeps the honest descriptors.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde_json::json;

use crate::digest_of;
use crate::layer::{LayerBuilder, Meta};
use crate::oci::{
    Compression, FIXED_TIME, Layer, MEDIA_OCI_CONFIG, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST,
};

/// The lie the registry tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// The layer blob served is another valid gzip tar of the same length
    /// (one byte of a file differs), so only its digest gives it away.
    WrongLayerDigest,
    /// The layer response announces the full `Content-Length`, sends half
    /// of it and closes the connection.
    TruncatedLayer,
    /// The layer is served complete and honest in its headers, but is only
    /// the first half of the blob (a short, "successful" response).
    ShortLayer,
    /// A pull by digest gets a manifest whose digest is not that one (the
    /// response's `Docker-Content-Digest` header claims it is).
    WrongManifestDigest,
}

/// The image the evil registry serves, with the honest digests.
#[derive(Clone, Debug)]
pub struct EvilImage {
    pub repo: String,
    pub tag: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    /// The honest layer blob and its digest (as in the manifest).
    pub layer: Vec<u8>,
    pub layer_digest: String,
    /// What is actually served for the layer (differs for layer attacks).
    pub served_layer: Vec<u8>,
}

impl EvilImage {
    fn new(attack: Attack) -> EvilImage {
        let honest_tar = evil_tar(b'a');
        let layer = Layer::new(&honest_tar, Compression::Gzip);
        let served_layer = match attack {
            Attack::WrongLayerDigest => same_length_other_gzip(&layer.blob),
            Attack::TruncatedLayer | Attack::ShortLayer => {
                layer.blob[..layer.blob.len() / 2].to_vec()
            }
            Attack::WrongManifestDigest => layer.blob.clone(),
        };
        let config = serde_json::to_vec(&json!({
            "created": FIXED_TIME,
            "architecture": "amd64",
            "os": "linux",
            "config": { "Cmd": ["sh"] },
            "rootfs": { "type": "layers", "diff_ids": [layer.diff_id] },
        }))
        .expect("json");
        let layer_digest = digest_of(&layer.blob);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": { "mediaType": MEDIA_OCI_CONFIG, "digest": digest_of(&config), "size": config.len() },
            "layers": [{ "mediaType": MEDIA_OCI_LAYER_GZIP, "digest": layer_digest, "size": layer.blob.len() }],
        }))
        .expect("json");
        EvilImage {
            repo: "e2e/evil".to_owned(),
            tag: "latest".to_owned(),
            manifest_digest: digest_of(&manifest),
            manifest,
            config_digest: digest_of(&config),
            config,
            layer_digest,
            layer: layer.blob,
            served_layer,
        }
    }
}

/// A tar with one file whose content is 64 bytes of `fill`.
fn evil_tar(fill: u8) -> Vec<u8> {
    let mut b = LayerBuilder::new();
    b.file("evil.txt", Meta::mode(0o644), &[fill; 64]);
    b.finish()
}

/// A valid gzip stream of a different tar with exactly `blob.len()` bytes:
/// tries other fill bytes until the compressed length matches (it almost
/// always does at once, as one repeated byte compresses the same way).
fn same_length_other_gzip(blob: &[u8]) -> Vec<u8> {
    (b'b'..=b'z')
        .map(|fill| Compression::Gzip.compress(&evil_tar(fill)))
        .find(|other| other.len() == blob.len() && other != blob)
        .expect("a same-length gzip of another tar")
}

/// A running malicious registry; stopped on drop.
pub struct EvilRegistry {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub attack: Attack,
    pub image: EvilImage,
}

impl EvilRegistry {
    /// Starts it on a free `127.0.0.1` port.
    pub fn start(attack: Attack) -> std::io::Result<EvilRegistry> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let image = Arc::new(EvilImage::new(attack));
        let thread = {
            let stop = stop.clone();
            let image = image.clone();
            std::thread::Builder::new()
                .name("evil-registry".to_owned())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(conn) = conn else { continue };
                        let image = image.clone();
                        std::thread::spawn(move || {
                            let _ = serve(conn, &image, attack);
                        });
                    }
                })?
        };
        Ok(EvilRegistry {
            addr,
            stop,
            thread: Some(thread),
            attack,
            image: (*image).clone(),
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `HOST/e2e/evil:latest`, or `HOST/e2e/evil@<honest manifest digest>`
    /// for [`Attack::WrongManifestDigest`] (whose point is a pull by digest).
    pub fn reference(&self) -> String {
        match self.attack {
            Attack::WrongManifestDigest => format!(
                "{}/{}@{}",
                self.addr, self.image.repo, self.image.manifest_digest
            ),
            _ => format!("{}/{}:{}", self.addr, self.image.repo, self.image.tag),
        }
    }
}

impl Drop for EvilRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, image: &EvilImage, attack: Attack) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers; no request here has a body.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    let head = method == "HEAD";
    let mut conn = conn;
    let prefix = format!("/v2/{}/", image.repo);
    if path == "/v2/" || path == "/v2" {
        return respond(&mut conn, 200, "application/json", &[], b"{}", head);
    }
    let Some(rest) = path.strip_prefix(&prefix) else {
        return not_found(&mut conn, head);
    };
    if let Some(reference) = rest.strip_prefix("manifests/") {
        let mut manifest = image.manifest.clone();
        let mut claimed = image.manifest_digest.clone();
        if attack == Attack::WrongManifestDigest {
            // Same image, other bytes: the digest no longer matches.
            manifest.push(b'\n');
            claimed = reference.to_owned();
        }
        if reference != image.tag && reference != image.manifest_digest {
            return not_found(&mut conn, head);
        }
        let headers = [("Docker-Content-Digest", claimed.as_str())];
        return respond(
            &mut conn,
            200,
            MEDIA_OCI_MANIFEST,
            &headers,
            &manifest,
            head,
        );
    }
    if let Some(digest) = rest.strip_prefix("blobs/") {
        if digest == image.config_digest {
            let headers = [("Docker-Content-Digest", digest)];
            return respond(
                &mut conn,
                200,
                "application/octet-stream",
                &headers,
                &image.config,
                head,
            );
        }
        if digest == image.layer_digest {
            let headers = [("Docker-Content-Digest", digest)];
            if attack == Attack::TruncatedLayer && !head {
                // Announce the whole blob, send half, hang up.
                write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\
                     Docker-Content-Digest: {digest}\r\nConnection: close\r\n\r\n",
                    image.layer.len()
                )?;
                conn.write_all(&image.served_layer)?;
                conn.flush()?;
                return conn.shutdown(std::net::Shutdown::Both);
            }
            return respond(
                &mut conn,
                200,
                "application/octet-stream",
                &headers,
                &image.served_layer,
                head,
            );
        }
    }
    not_found(&mut conn, head)
}

fn not_found(conn: &mut TcpStream, head: bool) -> std::io::Result<()> {
    let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"not found"}]}"#;
    respond(conn, 404, "application/json", &[], body, head)
}

fn respond(
    conn: &mut TcpStream,
    status: u16,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    head: bool,
) -> std::io::Result<()> {
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Docker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    conn.write_all(out.as_bytes())?;
    if !head {
        conn.write_all(body)?;
    }
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_digest_layer_is_same_length_valid_gzip() {
        let image = EvilImage::new(Attack::WrongLayerDigest);
        assert_eq!(image.layer.len(), image.served_layer.len());
        assert_ne!(digest_of(&image.served_layer), image.layer_digest);
        let mut tar = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&image.served_layer[..]),
            &mut tar,
        )
        .unwrap();
        assert!(!tar.is_empty());
    }

    #[test]
    fn serves_manifest_and_truncates_layer() {
        let evil = EvilRegistry::start(Attack::TruncatedLayer).unwrap();
        assert_eq!(crate::registry::http_status(evil.addr, "/v2/"), Some(200));
        assert_eq!(
            crate::registry::http_status(evil.addr, "/v2/e2e/evil/manifests/latest"),
            Some(200)
        );
        assert_eq!(
            crate::registry::http_status(evil.addr, "/v2/e2e/other/manifests/latest"),
            Some(404)
        );
        let mut conn = TcpStream::connect(evil.addr).unwrap();
        write!(
            conn,
            "GET /v2/e2e/evil/blobs/{} HTTP/1.1\r\nHost: x\r\n\r\n",
            evil.image.layer_digest
        )
        .unwrap();
        let mut response = Vec::new();
        std::io::Read::read_to_end(&mut conn, &mut response).unwrap();
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&response[..split]);
        assert!(
            head.contains(&format!("Content-Length: {}", evil.image.layer.len())),
            "{head}"
        );
        assert_eq!(response.len() - split, evil.image.layer.len() / 2);
    }
}
