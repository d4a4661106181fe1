//! `run` and `tail`: the lock, the recovery loop around sessions, signals and the process clock.
//!
//! A `Session` (session.rs) archives from one checkpoint on, across the connections that
//! connection.rs opens and reads, until a signal, `--max-events`, or a write failure. A write
//! failure (a full disk) abandons the session and starts a new one from the checkpoint, exactly
//! as after a crash: `retry_session` is that rule. The pure parts are elsewhere: what becomes of
//! an event in `judge`, what to do after a failed connection in `reconnect`, backoff in
//! `client`, rotation in `archive::rotate`.

mod connection;
pub mod judge;
mod reconnect;
mod session;
mod sink;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use self::connection::{Connected, connect_and_read};
use self::session::Session;
use crate::archive::{self, Archive, DirLock, Recovered};
use crate::client::{self, Client};
use crate::console::Format;
use crate::filter::Filter;
use crate::health;
use crate::ship;
use crate::stats::Stats;
use crate::times::unix_ms;

/// Sleeps are cut into slices this long so that a signal is seen quickly.
const SLEEP_SLICE: Duration = Duration::from_millis(100);
/// After a write failure (e.g. disk full), wait this long before trying again from the checkpoint.
const WRITE_RETRY_DELAY: Duration = Duration::from_secs(5);
/// A repeating write failure is logged at most this often.
const WRITE_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Test hook: an RFC 3339 time the process clock starts at (it then runs at normal speed), so
/// tests can cross a rotation minute without waiting for it. Never set in production.
const FAKE_NOW_ENV: &str = "WIKISTREAM_ARCHIVER_FAKE_NOW";

/// Everything `run` and `tail` need, as `config` built it.
#[derive(Debug)]
pub struct Config {
    pub client: client::Config,
    /// Unused by `tail`, which writes no files.
    pub archive: archive::Config,
    pub session: SessionConfig,
    /// The health endpoint, when `--status-port` is set.
    pub health: Option<health::Config>,
    pub output: Output,
    /// `--ship-to` or `--on-ready`.
    pub ship: Option<ship::Config>,
}

/// What a session consults per connection and per event.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `--since`: on the first connection only, start at this time (ms).
    pub since_ms: Option<i64>,
    pub idle_timeout: Duration,
    pub max_events: Option<u64>,
    pub max_event_bytes: usize,
    pub keep_canary: bool,
    /// `None` checkpoints only at new files, rotations and shutdown.
    pub checkpoint_interval: Option<Duration>,
    pub gap_warn: Duration,
    /// Which events to keep.
    pub filter: Filter,
}

/// What `run` and `tail` do with the events they keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Archive only (`run`).
    Archive,
    /// Archive and print (`run --tee`).
    ArchiveAndPrint(Format),
    /// Print only (`tail`): no output directory, no checkpoint; resumes within the process.
    Print(Format),
}

impl Output {
    /// The print format, when events are printed.
    pub fn print_format(self) -> Option<Format> {
        match self {
            Output::Archive => None,
            Output::ArchiveAndPrint(format) | Output::Print(format) => Some(format),
        }
    }
}

/// Why `run` failed.
#[derive(Debug)]
pub enum Error {
    /// The server or the configuration prevents archiving (e.g. 404 on the first connection).
    Client(client::Error),
    /// The archive directory or a file in it failed.
    Archive(archive::Error),
    /// Signal handlers could not be installed.
    Signals(io::Error),
    /// The health server could not start (e.g. the port is taken).
    Health(String),
    /// Shipping could not start (e.g. another process ships the directory).
    Ship(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Client(e) => write!(f, "{e}"),
            Error::Archive(e) => write!(f, "{e}"),
            Error::Signals(e) => write!(f, "installing signal handlers: {e}"),
            Error::Health(e) | Error::Ship(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<client::Error> for Error {
    fn from(e: client::Error) -> Error {
        Error::Client(e)
    }
}

impl From<archive::Error> for Error {
    fn from(e: archive::Error) -> Error {
        Error::Archive(e)
    }
}

/// Signal flags the loop polls.
pub(crate) struct Signals {
    /// SIGINT or SIGTERM: finish and exit. A second one, later than `SAME_REQUEST`, ends the
    /// process at once.
    pub shutdown: Arc<AtomicBool>,
    /// SIGUSR1: complete the open file now.
    pub rotate: Arc<AtomicBool>,
}

/// How long a shutdown waits for shipping to upload the files it completed (a clean stop ships
/// its last file); a failing destination is not waited for.
const SHIP_GRACE: Duration = Duration::from_secs(10);

/// Signals this close together are one request to stop: GNU `timeout`, and a kill of the
/// process group, deliver the same SIGTERM twice within microseconds.
const SAME_REQUEST: Duration = Duration::from_secs(1);

/// Starts the one thread that receives signals and sets the flags. A second request to stop
/// must end the process even while the main loop is busy (a stuck disk), so it cannot wait
/// for the loop to look; the thread only sets flags, logs, and exits the process.
fn install_signal_flags() -> Result<Signals, Error> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let shutdown = Arc::new(AtomicBool::new(false));
    let rotate = Arc::new(AtomicBool::new(false));
    let mut received =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGUSR1]).map_err(Error::Signals)?;
    let (stop, complete) = (Arc::clone(&shutdown), Arc::clone(&rotate));
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut first_stop: Option<Instant> = None;
            for signal in received.forever() {
                if signal == SIGUSR1 {
                    complete.store(true, Ordering::Relaxed);
                    continue;
                }
                match first_stop {
                    None => {
                        first_stop = Some(Instant::now());
                        stop.store(true, Ordering::Relaxed);
                    }
                    Some(at) if at.elapsed() < SAME_REQUEST => {}
                    Some(_) => {
                        log::error!(
                            "a second signal to stop: exiting at once; the next start resumes \
                             from the checkpoint"
                        );
                        std::process::exit(1);
                    }
                }
            }
        })
        .map_err(Error::Signals)?;
    Ok(Signals { shutdown, rotate })
}

