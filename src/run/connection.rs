//! Connecting, reading and reconnecting: the loop over the connections of one session
//! (`connect_and_read`), the read loop of one connection (`read_stream`) with the state that
//! belongs to one connection, and why a connection ended (`Disconnect`).
//!
//! What to do after a failure is `reconnect`'s decision; how long to wait, `client::Backoff`'s.
//! Events themselves go to `Session::handle`.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::reconnect::{self, Next};
use super::session::{GapCheck, Session, Stop};
use super::{Config, Error, Signals, sleep_unless, sleep_unless_checking_every};
use crate::client::{self, Backoff, Client, Jitter, ReadOutcome};
use crate::labels::ReconnectReason;
use crate::sse::{self, Item};
use crate::stats::Stats;
use crate::times;

/// First reconnect delay when the server sent no `retry:`: about a second, as EventSource does.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest reconnect delay: a minute keeps load on a struggling server low and gaps short.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Body read buffer: a few events per read at typical sizes, small next to the gzip state.
const BODY_BUFFER_BYTES: usize = 16 * 1024;
/// After a read that had to wait for its data (the stream is caught up), the next one waits
/// this long (at most a quarter of the checkpoint interval), so that at the live rate (about
/// 100 events and 120 KB a second, each event a read of its own) one wakeup takes a second of
/// events instead of one: a wakeup costs more CPU than archiving the event, and after a sleep
/// the compressor's state is out of the CPU caches, so fewer, larger batches cost less per event
/// (`make bench`'s live line measures it). The socket buffers meanwhile (about 120 KB), and the
/// reads after the wait find their data at once and do not wait: a catching-up stream never
/// waits. The wait comes after housekeeping, so a checkpoint that is due is never delayed by
/// it; a signal is seen within `client::BODY_POLL_INTERVAL`.
const COALESCE_WAIT: Duration = Duration::from_secs(1);
/// A read that took longer than this waited for the server: the stream is caught up.
const READ_WAITED: Duration = Duration::from_millis(2);

/// Why a connection ended.
pub(super) enum Disconnect {
    ServerClosed,
    Stalled(Duration),
    ReadFailed(io::Error),
    Shutdown,
    /// The session stopped taking events.
    Stopped(Stop),
}

impl Disconnect {
    /// The reconnect it leads to, or `None` when the session ends here.
    fn reconnect_reason(&self) -> Option<ReconnectReason> {
        match self {
            Disconnect::ServerClosed => Some(ReconnectReason::ServerClosed),
            Disconnect::Stalled(_) => Some(ReconnectReason::Stalled),
            Disconnect::ReadFailed(_) => Some(ReconnectReason::ReadFailed),
            Disconnect::Shutdown | Disconnect::Stopped(_) => None,
        }
    }
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disconnect::ServerClosed => write!(f, "server closed the stream"),
            Disconnect::Stalled(idle) => {
                write!(f, "no data for {} s (--idle-timeout)", idle.as_secs())
            }
            Disconnect::ReadFailed(e) => write!(f, "read failed: {e}"),
            Disconnect::Shutdown => write!(f, "shutting down on signal"),
            Disconnect::Stopped(stop) => write!(f, "{stop}"),
        }
    }
}

/// Whether this process has connected to the server before: a refusal of the very first
/// connection is the configuration's fault (a wrong stream name), a later one is the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Connected {
    Never,
    Before,
}

/// What one connection brought, beyond its events.
struct Tally {
    n_events: u64,
    /// The server's `retry:`, the reconnection delay it asks for.
    server_retry: Option<Duration>,
}

