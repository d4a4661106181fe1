//! Counters and gauges shared between the main loop (the only writer) and the health thread and
//! exit summary (readers).
//!
//! Plain relaxed atomics: each number is independent, and a reader that sees one counter a few
//! events ahead of another is harmless. Labels come from fixed sets (event types, reasons) or a
//! small fixed number of stream slots, so cardinality is bounded and nothing here allocates on
//! the main loop's path. The two strings (/status's open file and last id) sit behind a mutex
//! that the main loop only ever `try_lock`s: it never waits for a reader.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Event types with their own counter; anything else counts as `other`.
pub const EVENT_TYPES: [&str; 5] = ["edit", "new", "log", "categorize", "other"];
/// Reconnect reasons.
pub const RECONNECT_REASONS: [&str; 4] =
    ["server_closed", "stalled", "read_failed", "connect_failed"];
/// Rotation reasons, in the order of `archive::rotate::Reason`.
pub const ROTATION_REASONS: [&str; 5] = ["minute", "events", "bytes", "signal", "shutdown"];
/// Reject reasons, in the order of `event::RejectReason`.
pub const REJECT_REASONS: [&str; 4] = [
    "invalid_json",
    "not_an_object",
    "oversize",
    "unexpected_type",
];
/// How many distinct `meta.stream` values get their own counter; a run archives one or a few
/// streams, the rest (if a server sent more) count under `other`.
pub const STREAM_SLOTS: usize = 8;
/// The rate history: `RATE_BUCKETS` buckets of `RATE_BUCKET_SECS` seconds (ten minutes), enough
/// for the status page's chart and small enough to live in atomics.
pub const RATE_BUCKETS: usize = 60;
pub const RATE_BUCKET_SECS: i64 = 10;
/// How many completed files `/status` lists.
pub const COMPLETED_SHOWN: usize = 5;
/// How many wikis `/status` lists.
pub const TOP_WIKIS_SHOWN: usize = 10;
/// Distinct wikis counted; Wikimedia has about a thousand, so this only guards against a
/// server that invents names. Later newcomers count under `other`.
const MAX_WIKIS_COUNTED: usize = 4096;

/// A counter per label of a fixed set.
#[derive(Debug)]
pub struct Labelled<const N: usize> {
    pub labels: &'static [&'static str; N],
    counts: [AtomicU64; N],
}

impl<const N: usize> Labelled<N> {
    const fn new(labels: &'static [&'static str; N]) -> Labelled<N> {
        Labelled {
            labels,
            counts: [const { AtomicU64::new(0) }; N],
        }
    }

    /// Adds one to the counter of `label_idx`.
    pub fn add(&self, label_idx: usize) {
        self.counts[label_idx].fetch_add(1, Ordering::Relaxed);
    }

    /// (label, count) pairs.
    pub fn snapshot(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.labels
            .iter()
            .copied()
            .zip(self.counts.iter().map(|c| c.load(Ordering::Relaxed)))
    }

    /// The sum over all labels.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// Counters for the first `STREAM_SLOTS` stream names seen, plus `other`.
#[derive(Debug)]
pub struct PerStream {
    names: [OnceLock<String>; STREAM_SLOTS],
    counts: [AtomicU64; STREAM_SLOTS],
    other: AtomicU64,
}

impl PerStream {
    /// Adds one to the counter of `stream`.
    pub fn add(&self, stream: &str) {
        for (name, count) in self.names.iter().zip(&self.counts) {
            // Only the main loop sets names, so a slot is never raced for.
            match name.get() {
                Some(existing) if existing == stream => {}
                Some(_) => continue,
                None => {
                    let _ = name.set(stream.to_string());
                }
            }
            count.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.other.fetch_add(1, Ordering::Relaxed);
    }

    /// (stream, count) pairs, `other` last when used.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .names
            .iter()
            .zip(&self.counts)
            .filter_map(|(name, count)| Some((name.get()?.clone(), count.load(Ordering::Relaxed))))
            .collect();
        let other = self.other.load(Ordering::Relaxed);
        if other > 0 {
            out.push(("other".to_string(), other));
        }
        out
    }
}

/// Text fields of `/status`, updated now and then.
#[derive(Debug, Default, Clone)]
pub struct StatusText {
    pub open_file: String,
    pub last_event_id: String,
    /// The most-archived wikis, most first, as published by `WikiCounts::publish`.
    pub top_wikis: Vec<(String, u64)>,
    /// The last completed files, newest first.
    pub completed: VecDeque<CompletedFile>,
}

/// A file this process completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedFile {
    pub name: String,
    pub bytes: u64,
    /// Unix milliseconds.
    pub at_ms: i64,
}

/// Archived events per type in ten-second buckets over the last ten minutes.
#[derive(Debug)]
pub struct RateHistory {
    /// The bucket period (Unix seconds / `RATE_BUCKET_SECS`) each slot currently counts.
    periods: [AtomicI64; RATE_BUCKETS],
    counts: [[AtomicU64; EVENT_TYPES.len()]; RATE_BUCKETS],
}

