//! Docker's byte sizes (`github.com/docker/go-units`): `RAMInBytes` for
//! memory limits, `--shm-size` and Compose sizes (binary multiples:
//! `1k` = 1024), `FromHumanSize` where Docker uses SI multiples (`1k` =
//! 1000, e.g. json-file's `max-size`).
//!
//! Both accept `<number>[ ][unit]` with unit one of `b k m g t p`, followed
//! by an optional `b` or `ib`, case-insensitive (`512m`, `1.5 GiB`, `10MB`);
//! a negative size is an error. The number is everything up to the last
//! digit, `.` or space, as in go-units.

/// Why a size did not parse (go-units' messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid size: '{0}'")]
    Invalid(String),
    #[error("invalid suffix: '{0}'")]
    Suffix(String),
}

/// go-units' `RAMInBytes`: binary multiples.
pub fn ram_in_bytes(s: &str) -> Result<i64, Error> {
    parse_size(s, 1024)
}

/// go-units' `FromHumanSize`: decimal (SI) multiples.
pub fn from_human_size(s: &str) -> Result<i64, Error> {
    parse_size(s, 1000)
}

fn parse_size(s: &str, base: u32) -> Result<i64, Error> {
    let invalid = || Error::Invalid(s.to_owned());
    let sep = s
        .rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .ok_or_else(invalid)?;
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    // Rust's f64 grammar is Go's ParseFloat's for decimal numbers (sign,
    // fraction, exponent); Go's hex floats and `_` separators are not
    // accepted here, which no size written for Docker uses.
    let size: f64 = num.parse().map_err(|_| invalid())?;
    if size < 0.0 || !size.is_finite() {
        return Err(invalid());
    }
    let bad_suffix = || Error::Suffix(sfx.to_ascii_lowercase());
    let lower = sfx.to_ascii_lowercase();
    let mult = match lower.as_str() {
        "" | "b" => 1.0,
        _ if lower.len() > 3 => return Err(bad_suffix()),
        _ => {
            let exp = match lower.as_bytes()[0] {
                b'k' => 1,
                b'm' => 2,
                b'g' => 3,
                b't' => 4,
                b'p' => 5,
                _ => return Err(bad_suffix()),
            };
            // The unit may be followed by `b` or `ib` (`KiB`, `MB`).
            if !matches!(&lower[1..], "" | "b" | "ib") {
                return Err(bad_suffix());
            }
            f64::from(base).powi(exp)
        }
    };
    let bytes = size * mult;
    // Go's int64() of a larger float is undefined; refuse it instead.
    if bytes >= i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: i64 = 1024;
    const MIB: i64 = 1024 * KIB;
    const GIB: i64 = 1024 * MIB;

    #[test]
    fn ram_in_bytes_like_go_units() {
        // go-units size_test.go TestRAMInBytes
        let ok: &[(&str, i64)] = &[
            ("32", 32),
            ("32b", 32),
            ("32B", 32),
            ("32k", 32 * KIB),
            ("32K", 32 * KIB),
            ("32kb", 32 * KIB),
            ("32Kb", 32 * KIB),
            ("32Kib", 32 * KIB),
            ("32KIB", 32 * KIB),
            ("32Mb", 32 * MIB),
            ("32Gb", 32 * GIB),
            ("32Tb", 32 * GIB * 1024),
            ("8Pb", 8 * GIB * 1024 * 1024),
            ("8PB", 8 * GIB * 1024 * 1024),
            ("8P", 8 * GIB * 1024 * 1024),
            ("0.3m", 314_572),
            ("1.5g", 3 * GIB / 2),
            ("1.5 g", 3 * GIB / 2),
            ("32.3", 32),
            ("32 MiB", 32 * MIB),
            (".5k", 512),
            ("5.k", 5 * KIB),
        ];
        for (s, want) in ok {
            assert_eq!(ram_in_bytes(s), Ok(*want), "{s}");
        }
        for bad in [
            "",
            "hello",
            "-32",
            " 32 ",
            "32m b",
            "32bm",
            "32.3k.5",
            "32ib",
            "1.5  g",
            "32  mb",
            "32 m ",
            "1kk",
            "1kbb",
            "1kib2",
            "1xb",
            "k",
            "99999999999999999999p",
        ] {
            assert!(ram_in_bytes(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn from_human_size_is_decimal() {
        assert_eq!(from_human_size("10m"), Ok(10_000_000));
        assert_eq!(from_human_size("1k"), Ok(1000));
        assert_eq!(from_human_size("1KiB"), Ok(1000));
        assert_eq!(from_human_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(from_human_size("32"), Ok(32));
        assert!(from_human_size("1x").is_err());
    }

    #[test]
    fn messages() {
        assert_eq!(
            ram_in_bytes("hello").unwrap_err().to_string(),
            "invalid size: 'hello'"
        );
        assert_eq!(
            ram_in_bytes("32x").unwrap_err().to_string(),
            "invalid suffix: 'x'"
        );
    }
}
