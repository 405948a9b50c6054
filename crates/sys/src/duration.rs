//! Go's duration syntax (`time.ParseDuration`, `Duration.String`), which
//! Docker and Compose files use for healthcheck intervals, timeouts and
//! `--since`: `300ms`, `1.5h`, `2h45m`, `-1m`, `2us`/`2µs`, and a bare `0`.
//!
//! A port of Go's parser rather than an f64 sum: Go accumulates integer
//! nanoseconds and only uses floating point for a fraction of one unit, so
//! `1.1s` is exactly 1_100_000_000 ns and overflow is an error.

/// Why a duration did not parse (Go's messages without the `time: ` prefix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid duration {0:?}")]
    Invalid(String),
    #[error("missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("unknown unit {unit:?} in duration {text:?}")]
    UnknownUnit { unit: String, text: String },
}

const NS: u64 = 1;
const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;
const M: u64 = 60 * S;
const H: u64 = 60 * M;
const LIMIT: u64 = 1 << 63;

fn unit(u: &str, days: bool) -> Option<u64> {
    Some(match u {
        "ns" => NS,
        // U+00B5 micro sign and U+03BC Greek small letter mu, as Go accepts
        "us" | "\u{b5}s" | "\u{3bc}s" => US,
        "ms" => MS,
        "s" => S,
        "m" => M,
        "h" => H,
        "d" if days => 24 * H,
        "w" if days => 7 * 24 * H,
        _ => return None,
    })
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse(s: &str) -> Result<i64, Error> {
    parse_units(s, false)
}

/// [`parse`] plus `d` (24h) and `w` (7d), as compose-go reads Compose files
/// (through `str2duration`, Go's parser with those two units added).
pub fn parse_with_days(s: &str) -> Result<i64, Error> {
    parse_units(s, true)
}

fn parse_units(orig: &str, days: bool) -> Result<i64, Error> {
    let invalid = || Error::Invalid(orig.to_owned());
    let (neg, mut s) = match orig.as_bytes().first() {
        Some(b'-') => (true, &orig[1..]),
        Some(b'+') => (false, &orig[1..]),
        _ => (false, orig),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        let c = s.as_bytes()[0];
        if !(c == b'.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let (v, rest) = leading_int(s).ok_or_else(invalid)?;
        let pre = rest.len() != s.len();
        s = rest;
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if let Some(rest) = s.strip_prefix('.') {
            let (x, sc, rest2) = leading_fraction(rest);
            post = rest2.len() != rest.len();
            (f, scale, s) = (x, sc, rest2);
        }
        if !pre && !post {
            return Err(invalid());
        }
        let end = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if end == 0 {
            return Err(Error::MissingUnit(orig.to_owned()));
        }
        let (u, rest) = s.split_at(end);
        s = rest;
        let unit = unit(u, days).ok_or_else(|| Error::UnknownUnit {
            unit: u.to_owned(),
            text: orig.to_owned(),
        })?;
        if v > LIMIT / unit {
            return Err(invalid());
        }
        let mut v = v * unit;
        if f > 0 {
            // f64 only for the fraction of one unit (<= 3.6e12 ns for h,
            // 6.048e14 for w), as Go does: exact enough to the nanosecond.
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        // d <= 2^63: -d fits, i64::MIN included
        return Ok((d as i64).wrapping_neg());
    }
    i64::try_from(d).map_err(|_| invalid())
}

/// The leading `[0-9]*` of `s` and the rest; `None` past 2^63.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let mut x: u64 = 0;
    for c in s[..end].bytes() {
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(c - b'0');
        if x > LIMIT {
            return None;
        }
    }
    Some((x, &s[end..]))
}

/// The leading `[0-9]*` of a fraction, its scale (10^digits kept) and the
/// rest; digits past 2^63 stop adding precision instead of failing.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (mut x, mut scale, mut overflow) = (0u64, 1f64, false);
    for c in s[..end].bytes() {
        if overflow {
            continue;
        }
        if x > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > LIMIT {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[end..])
}

/// Go's `Duration.String()`: `1h0m0s`, `1m30s`, `1.5s`, `500ms`, `2µs`, `0s`.
pub fn format(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_owned();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    if u < S {
        let (div, unit) = if u < US {
            (NS, "ns")
        } else if u < MS {
            (US, "µs")
        } else {
            (MS, "ms")
        };
        return format!("{sign}{}{unit}", frac(u, div));
    }
    let h = u / H;
    let m = (u / M) % 60;
    let secs = frac(u % M, S);
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{sign}{m}m{secs}s")
    } else {
        format!("{sign}{secs}s")
    }
}

/// `value / div` with the fraction's trailing zeros removed.
fn frac(value: u64, div: u64) -> String {
    let (whole, rem) = (value / div, value % div);
    if rem == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_examples() {
        // from Go's time/time_test.go parseDurationTests
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * S as i64),
            ("30s", 30 * S as i64),
            ("1478s", 1478 * S as i64),
            ("-5s", -5 * S as i64),
            ("+5s", 5 * S as i64),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * S as i64),
            ("5.6s", 5_600_000_000),
            ("5.s", 5 * S as i64),
            (".5s", 500_000_000),
            ("1.0s", S as i64),
            ("1.00s", S as i64),
            ("1.004s", 1_004_000_000),
            ("1.0040s", 1_004_000_000),
            ("100.00100s", 100_001_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * S as i64),
            ("15m", 15 * M as i64),
            ("16h", 16 * H as i64),
            ("3h30m", (3 * H + 30 * M) as i64),
            ("10.5s4m", (4 * M + 10 * S + S / 2) as i64),
            ("-2m3.4s", -((2 * M + 3 * S + 400 * MS) as i64)),
            (
                "1h2m3s4ms5us6ns",
                (H + 2 * M + 3 * S + 4 * MS + 5 * US + 6) as i64,
            ),
            ("39h9m14.425s", (39 * H + 9 * M + 14 * S + 425 * MS) as i64),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * M as i64),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("0.100000000000000000000h", 6 * M as i64),
            (
                "0.830103483285477580700h",
                (49 * M + 48 * S + 372_539_827) as i64,
            ),
        ];
        for (s, want) in ok {
            assert_eq!(parse(s), Ok(*want), "{s}");
        }
        for bad in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "\u{85}\u{85}",
            "\u{FFFD}",
            "9223372036854775810ns",
            "9223372036854775808ns",
            "-9223372036854775809ns",
            "9223372036854776us",
            "3000000h",
            "9223372036854775.808us",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn error_messages_are_gos() {
        assert_eq!(
            parse("3").unwrap_err().to_string(),
            "missing unit in duration \"3\""
        );
        assert_eq!(
            parse("1x").unwrap_err().to_string(),
            "unknown unit \"x\" in duration \"1x\""
        );
        assert_eq!(
            parse("-").unwrap_err().to_string(),
            "invalid duration \"-\""
        );
    }

    #[test]
    fn days_and_weeks_only_when_asked() {
        assert!(parse("1d").is_err());
        assert_eq!(parse_with_days("1d12h"), Ok((36 * H) as i64));
        assert_eq!(parse_with_days("2w"), Ok((14 * 24 * H) as i64));
        assert_eq!(parse_with_days("1.5s"), Ok(1_500_000_000));
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (3_300_000_000, "3.3s"),
            ((4 * M + 5 * S) as i64, "4m5s"),
            ((4 * M + 5001 * MS) as i64, "4m5.001s"),
            ((5 * H + 6 * M + 7001 * MS) as i64, "5h6m7.001s"),
            ((8 * M + 1) as i64, "8m0.000000001s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
            (-1_500_000_000, "-1.5s"),
            (H as i64, "1h0m0s"),
            (500_000_000, "500ms"),
        ];
        for (ns, want) in cases {
            assert_eq!(format(*ns), *want, "{ns}");
        }
    }

    #[test]
    fn round_trips() {
        for s in ["1h0m0s", "1m30s", "1.5s", "500ms", "2µs", "7ns", "-3m0.5s"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}
