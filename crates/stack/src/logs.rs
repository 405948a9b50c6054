//! Container logs without pipes to the supervisor.
//!
//! A container's stdout and stderr are plain files opened `O_APPEND`
//! (`stdout.raw`, `stderr.raw`): the container never writes into a pipe
//! whose reader may die, so it survives a supervisor SIGKILL. The
//! supervisor tails them ([`RawTail`]), turns complete lines into docker's
//! json-file lines (`{"log":"..\n","stream":"stdout","time":"..."}`) in
//! `<name>-json.log`, rotated by `max-size` / `max-file` ([`JsonLog`]), and
//! frees the consumed bytes of the raw files with
//! `fallocate(PUNCH_HOLE)` so they take no disk space (their size grows,
//! their blocks do not). The offset consumed so far is kept in a small
//! `offsets` file so a new supervisor resumes where the old one stopped.
//!
//! Limitation: the timestamp is the time the supervisor *read* the line.
//! Lines written while no supervisor runs get the time the next supervisor
//! reads them.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::io_error::{IoError, io};
use crate::state::Stream;

/// A failure reading or writing logs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("service {service}: invalid logging option {key}={value}")]
    BadOption {
        service: String,
        key: String,
        value: String,
    },
}

/// Longest line kept in one json entry; longer ones are split (docker: 16 KiB).
const MAX_LINE: usize = 16 * 1024;

/// One json-file log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: Stream,
    pub time: String,
}

/// Rotation settings (`logging.options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rotation {
    /// `max-size` in bytes; `None` = never rotate.
    pub max_size: Option<u64>,
    /// `max-file`: files kept including the current one (>= 1).
    pub max_file: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_size: None,
            max_file: 1,
        }
    }
}

impl Rotation {
    /// From a service's `logging:` (json-file options).
    pub(crate) fn of_service(
        service: &str,
        logging: Option<&rstack_compose::model::Logging>,
    ) -> Result<Rotation, Error> {
        let mut r = Rotation::default();
        let Some(l) = logging else { return Ok(r) };
        let bad = |k: &str, v: &str| Error::BadOption {
            service: service.to_owned(),
            key: k.to_owned(),
            value: v.to_owned(),
        };
        if let Some(Some(v)) = l.options.get("max-size") {
            // Docker's json-file driver reads it with go-units'
            // FromHumanSize: SI multiples, `10m` = 10_000_000 bytes.
            let n = rstack_sys::units::from_human_size(v).map_err(|_| bad("max-size", v))?;
            if n <= 0 {
                return Err(bad("max-size", v));
            }
            r.max_size = Some(n as u64);
        }
        if let Some(Some(v)) = l.options.get("max-file") {
            r.max_file = v
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad("max-file", v))?;
        }
        Ok(r)
    }
}

/// The json-lines log of one container, rotated by size.
#[derive(Debug)]
pub(crate) struct JsonLog {
    path: PathBuf,
    rotation: Rotation,
    file: File,
    size: u64,
}

impl JsonLog {
    pub(crate) fn open(path: &Path, rotation: Rotation) -> Result<JsonLog, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io("open", path))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonLog {
            path: path.to_owned(),
            rotation,
            file,
            size,
        })
    }

    /// Appends one line (with its `\n`, if it had one).
    pub(crate) fn write(&mut self, stream: Stream, line: &str, time: &str) -> Result<(), Error> {
        let entry = Entry {
            log: line.to_owned(),
            stream,
            time: time.to_owned(),
        };
        let mut data = serde_json::to_vec(&entry).unwrap_or_default();
        data.push(b'\n');
        if let Some(max) = self.rotation.max_size {
            if self.size > 0 && self.size + data.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.file
            .write_all(&data)
            .map_err(io("write", &self.path))?;
        self.size += data.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), Error> {
        let keep = self.rotation.max_file;
        if keep <= 1 {
            self.file.set_len(0).map_err(io("truncate", &self.path))?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(rotated(&self.path, keep - 1));
        for n in (1..keep - 1).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1)).map_err(io("rotate", &from))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1)).map_err(io("rotate", &self.path))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io("open", &self.path))?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Every entry of a container's log, oldest first (rotated files first).