/// The process clock: UTC now, shifted when the test hook asks for it. Everything under `run`
/// reads the time through it, so the hook moves rotation, file names and rejects alike.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    offset: time::Duration,
}

impl Clock {
    fn from_env() -> Clock {
        let offset = std::env::var(FAKE_NOW_ENV)
            .ok()
            .and_then(|text| crate::times::parse_rfc3339(&text))
            .map_or(time::Duration::ZERO, |start| {
                start - OffsetDateTime::now_utc()
            });
        Clock { offset }
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            .checked_add(self.offset)
            .unwrap_or_else(OffsetDateTime::now_utc)
    }
}

/// Archives (or for `tail`, prints) the stream until a signal, `--max-events`, or a fatal error.
#[inline(never)] // an entry point of main.rs: see `config::from_args`
pub fn run(cfg: Config) -> Result<(), Error> {
    let signals = install_signal_flags()?;
    let clock = Clock::from_env();
    let url = cfg.client.url.clone();
    let printing_only = matches!(cfg.output, Output::Print(_));
    let _lock = match printing_only {
        true => None,
        false => Some(DirLock::acquire(&cfg.archive.dir)?),
    };
    let client = Client::new(&cfg.client, Arc::clone(&signals.shutdown))?;
    let stats = Arc::new(Stats::default());
    stats
        .started_at_ms
        .store(unix_ms(clock.now()), Ordering::Relaxed);
    if printing_only {
        log::info!("printing {url}");
        let stats_for_session = Arc::clone(&stats);
        let mut session = Session::new(None, Recovered::fresh(), &cfg, clock, stats_for_session, 0);
        let mut connected = Connected::Never;
        let result = connect_and_read(
            &mut session,
            &client,
            &cfg,
            &signals,
            &stats,
            &mut connected,
        );
        log::debug!("{}", stats.summary());
        return result;
    }
    if let Some(health) = cfg.health {
        let bound = health::spawn(health, Arc::clone(&stats))
            .map_err(|e| Error::Health(format!("serving health on {}: {e}", health.addr)))?;
        log::info!("serving /check, /metrics and /status on http://{bound}");
    }
    log::info!("archiving {url} into {}", cfg.archive.dir.display());
    let shared = Shared {
        cfg: &cfg,
        client: &client,
        signals: &signals,
        stats: &stats,
        clock,
    };
    let mut started = false;
    let mut connected = Connected::Never;
    let mut n_archived = 0;
    let mut last_error_logged: Option<Instant> = None;
    let mut handoff: Option<Arc<ship::Confirmed>> = None;
    loop {
        let result = match Archive::open(cfg.archive.clone()) {
            // At start (`started` false) an unusable directory or checkpoint needs a person:
            // `retry_session` below reports it and exits.
            Err(e) => Err(Error::Archive(e)),
            Ok((mut archive, recovered)) => {
                if let Some(ship_cfg) = &cfg.ship
                    && handoff.is_none()
                {
                    // After opening, which completes what a crash left open: the lane finds
                    // those on disk.
                    let view = ship::ArchiveView {
                        dir: cfg.archive.dir.clone(),
                        layout: archive.layout(),
                        naming: Some(cfg.archive.naming.clone()),
                    };
                    let started = ship::start(ship_cfg, view, Arc::clone(&stats));
                    handoff = Some(started.map_err(Error::Ship)?);
                }
                if let Some(handoff) = &handoff {
                    archive.set_handoff(Arc::clone(handoff) as Arc<dyn archive::Handoff>);
                }
                started = true;
                shared.archive_session(archive, recovered, &mut connected, &mut n_archived)
            }
        };
        let shutting_down = signals.shutdown.load(Ordering::Relaxed);
        if !retry_session(&result, started, shutting_down) {
            if let Some(handoff) = &handoff {
                handoff.settle(SHIP_GRACE);
            }
            log::info!("{}", stats.summary());
            return result;
        }
        if let Err(Error::Archive(e)) = &result {
            note_write_failure(&stats, clock, e, &mut last_error_logged);
        }
        sleep_unless(&signals.shutdown, WRITE_RETRY_DELAY);
    }
}

