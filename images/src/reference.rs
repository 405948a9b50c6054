//! Image references with Docker's name rules.
//!
//! A reference names an image in a registry: `[registry/]repository[:tag][@digest]`.
//! Docker's normalisation applies (distribution/reference `ParseNormalizedNamed`):
//! a name without a registry part lives on Docker Hub (`docker.io`), and a Hub
//! name without a `/` lives under `library/` (`redis` is
//! `docker.io/library/redis:latest`). The first component is a registry when
//! it contains a `.` or a `:`, is `localhost`, or has upper-case letters.
//! A reference without tag or digest means the tag `latest`.

use std::fmt;
use std::str::FromStr;

/// The registry of names without a registry part.
pub const DOCKER_HUB: &str = "docker.io";
const LEGACY_HUB: &str = "index.docker.io";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Why a string is not a valid image reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("invalid reference format: {input:?} is empty")]
    Empty { input: String },
    #[error(
        "invalid reference format: repository name {repository:?} must be lowercase (in {input:?})"
    )]
    Uppercase { input: String, repository: String },
    #[error("invalid reference format: {input:?}: bad repository name component {component:?}")]
    BadComponent { input: String, component: String },
    #[error("invalid reference format: {input:?}: bad registry {registry:?}")]
    BadRegistry { input: String, registry: String },
    #[error(
        "invalid reference format: {input:?}: bad tag {tag:?} (letters, digits, `_`, `.`, `-`, at most 128, not starting with `.` or `-`)"
    )]
    BadTag { input: String, tag: String },
    #[error(
        "invalid reference format: {input:?}: bad digest {digest:?} (expected sha256:<64 hex digits>)"
    )]
    BadDigest { input: String, digest: String },
    #[error(
        "invalid reference format: {input:?}: repository name longer than {MAX_NAME_LEN} characters"
    )]
    TooLong { input: String },
}

