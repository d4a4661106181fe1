//! Counters and gauges shared between the main loop (the only writer) and the health thread and
//! exit summary (readers).
//!
//! Plain relaxed atomics: each number is independent, and a reader that sees one counter a few
//! events ahead of another is harmless. Labels come from fixed sets (event types, reasons) or a
//! small fixed number of stream slots, so cardinality is bounded and nothing here allocates on
//! the main loop's path. The two strings (/status's open file and last id) sit behind a mutex
//! that the main loop only ever `try_lock`s: it never waits for a reader.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::event::{EventType, RejectReason};
use crate::filter;
use crate::labels::{Label, ReconnectReason, RotationReason};

/// How many event types the rate history tells apart.
const N_TYPES: usize = EventType::ALL.len();

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

/// A counter per value of the label set `R`.
#[derive(Debug)]
pub struct Labelled<R: Label> {
    counts: Box<[AtomicU64]>,
    labels: PhantomData<R>,
}

impl<R: Label> Labelled<R> {
    fn new() -> Labelled<R> {
        Labelled {
            counts: R::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            labels: PhantomData,
        }
    }

    /// Adds one to the counter of `label`.
    pub fn add(&self, label: R) {
        self.counts[label.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Takes `n` back from the counter of `label`.
    pub fn sub(&self, label: R, n: u64) {
        let _ =
            self.counts[label.index()].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(c.saturating_sub(n))
            });
    }

    /// (label, count) pairs, in the label set's order.
    pub fn snapshot(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        R::ALL
            .iter()
            .map(|label| label.as_str())
            .zip(self.counts.iter().map(|c| c.load(Ordering::Relaxed)))
    }

    /// The sum over all labels.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn owned_snapshot(&self) -> Vec<(String, u64)> {
        self.snapshot().map(|(l, n)| (l.to_string(), n)).collect()
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
        self.slot(stream).fetch_add(1, Ordering::Relaxed);
    }

    /// Takes `n` back from the counter of `stream` (events rolled back after a write failure).
    pub fn sub(&self, stream: &str, n: u64) {
        let _ = self
            .slot(stream)
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(c.saturating_sub(n))
            });
    }

    /// The counter of `stream`, claiming a free slot for a new name.
    fn slot(&self, stream: &str) -> &AtomicU64 {
        for (name, count) in self.names.iter().zip(&self.counts) {
            // Only the main loop sets names, so a slot is never raced for.
            match name.get() {
                Some(existing) if existing == stream => {}
                Some(_) => continue,
                None => {
                    let _ = name.set(stream.to_string());
                }
            }
            return count;
        }
        &self.other
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
    /// The most-archived wikis, most first, as published by `Stats::try_set_top_wikis`.
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
    counts: [[AtomicU64; N_TYPES]; RATE_BUCKETS],
}

