//! Connecting, reading and reconnecting: the loop over connections of one session, the read
//! loop of one connection, and why a connection ended (`Disconnect`).
//!
//! What to do after a failure is `reconnect`'s decision; how long to wait, `client::Backoff`'s.
//! Events themselves go to `Session::handle`.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::reconnect::{self, Next};
use super::session::Session;
use super::{Config, Error, Signals, sleep_unless, sleep_unless_checking_every};
use crate::archive;
use crate::client::{self, Backoff, Client, Jitter, ReadOutcome};
use crate::labels::ReconnectReason;
use crate::sse;
use crate::stats::Stats;
use crate::times;

/// First reconnect delay when the server sent no `retry:`: about a second, as EventSource does.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest reconnect delay: a minute keeps load on a struggling server low and gaps short.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Body read buffer: a few events per read at typical sizes, small next to the gzip state.
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// After a read that had to wait for its data (the stream is caught up), the next one waits
/// this long (at most a quarter of the checkpoint interval), so that at the live rate (about
/// 100 events and 120 KB a second, each event a read of its own) one wakeup takes a second of
/// events instead of one: a wakeup cost more CPU than archiving the event, and after a sleep
/// the compressor's state is out of the CPU caches, so fewer, larger batches cost less per event
/// (at 100 events/s: 0.199 s of CPU a minute with 500 ms, 0.170 s with 1250 ms; Dec 2026). The
/// socket buffers meanwhile (about 120 KB), and the reads after the wait find their data at once
/// and do not wait: a catching-up stream never waits. The wait comes after housekeeping, so a
/// checkpoint that is due is never delayed by it; a signal is seen within `POLL_INTERVAL`.
const COALESCE_WAIT: Duration = Duration::from_secs(1);
/// A read that took longer than this waited for the server: the stream is caught up.
const READ_WAITED: Duration = Duration::from_millis(2);

/// Why a connection ended.
pub(super) enum Disconnect {
    ServerClosed,
    Stalled(Duration),
    ReadFailed(io::Error),
    Shutdown,
    MaxEvents,
    ArchiveFailed(archive::Error),
    /// `tail`'s standard output was closed (`| head`).
    OutputClosed,
}

impl Disconnect {
    /// The reconnect it leads to, or `None` when the session ends here.
    fn reconnect_reason(&self) -> Option<ReconnectReason> {
        match self {
            Disconnect::ServerClosed => Some(ReconnectReason::ServerClosed),
            Disconnect::Stalled(_) => Some(ReconnectReason::Stalled),
            Disconnect::ReadFailed(_) => Some(ReconnectReason::ReadFailed),
            Disconnect::Shutdown
            | Disconnect::MaxEvents
            | Disconnect::OutputClosed
            | Disconnect::ArchiveFailed(_) => None,
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
            Disconnect::MaxEvents => write!(f, "reached --max-events"),
            Disconnect::ArchiveFailed(e) => write!(f, "archive failed: {e}"),
            Disconnect::OutputClosed => write!(f, "standard output closed"),
        }
    }
}

