//! The stderr logger: `-v`/`-q` move our own level from `info`, other crates stay at `warn`
//! unless `RUST_LOG` says otherwise. Lines carry a UTC timestamp unless asked not to, and when
//! stderr is the systemd journal (`JOURNAL_STREAM` names stderr's device and inode, as
//! sd-daemon(3) documents) each line starts with its `<N>` priority instead, so that
//! `journalctl -p warning` can filter; the journal adds its own time. `LogLimiter` keeps a
//! repeating message to a line a minute.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::times;

/// Sets up logging for the process.
#[inline(never)] // an entry point of main.rs: see `config::from_args`
pub fn init(verbosity: i32, timestamps: bool) {
    let level = match verbosity {
        i32::MIN..=-3 => log::LevelFilter::Off,
        -2 => log::LevelFilter::Error,
        -1 => log::LevelFilter::Warn,
        0 => log::LevelFilter::Info,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let journal = stderr_is_journal();
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(level.min(log::LevelFilter::Warn))
        .filter_module("wikistream_archiver", level)
        .parse_env("RUST_LOG")
        .format(move |out, record| {
            if journal {
                return writeln!(out, "<{}>{}", priority(record.level()), record.args());
            }
            if !timestamps {
                return writeln!(out, "{:<5} {}", record.level(), record.args());
            }
            let stamp = times::log_stamp(time::OffsetDateTime::now_utc());
            writeln!(out, "{stamp} {:<5} {}", record.level(), record.args())
        })
        .init();
}

/// The syslog priority of a level: err, warning, info, debug.
pub fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Whether `JOURNAL_STREAM` (`DEVICE:INODE`) names the file stderr is.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    // /proc/self/fd/2 leads to stderr's file, socket or pipe; no unsafe fstat needed.
    std::fs::metadata("/proc/self/fd/2")
        .is_ok_and(|meta| journal_stream_names(&value, meta.dev(), meta.ino()))
}

/// Whether a `JOURNAL_STREAM` value names the file with `dev` and `ino`.
pub fn journal_stream_names(value: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.trim().split_once(':') else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

/// How often a repeating failure (accept, spawn, hostile input) is logged: once a minute tells
/// the operator it goes on without flooding the journal.
pub const REPEAT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Lets a repeating error through to the log at most once per `REPEAT_LOG_INTERVAL`, counting
/// the ones it held back.
#[derive(Debug, Default)]
pub struct LogLimiter {
    last: Option<Instant>,
    n_held_back: u64,
}

impl LogLimiter {
    /// `Some(n)` when this occurrence may be logged (`n` were held back since the last one).
    pub fn allow(&mut self) -> Option<u64> {
        if self.last.is_some_and(|t| t.elapsed() < REPEAT_LOG_INTERVAL) {
            self.n_held_back += 1;
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.n_held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_match_device_and_inode() {
        assert!(journal_stream_names("8:1234", 8, 1234));
        assert!(!journal_stream_names("8:1235", 8, 1234));
        assert!(!journal_stream_names("9:1234", 8, 1234));
        assert!(!journal_stream_names("garbage", 8, 1234));
        assert!(!journal_stream_names("", 8, 1234));
        assert_eq!(priority(log::Level::Warn), 4);
        assert_eq!(priority(log::Level::Trace), 7);
    }

    #[test]
    fn the_limiter_holds_back_repeats() {
        let mut limiter = LogLimiter::default();
        assert_eq!(limiter.allow(), Some(0));
        assert_eq!(limiter.allow(), None);
        assert_eq!(limiter.allow(), None);
        limiter.last = Some(Instant::now() - REPEAT_LOG_INTERVAL);
        assert_eq!(limiter.allow(), Some(2));
    }
}
