//! `.dockerignore`: which files of the build context the build may see.
//!
//! Docker's rules (moby/patternmatcher): one pattern per line, `#` lines
//! are comments, patterns are cleaned and made relative (a leading `/` is
//! dropped), each path segment is matched with Go's `filepath.Match`
//! (`*`, `?`, `[a-z]`, `[^a]`, `\` escapes), `**` matches any number of
//! segments, a pattern also excludes everything below a directory it
//! matches, and `!pattern` re-includes; the last matching line wins.
//! Hand-written because gitignore crates implement git's rules, which differ
//! (anchoring, `!` semantics, directory-only patterns).

use std::path::Path;

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    segments: Vec<String>,
    exclusion: bool,
}

/// A pattern line that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: invalid pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub line: usize,
    pub pattern: String,
    pub reason: &'static str,
}

impl Matcher {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Matcher, PatternError> {
        let mut patterns = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(body);
            if cleaned.is_empty() {
                continue;
            }
            let segments: Vec<String> = cleaned.split('/').map(str::to_owned).collect();
            for s in &segments {
                if s != "**" && match_segment(s, "").is_err() {
                    return Err(PatternError {
                        line: n + 1,
                        pattern: line.to_owned(),
                        reason: "syntax error in pattern",
                    });
                }
            }
            patterns.push(Pattern {
                segments,
                exclusion,
            });
        }
        Ok(Matcher { patterns })
    }

    /// True when some pattern re-includes files (`!...`): excluded
    /// directories must then still be walked.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Is `rel` (a `/`-separated path relative to the context) ignored?
    pub fn is_ignored(&self, rel: &str) -> bool {
        let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
        let mut ignored = false;
        for p in &self.patterns {
            // The path itself or one of its parent directories matches.
            let hit = (1..=parts.len()).any(|n| match_path(&p.segments, &parts[..n]));
            if hit {
                ignored = !p.exclusion;
            }
        }
        ignored
    }
}

/// `filepath.Clean` then strip a leading `/` (and `./`).
fn clean(p: &str) -> String {
    crate::context::clean_rel(p)
}

/// Matches pattern segments (with `**`) against path segments.
pub fn match_path(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_path(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((seg, path_rest)) => {
                match_segment(first, seg).unwrap_or(false) && match_path(rest, path_rest)
            }
            None => false,
        },
    }
}

/// A malformed pattern (Go's `filepath.ErrBadPattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPattern;

/// Go's `filepath.Match` for one segment (no `/` in either side).
/// `Err` on a malformed pattern (checked even when the name is empty).
pub fn match_segment(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Validate the whole pattern first (Go reports ErrBadPattern).
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(BadPattern);
                }
                i += 2;
            }
            '[' => {
                let (_, next) = class(&p, i, None).map_err(|()| BadPattern)?;
                i = next;
            }
            _ => i += 1,
        }
    }
    Ok(glob(&p, &n))
}

fn glob(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|k| glob(&p[1..], &n[k..])),
        Some('?') => !n.is_empty() && glob(&p[1..], &n[1..]),
        Some('[') => match n.first() {
            Some(&c) => match class(p, 0, Some(c)) {
                Ok((true, next)) => glob(&p[next..], &n[1..]),
                _ => false,
            },
            None => false,
        },
        Some('\\') => p.len() > 1 && n.first() == Some(&p[1]) && glob(&p[2..], &n[1..]),
        Some(&c) => n.first() == Some(&c) && glob(&p[1..], &n[1..]),
    }
}

/// Parses the class starting at `p[start] == '['`; returns whether `c`
/// matches and the index after `]`.
fn class(p: &[char], start: usize, c: Option<char>) -> Result<(bool, usize), ()> {
    let mut i = start + 1;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i).ok_or(())?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = if ch == '\\' {
            i += 1;
            *p.get(i).ok_or(())?
        } else {
            ch
        };
        i += 1;
        let mut hi = lo;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&x| x != ']') {
            i += 1;
            hi = if p[i] == '\\' {
                i += 1;
                *p.get(i).ok_or(())?
            } else {
                p[i]
            };
            i += 1;
            if hi < lo {
                return Err(());
            }
        }
        if let Some(c) = c
            && lo <= c
            && c <= hi
        {
            matched = true;
        }
    }
    Ok((matched != negated, i))
}

/// Does a COPY source pattern contain wildcards?
pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The `.dockerignore` that applies to `dockerfile` in `context`:
/// `<Dockerfile>.dockerignore` next to the Dockerfile wins over the
/// context's `.dockerignore` (BuildKit's rule).
pub fn ignore_file_for(context: &Path, dockerfile: Option<&Path>) -> Option<std::path::PathBuf> {
    if let Some(df) = dockerfile
        && let Some(name) = df.file_name()
    {
        let mut n = name.to_os_string();
        n.push(".dockerignore");
        let candidate = df.with_file_name(n);
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    let default = context.join(".dockerignore");
    default.is_file().then_some(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_filepath_match() {
        assert_eq!(match_segment("*.txt", "a.txt"), Ok(true));
        assert_eq!(match_segment("*.txt", "a.txt.bak"), Ok(false));
        assert_eq!(match_segment("?b", "ab"), Ok(true));
        assert_eq!(match_segment("[a-c]x", "bx"), Ok(true));
        assert_eq!(match_segment("[^a-c]x", "bx"), Ok(false));
        assert_eq!(match_segment("[^a-c]x", "dx"), Ok(true));
        assert_eq!(match_segment("\\*", "*"), Ok(true));
        assert_eq!(match_segment("\\*", "a"), Ok(false));
        assert_eq!(match_segment("[a-", "a"), Err(BadPattern));
        assert_eq!(match_segment("a\\", "a"), Err(BadPattern));
    }

    #[test]
    fn dockerignore_rules() {
        let m = Matcher::parse(
            "# comment\n\n*.log\n/secret\nnode_modules\n**/*.tmp\ndocs\n!docs/README.md\ntemp?\n",
        )
        .unwrap();
        assert!(m.is_ignored("a.log"));
        assert!(!m.is_ignored("sub/a.log"), "* does not cross directories");
        assert!(m.is_ignored("secret"));
        assert!(m.is_ignored("secret/key"), "children of an excluded dir");
        assert!(m.is_ignored("node_modules/x/y.js"));
        assert!(m.is_ignored("a/b/c.tmp"));
        assert!(m.is_ignored("c.tmp"), "** matches zero segments");
        assert!(m.is_ignored("docs/other.md"));
        assert!(!m.is_ignored("docs/README.md"), "! re-includes");
        assert!(m.is_ignored("temp1"));
        assert!(!m.is_ignored("temp12"));
        assert!(!m.is_ignored("src/main.rs"));
        assert!(m.has_exclusions());
        // Last match wins.
        let m = Matcher::parse("!keep\n*\n").unwrap();
        assert!(m.is_ignored("keep"));
        let m = Matcher::parse("*\n!keep\n").unwrap();
        assert!(!m.is_ignored("keep"));
        assert!(m.is_ignored("other"));
        let err = Matcher::parse("ok\n[bad\n").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
