//! Durations (`1m30s`) and byte sizes (`512M`) of Compose files.
//!
//! Durations use Go's `time.ParseDuration` syntax and print like Go's
//! `Duration.String()` (what `docker compose config` shows); byte sizes use
//! docker's `units.RAMInBytes` (binary multiples, `b k m g t p` with an
//! optional `b`/`ib` suffix, case-insensitive).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid duration {0:?}")]
    Duration(String),
    #[error("invalid size {0:?}")]
    Bytes(String),
}

/// A duration in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Duration(pub i64);

impl Duration {
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.max(0) as u64)
    }

    /// Parses Go's duration syntax (`1h2m3.5s`, `500ms`, `10us`, `0`) plus
    /// `d` and `w` (days, weeks) as compose-go accepts them.
    pub fn parse(s: &str) -> Result<Self, Error> {
        rstack_sys::duration::parse_with_days(s)
            .map(Duration)
            .map_err(|_| Error::Duration(s.to_string()))
    }
}

impl fmt::Display for Duration {
    /// Go's `time.Duration.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&rstack_sys::duration::format(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Duration::parse(&s).map_err(serde::de::Error::custom),
            // A bare number is seconds, as compose-go's duration hook reads it.
            serde_json::Value::Number(n) => {
                Ok(Duration((n.as_f64().unwrap_or(0.0) * 1e9).round() as i64))
            }
            other => Err(serde::de::Error::custom(format!(
                "invalid duration {other}"
            ))),
        }
    }
}

/// A size in bytes (`-1` means unlimited where Compose allows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Bytes(pub i64);

impl Bytes {
    /// Parses `512`, `512b`, `1.5g`, `100MB`, `2GiB` (binary multiples,
    /// go-units' `RAMInBytes` as compose-go uses it), and `-1`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let t = s.trim();
        if t == "-1" {
            return Ok(Bytes(-1));
        }
        rstack_sys::units::ram_in_bytes(t)
            .map(Bytes)
            .map_err(|_| Error::Bytes(s.to_string()))
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Bytes {
    /// As a string of bytes, like `docker compose config` (`"536870912"`).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Bytes::parse(&s).map_err(serde::de::Error::custom),
            serde_json::Value::Number(n) => Ok(Bytes(
                n.as_i64().unwrap_or(n.as_f64().unwrap_or(0.0) as i64),
            )),
            other => Err(serde::de::Error::custom(format!("invalid size {other}"))),
        }
    }
}

/// A file mode (secrets, configs). Written in octal (`0440`) in YAML and
/// printed back that way, like compose-go's `FileMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct FileMode(pub u32);

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0{:o}", self.0)
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            // A YAML integer is already the value (`0440` reads as 288).
            serde_json::Value::Number(n) => n
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .map(FileMode)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid file mode {n}"))),
            // A string is octal, as in `mode: "0440"`.
            serde_json::Value::String(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8)
                .map(FileMode)
                .map_err(|_| serde::de::Error::custom(format!("invalid file mode {s:?}"))),
            other => Err(serde::de::Error::custom(format!(
                "invalid file mode {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(Duration::parse("1m30s").unwrap().0, 90_000_000_000);
        assert_eq!(Duration::parse("1.5s").unwrap().0, 1_500_000_000);
        assert_eq!(Duration::parse("500ms").unwrap().to_string(), "500ms");
        assert_eq!(Duration::parse("1h").unwrap().to_string(), "1h0m0s");
        assert_eq!(Duration::parse("90s").unwrap().to_string(), "1m30s");
        assert_eq!(Duration::parse("1.5s").unwrap().to_string(), "1.5s");
        assert_eq!(Duration::parse("1d12h").unwrap().to_string(), "36h0m0s");
        assert!(Duration::parse("10").is_err());
        assert!(Duration::parse("abc").is_err());
    }

    #[test]
    fn file_modes() {
        let m: FileMode = serde_json::from_value(serde_json::json!(288)).unwrap();
        assert_eq!(m.to_string(), "0440");
        let m: FileMode = serde_json::from_value(serde_json::json!("0440")).unwrap();
        assert_eq!(m.0, 0o440);
    }

    #[test]
    fn bytes() {
        assert_eq!(Bytes::parse("512M").unwrap().0, 512 * 1024 * 1024);
        assert_eq!(Bytes::parse("50M").unwrap().0, 52_428_800);
        assert_eq!(Bytes::parse("2gb").unwrap().0, 2 * 1024 * 1024 * 1024);
        assert_eq!(Bytes::parse("1.5k").unwrap().0, 1536);
        assert_eq!(Bytes::parse("100").unwrap().0, 100);
        assert!(Bytes::parse("12x").is_err());
    }
}