impl RateHistory {
    /// Counts one event of type `type_idx` at `now_ms`.
    pub fn add(&self, now_ms: i64, type_idx: usize) {
        let period = now_ms.div_euclid(1000 * RATE_BUCKET_SECS);
        let slot = period.rem_euclid(RATE_BUCKETS as i64) as usize;
        // Only the main loop writes, so the reset cannot race with another writer; a reader may
        // see a half-reset bucket for an instant, which a chart shrugs off.
        if self.periods[slot].load(Ordering::Relaxed) != period {
            for count in &self.counts[slot] {
                count.store(0, Ordering::Relaxed);
            }
            self.periods[slot].store(period, Ordering::Relaxed);
        }
        self.counts[slot][type_idx].fetch_add(1, Ordering::Relaxed);
    }

    /// Per type, the counts of the last `RATE_BUCKETS` complete buckets before `now_ms`,
    /// oldest first, as events per second.
    pub fn per_second(&self, now_ms: i64) -> Vec<(&'static str, Vec<f64>)> {
        let current = now_ms.div_euclid(1000 * RATE_BUCKET_SECS);
        EVENT_TYPES
            .iter()
            .enumerate()
            .map(|(type_idx, name)| {
                let series = (current - RATE_BUCKETS as i64..current)
                    .map(|period| {
                        let slot = period.rem_euclid(RATE_BUCKETS as i64) as usize;
                        if self.periods[slot].load(Ordering::Relaxed) != period {
                            return 0.0;
                        }
                        let n = self.counts[slot][type_idx].load(Ordering::Relaxed);
                        n as f64 / RATE_BUCKET_SECS as f64
                    })
                    .collect();
                (*name, series)
            })
            .collect()
    }
}

/// Archived events per wiki, owned by the main loop and published to `/status` now and then.
#[derive(Debug, Default)]
pub struct WikiCounts {
    counts: HashMap<String, u64>,
    other: u64,
}

impl WikiCounts {
    /// Counts one event of `wiki`.
    pub fn add(&mut self, wiki: &str) {
        if let Some(n) = self.counts.get_mut(wiki) {
            *n += 1;
        } else if self.counts.len() < MAX_WIKIS_COUNTED {
            self.counts.insert(wiki.to_string(), 1);
        } else {
            self.other += 1;
        }
    }

    /// The `TOP_WIKIS_SHOWN` wikis with the most events, most first (ties by name).
    pub fn top(&self) -> Vec<(String, u64)> {
        let mut all: Vec<(&String, &u64)> = self.counts.iter().collect();
        all.sort_unstable_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        all.into_iter()
            .take(TOP_WIKIS_SHOWN)
            .map(|(name, n)| (name.clone(), *n))
            .collect()
    }
}

/// Running totals and current state since the process started.
#[derive(Debug)]
pub struct Stats {
    pub events_archived: AtomicU64,
    pub archived_by_stream: PerStream,
    pub archived_by_type: Labelled<5>,
    pub rejects: Labelled<4>,
    pub canaries: AtomicU64,
    pub duplicates: AtomicU64,
    pub filtered: Labelled<7>,
    pub reconnects: Labelled<4>,
    pub rotations: Labelled<5>,
    pub checkpoints: AtomicU64,
    pub checkpoint_failures: AtomicU64,
    /// Resumes whose first event came much later than the last archived one (`--gap-warn`).
    pub gaps: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_written: AtomicU64,
    pub open_file_bytes: AtomicU64,
    pub connected: AtomicBool,
    /// Unix milliseconds of the last event received (canaries and duplicates included); 0: none.
    pub last_event_at_ms: AtomicI64,
    /// `meta.dt` of the last archived event in Unix milliseconds; 0: none.
    pub last_dt_ms: AtomicI64,
    /// Unix seconds since when writing fails (e.g. disk full); 0 while writing works.
    pub write_error_since: AtomicI64,
    /// The failure behind `write_error_since`, for `/check`.
    pub write_error: Mutex<String>,
    pub status_text: Mutex<StatusText>,
    pub started_at_ms: AtomicI64,
    pub rates: RateHistory,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            events_archived: AtomicU64::new(0),
            archived_by_stream: PerStream {
                names: [const { OnceLock::new() }; STREAM_SLOTS],
                counts: [const { AtomicU64::new(0) }; STREAM_SLOTS],
                other: AtomicU64::new(0),
            },
            archived_by_type: Labelled::new(&EVENT_TYPES),
            rejects: Labelled::new(&REJECT_REASONS),
            canaries: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            filtered: Labelled::new(&crate::filter::REASONS),
            reconnects: Labelled::new(&RECONNECT_REASONS),
            rotations: Labelled::new(&ROTATION_REASONS),
            checkpoints: AtomicU64::new(0),
            checkpoint_failures: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            open_file_bytes: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            last_event_at_ms: AtomicI64::new(0),
            last_dt_ms: AtomicI64::new(0),
            write_error_since: AtomicI64::new(0),
            write_error: Mutex::new(String::new()),
            status_text: Mutex::new(StatusText::default()),
            started_at_ms: AtomicI64::new(0),
            rates: RateHistory {
                periods: [const { AtomicI64::new(i64::MIN) }; RATE_BUCKETS],
                counts: [const { [const { AtomicU64::new(0) }; EVENT_TYPES.len()] }; RATE_BUCKETS],
            },
        }
    }
}