pub fn read_all(path: &Path) -> Result<Vec<Entry>, Error> {
    let mut files = Vec::new();
    for n in (1..100).rev() {
        let p = rotated(path, n);
        if p.exists() {
            files.push(p);
        }
    }
    files.push(path.to_owned());
    let mut out = Vec::new();
    for f in files {
        let file = match File::open(&f) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io("open", &f)(e).into()),
        };
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io("read", &f))?;
            if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// Follows the current log file from `offset`, reopening after a rotation.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    ino: u64,
    pending: Vec<u8>,
}

impl Follower {
    /// Starts at the beginning of the current file (it may not exist yet).
    pub fn from_start(path: &Path) -> Follower {
        let mut f = Follower {
            path: path.to_owned(),
            file: None,
            offset: 0,
            ino: 0,
            pending: Vec::new(),
        };
        f.reopen();
        f
    }

    /// Starts at the current end of the file.
    pub fn at_end(path: &Path) -> Follower {
        let mut f = Follower::from_start(path);
        if let Some(file) = &f.file {
            f.offset = file.metadata().map(|m| m.len()).unwrap_or(0);
        }
        f
    }

    fn reopen(&mut self) {
        use std::os::unix::fs::MetadataExt;
        self.file = File::open(&self.path).ok();
        self.ino = self
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.ino())
            .unwrap_or(0);
        self.offset = 0;
        self.pending.clear();
    }

    /// New complete entries since the last call.
    pub fn poll(&mut self) -> Vec<Entry> {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        let current_ino = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        let len = self
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.len());
        // Drain the old file, then switch after a rotation or truncation.
        self.read_new(&mut out);
        if current_ino != Some(self.ino) || len.is_some_and(|l| l < self.offset) {
            self.reopen();
            self.read_new(&mut out);
        }
        out
    }

    fn read_new(&mut self, out: &mut Vec<Entry>) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if file.read_to_end(&mut buf).is_err() {
            return;
        }
        self.offset += buf.len() as u64;
        self.pending.extend_from_slice(&buf);
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
                out.push(e);
            }
        }
    }
}

/// The supervisor's reader of one raw output file.
#[derive(Debug)]
pub(crate) struct RawTail {
    path: PathBuf,
    stream: Stream,
    file: Option<File>,
    /// Bytes consumed (turned into json lines).
    pub offset: u64,
    /// Bytes already freed with PUNCH_HOLE.
    punched: u64,
}

impl RawTail {
    pub(crate) fn new(path: &Path, stream: Stream, offset: u64) -> RawTail {
        RawTail {
            path: path.to_owned(),
            stream,
            file: None,
            offset,
            punched: 0,
        }
    }

    /// Moves every complete line (and any over-long partial one) into
    /// `log`; with `flush` also a final line without `\n`. Returns whether
    /// anything was consumed.
    pub(crate) fn pump(&mut self, log: &mut JsonLog, flush: bool) -> Result<bool, Error> {
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(io("open", &self.path)(e).into()),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        let len = file.metadata().map_err(io("stat", &self.path))?.len();
        if len <= self.offset {
            return Ok(false);
        }
        file.seek(SeekFrom::Start(self.offset))
            .map_err(io("seek", &self.path))?;
        let mut buf = Vec::with_capacity((len - self.offset).min(1 << 20) as usize);
        Read::by_ref(file)
            .take(1 << 20)
            .read_to_end(&mut buf)
            .map_err(io("read", &self.path))?;
        let time = crate::state::now_rfc3339();
        let mut consumed = 0;
        let mut rest = &buf[..];
        loop {
            let cut = match rest.iter().position(|b| *b == b'\n') {
                Some(p) if p < MAX_LINE => p + 1,
                _ if rest.len() >= MAX_LINE => MAX_LINE,
                _ if flush && !rest.is_empty() => rest.len(),
                _ => break,
            };
            let line = String::from_utf8_lossy(&rest[..cut]);
            log.write(self.stream, &line, &time)?;
            consumed += cut;
            rest = &rest[cut..];
        }
        self.offset += consumed as u64;
        self.punch();
        Ok(consumed > 0)
    }

    /// Frees the consumed whole pages of the raw file.
    fn punch(&mut self) {
        let upto = self.offset & !4095;
        if upto <= self.punched {
            return;
        }
        // The reading fd is read-only; fallocate needs a writable one.
        let Ok(w) = OpenOptions::new().write(true).open(&self.path) else {
            return;
        };
        // SAFETY: fallocate on an fd we own over a range of the file; no
        // memory is passed.
        let rc = unsafe {
            libc::fallocate(
                w.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                self.punched as libc::off_t,
                (upto - self.punched) as libc::off_t,
            )
        };
        if rc != 0 {
            tracing::debug!(path = %self.path.display(), "punch hole not supported");
        }
        self.punched = upto;
    }
}