/// Connects, reads and reconnects for `session` until a signal, `--max-events`, a closed
/// stdout (`Ok`), or a failure that ends the session (`Err`).
pub(super) fn connect_and_read(
    session: &mut Session,
    client: &Client,
    cfg: &Config,
    signals: &Signals,
    stats: &Stats,
    connected: &mut Connected,
) -> Result<(), Error> {
    let url = &cfg.client.url;
    let mut backoff = Backoff::new(INITIAL_BACKOFF, MAX_BACKOFF);
    let mut jitter = Jitter::from_entropy();
    let mut since_fallback = session.take_since_fallback();
    let resuming = !session.resume_id().is_empty() || since_fallback.is_some();
    if resuming && cfg.session.since_ms.is_some() {
        log::warn!(
            "--since is ignored: resuming from the checkpoint in {}",
            cfg.archive.dir.display()
        );
    }
    loop {
        if signals.shutdown.load(Ordering::Relaxed) {
            log::info!("shutting down on signal");
            return Ok(());
        }
        if let Err(stop) = session.housekeeping(signals) {
            return stopped(stop);
        }
        let resume_id = (!session.resume_id().is_empty()).then(|| session.resume_id().to_string());
        let resume_id = resume_id.as_deref();
        let since = match resume_id {
            None => since_fallback.or(cfg.session.since_ms),
            Some(_) => None,
        };
        let retry_after = match client.open(resume_id, since) {
            Ok(stream) => {
                *connected = Connected::Before;
                match resume_id {
                    Some(id) => log::info!("connected to {url}, resuming after {id}"),
                    None => log::info!("connected to {url}"),
                }
                let gap = match resume_id.is_some() || since_fallback.is_some() {
                    true => GapCheck::Pending,
                    false => GapCheck::Done,
                };
                let reason = read_connection(session, stream, signals, stats, gap, &mut backoff);
                let Some(reconnect_reason) = reason.reconnect_reason() else {
                    return match reason {
                        Disconnect::Stopped(stop) => stopped(stop),
                        _ => Ok(()),
                    };
                };
                stats.reconnects.add(reconnect_reason);
                // Make what this connection brought durable before waiting to reconnect.
                session.checkpoint_if_dirty()?;
                None
            }
            Err(client::Error::ShuttingDown) => {
                log::info!("shutting down on signal");
                return Ok(());
            }
            Err(e) => {
                let ever_connected = *connected == Connected::Before;
                match reconnect::after_connect_error(&e, ever_connected, resume_id.is_some()) {
                    Next::Fail => return Err(Error::Client(e)),
                    Next::FallBackToSince => since_fallback = fall_back_to_since(session, &e),
                    Next::Retry => log::warn!("connecting to {url} failed: {e}"),
                }
                stats.reconnects.add(ReconnectReason::ConnectFailed);
                server_delay(&e)
            }
        };
        let delay = reconnect::delay(backoff.next_delay(jitter.next_fraction()), retry_after);
        log::info!("reconnecting in {:.3} s", delay.as_secs_f64());
        sleep_unless(&signals.shutdown, delay);
    }
}

/// Reads one connection to its end and says why it ended; what it brought sets the backoff.
fn read_connection(
    session: &mut Session,
    stream: client::Stream,
    signals: &Signals,
    stats: &Stats,
    gap: GapCheck,
    backoff: &mut Backoff,
) -> Disconnect {
    let started = Instant::now();
    stats.connected.store(true, Ordering::Relaxed);
    let (reason, tally) = read_stream(session, stream, signals, stats, gap);
    stats.connected.store(false, Ordering::Relaxed);
    log::info!(
        "disconnected: {reason}; {} events in {:.1} s",
        tally.n_events,
        started.elapsed().as_secs_f64()
    );
    if let Some(retry) = tally.server_retry {
        backoff.set_initial(retry);
    }
    if tally.n_events > 0 {
        backoff.reset();
    }
    reason
}

/// The server no longer knows the session's resume id: continue from the last archived time
/// instead, which may leave a gap. Returns that time, for `since=`.
fn fall_back_to_since(session: &mut Session, e: &client::Error) -> Option<i64> {
    log::warn!(
        "the server refused Last-Event-ID {} ({e}); resuming from meta.dt {} instead: events \
         may be missing",
        session.resume_id(),
        if session.last_dt().is_empty() {
            "(unknown: from now)"
        } else {
            session.last_dt()
        }
    );
    session.clear_resume_id();
    times::parse_rfc3339_ms(session.last_dt())
}