impl Session {
    /// Connects, reads and reconnects until a signal, `--max-events`, a closed stdout
    /// (`Ok`), or a failure that ends the session (`Err`). `first_session`: nothing has
    /// connected yet in this process.
    pub(super) fn main_loop(
        &mut self,
        client: &Client,
        cfg: &Config,
        signals: &Signals,
        first_session: bool,
    ) -> Result<(), Error> {
        let url = &cfg.client.url;
        let mut backoff = Backoff::new(INITIAL_BACKOFF, MAX_BACKOFF);
        let mut jitter = Jitter::from_entropy();
        let mut ever_connected = !first_session;
        let mut since_fallback = self.resume_since_ms.take();
        if (!self.resume_id().is_empty() || since_fallback.is_some()) && self.cfg.since_ms.is_some()
        {
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
            self.housekeeping(signals)?;
            let resume_id = (!self.resume_id().is_empty()).then(|| self.resume_id().to_string());
            let resume_id = resume_id.as_deref();
            let since = match resume_id {
                None => since_fallback.or(self.cfg.since_ms),
                Some(_) => None,
            };
            let mut retry_after = None;
            match client.open(resume_id, since) {
                Ok(stream) => {
                    ever_connected = true;
                    match resume_id {
                        Some(id) => log::info!("connected to {url}, resuming after {id}"),
                        None => log::info!("connected to {url}"),
                    }
                    self.check_gap = resume_id.is_some() || since_fallback.is_some();
                    let started = Instant::now();
                    self.stats.connected.store(true, Ordering::Relaxed);
                    let reason = self.read_stream(stream, signals);
                    self.stats.connected.store(false, Ordering::Relaxed);
                    log::info!(
                        "disconnected: {reason}; {} events in {:.1} s",
                        self.n_events_this_connection,
                        started.elapsed().as_secs_f64()
                    );
                    if let Some(retry) = self.server_retry {
                        backoff.set_initial(retry);
                    }
                    if self.n_events_this_connection > 0 {
                        backoff.reset();
                    }
                    let Some(reconnect_reason) = reason.reconnect_reason() else {
                        return match reason {
                            Disconnect::ArchiveFailed(e) => Err(Error::Archive(e)),
                            _ => Ok(()),
                        };
                    };
                    self.stats.reconnects.add(reconnect_reason);
                    // Make what this connection brought durable before waiting to reconnect.
                    if self.dirty {
                        self.checkpoint()?;
                    }
                }
                Err(client::Error::ShuttingDown) => {
                    log::info!("shutting down on signal");
                    return Ok(());
                }
                Err(e) => {
                    match reconnect::after_connect_error(&e, ever_connected, resume_id.is_some()) {
                        Next::Fail => return Err(Error::Client(e)),
                        Next::FallBackToSince => {
                            // The server no longer knows this position: continue from the last
                            // archived time instead, which may leave a gap.
                            since_fallback = times::parse_rfc3339_ms(self.last_dt());
                            log::warn!(
                                "the server refused Last-Event-ID {} ({e}); resuming from meta.dt {} instead: events may be missing",
                                resume_id.unwrap_or_default(),
                                if self.last_dt().is_empty() {
                                    "(unknown: from now)"
                                } else {
                                    self.last_dt()
                                }
                            );
                            self.clear_resume_id();
                        }
                        Next::Retry => log::warn!("connecting to {url} failed: {e}"),
                    }
                    retry_after = e.retry_after();
                    if let Some(asked) = retry_after.filter(|d| *d > client::MAX_RETRY_AFTER) {
                        log::warn!(
                            "the server asked to wait {} s (Retry-After); waiting at most {} s",
                            asked.as_secs(),
                            client::MAX_RETRY_AFTER.as_secs()
                        );
                    }
                    self.stats.reconnects.add(ReconnectReason::ConnectFailed);
                }
            }
            let delay = reconnect::delay(backoff.next_delay(jitter.next_fraction()), retry_after);
            log::info!("reconnecting in {:.3} s", delay.as_secs_f64());
            sleep_unless(&signals.shutdown, delay);
        }
    }

    /// Reads one connection until it ends, handing every parsed item to `handle`.
    fn read_stream(&mut self, mut stream: client::Stream, signals: &Signals) -> Disconnect {
        let mut parser = sse::Parser::new(self.cfg.max_event_bytes);
        let mut buf = vec![0u8; READ_BUFFER_BYTES];
        let mut last_data_at = Instant::now();
        let mut coalesce = false;
        // Events printed (`tail`, `--tee`) go out as they come: someone may be watching.
        let coalesce_wait = match (self.prints(), self.cfg.checkpoint_interval) {
            (true, _) => Duration::ZERO,
            (false, Some(interval)) => COALESCE_WAIT.min(interval / 4),
            (false, None) => COALESCE_WAIT,
        };
        self.n_events_this_connection = 0;
        loop {
            if signals.shutdown.load(Ordering::Relaxed) {
                return Disconnect::Shutdown;
            }
            let read_started = Instant::now();
            match stream.read(&mut buf) {
                Ok(ReadOutcome::Data(n)) => {
                    last_data_at = Instant::now();
                    Stats::add(&self.stats.bytes_received, n as u64);
                    parser.feed(&buf[..n], &mut |item| self.handle(item));
                    if let Some(reason) = self.failure.take() {
                        return reason;
                    }
                    coalesce = n < READ_BUFFER_BYTES && read_started.elapsed() >= READ_WAITED;
                }
                Ok(ReadOutcome::Idle) => {
                    let idle = last_data_at.elapsed();
                    if idle >= self.cfg.idle_timeout {
                        return Disconnect::Stalled(idle);
                    }
                }
                Ok(ReadOutcome::End) => return Disconnect::ServerClosed,
                Err(e) => return Disconnect::ReadFailed(e),
            }
            if let Err(e) = self.housekeeping(signals) {
                return Disconnect::ArchiveFailed(e);
            }
            if let Some(reason) = self.failure.take() {
                return reason;
            }
            if std::mem::take(&mut coalesce) && !coalesce_wait.is_zero() {
                // A wakeup that only looks at the flag touches none of the compressor's state.
                sleep_unless_checking_every(
                    &signals.shutdown,
                    coalesce_wait,
                    client::POLL_INTERVAL,
                );
            }
        }
    }
}