impl Stats {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The label index of an event type for `archived_by_type`.
    pub fn type_idx(kind: Option<&str>) -> usize {
        let known = &EVENT_TYPES[..EVENT_TYPES.len() - 1];
        kind.and_then(|k| known.iter().position(|t| *t == k))
            .unwrap_or(EVENT_TYPES.len() - 1)
    }

    /// Replaces the `/status` text fields unless a reader holds them right now (then the next
    /// update brings them up to date): the main loop never waits for the health thread.
    pub fn try_set_status_text(&self, open_file: &str, last_event_id: &str) {
        if let Ok(mut text) = self.status_text.try_lock() {
            text.open_file.clear();
            text.open_file.push_str(open_file);
            text.last_event_id.clear();
            text.last_event_id.push_str(last_event_id);
        }
    }

    /// Publishes the top wikis for `/status`, unless a reader holds the text right now.
    pub fn try_set_top_wikis(&self, wikis: &WikiCounts) {
        if let Ok(mut text) = self.status_text.try_lock() {
            text.top_wikis = wikis.top();
        }
    }

    /// Remembers a completed file for `/status`. Rotations are rare, so this one waits for the
    /// lock (held by readers only for a copy) rather than lose the entry.
    pub fn note_completed(&self, path: &Path, now_ms: i64) {
        let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        if let Ok(mut text) = self.status_text.lock() {
            text.completed.push_front(CompletedFile {
                name,
                bytes,
                at_ms: now_ms,
            });
            text.completed.truncate(COMPLETED_SHOWN);
        }
    }

    /// One line for the log at exit.
    pub fn summary(&self) -> String {
        format!(
            "{} events archived, {} rejects, {} canaries dropped, {} duplicates dropped, {} filtered out, \
             {} reconnects, {} bytes received, {} bytes written, {} rotations, {} checkpoints, {} gaps",
            Stats::get(&self.events_archived),
            self.rejects.total(),
            Stats::get(&self.canaries),
            Stats::get(&self.duplicates),
            self.filtered.total(),
            self.reconnects.total(),
            Stats::get(&self.bytes_received),
            Stats::get(&self.bytes_written),
            self.rotations.total(),
            Stats::get(&self.checkpoints),
            Stats::get(&self.gaps),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_stream_slots_fill_then_overflow_to_other() {
        let stats = Stats::default();
        for idx in 0..(STREAM_SLOTS + 2) {
            stats.archived_by_stream.add(&format!("s{idx}"));
        }
        stats.archived_by_stream.add("s0");
        let snapshot = stats.archived_by_stream.snapshot();
        assert_eq!(snapshot.len(), STREAM_SLOTS + 1);
        assert_eq!(snapshot[0], ("s0".to_string(), 2));
        assert_eq!(snapshot.last(), Some(&("other".to_string(), 2)));
    }

    #[test]
    fn rate_history_rolls_over_ten_minutes() {
        let stats = Stats::default();
        let t0 = 1_700_000_000_000;
        for _ in 0..30 {
            stats.rates.add(t0, Stats::type_idx(Some("edit")));
        }
        stats.rates.add(t0 + 10_000, Stats::type_idx(Some("log")));
        let now = t0 + 20_000;
        let rates = stats.rates.per_second(now);
        let edit = &rates[0].1;
        assert_eq!(rates[0].0, "edit");
        assert_eq!(edit.len(), RATE_BUCKETS);
        assert_eq!(edit[RATE_BUCKETS - 2], 3.0);
        assert_eq!(rates[2].1[RATE_BUCKETS - 1], 0.1);
        // Ten minutes later the old buckets no longer count, even before being reused.
        let later = stats.rates.per_second(now + 600_000);
        assert!(
            later
                .iter()
                .all(|(_, series)| series.iter().all(|&r| r == 0.0))
        );
        // Reusing a slot resets it.
        stats.rates.add(t0 + 600_000, 0);
        assert_eq!(
            stats.rates.per_second(t0 + 610_000)[0].1[RATE_BUCKETS - 1],
            0.1
        );
    }

    #[test]
    fn top_wikis_are_sorted_and_bounded() {
        let mut wikis = WikiCounts::default();
        for idx in 0..20 {
            for _ in 0..idx {
                wikis.add(&format!("w{idx:02}"));
            }
        }
        let top = wikis.top();
        assert_eq!(top.len(), TOP_WIKIS_SHOWN);
        assert_eq!(top[0], ("w19".to_string(), 19));
        assert_eq!(top[9], ("w10".to_string(), 10));
    }

    #[test]
    fn event_types_map_to_labels() {
        assert_eq!(EVENT_TYPES[Stats::type_idx(Some("log"))], "log");
        assert_eq!(EVENT_TYPES[Stats::type_idx(Some("weird"))], "other");
        assert_eq!(EVENT_TYPES[Stats::type_idx(None)], "other");
    }
}
