//! The health endpoint's connections, all on its one thread: at most `MAX_CONNECTIONS` open, a
//! request head of at most `MAX_HEAD_BYTES` within `HEAD_TIMEOUT`, one response, then close.
//!
//! A thread per connection, or an idle connection without a deadline, would let clients exhaust
//! threads (and abort the process) or file descriptors. So nothing is spawned after start: connections wait in a list that the thread
//! polls, and an accept failure (no file descriptors left) is logged once a minute and retried
//! after a pause, so `/check` answers again as soon as the pressure is gone.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Config, respond};
use crate::httpd;
use crate::logging::LogLimiter;
use crate::stats::Stats;
use crate::times;

/// Open connections at most; one more is closed at once. Monitors and a browser need a few.
pub const MAX_CONNECTIONS: usize = 16;
/// A request head larger than this gets 431. Real ones are a few hundred bytes.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// A client that has not sent its whole head by then gets 408 and is closed.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Writing one response may block this long (the largest, the status page, is 7 KB).
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// While connections are open, they are polled this often; with none, the thread sleeps in
/// `accept`.
const CONNECTION_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// After a failed accept, wait this long before the next.
const ACCEPT_PAUSE: Duration = Duration::from_millis(200);

/// A connection whose request head is still arriving.
struct Waiting {
    socket: TcpStream,
    head: Vec<u8>,
    since: Instant,
}

/// What became of a waiting connection in one poll.
enum Progress {
    /// Still waiting for more of its head.
    Waiting,
    /// Answered or gone: close it.
    Done,
}

/// Binds `cfg.addr` and serves on a new thread.
pub fn spawn(cfg: Config, stats: Arc<Stats>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(cfg.addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("health".into())
        .spawn(move || serve(&listener, &stats, cfg.max_silence))?;
    Ok(bound)
}

fn serve(listener: &TcpListener, stats: &Stats, max_silence: Duration) {
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut accept_errors = LogLimiter::default();
    loop {
        // Block in accept while nothing is open; poll while something is.
        let _ = listener.set_nonblocking(!waiting.is_empty());
        match listener.accept() {
            Ok((socket, _)) => {
                if waiting.len() >= MAX_CONNECTIONS || socket.set_nonblocking(true).is_err() {
                    // Closed unread: the client sees a reset or an empty reply.
                    log::debug!("health: {MAX_CONNECTIONS} connections open; closing one more");
                } else {
                    waiting.push(Waiting {
                        socket,
                        head: Vec::new(),
                        since: Instant::now(),
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                if let Some(n_held_back) = accept_errors.allow() {
                    log::warn!(
                        "health: accepting a connection: {e}; refusing connections until it \
                         works again ({n_held_back} more failures since the last report)"
                    );
                }
                // Give the open connections their turn, then pause before accepting again.
                waiting.retain_mut(|c| matches!(poll(c, stats, max_silence), Progress::Waiting));
                std::thread::sleep(ACCEPT_PAUSE);
                continue;
            }
        }
        waiting.retain_mut(|c| matches!(poll(c, stats, max_silence), Progress::Waiting));
        if !waiting.is_empty() {
            std::thread::sleep(CONNECTION_POLL_INTERVAL);
        }
    }
}

/// Reads what a waiting connection has sent; answers once its head is complete, too large or
/// too late.
fn poll(conn: &mut Waiting, stats: &Stats, max_silence: Duration) -> Progress {
    let mut buf = [0u8; 1024];
    loop {
        match conn.socket.read(&mut buf) {
            Ok(0) => return Progress::Done,
            Ok(n) => conn.head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Progress::Done,
        }
        if let Some(end) = httpd::head_end(&conn.head) {
            let text = String::from_utf8_lossy(&conn.head[..end]).into_owned();
            answer(conn, &text, stats, max_silence);
            return Progress::Done;
        }
        if conn.head.len() > MAX_HEAD_BYTES {
            reply(conn, 431, "request head too large\n", false);
            return Progress::Done;
        }
    }
    if httpd::head_end(&conn.head).is_none() && conn.since.elapsed() >= HEAD_TIMEOUT {
        reply(conn, 408, "request head not received in time\n", false);
        return Progress::Done;
    }
    Progress::Waiting
}

fn answer(conn: &mut Waiting, head: &str, stats: &Stats, max_silence: Duration) {
    let Some(head) = httpd::parse(head) else {
        reply(conn, 400, "malformed request line\n", false);
        return;
    };
    let response = respond(
        head.method,
        head.target,
        stats,
        times::unix_ms(time::OffsetDateTime::now_utc()),
        max_silence,
    );
    send(conn, &response, head.method == "HEAD");
}

fn reply(conn: &mut Waiting, code: u16, body: &str, head_only: bool) {
    send(conn, &super::Reply::text(code, body), head_only);
}

fn send(conn: &mut Waiting, response: &super::Reply, head_only: bool) {
    let socket = &mut conn.socket;
    // A client that went away or reads too slowly is its own problem.
    let _ = socket
        .set_nonblocking(false)
        .and_then(|()| socket.set_write_timeout(Some(WRITE_TIMEOUT)))
        .and_then(|()| {
            httpd::write_response(
                socket,
                response.code,
                response.content_type,
                "",
                &response.body,
                head_only,
            )
        });
    let _ = socket.shutdown(std::net::Shutdown::Both);
}
