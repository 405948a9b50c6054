//! Dockerfile word processing: quotes, the escape character and `$VAR` /
//! `${VAR:-default}` expansion, as Docker's shell lexer does it for ENV,
//! LABEL, ARG, WORKDIR, USER, COPY/ADD, EXPOSE, VOLUME, STOPSIGNAL and FROM
//! (RUN/CMD/ENTRYPOINT are left to the shell). Hand-written: the parser
//! crate keeps these arguments raw, and no maintained crate implements
//! Docker's (not POSIX's) rules.

/// Looks a variable up; `None` when unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Splits `input` into words (unquoted whitespace separates them), removing
/// quotes and expanding variables.
pub fn split(input: &str, env: Lookup<'_>, escape: char) -> Result<Vec<String>, String> {
    let mut lexer = Lexer {
        chars: input.chars().collect(),
        pos: 0,
        escape,
        env,
    };
    lexer.words(true)
}

/// One word: quotes removed, variables expanded, whitespace kept.
pub fn word(input: &str, env: Lookup<'_>, escape: char) -> Result<String, String> {
    let mut lexer = Lexer {
        chars: input.chars().collect(),
        pos: 0,
        escape,
        env,
    };
    Ok(lexer.words(false)?.into_iter().next().unwrap_or_default())
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: Lookup<'a>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn words(&mut self, split: bool) -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        while let Some(c) = self.next() {
            if split && c.is_whitespace() {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                continue;
            }
            in_word = true;
            if c == self.escape {
                match self.next() {
                    Some(n) => cur.push(n),
                    None => cur.push(c),
                }
            } else if c == '\'' {
                loop {
                    match self.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err(
                            "unexpected end of statement while looking for matching single-quote"
                                .into(),
                        ),
                    }
                }
            } else if c == '"' {
                loop {
                    match self.next() {
                        Some('"') => break,
                        Some('$') => cur.push_str(&self.variable()?),
                        Some(n) if n == self.escape => match self.next() {
                            Some(m) if m == '"' || m == '$' || m == self.escape => cur.push(m),
                            Some(m) => {
                                cur.push(n);
                                cur.push(m);
                            }
                            None => cur.push(n),
                        },
                        Some(n) => cur.push(n),
                        None => return Err(
                            "unexpected end of statement while looking for matching double-quote"
                                .into(),
                        ),
                    }
                }
            } else if c == '$' {
                cur.push_str(&self.variable()?);
            } else {
                cur.push(c);
            }
        }
        if in_word || !split {
            words.push(cur);
        }
        Ok(words)
    }

    /// After a `$`: `name`, `{name}`, `{name:-word}`, ... (else a literal `$`).
    fn variable(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    return Err("bad substitution: missing variable name in ${}".into());
                }
                match self.next() {
                    Some('}') => Ok((self.env)(&name).unwrap_or_default()),
                    Some(c @ (':' | '-' | '+' | '?')) => {
                        let colon = c == ':';
                        let op = if colon {
                            self.next().ok_or("bad substitution: unterminated ${")?
                        } else {
                            c
                        };
                        let inner = self.until_brace()?;
                        let value = (self.env)(&name);
                        let set = match &value {
                            Some(v) => !colon || !v.is_empty(),
                            None => false,
                        };
                        let mut sub = Lexer {
                            chars: inner.chars().collect(),
                            pos: 0,
                            escape: self.escape,
                            env: self.env,
                        };
                        let word = sub.words(false)?.into_iter().next().unwrap_or_default();
                        match op {
                            '-' => Ok(if set { value.unwrap_or_default() } else { word }),
                            '+' => Ok(if set { word } else { String::new() }),
                            '?' if set => Ok(value.unwrap_or_default()),
                            '?' => Err(format!(
                                "{name}: {}",
                                if word.is_empty() {
                                    "is not allowed to be unset"
                                } else {
                                    &word
                                }
                            )),
                            other => Err(format!("unsupported modifier ({other}) in substitution")),
                        }
                    }
                    _ => Err(format!(
                        "bad substitution: unsupported character after ${{{name}"
                    )),
                }
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok((self.env)(&name).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// The raw text up to the matching `}` (nested `${...}` allowed).
    fn until_brace(&mut self) -> Result<String, String> {
        let mut depth = 0;
        let mut out = String::new();
        while let Some(c) = self.next() {
            match c {
                '}' if depth == 0 => return Ok(out),
                '}' => depth -= 1,
                '{' if out.ends_with('$') => depth += 1,
                _ => {}
            }
            out.push(c);
        }
        Err("bad substitution: missing '}'".into())
    }
}

