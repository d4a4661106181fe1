//! Shipping completed files off the board, exactly once: to an S3 bucket (`--ship-to`), or to
//! an `--on-ready` program. One helper thread per run does it (`start`), so the main loop never
//! waits for the network; `ship DIR` runs the same lane in the foreground (`tools::ship`).
//!
//! What is shipped is found on disk: the completed files of the archive directory not yet in
//! the destination's journal (`journal`), oldest first. A file is recorded only after the
//! destination confirmed it; a crash before that ships it again, as the same key with the
//! same bytes. Retention asks before deleting (`Handoff::may_delete`), so only confirmed files
//! go. In the partitioned layout, a day's `_SUCCESS` mark follows the day's files to S3.

pub mod answer;
pub mod command;
pub mod credentials;
mod journal;
mod lane;
pub mod retry;
pub mod s3;
pub mod sigv4;

use std::collections::HashSet;
use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use self::journal::SHIP_DIR;
pub use self::lane::{ArchiveView, Drained, Item, Lane, Local, list, object_rel};
use crate::archive::Handoff;
pub use crate::labels::ShipFailure as FailureKind;

/// A failed delivery: why, in words without secrets, and when the server asks to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    pub retry_after: Option<Duration>,
    /// The HTTP status, for answers.
    pub status: Option<u16>,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            retry_after: None,
            status: None,
        }
    }
}

/// Where completed files go.
pub enum Destination {
    S3(s3::Bucket),
    Command(command::Hook),
}

impl Destination {
    /// The journal's name in `DIR/.ship/`: one per bucket, prefix and endpoint, so that
    /// shipping to another and back keeps what each has; one for `--on-ready`, whatever the
    /// program (moving a script must not send everything again).
    fn journal_name(&self) -> String {
        match self {
            Destination::S3(_) => {
                let hash = sigv4::sha256_hex(self.describe().as_bytes());
                format!("s3-{}", &hash[..12])
            }
            Destination::Command(_) => "on-ready".into(),
        }
    }

    /// What the journal's header records.
    fn journal_identity(&self) -> String {
        match self {
            Destination::S3(_) => self.describe(),
            Destination::Command(_) => "--on-ready".into(),
        }
    }

    /// What the journal records it shipped to; shown in logs and `/status`.
    pub fn describe(&self) -> String {
        match self {
            Destination::S3(bucket) => {
                let endpoint = bucket.target.endpoint.as_deref().unwrap_or("AWS");
                format!("{} at {endpoint}", bucket.target.display())
            }
            Destination::Command(hook) => format!("--on-ready {}", hook.program.to_string_lossy()),
        }
    }
}

/// How the run ships: the destination and its knobs.
#[derive(Debug, Clone)]
pub struct Config {
    pub to: To,
    /// `/check` fails when the oldest unshipped file is older than this.
    pub max_lag: Duration,
}

/// The destination as configured.
#[derive(Debug, Clone)]
pub enum To {
    S3 {
        target: s3::Target,
        credentials: credentials::Source,
    },
    Command {
        program: OsString,
        timeout: Duration,
    },
}

impl To {
    pub fn destination(&self) -> Destination {
        match self {
            To::S3 {
                target,
                credentials,
            } => Destination::S3(s3::Bucket::new(target.clone(), credentials.clone())),
            To::Command { program, timeout } => Destination::Command(command::Hook {
                program: program.clone(),
                timeout: *timeout,
            }),
        }
    }
}

/// What the archive and the lane share: the confirmed keys, a way to wake the lane, and
/// whether it has shipped everything it was told of.
pub struct Confirmed {
    keys: Mutex<HashSet<String>>,
    total: AtomicU64,
    wake: Mutex<Option<Sender<()>>>,
    /// Completions told (`Handoff::completed`), and of those the ones the lane has looked for
    /// and shipped everything since.
    told: AtomicU64,
    settled: AtomicU64,
    /// Set while the lane waits to retry a failure.
    failing: AtomicBool,
}

impl Confirmed {
    fn new(keys: HashSet<String>) -> Confirmed {
        Confirmed {
            keys: Mutex::new(keys),
            total: AtomicU64::new(0),
            wake: Mutex::new(None),
            told: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        }
    }

    /// At shutdown: waits up to `grace` for the lane to ship what it was told of, unless it is
    /// failing; what is left ships at the next start.
    pub fn settle(&self, grace: Duration) {
        let started = std::time::Instant::now();
        while started.elapsed() < grace && !self.failing.load(Ordering::Relaxed) {
            if self.settled.load(Ordering::Relaxed) >= self.told.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        log::info!("shipping was not done at shutdown: what is left ships at the next start");
    }

    fn contains(&self, rel: &str) -> bool {
        self.keys.lock().is_ok_and(|keys| keys.contains(rel))
    }

    fn insert(&self, rel: &str) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(rel.to_string());
        }
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    fn remove(&self, rel: &str) -> bool {
        self.keys.lock().is_ok_and(|mut keys| keys.remove(rel))
    }
}

impl Handoff for Confirmed {
    fn completed(&self) {
        self.told.fetch_add(1, Ordering::Relaxed);
        if let Ok(wake) = self.wake.lock()
            && let Some(wake) = wake.as_ref()
        {
            let _ = wake.send(());
        }
    }

    fn may_delete(&self, rel: &str) -> bool {
        self.contains(rel)
    }

    fn deleted(&self, rel: &str) {
        self.remove(rel);
    }

    fn confirmed_total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// Starts the shipping thread for the archive in `dir`; what it returns goes to
/// `Archive::set_handoff`.
pub fn start(
    cfg: &Config,
    archive: ArchiveView,
    stats: Arc<crate::stats::Stats>,
) -> Result<Arc<Confirmed>, String> {
    let destination = cfg.to.destination();
    stats.ship.max_lag_ms.store(
        i64::try_from(cfg.max_lag.as_millis()).unwrap_or(i64::MAX),
        Ordering::Relaxed,
    );
    let lane = Lane::open(destination, archive, stats)?;
    let confirmed = lane.confirmed();
    let (wake, woken) = mpsc::channel();
    if let Ok(mut slot) = confirmed.wake.lock() {
        *slot = Some(wake);
    }
    std::thread::Builder::new()
        .name("ship".into())
        .stack_size(256 * 1024)
        .spawn(move || lane.run(&woken))
        .map_err(|e| format!("starting the shipping thread: {e}"))?;
    Ok(confirmed)
}
