//! Sending the events of one connection: the response head, the seek to where the client
//! resumes (with keep-alive comments meanwhile), then every wanted event as an SSE frame or an
//! NDJSON line, in HTTP chunks, with the faults the connection's plan injects.

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Shared;
use super::fault::{hold_until_closed, plan, wait_unless_closed};
use super::http::{CORS_HEADERS, Request, write_chunk};
use super::position::Positions;
use super::route::Wanted;
use super::source::{self, Merge};
use crate::filter::Filter;
use crate::tools::cat;

/// Frames are sent in HTTP chunks of about this size when no rate limit applies.
const CHUNK_BYTES: usize = 16 * 1024;
/// While a filter leaves events out, an `id:` line without data (which moves a client's last
/// event id without an event, per the SSE rules) goes out at least this often, so that a
/// reconnect resumes past what was left out instead of scanning it again.
const PASSED_ID_EVERY: Duration = Duration::from_secs(1);

/// Streams what `wanted` asks for on `socket`, for request number `request_idx`.
pub(super) fn serve(
    mut socket: TcpStream,
    shared: &Shared,
    request: &Request,
    wanted: Wanted,
    request_idx: u64,
) -> io::Result<()> {
    let content_type = match request.wants_json {
        true => "application/json",
        false => "text/event-stream; charset=utf-8",
    };
    write!(
        socket,
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\n{CORS_HEADERS}\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    if request.method == "HEAD" {
        return Ok(());
    }
    // As EventStreams does: a comment at once, so the client knows it is connected.
    if !request.wants_json {
        write_chunk(&mut socket, b":ok\n\n")?;
    }
    let positions = Positions::new(wanted.resume, wanted.since_ms);
    let seeking = !positions.is_start();
    let mut keepalive = Keepalive::new(request.wants_json, shared.args.keepalive);
    let mut sent = Ok(());
    let mut seek_past = |event: &source::ArchivedEvent| {
        if sent.is_ok() {
            sent = keepalive.tick(&mut socket);
        }
        positions.seek_past(event)
    };
    let started = Instant::now();
    let merge = Merge::new(
        &shared.catalog,
        wanted.names,
        seeking.then_some(&mut seek_past as &mut dyn FnMut(&source::ArchivedEvent) -> bool),
    );
    if seeking {
        log::info!("seeking took {:.3} s", started.elapsed().as_secs_f64());
    }
    sent?;
    let json = request.wants_json;
    let to = Connection {
        json,
        request_idx,
        filter: &wanted.filter,
    };
    stream_events(socket, shared, merge, positions, to)
}

/// What one connection wants besides its events' order: NDJSON or SSE, its fault plan's
/// number, its filter.
struct Connection<'a> {
    json: bool,
    request_idx: u64,
    filter: &'a Filter,
}

/// Keep-alive comments while a connection seeks or skips, so that a client's idle timeout
/// never fires before its first event. A failed write is kept for the caller.
struct Keepalive {
    /// NDJSON has no comments to send.
    enabled: bool,
    every: Duration,
    last: Instant,
}

impl Keepalive {
    fn new(json: bool, every: Duration) -> Keepalive {
        Keepalive {
            enabled: !json,
            // Well inside any idle timeout a client would set.
            every: every.min(Duration::from_secs(1)),
            last: Instant::now(),
        }
    }

    fn tick(&mut self, socket: &mut TcpStream) -> io::Result<()> {
        if self.enabled && self.last.elapsed() >= self.every {
            self.last = Instant::now();
            write_chunk(socket, b":\n")?;
        }
        Ok(())
    }
}

/// Appends the SSE frame of an event with id `id`, or its NDJSON line, to `out`.
fn frame(out: &mut Vec<u8>, id: Option<&str>, data: &[u8]) {
    if let Some(id) = id {
        out.extend_from_slice(b"event: message\nid: ");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\ndata: ");
    }
    out.extend_from_slice(data);
    out.extend_from_slice(if id.is_some() { b"\n\n" } else { b"\n" });
}

/// Appends an `id:` line without data: the client's last event id moves past the events a
/// filter left out, and no event is dispatched.
fn id_only(out: &mut Vec<u8>, positions: &Positions) {
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(positions.id().as_bytes());
    out.extend_from_slice(b"\n\n");
}

