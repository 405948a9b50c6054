//! `.env` files, parsed the way compose-go's `dotenv` package (a port of
//! godotenv) parses them: `KEY=value`, `KEY: value`, `export KEY=...`,
//! single quotes (literal), double quotes (escapes, multi-line), inline
//! ` #` comments on unquoted values, `${VAR}` expansion against a lookup
//! and the keys read so far, and bare `KEY` lines taken from the lookup.
//!
//! Hand-written: no Rust dotenv crate follows compose-go's rules (e.g. the
//! `\0NNN` octal escapes, `KEY: v`, expansion order), and users' files are
//! written against those rules.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::interpolate::{self, Lookup};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("line {line}: key cannot contain a space")]
    SpaceInKey { line: usize },
    #[error("line {line}: unexpected character {ch:?} in variable name {text:?}")]
    BadKeyChar {
        line: usize,
        ch: String,
        text: String,
    },
    #[error("line {line}: unterminated quoted value {text}")]
    Unterminated { line: usize, text: String },
    #[error("line {line}: cannot expand the value")]
    Expand {
        line: usize,
        #[source]
        source: interpolate::Error,
    },
    #[error("parse env file {}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<Error>,
    },
    #[error("read env file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is a directory", path.display())]
    IsDirectory { path: PathBuf },
}

/// Variables in file order.
pub type EnvMap = IndexMap<String, String>;

/// Parses dotenv text. `lookup` is consulted first for `${VAR}` and for bare
/// `KEY` lines; then the keys already in `out`.
pub fn parse_into(text: &str, out: &mut EnvMap, lookup: &dyn Lookup) -> Result<(), Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n");
    let mut p = Parser { line: 1 };
    let mut cut: &str = &text;
    loop {
        cut = p.statement_start(cut);
        if cut.is_empty() {
            break;
        }
        let (key, left, inherited) = p.key_name(cut)?;
        if key.contains(' ') {
            return Err(Error::SpaceInKey { line: p.line });
        }
        if inherited {
            if let Some(v) = lookup.lookup(&key) {
                out.insert(key, v);
            }
            cut = left;
            continue;
        }
        let (value, left) = p.value(left, out, lookup)?;
        out.shift_remove(&key);
        out.insert(key, value);
        cut = left;
    }
    Ok(())
}

/// Parses dotenv text with no outside lookup.
pub fn parse(text: &str) -> Result<EnvMap, Error> {
    let mut out = EnvMap::new();
    parse_into(text, &mut out, &|_: &str| None)?;
    Ok(out)
}

