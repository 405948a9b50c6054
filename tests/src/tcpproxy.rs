//! A TCP forwarder in front of a registry: counts the bytes it serves,
//! can cut a connection after a chosen number of bytes, and can listen
//! inside a test's network namespace while forwarding to the host's
//! loopback (so a command run in that namespace reaches a registry of the
//! host, and nothing else).
//!
//! Each accepted connection gets two copying threads. The listener of
//! [`TcpProxy::start_in_netns`] is created by a short-lived thread that
//! entered the namespace (`setns` changes only the calling thread); the
//! socket stays in that namespace, while connections to the target are made
//! from threads in the host's.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The forwarder's shared state.
#[derive(Debug)]
struct State {
    target: SocketAddr,
    /// Bytes sent from the target to clients, all connections together.
    served: AtomicU64,
    /// When `served` would pass this, the connection is cut there (once).
    cut_at: AtomicU64,
    /// Connections cut so far.
    cuts: AtomicU64,
    /// Bytes per second sent to clients, per connection; 0: unlimited.
    rate: AtomicU64,
    stop: AtomicBool,
}

/// A running forwarder; stops accepting when dropped.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    state: Arc<State>,
}

impl TcpProxy {
    /// Listens on a free `127.0.0.1` port of this namespace.
    pub fn start(target: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        Ok(TcpProxy::serve(listener, target))
    }

    /// Listens on a free `127.0.0.1` port inside the network namespace of
    /// process `pid` (e.g. a test's `unshare -n` holder).
    pub fn start_in_netns(pid: u32, target: SocketAddr) -> std::io::Result<TcpProxy> {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
        let listener = std::thread::spawn(move || -> std::io::Result<TcpListener> {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            TcpListener::bind("127.0.0.1:0")
        })
        .join()
        .map_err(|_| std::io::Error::other("the setns thread panicked"))??;
        Ok(TcpProxy::serve(listener, target))
    }

    fn serve(listener: TcpListener, target: SocketAddr) -> TcpProxy {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let state = Arc::new(State {
            target,
            served: AtomicU64::new(0),
            cut_at: AtomicU64::new(u64::MAX),
            cuts: AtomicU64::new(0),
            rate: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let accept_state = Arc::clone(&state);
        std::thread::spawn(move || accept_loop(listener, accept_state));
        TcpProxy { addr, state }
    }

    /// `127.0.0.1:PORT` (in the namespace it listens in).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes served to clients so far.
    pub fn served(&self) -> u64 {
        self.state.served.load(Ordering::SeqCst)
    }

    /// Cuts the connection that is serving when `more` further bytes
    /// have been served (once; the byte count is over all connections).
    pub fn cut_after(&self, more: u64) {
        let at = self.served() + more;
        self.state.cut_at.store(at, Ordering::SeqCst);
    }

    /// How many connections were cut.
    pub fn cuts(&self) -> u64 {
        self.state.cuts.load(Ordering::SeqCst)
    }

    /// Limits what each connection sends to clients to `bytes_per_second`
    /// (0: no limit), like a slow link.
    pub fn set_rate(&self, bytes_per_second: u64) {
        self.state.rate.store(bytes_per_second, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        // The accept loop polls this and closes the listener.
        self.state.stop.store(true, Ordering::SeqCst);
    }
}

/// Accepts until stopped (non-blocking, polled: the listener may be in
/// another namespace, where no connection could wake a blocking accept).
fn accept_loop(listener: TcpListener, state: Arc<State>) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while !state.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if client.set_nonblocking(false).is_err() {
            continue;
        }
        let state = Arc::clone(&state);
        std::thread::spawn(move || forward(client, state));
    }
}

fn forward(client: TcpStream, state: Arc<State>) {
    let Ok(server) = TcpStream::connect_timeout(&state.target, Duration::from_secs(5)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_r, &mut server_w);
        let _ = server_w.shutdown(Shutdown::Write);
    });
    download(server, client, &state);
    let _ = up.join();
}

/// Copies target -> client, counting, and cutting where asked.
fn download(mut server: TcpStream, mut client: TcpStream, state: &State) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n as u64,
        };
        let before = state.served.fetch_add(n, Ordering::SeqCst);
        let cut_at = state.cut_at.load(Ordering::SeqCst);
        if before + n >= cut_at
            && state
                .cut_at
                .compare_exchange(cut_at, u64::MAX, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            let keep = cut_at.saturating_sub(before) as usize;
            // Only what was really sent counts as served.
            state.served.fetch_sub(n - keep as u64, Ordering::SeqCst);
            let _ = client.write_all(&buf[..keep]);
            state.cuts.fetch_add(1, Ordering::SeqCst);
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
            return;
        }
        if client.write_all(&buf[..n as usize]).is_err() {
            break;
        }
        let rate = state.rate.load(Ordering::SeqCst);
        if rate > 0 {
            std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
        }
    }
    let _ = client.shutdown(Shutdown::Write);
}