/// A normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses and normalises a reference (`redis`, `user/app:tag`,
    /// `host:5000/path/app@sha256:...`).
    pub fn parse(input: &str) -> Result<Reference, Error> {
        if input.is_empty() {
            return Err(Error::Empty {
                input: input.to_owned(),
            });
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                validate_digest(input, digest)?;
                (rest, Some(digest.to_owned()))
            }
            None => (input, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(input, tag)?;
        }
        if name.is_empty() {
            return Err(Error::Empty {
                input: input.to_owned(),
            });
        }
        let (registry, repository) = split_registry(name);
        let registry = if registry == LEGACY_HUB {
            DOCKER_HUB.to_owned()
        } else {
            registry
        };
        validate_registry(input, &registry)?;
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(Error::Uppercase {
                input: input.to_owned(),
                repository,
            });
        }
        for component in repository.split('/') {
            if !valid_component(component) {
                return Err(Error::BadComponent {
                    input: input.to_owned(),
                    component: component.to_owned(),
                });
            }
        }
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(Error::TooLong {
                input: input.to_owned(),
            });
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_owned()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// A reference to `name` (registry + repository of `self`) with another
    /// tag or digest.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_owned()),
        }
    }

    /// The same repository with a tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        }
    }

    /// `docker.io`, `127.0.0.1:5000`, `ghcr.io`...
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `library/redis`, `user/app`...
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `registry/repository`, e.g. `docker.io/library/redis`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as Docker shows it: `redis`, `user/app`, `host:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            match self.repository.strip_prefix("library/") {
                Some(short) if !short.contains('/') => short.to_owned(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The familiar name with tag and digest: `redis:latest`.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_name();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }

    /// True when the registry is this host (plain HTTP is then allowed).
    pub fn is_loopback_registry(&self) -> bool {
        let host = registry_host(&self.registry);
        if host == "localhost" {
            return true;
        }
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => false,
        }
    }

    /// The reference in oci-client's type, for registry calls.
    pub(crate) fn to_oci(&self) -> oci_client::Reference {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                digest.clone(),
            ),
            (None, Some(tag)) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                tag.clone(),
            ),
            (None, None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                "latest".to_owned(),
            ),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// The host part of a registry (`[::1]:5000` -> `::1`, `host:5000` -> `host`).
pub(crate) fn registry_host(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Whether `input` names no registry (`busybox`, `user/app:1`): a short
/// name, which Docker's rule puts on Docker Hub.
pub fn is_short_name(input: &str) -> bool {
    let name = input.split('@').next().unwrap_or(input);
    match name.split_once('/') {
        Some((first, _)) => !is_registry_component(first),
        None => true,
    }
}

/// The first component of a name is a registry when it has a `.` or a
/// `:`, is `localhost`, or has upper-case letters.
fn is_registry_component(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase())
}

/// Docker's `splitDockerDomain`.
fn split_registry(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest)) if is_registry_component(first) => (first.to_owned(), rest.to_owned()),
        _ => (DOCKER_HUB.to_owned(), name.to_owned()),
    }
}

fn validate_registry(input: &str, registry: &str) -> Result<(), Error> {
    let bad = || Error::BadRegistry {
        input: input.to_owned(),
        registry: registry.to_owned(),
    };
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or_else(bad)?;
        ip.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        (None, after.strip_prefix(':'))
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let ok = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(bad());
        }
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(bad());
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn validate_tag(input: &str, tag: &str) -> Result<(), Error> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::BadTag {
            input: input.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

fn validate_digest(input: &str, digest: &str) -> Result<(), Error> {
    if is_sha256_digest(digest) {
        Ok(())
    } else {
        Err(Error::BadDigest {
            input: input.to_owned(),
            digest: digest.to_owned(),
        })
    }
}

/// `sha256:` followed by 64 lower-case hex digits.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn hub_names_are_normalised() {
        assert_eq!(full("redis"), "docker.io/library/redis:latest");
        assert_eq!(full("redis:7"), "docker.io/library/redis:7");
        assert_eq!(full("user/app:tag"), "docker.io/user/app:tag");
        assert_eq!(full("docker.io/redis"), "docker.io/library/redis:latest");
        assert_eq!(
            full("index.docker.io/library/redis"),
            "docker.io/library/redis:latest"
        );
        assert_eq!(full("a/b/c"), "docker.io/a/b/c:latest");
    }

    #[test]
    fn registries_are_recognised() {
        let r = Reference::parse(&format!("127.0.0.1:5000/path/app@{D}")).unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "path/app");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(D));
        assert!(r.is_loopback_registry());
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("ghcr.io/o/app:v1.2"), "ghcr.io/o/app:v1.2");
        assert_eq!(full("[::1]:5000/app"), "[::1]:5000/app:latest");
        assert!(
            Reference::parse("[::1]:5000/app")
                .unwrap()
                .is_loopback_registry()
        );
        assert!(
            Reference::parse("127.8.0.3:80/app")
                .unwrap()
                .is_loopback_registry()
        );
        assert!(
            !Reference::parse("example.com/app")
                .unwrap()
                .is_loopback_registry()
        );
        assert_eq!(full("Host/app"), "Host/app:latest");
    }

    #[test]
    fn tag_and_digest_together() {
        let r = Reference::parse(&format!("app:1@{D}")).unwrap();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.familiar(), format!("app:1@{D}"));
    }

    #[test]
    fn familiar_names() {
        assert_eq!(Reference::parse("redis").unwrap().familiar_name(), "redis");
        assert_eq!(
            Reference::parse("user/app").unwrap().familiar_name(),
            "user/app"
        );
        assert_eq!(Reference::parse("h:1/a").unwrap().familiar_name(), "h:1/a");
        assert_eq!(
            Reference::parse("redis").unwrap().familiar(),
            "redis:latest"
        );
    }

    #[test]
    fn invalid_references_are_rejected_clearly() {
        assert!(matches!(Reference::parse(""), Err(Error::Empty { .. })));
        assert!(matches!(
            Reference::parse("Redis"),
            Err(Error::Uppercase { .. })
        ));
        assert!(matches!(
            Reference::parse("user/App"),
            Err(Error::Uppercase { .. })
        ));
        assert!(matches!(
            Reference::parse("a//b"),
            Err(Error::BadComponent { .. })
        ));
        assert!(matches!(
            Reference::parse("a/-b"),
            Err(Error::BadComponent { .. })
        ));
        assert!(matches!(
            Reference::parse("a..b"),
            Err(Error::BadComponent { .. })
        ));
        assert!(matches!(
            Reference::parse("app:"),
            Err(Error::BadTag { .. })
        ));
        assert!(matches!(
            Reference::parse("app:-x"),
            Err(Error::BadTag { .. })
        ));
        assert!(matches!(
            Reference::parse("app@sha256:abc"),
            Err(Error::BadDigest { .. })
        ));
        assert!(matches!(
            Reference::parse("app@md5:abc"),
            Err(Error::BadDigest { .. })
        ));
        assert!(matches!(
            Reference::parse("host:port/app"),
            Err(Error::BadRegistry { .. })
        ));
        assert!(matches!(
            Reference::parse("a b"),
            Err(Error::BadComponent { .. })
        ));
        let long = "a".repeat(300);
        assert!(matches!(
            Reference::parse(&long),
            Err(Error::TooLong { .. })
        ));
        let msg = Reference::parse("Redis").unwrap_err().to_string();
        assert!(msg.contains("lowercase") && msg.contains("Redis"), "{msg}");
    }

    #[test]
    fn short_names() {
        assert!(is_short_name("busybox"));
        assert!(is_short_name("busybox:1.35"));
        assert!(is_short_name("org/name@sha256:00"));
        assert!(!is_short_name("docker.io/busybox"));
        assert!(!is_short_name("localhost/app"));
        assert!(!is_short_name("127.0.0.1:5000/app"));
    }

    #[test]
    fn separators() {
        assert!(valid_component("a_b"));
        assert!(valid_component("a__b"));
        assert!(valid_component("a---b"));
        assert!(valid_component("a.b"));
        assert!(!valid_component("a___b"));
        assert!(!valid_component("a.-b"));
        assert!(!valid_component("a_"));
    }
}
