//! The `x-kubernetes` extension: what Compose cannot say about a cluster.
//!
//! On a service:
//!
//! ```yaml
//! x-kubernetes:
//!   service_type: LoadBalancer      # ClusterIP, NodePort or LoadBalancer for published ports
//!   service_annotations: {...}      # on its Services (cloud load balancer settings)
//!   annotations: {...}              # on its Deployment/Job and pods
//!   hpa: {min_replicas: 2, max_replicas: 10, target_cpu: 75}
//!   storage_class: fast             # PVCs of the named volumes it mounts
//!   pvc_size: 5Gi
//! ```
//!
//! On a top-level volume (wins over the service's): `size`, `storage_class`,
//! `access_modes`. Unknown keys are errors naming the key.

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The extension's key.
pub const KEY: &str = "x-kubernetes";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}.x-kubernetes{key}: {message}")]
    Invalid {
        path: String,
        key: String,
        message: String,
    },
}

/// The Service type for published ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
    #[default]
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// A HorizontalPodAutoscaler on CPU utilisation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hpa {
    #[serde(default = "one")]
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Average CPU utilisation to keep, in percent of the requests.
    #[serde(default = "eighty")]
    pub target_cpu: u32,
}

fn one() -> u32 {
    1
}

fn eighty() -> u32 {
    80
}

/// `x-kubernetes` of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceExt {
    pub service_type: Option<ServiceType>,
    #[serde(default)]
    pub service_annotations: IndexMap<String, String>,
    #[serde(default)]
    pub annotations: IndexMap<String, String>,
    pub hpa: Option<Hpa>,
    pub storage_class: Option<String>,
    pub pvc_size: Option<String>,
}

/// `x-kubernetes` of a top-level volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeExt {
    pub size: Option<String>,
    pub storage_class: Option<String>,
    #[serde(default)]
    pub access_modes: Vec<AccessMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AccessMode {
    ReadWriteOnce,
    ReadOnlyMany,
    ReadWriteMany,
    ReadWriteOncePod,
}

impl AccessMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::ReadWriteOnce => "ReadWriteOnce",
            AccessMode::ReadOnlyMany => "ReadOnlyMany",
            AccessMode::ReadWriteMany => "ReadWriteMany",
            AccessMode::ReadWriteOncePod => "ReadWriteOncePod",
        }
    }
}

fn parse<T: DeserializeOwned + Default>(
    path: &str,
    extensions: &IndexMap<String, serde_json::Value>,
) -> Result<T, Error> {
    let Some(v) = extensions.get(KEY) else {
        return Ok(T::default());
    };
    serde_path_to_error::deserialize(v).map_err(|e| Error::Invalid {
        path: path.to_owned(),
        key: match e.path().to_string().as_str() {
            "." => String::new(),
            p => format!(".{p}"),
        },
        message: e.inner().to_string(),
    })
}

/// The extension of service `name` (empty when absent).
pub fn of_service(
    name: &str,
    extensions: &IndexMap<String, serde_json::Value>,
) -> Result<ServiceExt, Error> {
    let path = format!("services.{name}");
    let ext: ServiceExt = parse(&path, extensions)?;
    if let Some(size) = &ext.pvc_size {
        check_quantity(&path, "pvc_size", size)?;
    }
    if let Some(class) = &ext.storage_class {
        check_class(&path, class)?;
    }
    if let Some(h) = &ext.hpa {
        let bad = |message: &str| Error::Invalid {
            path: path.clone(),
            key: ".hpa".into(),
            message: message.into(),
        };
        if h.min_replicas == 0 {
            return Err(bad("min_replicas must be at least 1"));
        }
        if h.max_replicas < h.min_replicas {
            return Err(bad("max_replicas must not be below min_replicas"));
        }
        if h.target_cpu == 0 {
            return Err(bad("target_cpu must be a percentage above 0"));
        }
    }
    Ok(ext)
}

