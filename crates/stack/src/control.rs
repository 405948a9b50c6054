//! The supervisor's request socket (`RUN/projects/<p>/control.sock`):
//! one JSON request per connection, answered by one JSON response. Plain
//! commands (`down`, `stop`, `start`, `restart`, `kill`) use it to ask the
//! supervisor — the parent of the containers, the one that can reap them
//! and knows their restart policies — to act.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A failure talking to the supervisor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the supervisor at {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the supervisor at {path} did not answer")]
    Exchange {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the supervisor answered nonsense")]
    Parse(#[source] serde_json::Error),
    #[error("{0}")]
    Refused(String),
}

/// What a command asks of the supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Stop and remove every container, then exit.
    Down {
        timeout: Option<u64>,
    },
    /// Stop (remembered: no restart policy brings them back).
    Stop {
        services: Vec<String>,
        timeout: Option<u64>,
    },
    Start {
        services: Vec<String>,
    },
    Restart {
        services: Vec<String>,
        timeout: Option<u64>,
    },
    Kill {
        services: Vec<String>,
        signal: i32,
    },
    /// Forget stopped containers (records and logs).
    Rm {
        services: Vec<String>,
    },
    /// Exit, leaving the containers running (a new supervisor adopts them).
    Detach,
    /// Whether it is alive.
    Ping,
}

/// The answer: lines to print (`Container x  Stopped`) or an error.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Response {
    pub lines: Vec<String>,
    pub error: Option<String>,
}

/// Sends `req` and waits (up to `timeout`) for the answer.
pub fn request(socket: &Path, req: &Request, timeout: Duration) -> Result<Response, Error> {
    let mut s = UnixStream::connect(socket).map_err(|source| Error::Connect {
        path: socket.to_owned(),
        source,
    })?;
    let ex = |source| Error::Exchange {
        path: socket.to_owned(),
        source,
    };
    s.set_read_timeout(Some(timeout)).map_err(ex)?;
    let mut data = serde_json::to_vec(req).map_err(Error::Parse)?;
    data.push(b'\n');
    s.write_all(&data).map_err(ex)?;
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).map_err(ex)?;
    let resp: Response = serde_json::from_str(&line).map_err(Error::Parse)?;
    match resp.error {
        Some(e) => Err(Error::Refused(e)),
        None => Ok(resp),
    }
}

/// Reads one request from an accepted connection.
pub(crate) fn read_request(s: &UnixStream) -> Option<Request> {
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

/// Writes the response to an accepted connection (the client may be gone).
pub(crate) fn reply(mut s: &UnixStream, resp: &Response) {
    let mut data = serde_json::to_vec(resp).unwrap_or_default();
    data.push(b'\n');
    let _ = s.write_all(&data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_over_a_socket() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.sock");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let req = read_request(&s).unwrap();
            assert!(
                matches!(req, Request::Stop { ref services, timeout: Some(3) } if services == &["web"])
            );
            reply(
                &s,
                &Response {
                    lines: vec!["Container x  Stopped".into()],
                    error: None,
                },
            );
        });
        let r = request(
            &path,
            &Request::Stop {
                services: vec!["web".into()],
                timeout: Some(3),
            },
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(r.lines, ["Container x  Stopped"]);
        t.join().unwrap();
        let e = request(
            &tmp.path().join("none"),
            &Request::Ping,
            Duration::from_secs(1),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("none"), "{e}");
    }
}
