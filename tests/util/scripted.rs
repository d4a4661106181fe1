//! The one raw server of the tests: it answers each connection with bytes a script gives (by
//! connection number and request head), written in pieces at a chosen pace, for what the
//! replay server never sends (odd framing, stalls, redirects, trickled heads, broken bodies).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// What one connection gets: `bytes`, written `piece_len` at a time with `pause` between
/// pieces; then the socket stays open until the client goes away (or a minute passes).
pub struct Reply {
    pub bytes: Vec<u8>,
    pub piece_len: usize,
    pub pause: Duration,
}

impl Reply {
    /// `bytes` in one write.
    pub fn whole(bytes: Vec<u8>) -> Reply {
        Reply {
            piece_len: bytes.len().max(1),
            bytes,
            pause: Duration::ZERO,
        }
    }

    /// `bytes` in pieces of `piece_len`, a millisecond apart (to split frames at every byte).
    pub fn in_pieces(bytes: Vec<u8>, piece_len: usize) -> Reply {
        Reply {
            bytes,
            piece_len,
            pause: Duration::from_millis(1),
        }
    }
}

/// A scripted server on 127.0.0.1; stopped when dropped.
pub struct ScriptedServer {
    pub port: u16,
    n_connections: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
}

impl ScriptedServer {
    /// Answers the n-th connection (from 0) with `script(n, request head)`.
    pub fn start(script: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let n_connections = Arc::new(AtomicUsize::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let (counter, stop) = (Arc::clone(&n_connections), Arc::clone(&stopping));
        let script = Arc::new(script);
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(socket) = socket else { return };
                let idx = counter.fetch_add(1, Ordering::SeqCst);
                let script = Arc::clone(&script);
                std::thread::spawn(move || answer(socket, idx, &*script));
            }
        });
        ScriptedServer {
            port,
            n_connections,
            stopping,
        }
    }

    /// A stream URL on this server.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v2/stream/x", self.port)
    }

    /// How many connections it accepted so far.
    pub fn n_connections(&self) -> usize {
        self.n_connections.load(Ordering::SeqCst)
    }

    /// Stops accepting connections.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads the request head, writes the reply, then waits for the client to go away.
fn answer(mut socket: TcpStream, idx: usize, script: &dyn Fn(usize, &str) -> Reply) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let reply = script(idx, &String::from_utf8_lossy(&head));
    for piece in reply.bytes.chunks(reply.piece_len.max(1)) {
        if socket
            .write_all(piece)
            .and_then(|()| socket.flush())
            .is_err()
        {
            return;
        }
        std::thread::sleep(reply.pause);
    }
    let _ = socket.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = socket.read(&mut buf);
}