/// The `raw` env file format: `KEY=VALUE` per line, taken literally (no
/// quotes, escapes, expansion or comments); empty lines are skipped.
pub fn parse_raw(text: &str) -> EnvMap {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// Reads env files in order into one map. `${VAR}` looks in `lookup` first,
/// then at keys read so far (from this or earlier files), like compose-go's
/// `GetEnvFromFile`.
pub fn read_files(paths: &[PathBuf], lookup: &dyn Lookup) -> Result<EnvMap, Error> {
    let mut out = EnvMap::new();
    for path in paths {
        read_file_into(path, &mut out, lookup)?;
    }
    Ok(out)
}

/// Reads one env file into `out`.
pub fn read_file_into(path: &Path, out: &mut EnvMap, lookup: &dyn Lookup) -> Result<(), Error> {
    if path.is_dir() {
        return Err(Error::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_into(&text, out, lookup).map_err(|e| Error::InFile {
        path: path.to_path_buf(),
        source: Box::new(e),
    })
}

struct Parser {
    line: usize,
}

fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

impl Parser {
    /// Skips blank space and comment lines; returns the text of the next statement.
    fn statement_start<'a>(&mut self, mut src: &'a str) -> &'a str {
        loop {
            let mut pos = None;
            for (i, c) in src.char_indices() {
                if c == '\n' {
                    self.line += 1;
                }
                if !c.is_whitespace() {
                    pos = Some(i);
                    break;
                }
            }
            let Some(pos) = pos else { return "" };
            src = &src[pos..];
            if !src.starts_with('#') {
                return src;
            }
            match src.find('\n') {
                None => return "",
                Some(nl) => src = &src[nl..],
            }
        }
    }

    fn key_name<'a>(&self, src: &'a str) -> Result<(String, &'a str, bool), Error> {
        let mut src = src;
        if let Some(after) = src.strip_prefix("export") {
            let trimmed = after.trim_start_matches(is_space);
            if trimmed.len() != after.len() {
                src = trimmed;
            }
        }
        let mut key: Option<&str> = None;
        let mut offset = 0;
        let mut inherited = false;
        for (i, c) in src.char_indices() {
            if is_space(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    key = Some(&src[..i]);
                    offset = i + 1;
                    inherited = c == '\n';
                    break;
                }
                '_' | '.' | '-' | '[' | ']' => {}
                c if c.is_alphanumeric() => {}
                c => {
                    return Err(Error::BadKeyChar {
                        line: self.line,
                        ch: c.to_string(),
                        text: src.split('\n').next().unwrap_or("").to_string(),
                    });
                }
            }
        }
        let key = match key {
            Some(k) => k,
            None => {
                inherited = true;
                src
            }
        };
        let key = key.trim_end_matches(char::is_whitespace).to_string();
        let rest = src[offset.min(src.len())..].trim_start_matches(is_space);
        let rest = if offset == 0 { "" } else { rest };
        Ok((key, rest, inherited))
    }

    fn value<'a>(
        &mut self,
        src: &'a str,
        env: &EnvMap,
        lookup: &dyn Lookup,
    ) -> Result<(String, &'a str), Error> {
        let quote = match src.as_bytes().first() {
            Some(q @ (b'"' | b'\'')) => *q,
            _ => {
                let (value, rest) = src.split_once('\n').unwrap_or((src, ""));
                let line = self.line;
                self.line += 1;
                let value = value.split_once(" #").map_or(value, |(v, _)| v);
                let value = value.trim_end_matches(char::is_whitespace);
                let v =
                    expand(value, env, lookup).map_err(|source| Error::Expand { line, source })?;
                return Ok((v, rest));
            }
        };
        let bytes = src.as_bytes();
        let mut escaped = false;
        let mut chars: Vec<u8> = Vec::new();
        let start_line = self.line;
        for i in 1..bytes.len() {
            let c = bytes[i];
            if c == b'\n' {
                self.line += 1;
            }
            if c != quote {
                if !escaped && c == b'\\' {
                    escaped = true;
                    continue;
                }
                if escaped {
                    escaped = false;
                    chars.push(b'\\');
                }
                chars.push(c);
                continue;
            }
            if escaped {
                escaped = false;
                chars.push(c);
                continue;
            }
            let mut value = String::from_utf8_lossy(&chars).into_owned();
            if quote == b'"' {
                value = expand(&expand_escapes(&value), env, lookup).map_err(|source| {
                    Error::Expand {
                        line: start_line,
                        source,
                    }
                })?;
            }
            return Ok((value, &src[i + 1..]));
        }
        let end = src.find('\n').unwrap_or(src.len());
        Err(Error::Unterminated {
            line: self.line,
            text: src[..end].to_string(),
        })
    }
}

fn expand(value: &str, env: &EnvMap, lookup: &dyn Lookup) -> Result<String, interpolate::Error> {
    let l = |k: &str| lookup.lookup(k).or_else(|| env.get(k).cloned());
    interpolate::substitute(value, &l, &mut Vec::new())
}

/// Expands `\a \b \c \f \n \r \t \v \$ \" \\` and `\0NNN` octal escapes like
/// compose-go's `expandEscapes`; other backslashes stay as written.
fn expand_escapes(s: &str) -> String {
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            _ => None,
        };
        if let Some(v) = simple {
            out.push(v);
            i += 2;
            continue;
        }
        if c == b'$' {
            out.extend_from_slice(b"$$");
            i += 2;
            continue;
        }
        if c == b'0' {
            // `\0` then up to three digits, read as Go's `\NNN` (exactly three octal digits).
            let digits: Vec<u8> = b[i + 2..]
                .iter()
                .take(3)
                .take_while(|d| d.is_ascii_digit())
                .copied()
                .collect();
            let whole = 2 + digits.len();
            if digits.len() == 3 && digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits.iter().fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
                if v <= 255 {
                    let ch = char::from_u32(v).unwrap_or('\u{fffd}');
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    i += whole;
                    continue;
                }
            }
            out.extend_from_slice(&b[i..i + whole]);
            i += whole;
            continue;
        }
        // `\c` and any other escape are kept as written.
        out.push(b'\\');
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_comments() {
        let m = parse("A=1 # c\nexport B='x y'\nC=\"l1\\nl2\"\nD: e\n# x\nE=\"multi\nline\"\n")
            .unwrap();
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "x y");
        assert_eq!(m["C"], "l1\nl2");
        assert_eq!(m["D"], "e");
        assert_eq!(m["E"], "multi\nline");
    }

    #[test]
    fn expansion_uses_earlier_keys() {
        let m = parse("A=a\nB=${A}b\nC='${A}'\n").unwrap();
        assert_eq!(m["B"], "ab");
        assert_eq!(m["C"], "${A}");
    }
}