impl RateHistory {
    /// Counts one event of type `kind` at `now_ms`.
    pub fn add(&self, now_ms: i64, kind: EventType) {
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
        self.counts[slot][kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Per type, the counts of the last `RATE_BUCKETS` complete buckets before `now_ms`,
    /// oldest first, as events per second.
    pub fn per_second(&self, now_ms: i64) -> Vec<(&'static str, Vec<f64>)> {
        let current = now_ms.div_euclid(1000 * RATE_BUCKET_SECS);
        EventType::ALL
            .iter()
            .map(|kind| {
                let type_idx = kind.index();
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
                (kind.as_str(), series)
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

/// What was counted since the last checkpoint: lost again if writing fails before the next.
/// Owned by the main loop.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unwritten {
    pub n_events: u64,
    /// Per `meta.stream`; a run sees one or a few streams.
    pub by_stream: Vec<(String, u64)>,
    pub by_type: [u64; N_TYPES],
    pub rejects: [u64; 4],
}

impl Unwritten {
    /// One archived event.
    pub fn event(&mut self, stream: &str, kind: EventType) {
        self.n_events += 1;
        self.by_type[kind.index()] += 1;
        match self.by_stream.iter_mut().find(|(s, _)| s == stream) {
            Some((_, n)) => *n += 1,
            None => self.by_stream.push((stream.to_string(), 1)),
        }
    }

    /// One reject.
    pub fn reject(&mut self, reason: RejectReason) {
        self.rejects[reason.index()] += 1;
    }

    /// Everything so far is durable.
    pub fn clear(&mut self) {
        self.n_events = 0;
        self.by_stream.clear();
        self.by_type = [0; N_TYPES];
        self.rejects = [0; 4];
    }
}

/// Running totals and current state since the process started.
#[derive(Debug)]
pub struct Stats {
    pub events_archived: AtomicU64,
    pub archived_by_stream: PerStream,
    pub archived_by_type: Labelled<EventType>,
    pub rejects: Labelled<RejectReason>,
    pub canaries: AtomicU64,
    pub duplicates: AtomicU64,
    pub filtered: Labelled<filter::Reason>,
    pub reconnects: Labelled<ReconnectReason>,
    pub rotations: Labelled<RotationReason>,
    pub checkpoints: AtomicU64,
    pub checkpoint_failures: AtomicU64,
    /// Resumes whose first event came much later than the last archived one (`--gap-warn`).
    pub gaps: AtomicU64,
    /// Starts that found the open file shorter than the checkpoint and fetched the rest again.
    pub refetches: AtomicU64,
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
            archived_by_type: Labelled::new(),
            rejects: Labelled::new(),
            canaries: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            filtered: Labelled::new(),
            reconnects: Labelled::new(),
            rotations: Labelled::new(),
            checkpoints: AtomicU64::new(0),
            checkpoint_failures: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            refetches: AtomicU64::new(0),
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
                counts: [const { [const { AtomicU64::new(0) }; N_TYPES] }; RATE_BUCKETS],
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

    /// Counts one archived event: by stream, by type, in the rate history.
    pub fn count_archived(&self, stream: &str, kind: EventType, now_ms: i64) {
        Stats::add(&self.events_archived, 1);
        self.archived_by_stream.add(stream);
        self.archived_by_type.add(kind);
        self.rates.add(now_ms, kind);
    }

    /// Takes back what `unwritten` counted: events and rejects that a write failure rolled
    /// back, so that the counters again match what is on disk.
    pub fn uncount(&self, unwritten: &Unwritten) {
        let _ = self
            .events_archived
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(c.saturating_sub(unwritten.n_events))
            });
        for (stream, n) in &unwritten.by_stream {
            self.archived_by_stream.sub(stream, *n);
        }
        for (kind, n) in EventType::ALL.iter().zip(unwritten.by_type) {
            self.archived_by_type.sub(*kind, n);
        }
        for (reason, n) in RejectReason::ALL.iter().zip(unwritten.rejects) {
            self.rejects.sub(*reason, n);
        }
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

    /// Every counter, in the order of the exit summary: the one list `/metrics`, `/status`
    /// and the summary are built from.
    pub fn counters(&self) -> Vec<Counter> {
        let plain = |counter: &AtomicU64| Samples::Plain(Stats::get(counter));
        vec![
            Counter {
                metric: "events_archived_total",
                status: "events_archived_by_stream",
                summary: Some("events archived"),
                help: "Events written to the archive, by meta.stream.",
                samples: Samples::Labelled("stream", self.archived_by_stream.snapshot()),
            },
            Counter {
                metric: "events_archived_by_type_total",
                status: "events_archived_by_type",
                summary: None,
                help: "Events written to the archive, by event type.",
                samples: Samples::Labelled("type", self.archived_by_type.owned_snapshot()),
            },
            Counter {
                metric: "rejects_total",
                status: "rejects",
                summary: Some("rejects"),
                help: "Events written to the rejects file, by reason.",
                samples: Samples::Labelled("reason", self.rejects.owned_snapshot()),
            },
            Counter {
                metric: "canaries_total",
                status: "canaries",
                summary: Some("canaries dropped"),
                help: "Canary (heartbeat) events received.",
                samples: plain(&self.canaries),
            },
            Counter {
                metric: "duplicates_total",
                status: "duplicates",
                summary: Some("duplicates dropped"),
                help: "Events dropped because their meta.id was archived already.",
                samples: plain(&self.duplicates),
            },
            Counter {
                metric: "filtered_total",
                status: "filtered",
                summary: Some("filtered out"),
                help: "Events not archived because a filter left them out, by filter.",
                samples: Samples::Labelled("reason", self.filtered.owned_snapshot()),
            },
            Counter {
                metric: "reconnects_total",
                status: "reconnects",
                summary: Some("reconnects"),
                help: "Reconnections, by what ended the previous attempt.",
                samples: Samples::Labelled("reason", self.reconnects.owned_snapshot()),
            },
            Counter {
                metric: "bytes_received_total",
                status: "bytes_received",
                summary: Some("bytes received"),
                help: "Bytes of stream body received.",
                samples: plain(&self.bytes_received),
            },
            Counter {
                metric: "bytes_written_total",
                status: "bytes_written",
                summary: Some("bytes written"),
                help: "Compressed bytes written to archive and rejects files.",
                samples: plain(&self.bytes_written),
            },
            Counter {
                metric: "rotations_total",
                status: "rotations",
                summary: Some("rotations"),
                help: "Completed archive files, by trigger.",
                samples: Samples::Labelled("reason", self.rotations.owned_snapshot()),
            },
            Counter {
                metric: "checkpoints_total",
                status: "checkpoints",
                summary: Some("checkpoints"),
                help: "Checkpoints written.",
                samples: plain(&self.checkpoints),
            },
            Counter {
                metric: "checkpoint_failures_total",
                status: "checkpoint_failures",
                summary: None,
                help: "Write or checkpoint failures (e.g. disk full).",
                samples: plain(&self.checkpoint_failures),
            },
            Counter {
                metric: "gaps_total",
                status: "gaps",
                summary: Some("gaps"),
                help: "Resumes that jumped forward in time by more than --gap-warn.",
                samples: plain(&self.gaps),
            },
            Counter {
                metric: "refetches_total",
                status: "refetches",
                summary: None,
                help: "Starts that found the open file shorter than its checkpoint and fetched the lost events again.",
                samples: plain(&self.refetches),
            },
        ]
    }

    /// One line for the log at exit.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .counters()
            .iter()
            .filter_map(|c| Some(format!("{} {}", c.samples.total(), c.summary?)))
            .collect();
        parts.join(", ")
    }
}

/// One counter as the observers show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    /// The Prometheus name, without the `wikistream_` prefix.
    pub metric: &'static str,
    /// The key in `/status`.
    pub status: &'static str,
    /// The words after the number in the exit summary; `None` leaves it out of the summary.
    pub summary: Option<&'static str>,
    pub help: &'static str,
    pub samples: Samples,
}

/// A counter's value: one number, or one per label value.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    Plain(u64),
    /// The label key, and (value, count) pairs.
    Labelled(&'static str, Vec<(String, u64)>),
}

impl Samples {
    /// The number, or the sum over labels.
    pub fn total(&self) -> u64 {
        match self {
            Samples::Plain(n) => *n,
            Samples::Labelled(_, pairs) => pairs.iter().map(|(_, n)| n).sum(),
        }
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
            stats.rates.add(t0, EventType::Edit);
        }
        stats.rates.add(t0 + 10_000, EventType::Log);
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
        stats.rates.add(t0 + 600_000, EventType::Edit);
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
    fn unwritten_events_are_taken_back() {
        let stats = Stats::default();
        let mut unwritten = Unwritten::default();
        for kind in [EventType::Edit, EventType::Edit, EventType::Log] {
            stats.count_archived("rc", kind, 0);
            unwritten.event("rc", kind);
        }
        stats.rejects.add(RejectReason::Oversize);
        unwritten.reject(RejectReason::Oversize);
        unwritten.clear();
        stats.count_archived("rc", EventType::New, 0);
        unwritten.event("rc", EventType::New);
        stats.uncount(&unwritten);
        assert_eq!(Stats::get(&stats.events_archived), 3);
        assert_eq!(stats.archived_by_stream.snapshot(), [("rc".to_string(), 3)]);
        assert_eq!(stats.archived_by_type.total(), 3);
        assert_eq!(stats.rejects.total(), 1);
    }

    #[test]
    fn summary_totals_every_counter_in_order() {
        let stats = Stats::default();
        stats.count_archived("rc", EventType::Edit, 0);
        stats.count_archived("unknown", EventType::Log, 0);
        stats.rejects.add(RejectReason::Oversize);
        stats.reconnects.add(ReconnectReason::Stalled);
        stats.rotations.add(RotationReason::Signal);
        Stats::add(&stats.bytes_received, 1234);
        assert_eq!(
            stats.summary(),
            "2 events archived, 1 rejects, 0 canaries dropped, 0 duplicates dropped, 0 filtered out, \
             1 reconnects, 1234 bytes received, 0 bytes written, 1 rotations, 0 checkpoints, 0 gaps"
        );
        let metrics: Vec<&str> = stats.counters().iter().map(|c| c.metric).collect();
        assert!(metrics.iter().all(|m| m.ends_with("_total")), "{metrics:?}");
    }
}