/// Where consumed offsets of a container's raw files are kept.
pub(crate) fn offsets_file(log_dir: &Path) -> PathBuf {
    log_dir.join("offsets")
}

pub(crate) fn load_offsets(log_dir: &Path) -> [u64; 2] {
    std::fs::read_to_string(offsets_file(log_dir))
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|n| n.parse::<u64>().ok());
            Some([it.next()??, it.next()??])
        })
        .unwrap_or([0, 0])
}

/// Saves the offsets (temp + rename; no fsync: losing the last update
/// only repeats a few lines after a power loss).
pub(crate) fn save_offsets(log_dir: &Path, offsets: [u64; 2]) {
    let data = format!("{} {}\n", offsets[0], offsets[1]);
    let path = offsets_file(log_dir);
    if let Err(e) = rstack_sys::fs::replace(&path, data.as_bytes(), rstack_sys::fs::DEFAULT_MODE) {
        tracing::debug!(error = %rstack_sys::chain::chain(&e), "cannot save log offsets");
    }
}

/// Opens (creating) a raw output file for the container to write into.
pub(crate) fn open_raw(path: &Path) -> Result<File, Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io("open", path)(e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_max_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c-json.log");
        let rot = Rotation {
            max_size: Some(200),
            max_file: 3,
        };
        let mut log = JsonLog::open(&path, rot).unwrap();
        for i in 0..40 {
            log.write(Stream::Stdout, &format!("line {i}\n"), "t")
                .unwrap();
        }
        assert!(rotated(&path, 1).exists());
        assert!(rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        let all = read_all(&path).unwrap();
        assert_eq!(all.last().unwrap().log, "line 39\n");
        // in order, contiguous
        let first: usize = all[0].log[5..].trim().parse().unwrap();
        for (k, e) in all.iter().enumerate() {
            assert_eq!(e.log, format!("line {}\n", first + k));
        }
        for p in [path.clone(), rotated(&path, 1)] {
            assert!(std::fs::metadata(p).unwrap().len() <= 200);
        }
    }

    #[test]
    fn raw_tail_converts_lines_and_follower_sees_them() {
        let tmp = tempfile::tempdir().unwrap();
        let raw = tmp.path().join("stdout.raw");
        let json = tmp.path().join("c-json.log");
        let mut w = open_raw(&raw).unwrap();
        let mut log = JsonLog::open(&json, Rotation::default()).unwrap();
        let mut follow = Follower::at_end(&json);
        let mut tail = RawTail::new(&raw, Stream::Stdout, 0);
        w.write_all(b"hello\nwor").unwrap();
        assert!(tail.pump(&mut log, false).unwrap());
        w.write_all(b"ld\n").unwrap();
        tail.pump(&mut log, false).unwrap();
        w.write_all(b"no newline").unwrap();
        tail.pump(&mut log, false).unwrap();
        let got: Vec<String> = follow.poll().into_iter().map(|e| e.log).collect();
        assert_eq!(got, ["hello\n", "world\n"]);
        tail.pump(&mut log, true).unwrap();
        assert_eq!(follow.poll()[0].log, "no newline");
        assert_eq!(tail.offset, 22);
        // a long line is split
        w.write_all(&vec![b'a'; MAX_LINE + 10]).unwrap();
        tail.pump(&mut log, false).unwrap();
        assert_eq!(follow.poll()[0].log.len(), MAX_LINE);
        save_offsets(tmp.path(), [tail.offset, 7]);
        assert_eq!(load_offsets(tmp.path()), [tail.offset, 7]);
    }

    #[test]
    fn logging_options() {
        let mut l = rstack_compose::model::Logging::default();
        l.options.insert("max-size".into(), Some("1k".into()));
        l.options.insert("max-file".into(), Some("2".into()));
        let r = Rotation::of_service("s", Some(&l)).unwrap();
        assert_eq!(r.max_size, Some(1000));
        assert_eq!(r.max_file, 2);
        l.options.insert("max-file".into(), Some("0".into()));
        let e = Rotation::of_service("web", Some(&l))
            .unwrap_err()
            .to_string();
        assert!(e.contains("web") && e.contains("max-file"), "{e}");
    }
}