/// The extension of top-level volume `name` (empty when absent).
pub fn of_volume(
    name: &str,
    extensions: &IndexMap<String, serde_json::Value>,
) -> Result<VolumeExt, Error> {
    let path = format!("volumes.{name}");
    let ext: VolumeExt = parse(&path, extensions)?;
    if let Some(size) = &ext.size {
        check_quantity(&path, "size", size)?;
    }
    if let Some(class) = &ext.storage_class {
        check_class(&path, class)?;
    }
    Ok(ext)
}

fn check_class(path: &str, class: &str) -> Result<(), Error> {
    let ok = !class.is_empty()
        && class.len() <= 253
        && class
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && class.starts_with(|c: char| c.is_ascii_alphanumeric())
        && class.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            path: path.to_owned(),
            key: ".storage_class".into(),
            message: format!("{class:?} is not a StorageClass name (lowercase DNS name)"),
        })
    }
}

fn check_quantity(path: &str, key: &str, q: &str) -> Result<(), Error> {
    if is_storage_quantity(q) {
        Ok(())
    } else {
        Err(Error::Invalid {
            path: path.to_owned(),
            key: format!(".{key}"),
            message: format!("{q:?} is not a storage size (like 512Mi, 5Gi, 1Ti)"),
        })
    }
}

/// A storage size as Kubernetes quantities write it: digits (a decimal
/// fraction allowed) and an optional binary or decimal suffix.
pub fn is_storage_quantity(q: &str) -> bool {
    const SUFFIXES: [&str; 13] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", "",
    ];
    SUFFIXES.iter().any(|s| {
        q.strip_suffix(s).is_some_and(|num| {
            let mut parts = num.splitn(2, '.');
            let int = parts.next().unwrap_or("");
            let frac = parts.next();
            !int.is_empty()
                && int.chars().all(|c| c.is_ascii_digit())
                && frac.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ext(v: serde_json::Value) -> IndexMap<String, serde_json::Value> {
        let mut m = IndexMap::new();
        m.insert(KEY.to_owned(), v);
        m
    }

    #[test]
    fn a_service_extension_parses() {
        let e = of_service(
            "api",
            &ext(
                json!({"service_type": "NodePort", "hpa": {"max_replicas": 5},
                        "pvc_size": "5Gi", "storage_class": "fast-ssd",
                        "annotations": {"a": "b"}}),
            ),
        )
        .unwrap();
        assert_eq!(e.service_type, Some(ServiceType::NodePort));
        assert_eq!(
            e.hpa,
            Some(Hpa {
                min_replicas: 1,
                max_replicas: 5,
                target_cpu: 80
            })
        );
        assert_eq!(e.pvc_size.as_deref(), Some("5Gi"));
        assert_eq!(
            of_service("x", &IndexMap::new()).unwrap(),
            ServiceExt::default()
        );
    }

    #[test]
    fn mistakes_name_the_key() {
        let err = of_service("api", &ext(json!({"hpa": {"max": 5}})))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("services.api.x-kubernetes.hpa"), "{err}");
        assert!(err.contains("max"), "{err}");
        let err = of_service("api", &ext(json!({"pvc_size": "5 GB"})))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "services.api.x-kubernetes.pvc_size: \"5 GB\" is not a storage size (like 512Mi, 5Gi, 1Ti)"
        );
        let err = of_service(
            "api",
            &ext(json!({"hpa": {"min_replicas": 3, "max_replicas": 2}})),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("max_replicas must not be below"), "{err}");
        let err = of_volume("data", &ext(json!({"access_modes": ["Everyone"]})))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("volumes.data.x-kubernetes.access_modes"),
            "{err}"
        );
        assert!(of_service("a", &ext(json!({"storage_class": "Fast"}))).is_err());
    }

    #[test]
    fn storage_quantities() {
        for ok in ["1Gi", "512Mi", "1.5Gi", "100", "2T"] {
            assert!(is_storage_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "1GB", "1.Gi", "-1Gi", "1 Gi"] {
            assert!(!is_storage_quantity(bad), "{bad}");
        }
    }
}