/// What every session of this process shares.
struct Shared<'a> {
    cfg: &'a Config,
    client: &'a Client,
    signals: &'a Signals,
    stats: &'a Arc<Stats>,
    clock: Clock,
}

impl Shared<'_> {
    /// One session from what opening the archive recovered, until it ends: then its files are
    /// completed, or after a failure what the checkpoint does not hold is forgotten.
    fn archive_session(
        &self,
        mut archive: Archive,
        recovered: Recovered,
        connected: &mut Connected,
        n_archived: &mut u64,
    ) -> Result<(), Error> {
        let stats = self.stats;
        if recovered.rewound {
            Stats::add(&stats.refetches, 1);
        }
        if let Err(e) = archive.apply_retention(self.clock.now()) {
            log::warn!("retention: {e}");
        }
        let mut session = Session::new(
            Some(archive),
            recovered,
            self.cfg,
            self.clock,
            Arc::clone(stats),
            *n_archived,
        );
        let result = connect_and_read(
            &mut session,
            self.client,
            self.cfg,
            self.signals,
            stats,
            connected,
        );
        let result = result.and_then(|()| session.close().map_err(Error::Archive));
        if result.is_err() {
            // The archive is abandoned without finishing: the next attempt starts from the
            // checkpoint, exactly as after a crash.
            session.forget_unwritten();
        }
        *n_archived = session.n_archived();
        result
    }
}

/// Whether a session that ended with `result` is followed by a new one from the checkpoint:
/// only after a file error that may go away (a full disk), once archiving had started, and not
/// while shutting down. At start an unusable directory needs a person.
fn retry_session(result: &Result<(), Error>, started: bool, shutting_down: bool) -> bool {
    match result {
        Err(Error::Archive(e)) => started && e.is_transient() && !shutting_down,
        Ok(()) | Err(_) => false,
    }
}

/// Logs a write failure at most once per `WRITE_ERROR_LOG_INTERVAL` and marks the archiver
/// unhealthy until a checkpoint succeeds again.
fn note_write_failure(
    stats: &Stats,
    clock: Clock,
    e: &archive::Error,
    last_logged: &mut Option<Instant>,
) {
    Stats::add(&stats.checkpoint_failures, 1);
    stats.connected.store(false, Ordering::Relaxed);
    if let Ok(mut text) = stats.write_error.try_lock() {
        *text = match e {
            archive::Error::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        };
    }
    let _ = stats.write_error_since.compare_exchange(
        0,
        clock.now().unix_timestamp(),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    if last_logged.is_none_or(|t| t.elapsed() >= WRITE_ERROR_LOG_INTERVAL) {
        log::error!(
            "{e}; nothing after the last checkpoint is kept, retrying every {} s from it",
            WRITE_RETRY_DELAY.as_secs()
        );
        *last_logged = Some(Instant::now());
    } else {
        log::debug!("still failing: {e}");
    }
}

/// Sleeps for `total` unless `flag` is set first.
pub(crate) fn sleep_unless(flag: &AtomicBool, total: Duration) {
    sleep_unless_checking_every(flag, total, SLEEP_SLICE);
}

/// Sleeps for `total` unless `flag` is set first, looking at it every `slice`.
pub(crate) fn sleep_unless_checking_every(flag: &AtomicBool, total: Duration, slice: Duration) {
    let start = Instant::now();
    while !flag.load(Ordering::Relaxed) {
        let left = total.saturating_sub(start.elapsed());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(slice));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn only_transient_file_errors_after_start_are_retried() {
        let full_disk = || {
            Err(Error::Archive(archive::Error::Io {
                action: "writing",
                path: PathBuf::from("/x"),
                source: io::Error::other("No space left on device"),
            }))
        };
        assert!(retry_session(&full_disk(), true, false));
        assert!(!retry_session(&full_disk(), false, false), "at start: exit");
        assert!(!retry_session(&full_disk(), true, true), "shutting down");
        let bad_checkpoint = Err(Error::Archive(archive::Error::Checkpoint {
            path: PathBuf::from("/x"),
            message: "bad".into(),
        }));
        assert!(!retry_session(&bad_checkpoint, true, false));
        assert!(!retry_session(&Ok(()), true, false));
        let client = Err(Error::Health("port taken".into()));
        assert!(!retry_session(&client, true, false));
    }
}
