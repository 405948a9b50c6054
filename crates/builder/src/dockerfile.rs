//! Dockerfile syntax: parse-dockerfile does the lexing (line
//! continuations, heredocs, JSON and shell forms, the escape directive,
//! comments, parser directives); this module turns its tree into owned
//! instructions with line numbers, checks flags, and refuses what rstack
//! does not do (yet) with a message naming the file and line.

use std::path::Path;

use parse_dockerfile::{
    AddInstruction, Command, CopyInstruction, Flag, HealthcheckArguments, Instruction,
    JsonOrStringArray, RunInstruction, Source,
};

use super::Error;

/// One instruction, as the builder executes it.
#[derive(Debug, Clone)]
pub struct Inst {
    /// 1-based line of the instruction keyword.
    pub line: usize,
    /// The instruction as shown in progress output (continuations joined).
    pub text: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Src {
    Path(String),
    /// `COPY <<EOF dest`: content (expanded later when `expand`).
    Inline {
        content: String,
        expand: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    From {
        image: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Run {
        cmd: Cmd,
        network: Option<String>,
    },
    Copy {
        add: bool,
        srcs: Vec<Src>,
        dest: String,
        from: Option<String>,
        chown: Option<String>,
        chmod: Option<String>,
    },
    Workdir(String),
    Env(String),
    Arg(String),
    User(String),
    Cmd(Cmd),
    Entrypoint(Cmd),
    Expose(Vec<String>),
    Label(String),
    Volume(Vec<String>),
    Healthcheck {
        flags: Vec<(String, String)>,
        test: Option<Cmd>,
    },
    Stopsignal(String),
    Shell(Vec<String>),
    Onbuild(String),
    Maintainer(String),
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub escape: char,
    pub instructions: Vec<Inst>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// Parses `text` (read from `path`, for messages).
pub fn parse(path: &Path, text: &str) -> Result<Dockerfile, Error> {
    let parsed = parse_dockerfile::parse(text).map_err(|e| {
        let msg = e.to_string();
        // The crate appends " at line L column C"; we print file:line first.
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        Error::Syntax {
            file: path.to_owned(),
            line: e.line(),
            message: msg,
        }
    })?;
    let escape = parsed
        .parser_directives
        .escape
        .as_ref()
        .map(|d| d.value.value)
        .unwrap_or('\\');
    if let Some(s) = &parsed.parser_directives.syntax {
        tracing::info!(
            syntax = s.value.value,
            "ignoring the `# syntax` directive: rstack has its own builder"
        );
    }
    let mut starts: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for inst in &parsed.instructions {
        let start = keyword_start(inst);
        starts.push(start);
        let line = line_of(text, start);
        let err = |message: String| Error::Syntax {
            file: path.to_owned(),
            line,
            message,
        };
        let kind = convert(inst, escape, &err)?;
        out.push(Inst {
            line,
            text: String::new(),
            kind,
        });
    }
    for i in 0..out.len() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        out[i].text = display_text(&text[starts[i]..end], escape);
        let trigger_text = out[i].text.get(7..).unwrap_or_default().trim().to_owned();
        if let Kind::Onbuild(trigger) = &mut out[i].kind {
            *trigger = trigger_text;
        }
    }
    Ok(Dockerfile {
        escape,
        instructions: out,
    })
}

fn keyword_start(inst: &Instruction<'_>) -> usize {
    match inst {
        Instruction::Add(i) => i.add.span.start,
        Instruction::Arg(i) => i.arg.span.start,
        Instruction::Cmd(i) => i.cmd.span.start,
        Instruction::Copy(i) => i.copy.span.start,
        Instruction::Entrypoint(i) => i.entrypoint.span.start,
        Instruction::Env(i) => i.env.span.start,
        Instruction::Expose(i) => i.expose.span.start,
        Instruction::From(i) => i.from.span.start,
        Instruction::Healthcheck(i) => i.healthcheck.span.start,
        Instruction::Label(i) => i.label.span.start,
        Instruction::Maintainer(i) => i.maintainer.span.start,
        Instruction::Onbuild(i) => i.onbuild.span.start,
        Instruction::Run(i) => i.run.span.start,
        Instruction::Shell(i) => i.shell.span.start,
        Instruction::Stopsignal(i) => i.stopsignal.span.start,
        Instruction::User(i) => i.user.span.start,
        Instruction::Volume(i) => i.volume.span.start,
        Instruction::Workdir(i) => i.workdir.span.start,
        _ => 0,
    }
}

/// The instruction's source on one line: continuations joined, comment
/// lines dropped, runs of blanks squeezed.
fn display_text(src: &str, escape: char) -> String {
    let mut joined = String::new();
    for l in src.lines() {
        let t = l.trim();
        if t.starts_with('#') && !joined.is_empty() {
            continue;
        }
        let t = t.strip_suffix(escape).unwrap_or(t);
        joined.push_str(t);
        joined.push(' ');
    }
    let mut out = String::new();
    for w in joined.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    // Trailing comment lines between instructions belong to the next one.
    out
}

/// Removes `escape` + newline (line continuations) from shell-form text.
fn join_continuations(s: &str, escape: char) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == escape {
            let mut ws = String::new();
            while let Some(&n) = chars.peek() {
                if n == ' ' || n == '\t' || n == '\r' {
                    ws.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            if chars.peek() == Some(&'\n') {
                chars.next();
                continue;
            }
            out.push(c);
            out.push_str(&ws);
        } else {
            out.push(c);
        }
    }
    // Comment lines inside a continued instruction are dropped by docker.
    out.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn command(c: &Command<'_>, escape: char) -> Cmd {
    match c {
        Command::Exec(v) => Cmd::Exec(v.value.iter().map(|s| s.value.to_string()).collect()),
        Command::Shell(s) => Cmd::Shell(join_continuations(s.value, escape)),
        _ => Cmd::Shell(String::new()),
    }
}

fn flags<'a, 'b: 'a>(
    options: impl IntoIterator<Item = &'a Flag<'b>>,
    allowed: &[&str],
    err: &dyn Fn(String) -> Error,
) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for f in options {
        let name = f.name.value.to_string();
        if !allowed.contains(&name.as_str()) {
            return Err(err(format!("unknown flag: --{name}")));
        }
        out.push((
            name,
            f.value
                .as_ref()
                .map(|v| v.value.to_string())
                .unwrap_or_default(),
        ));
    }
    Ok(out)
}

fn get(flags: &[(String, String)], name: &str) -> Option<String> {
    flags
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn convert(
    inst: &Instruction<'_>,
    escape: char,
    err: &dyn Fn(String) -> Error,
) -> Result<Kind, Error> {
    Ok(match inst {
        Instruction::From(i) => {
            let f = flags(&i.options, &["platform"], err)?;
            Kind::From {
                image: i.image.value.to_string(),
                name: i.as_.as_ref().map(|(_, n)| n.value.to_lowercase()),
                platform: get(&f, "platform"),
            }
        }
        Instruction::Run(i) => run(i, escape, err)?,
        Instruction::Copy(i) => copy(i, err)?,
        Instruction::Add(i) => add(i, err)?,
        Instruction::Workdir(i) => Kind::Workdir(i.arguments.value.to_string()),
        Instruction::Env(i) => Kind::Env(join_continuations(&i.arguments.value, escape)),
        Instruction::Arg(i) => Kind::Arg(i.arguments.value.to_string()),
        Instruction::User(i) => Kind::User(i.arguments.value.to_string()),
        Instruction::Cmd(i) => Kind::Cmd(command(&i.arguments, escape)),
        Instruction::Entrypoint(i) => Kind::Entrypoint(command(&i.arguments, escape)),
        Instruction::Expose(i) => {
            Kind::Expose(i.arguments.iter().map(|a| a.value.to_string()).collect())
        }
        Instruction::Label(i) => Kind::Label(join_continuations(&i.arguments.value, escape)),
        Instruction::Volume(i) => Kind::Volume(match &i.arguments {
            JsonOrStringArray::Json(v) => v.value.iter().map(|s| s.value.to_string()).collect(),
            JsonOrStringArray::String(v) => v.iter().map(|s| s.value.to_string()).collect(),
        }),
        Instruction::Healthcheck(i) => {
            let f = flags(
                &i.options,
                &[
                    "interval",
                    "timeout",
                    "start-period",
                    "start-interval",
                    "retries",
                ],
                err,
            )?;
            Kind::Healthcheck {
                flags: f,
                test: match &i.arguments {
                    HealthcheckArguments::Cmd { arguments, .. } => Some(command(arguments, escape)),
                    _ => None,
                },
            }
        }
        Instruction::Stopsignal(i) => Kind::Stopsignal(i.arguments.value.to_string()),
        Instruction::Shell(i) => {
            Kind::Shell(i.arguments.iter().map(|a| a.value.to_string()).collect())
        }
        Instruction::Onbuild(_) => Kind::Onbuild(String::new()),
        Instruction::Maintainer(i) => Kind::Maintainer(i.name.value.to_string()),
        _ => return Err(err("unsupported instruction".into())),
    })
}

/// RUN; heredocs become one shell script.
fn run(i: &RunInstruction<'_>, escape: char, err: &dyn Fn(String) -> Error) -> Result<Kind, Error> {
    let f = flags(&i.options, &["network", "mount", "security"], err)?;
    if get(&f, "mount").is_some() {
        return Err(err(
            "RUN --mount is not supported by rstack's builder yet".into()
        ));
    }
    if get(&f, "security").is_some_and(|s| s != "sandbox") {
        return Err(err("RUN --security=insecure is not supported".into()));
    }
    // parse-dockerfile takes heredocs right after RUN: `RUN <<EOF`
    // (a script) or `RUN <<EOF cmd args` (cmd reads the document).
    let cmd = match (command(&i.arguments, escape), i.here_docs.as_slice()) {
        (Cmd::Shell(s), [only]) if s.trim().is_empty() => Cmd::Shell(only.value.to_string()),
        (Cmd::Shell(s), docs) if !docs.is_empty() => {
            let mut script = s.trim().to_owned();
            let mut bodies = String::new();
            for (n, doc) in docs.iter().enumerate() {
                let mut delim = format!("RSTACK_EOF_{n}");
                while doc.value.contains(&delim) {
                    delim.push('_');
                }
                let quoted = if doc.expand {
                    delim.clone()
                } else {
                    format!("'{delim}'")
                };
                script.push_str(&format!(" <<{quoted}"));
                bodies.push_str(&format!("\n{}{delim}", doc.value));
            }
            script.push_str(&bodies);
            Cmd::Shell(script)
        }
        (c, _) => c,
    };
    Ok(Kind::Run {
        cmd,
        network: get(&f, "network"),
    })
}

fn copy(i: &CopyInstruction<'_>, err: &dyn Fn(String) -> Error) -> Result<Kind, Error> {
    let f = flags(
        &i.options,
        &["from", "chown", "chmod", "link", "parents", "exclude"],
        err,
    )?;
    if get(&f, "parents").is_some() || get(&f, "exclude").is_some() {
        return Err(err(
            "COPY --parents and --exclude are not supported yet".into()
        ));
    }
    Ok(Kind::Copy {
        add: false,
        srcs: sources(&i.src),
        dest: i.dest.value.to_string(),
        from: get(&f, "from"),
        chown: get(&f, "chown"),
        chmod: get(&f, "chmod"),
    })
}

/// ADD: a COPY that extracts local archives; remote sources are refused.
fn add(i: &AddInstruction<'_>, err: &dyn Fn(String) -> Error) -> Result<Kind, Error> {
    let f = flags(
        &i.options,
        &["chown", "chmod", "link", "checksum", "keep-git-dir", "from"],
        err,
    )?;
    let srcs = sources(&i.src);
    for s in &srcs {
        if let Src::Path(p) = s
            && is_remote(p)
        {
            return Err(err(format!(
                "ADD {p}: remote sources are not supported (rstack builds offline): download the file into the build context and COPY it"
            )));
        }
    }
    Ok(Kind::Copy {
        add: true,
        srcs,
        dest: i.dest.value.to_string(),
        from: get(&f, "from"),
        chown: get(&f, "chown"),
        chmod: get(&f, "chmod"),
    })
}

fn is_remote(p: &str) -> bool {
    p.starts_with("http://")
        || p.starts_with("https://")
        || p.starts_with("git@")
        || p.starts_with("git://")
}

fn sources(src: &[Source<'_>]) -> Vec<Src> {
    src.iter()
        .map(|s| match s {
            Source::Path(p) => Src::Path(p.value.to_string()),
            Source::HereDoc(h) => Src::Inline {
                content: h.value.to_string(),
                expand: h.expand,
            },
            _ => Src::Path(String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Dockerfile, Error> {
        parse(Path::new("Dockerfile"), text)
    }

    #[test]
    fn instructions_lines_and_forms() {
        let d = p("# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM $BASE AS Build\nRUN echo a \\\n  && echo b\nRUN [\"sh\", \"-c\", \"true\"]\nRUN <<EOF\necho hi\nEOF\nCOPY --from=build --chown=1:2 --chmod=600 a b /dst/\nENV A=1 \\\n    B=2\nHEALTHCHECK --interval=5s CMD true\nCMD [\"x\"]\n").unwrap();
        let lines: Vec<usize> = d.instructions.iter().map(|i| i.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 6, 7, 10, 11, 13, 14]);
        assert_eq!(
            d.instructions[1].kind,
            Kind::From {
                image: "$BASE".into(),
                name: Some("build".into()),
                platform: None
            }
        );
        assert_eq!(
            d.instructions[2].kind,
            Kind::Run {
                cmd: Cmd::Shell("echo a   && echo b".into()),
                network: None
            }
        );
        assert_eq!(d.instructions[2].text, "RUN echo a && echo b");
        assert_eq!(
            d.instructions[3].kind,
            Kind::Run {
                cmd: Cmd::Exec(vec!["sh".into(), "-c".into(), "true".into()]),
                network: None
            }
        );
        assert_eq!(
            d.instructions[4].kind,
            Kind::Run {
                cmd: Cmd::Shell("echo hi\n".into()),
                network: None
            }
        );
        match &d.instructions[5].kind {
            Kind::Copy {
                srcs,
                dest,
                from,
                chown,
                chmod,
                add,
            } => {
                assert_eq!(srcs, &vec![Src::Path("a".into()), Src::Path("b".into())]);
                assert_eq!(dest, "/dst/");
                assert_eq!(from.as_deref(), Some("build"));
                assert_eq!(chown.as_deref(), Some("1:2"));
                assert_eq!(chmod.as_deref(), Some("600"));
                assert!(!add);
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(d.instructions[6].kind, Kind::Env("A=1     B=2".into()));
    }

    #[test]
    fn heredoc_with_command() {
        let d =
            p("FROM x\nRUN <<EOF cat > /f\nline $HOME\nEOF\nRUN <<'EOF' cat\n$x\nEOF\n").unwrap();
        assert_eq!(
            d.instructions[1].kind,
            Kind::Run {
                cmd: Cmd::Shell("cat > /f <<RSTACK_EOF_0\nline $HOME\nRSTACK_EOF_0".into()),
                network: None
            }
        );
        assert_eq!(
            d.instructions[2].kind,
            Kind::Run {
                cmd: Cmd::Shell("cat <<'RSTACK_EOF_0'\n$x\nRSTACK_EOF_0".into()),
                network: None
            }
        );
    }

    #[test]
    fn escape_directive() {
        let d = p("# escape=`\nFROM x\nRUN echo a `\n  b\n").unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(
            d.instructions[1].kind,
            Kind::Run {
                cmd: Cmd::Shell("echo a   b".into()),
                network: None
            }
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = p("FROM x\n\nFOO bar\n").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:3: unknown instruction 'FOO'");
        let e = p("FROM x\nADD https://example.com/a /a\n").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "Dockerfile:2: ADD https://example.com/a: remote sources are not supported"
            ),
            "{e}"
        );
        let e = p("FROM x\nCOPY --bogus a b\n").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:2: unknown flag: --bogus");
        let e = p("FROM x\nRUN --mount=type=cache,target=/x true\n").unwrap_err();
        assert!(e.to_string().contains("--mount"));
    }
}
