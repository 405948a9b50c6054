//! Platforms (`os/arch[/variant]`) and picking one entry of a manifest list.
//!
//! Multi-arch images are a manifest list / OCI index whose entries carry a
//! platform; the host's platform is the default, as in Docker. Architecture
//! names follow Go (`amd64`, `arm64`), which is what registries use.

use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("invalid platform {input:?}: expected os/arch[/variant], e.g. linux/arm64")]
    Invalid { input: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/amd64`, `linux/arm/v7`...; `arch` alone means linux.
    pub fn parse(input: &str) -> Result<Platform, Error> {
        let parts: Vec<&str> = input.split('/').collect();
        let invalid = || Error::Invalid {
            input: input.to_owned(),
        };
        if parts
            .iter()
            .any(|p| p.is_empty() || p.chars().any(|c| c.is_whitespace()))
        {
            return Err(invalid());
        }
        let (os, arch, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => return Err(invalid()),
        };
        let (architecture, variant) =
            normalize_arch(&arch.to_lowercase(), variant.map(str::to_lowercase));
        Ok(Platform {
            os: os.to_lowercase(),
            architecture,
            variant,
        })
    }

    /// The platform this process runs on.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(Into::into),
        }
    }

    /// Whether a manifest-list entry's platform fits this one.
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        let (arch, variant) = normalize_arch(arch, variant.map(str::to_owned));
        if self.os != os || self.architecture != arch {
            return false;
        }
        match (&self.variant, variant) {
            (None, _) => true,
            (Some(want), Some(have)) => *want == have,
            (Some(_), None) => false,
        }
    }
}

/// Docker's normalisation: `aarch64` = `arm64`, `arm64/v8` = `arm64`,
/// `x86_64` = `amd64`, `arm` without variant = `arm/v7`.
fn normalize_arch(arch: &str, variant: Option<String>) -> (String, Option<String>) {
    match (arch, variant.as_deref()) {
        ("x86_64" | "x86-64" | "amd64", _) => ("amd64".into(), None),
        ("aarch64" | "arm64", Some("v8") | None) => ("arm64".into(), None),
        ("aarch64" | "arm64", Some(v)) => ("arm64".into(), Some(v.into())),
        ("armhf", _) => ("arm".into(), Some("v7".into())),
        ("armel", _) => ("arm".into(), Some("v6".into())),
        ("arm", None) => ("arm".into(), Some("v7".into())),
        (a, v) => (a.into(), v.map(Into::into)),
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(p.matches("linux", "arm64", None));
        assert!(!p.matches("linux", "amd64", None));
        let arm = Platform::parse("linux/arm/v6").unwrap();
        assert!(arm.matches("linux", "arm", Some("v6")));
        assert!(!arm.matches("linux", "arm", Some("v7")));
        assert!(!arm.matches("linux", "arm", None));
        assert_eq!(Platform::parse("amd64").unwrap().to_string(), "linux/amd64");
        assert!(Platform::parse("linux/").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
        assert!(Platform::host().matches(
            &Platform::host().os,
            &Platform::host().architecture,
            None
        ));
    }
}