/// How long the server asked to wait before the next attempt (`Retry-After`), said in the log
/// when it is more than we wait.
fn server_delay(e: &client::Error) -> Option<Duration> {
    let retry_after = e.retry_after();
    if let Some(asked) = retry_after.filter(|d| *d > client::MAX_RETRY_AFTER) {
        log::warn!(
            "the server asked to wait {} s (Retry-After); waiting at most {} s",
            asked.as_secs(),
            client::MAX_RETRY_AFTER.as_secs()
        );
    }
    retry_after
}

/// How a stop ends the session: a write failure is an error (a new session follows), the rest
/// end it normally.
fn stopped(stop: Stop) -> Result<(), Error> {
    match stop {
        Stop::ArchiveFailed(e) => Err(Error::Archive(e)),
        Stop::MaxEvents | Stop::OutputClosed => Ok(()),
    }
}

/// Reads one connection until it ends, handing every event to the session.
fn read_stream(
    session: &mut Session,
    mut stream: client::Stream,
    signals: &Signals,
    stats: &Stats,
    mut gap: GapCheck,
) -> (Disconnect, Tally) {
    let cfg = session.cfg();
    let mut parser = sse::Parser::new(cfg.max_event_bytes);
    let idle_timeout = cfg.idle_timeout;
    // Events printed (`tail`, `--tee`) go out as they come: someone may be watching.
    let coalesce_wait = match (session.prints(), cfg.checkpoint_interval) {
        (true, _) => Duration::ZERO,
        (false, Some(interval)) => COALESCE_WAIT.min(interval / 4),
        (false, None) => COALESCE_WAIT,
    };
    let mut buf = vec![0u8; BODY_BUFFER_BYTES];
    let mut last_data_at = Instant::now();
    let mut coalesce = false;
    let mut tally = Tally {
        n_events: 0,
        server_retry: None,
    };
    let reason = loop {
        if signals.shutdown.load(Ordering::Relaxed) {
            break Disconnect::Shutdown;
        }
        let read_started = Instant::now();
        match stream.read(&mut buf) {
            Ok(ReadOutcome::Data(n)) => {
                last_data_at = Instant::now();
                Stats::add(&stats.bytes_received, n as u64);
                let mut stop = None;
                parser.feed(&buf[..n], &mut |item| match item {
                    Item::Retry(ms) => tally.server_retry = Some(Duration::from_millis(ms)),
                    // Archiving stopped inside this chunk: later events are fetched again on
                    // resume.
                    Item::Event(_) if stop.is_some() => {}
                    Item::Event(event) => {
                        tally.n_events += 1;
                        stop = session.handle(event, &mut gap).err();
                    }
                });
                if let Some(stop) = stop {
                    break Disconnect::Stopped(stop);
                }
                coalesce = n < BODY_BUFFER_BYTES && read_started.elapsed() >= READ_WAITED;
            }
            Ok(ReadOutcome::Idle) => {
                let idle = last_data_at.elapsed();
                if idle >= idle_timeout {
                    break Disconnect::Stalled(idle);
                }
            }
            Ok(ReadOutcome::End) => break Disconnect::ServerClosed,
            Err(e) => break Disconnect::ReadFailed(e),
        }
        if let Err(stop) = session.housekeeping(signals) {
            break Disconnect::Stopped(stop);
        }
        if std::mem::take(&mut coalesce) && !coalesce_wait.is_zero() {
            // A wakeup that only looks at the flag touches none of the compressor's state.
            sleep_unless_checking_every(
                &signals.shutdown,
                coalesce_wait,
                client::BODY_POLL_INTERVAL,
            );
        }
    };
    (reason, tally)
}
