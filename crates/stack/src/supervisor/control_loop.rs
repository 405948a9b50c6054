//! The control loop: what the supervisor does once its services are up.
//! An acceptor thread takes connections on the control socket; each
//! request is read and answered on a thread of its own ([`super::commands`]),
//! so requests never wait for each other. `down`, `detach` and
//! SIGINT/SIGTERM end the loop, and only the loop's thread handles them,
//! one at a time: the project is marked as shutting down first (commands
//! in flight stop waiting and start nothing), then stopped, then the
//! commands in flight are given a moment to answer.

use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::commands::{self, stop_all};
use super::hub::Inner;
use super::log_pump::pump_shared;
use super::{Error, Supervisor};
use crate::control::{self, Request, Response};

/// How the supervisor's service ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// SIGINT/SIGTERM: the containers were stopped, their records kept.
    Stopped,
    /// `down`: the containers were stopped and removed.
    Down,
    /// `detach`: the containers run on for the next supervisor to adopt.
    /// The caller should exit at once, dropping nothing of the supervisor's.
    Detached,
}

/// How long commands in flight may take to answer once the project is down.
const SETTLE: Duration = Duration::from_secs(10);

enum Msg {
    Conn(UnixStream),
    Signal,
    Down(Option<u64>, UnixStream),
    Detach(UnixStream),
}

impl Supervisor {
    /// Serves requests and signals until the project is stopped or taken
    /// down. `attached`: SIGINT/SIGTERM stop the containers (a second one
    /// kills them) and keep their records, like `docker compose up`;
    /// detached, SIGTERM does the same.
    pub fn serve(self, attached: bool) -> Result<Ended, Error> {
        let Supervisor {
            inner, listener, ..
        } = self;
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        accept(listener, tx.clone());
        on_signals(&inner, tx.clone());
        let mut in_flight: Vec<JoinHandle<()>> = Vec::new();
        while let Ok(msg) = rx.recv() {
            in_flight.retain(|h| !h.is_finished());
            match msg {
                Msg::Conn(s) => {
                    let i = inner.clone();
                    let tx = tx.clone();
                    in_flight.push(std::thread::spawn(move || handle(&i, s, &tx)));
                }
                Msg::Signal => {
                    if attached {
                        eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
                    }
                    stop_all(&inner, None, false);
                    finish(&inner);
                    settle(in_flight);
                    return Ok(Ended::Stopped);
                }
                Msg::Down(timeout, s) => {
                    let lines = stop_all(&inner, timeout, true);
                    finish(&inner);
                    settle(in_flight);
                    control::reply(&s, &Response { lines, error: None });
                    return Ok(Ended::Down);
                }
                Msg::Detach(s) => {
                    pump_shared(&inner, false);
                    finish(&inner);
                    control::reply(&s, &Response::default());
                    return Ok(Ended::Detached);
                }
            }
        }
        Ok(Ended::Stopped)
    }
}

/// Hands every connection to the loop.
fn accept(listener: UnixListener, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            if tx.send(Msg::Conn(s)).is_err() {
                break;
            }
        }
    });
}

/// SIGINT/SIGTERM end the loop; a second one kills instead of waiting.
fn on_signals(inner: &Arc<Inner>, tx: Sender<Msg>) {
    let i2 = inner.clone();
    inner.rt.spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        let mut count = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            count += 1;
            if count > 1 {
                i2.hub().kill_now = true;
                i2.notify();
            }
            let _ = tx.send(Msg::Signal);
        }
    });
}

/// Reads one request and answers it here, or hands `down` / `detach`
/// to the loop.
fn handle(inner: &Arc<Inner>, s: UnixStream, tx: &Sender<Msg>) {
    let Some(req) = control::read_request(&s) else {
        return;
    };
    match req {
        Request::Down { timeout } => {
            let _ = tx.send(Msg::Down(timeout, s));
        }
        Request::Detach => {
            let _ = tx.send(Msg::Detach(s));
        }
        req => control::reply(&s, &commands::answer(inner, req)),
    }
}

/// Gives the commands in flight (which stop waiting once the project
/// shuts down) a moment to answer their callers.
fn settle(in_flight: Vec<JoinHandle<()>>) {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline && in_flight.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the supervisor's own files before it exits.
fn finish(inner: &Inner) {
    let _ = crate::state::remove_file(&inner.pp.supervisor_file());
    let _ = std::fs::remove_file(inner.pp.control_socket());
    // the creator dies with us (PR_SET_PDEATHSIG); its socket goes now
    let _ = std::fs::remove_file(inner.pp.run.join("creator.sock"));
}