/// `KEY=VALUE ...` pairs (ENV, LABEL, ARG), or the legacy `KEY VALUE` form
/// (one pair, the value is the rest of the line) when `legacy` allows it.
pub fn pairs(
    input: &str,
    env: Lookup<'_>,
    escape: char,
    legacy: bool,
) -> Result<Vec<(String, Option<String>)>, String> {
    let trimmed = input.trim();
    let first_raw = trimmed.split_whitespace().next().unwrap_or("");
    if legacy && !first_raw.contains('=') {
        let (key, rest) = trimmed
            .split_once(char::is_whitespace)
            .ok_or_else(|| "requires a value: use KEY=VALUE or KEY VALUE".to_owned())?;
        return Ok(vec![(
            key.to_owned(),
            Some(word(rest.trim(), env, escape)?),
        )]);
    }
    let mut out = Vec::new();
    for w in split(trimmed, env, escape)? {
        match w.split_once('=') {
            Some((k, v)) => {
                if k.is_empty() {
                    return Err(format!("empty key in {w:?}"));
                }
                out.push((k.to_owned(), Some(v.to_owned())))
            }
            None => out.push((w, None)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "A" => Some("1".into()),
            "EMPTY" => Some(String::new()),
            "SP" => Some("x y".into()),
            _ => None,
        }
    }

    #[test]
    fn expansion_and_quotes() {
        let e: Lookup<'_> = &env;
        assert_eq!(word("$A", e, '\\').unwrap(), "1");
        assert_eq!(word("${A}b", e, '\\').unwrap(), "1b");
        assert_eq!(word("${NOPE:-d}", e, '\\').unwrap(), "d");
        assert_eq!(word("${EMPTY:-d}", e, '\\').unwrap(), "d");
        assert_eq!(word("${EMPTY-d}", e, '\\').unwrap(), "");
        assert_eq!(word("${A:+set}", e, '\\').unwrap(), "set");
        assert_eq!(word("${NOPE:+set}", e, '\\').unwrap(), "");
        assert_eq!(word("'$A'", e, '\\').unwrap(), "$A");
        assert_eq!(word("\"$A\"", e, '\\').unwrap(), "1");
        assert_eq!(word("\\$A", e, '\\').unwrap(), "$A");
        assert_eq!(word("`$A", e, '`').unwrap(), "$A");
        assert_eq!(word("a$", e, '\\').unwrap(), "a$");
        assert!(word("${A", e, '\\').is_err());
        assert!(
            word("${NOPE:?must be set}", e, '\\')
                .unwrap_err()
                .contains("must be set")
        );
        assert_eq!(
            split("a \"b c\" $SP", e, '\\').unwrap(),
            vec!["a", "b c", "x y"]
        );
    }

    #[test]
    fn env_pairs() {
        let e: Lookup<'_> = &env;
        assert_eq!(
            pairs("X=1 Y=\"a b\" Z=$A", e, '\\', true).unwrap(),
            vec![
                ("X".into(), Some("1".into())),
                ("Y".into(), Some("a b".into())),
                ("Z".into(), Some("1".into()))
            ]
        );
        assert_eq!(
            pairs("X hello world", e, '\\', true).unwrap(),
            vec![("X".into(), Some("hello world".into()))]
        );
        assert_eq!(
            pairs("NAME", e, '\\', false).unwrap(),
            vec![("NAME".into(), None)]
        );
        assert!(pairs("X", e, '\\', true).is_err());
    }
}