fn stream_events(
    mut socket: TcpStream,
    shared: &Shared,
    mut merge: Merge,
    mut positions: Positions,
    to: Connection<'_>,
) -> io::Result<()> {
    let Connection {
        json,
        request_idx,
        filter,
    } = to;
    let args = &shared.args;
    let plan = plan(args, request_idx);
    // Events left out since the last id went out, and when one last did.
    let mut passed = false;
    let mut last_id_at = Instant::now();
    let mut batch = Vec::with_capacity(CHUNK_BYTES * 2);
    if let (Some(retry), false) = (args.retry_ms, json) {
        batch.extend_from_slice(format!("retry: {retry}\n\n").as_bytes());
    }
    let started = Instant::now();
    let mut n_sent = 0u64;
    let mut n_skipped = 0u64;
    let mut keepalive = Keepalive::new(json, args.keepalive);
    while let Some(event) = merge.next() {
        if positions.skips(&event) {
            n_skipped += 1;
            if n_skipped.is_multiple_of(1024) {
                keepalive.tick(&mut socket)?;
            }
            continue;
        }
        // Before the event is framed: a narrow filter costs a scan, not a serialisation.
        if !filter.is_empty() && !cat::keep(filter, &event.data) {
            if !json {
                positions.record(&event, args.id_marks);
                passed = true;
                if last_id_at.elapsed() >= PASSED_ID_EVERY {
                    id_only(&mut batch, &positions);
                    write_chunk(&mut socket, &batch)?;
                    batch.clear();
                    (passed, last_id_at) = (false, Instant::now());
                }
            }
            continue;
        }
        if let Some(rate) = args.rate {
            let due = started + Duration::from_secs_f64(n_sent as f64 / rate);
            let now = Instant::now();
            if due > now {
                write_chunk(&mut socket, &batch)?;
                batch.clear();
                std::thread::sleep(due - now);
            }
        }
        let id = (!json).then(|| positions.id_after(&event, args.id_marks));
        if plan.disconnect_after == Some(n_sent) {
            if plan.stall {
                write_chunk(&mut socket, &batch)?;
                log::info!("stalling after {n_sent} events (--chaos)");
                return hold_until_closed(&mut socket);
            }
            if plan.cut_mid_event {
                let mut next = Vec::new();
                frame(&mut next, id.as_deref(), &event.data);
                batch.extend_from_slice(&next[..next.len() / 2]);
                write_chunk(&mut socket, &batch)?;
                log::info!("cutting the connection in the middle of an event (--cut-mid-event)");
                return socket.shutdown(Shutdown::Both);
            }
            write_chunk(&mut socket, &batch)?;
            socket.write_all(b"0\r\n\r\n")?;
            log::info!("closing the connection after {n_sent} events (--disconnect-every)");
            return socket.shutdown(Shutdown::Both);
        }
        if args.stall_after == Some(n_sent) && !shared.stalled.swap(true, Ordering::SeqCst) {
            write_chunk(&mut socket, &batch)?;
            log::info!("stalling after {n_sent} events (--stall-after)");
            return hold_until_closed(&mut socket);
        }
        frame(&mut batch, id.as_deref(), &event.data);
        (passed, last_id_at) = (false, Instant::now());
        n_sent += 1;
        if batch.len() >= CHUNK_BYTES {
            write_chunk(&mut socket, &batch)?;
            batch.clear();
        }
    }
    if passed {
        id_only(&mut batch, &positions);
    }
    write_chunk(&mut socket, &batch)?;
    log::info!("all {n_sent} events sent; keeping the stream open");
    if json {
        // NDJSON has no comments to keep the connection alive with.
        return hold_until_closed(&mut socket);
    }
    loop {
        if wait_unless_closed(&mut socket, args.keepalive)? {
            return Ok(());
        }
        write_chunk(&mut socket, b":\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_look_like_wikimedia() {
        let mut out = Vec::new();
        frame(&mut out, Some("[{\"offset\":7}]"), b"{}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: message\nid: [{\"offset\":7}]\ndata: {}\n\n"
        );
        let mut out = Vec::new();
        frame(&mut out, None, b"{}");
        assert_eq!(out, b"{}\n");
    }
}
