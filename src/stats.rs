//! Counters and gauges shared between the main loop (the only writer) and the health thread and
//! exit summary (readers).
//!
//! Plain relaxed atomics: each number is independent, and a reader that sees one counter a few
//! events ahead of another is harmless. Labels come from fixed sets (event types, reasons) or a
//! small fixed number of stream slots, so cardinality is bounded and nothing here allocates on
//! the main loop's path. The two strings (/status's open file and last id) sit behind a mutex
//! that the main loop only ever `try_lock`s: it never waits for a reader.

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
    pub filtered: AtomicU64,
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
            filtered: AtomicU64::new(0),
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

    /// One line for the log at exit.
    pub fn summary(&self) -> String {
        format!(
            "{} events archived, {} rejects, {} canaries dropped, {} duplicates dropped, {} reconnects, \
             {} bytes received, {} bytes written, {} rotations, {} checkpoints, {} gaps",
            Stats::get(&self.events_archived),
            self.rejects.total(),
            Stats::get(&self.canaries),
            Stats::get(&self.duplicates),
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
    fn event_types_map_to_labels() {
        assert_eq!(EVENT_TYPES[Stats::type_idx(Some("log"))], "log");
        assert_eq!(EVENT_TYPES[Stats::type_idx(Some("weird"))], "other");
        assert_eq!(EVENT_TYPES[Stats::type_idx(None)], "other");
    }
}
