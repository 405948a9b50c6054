//! The manifest formats rstack reads: Docker v2 schema 2 manifests and
//! manifest lists, OCI image manifests and indexes. Both families share the
//! same JSON shape, so one lenient model covers them (oci-spec's types
//! reject some real-world documents, e.g. unknown media types).

use serde::{Deserialize, Serialize};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Media types accepted when fetching a manifest by tag.
pub const ACCEPTED: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformJson {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Index {
    pub manifests: Vec<Descriptor>,
}

/// A fetched manifest document.
pub enum Document {
    Manifest(Manifest),
    Index(Index),
}

/// Parses a manifest or an index, by media type or by shape.
pub fn parse(data: &[u8]) -> Result<Document, String> {
    let value: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1) {
        return Err("schema 1 manifests are not supported (deprecated by Docker)".into());
    }
    let media_type = value
        .get("mediaType")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let is_index = media_type == OCI_INDEX
        || media_type == DOCKER_LIST
        || (media_type.is_empty() && value.get("manifests").is_some());
    if is_index {
        serde_json::from_value(value)
            .map(Document::Index)
            .map_err(|e| format!("bad index: {e}"))
    } else {
        let m: Manifest =
            serde_json::from_value(value).map_err(|e| format!("bad manifest: {e}"))?;
        if m.schema_version != 2 {
            return Err(format!("unsupported schemaVersion {}", m.schema_version));
        }
        Ok(Document::Manifest(m))
    }
}

/// Checks that a manifest describes a container image; returns an error
/// message naming the first media type that is not a layer.
/// The most layers an image may have: Docker's limit (overlay stacks at
/// most 128 lower dirs with the upper and the container's own).
pub const MAX_LAYERS: usize = 125;

pub fn check_image(m: &Manifest) -> Result<(), String> {
    if m.layers.len() > MAX_LAYERS {
        return Err(format!(
            "{} layers: more than the {MAX_LAYERS} an overlay root file system can stack \
             (docker refuses them too)",
            m.layers.len()
        ));
    }
    let cfg = m.config.media_type.as_str();
    if !(cfg.is_empty() || cfg == OCI_CONFIG || cfg == DOCKER_CONFIG) {
        return Err(format!("not a container image (config media type {cfg})"));
    }
    for l in &m.layers {
        let t = l.media_type.as_str();
        let ok = t.is_empty()
            || t.starts_with("application/vnd.oci.image.layer.v1.tar")
            || t == "application/vnd.docker.image.rootfs.diff.tar.gzip"
            || t == "application/vnd.docker.image.rootfs.diff.tar";
        if !ok {
            return Err(format!("unsupported layer media type {t}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(layers: usize) -> Manifest {
        let d = |t: &str| Descriptor {
            media_type: t.into(),
            digest: format!("sha256:{}", "0".repeat(64)),
            size: 1,
            platform: None,
            annotations: None,
        };
        Manifest {
            schema_version: 2,
            media_type: None,
            config: d(OCI_CONFIG),
            layers: (0..layers)
                .map(|_| d("application/vnd.oci.image.layer.v1.tar+gzip"))
                .collect(),
        }
    }

    #[test]
    fn too_many_layers_are_refused_before_any_download() {
        assert!(check_image(&manifest(MAX_LAYERS)).is_ok());
        let err = check_image(&manifest(10_001)).unwrap_err();
        assert!(err.starts_with("10001 layers: more than the 125"), "{err}");
    }
}
