//! The counter shapes `Stats` is made of: per label (`Labelled`), per stream (`PerStream`), a
//! ten-minute rate history (`RateHistory`), and two tallies the main loop owns: events per
//! wiki (`WikiCounts`) and what a write failure would roll back (`Unwritten`).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::event::{EventType, RejectReason};
use crate::labels::Label;

/// How many reject reasons `Unwritten` tallies.
const N_REJECT_REASONS: usize = RejectReason::ALL.len();
/// How many event types the rate history tells apart.
const N_TYPES: usize = EventType::ALL.len();

/// How many distinct `meta.stream` values get their own counter; a run archives one or a few
/// streams, the rest (if a server sent more) count under `other`.
pub const STREAM_SLOTS: usize = 8;
/// The rate history: `RATE_BUCKETS` buckets of `RATE_BUCKET_SECS` seconds (ten minutes), enough
/// for the status page's chart and small enough to live in atomics.
pub const RATE_BUCKETS: usize = 60;
pub const RATE_BUCKET_SECS: i64 = 10;
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
    pub(super) fn new() -> Labelled<R> {
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

    pub(super) fn owned_snapshot(&self) -> Vec<(String, u64)> {
        self.snapshot().map(|(l, n)| (l.to_string(), n)).collect()
    }
}

/// Counters per event type for the first `STREAM_SLOTS` stream names seen, plus `other`.
#[derive(Debug)]
pub struct PerStream {
    names: [OnceLock<String>; STREAM_SLOTS],
    counts: [[AtomicU64; N_TYPES]; STREAM_SLOTS],
    other: [AtomicU64; N_TYPES],
}

impl PerStream {
    pub(super) fn new() -> PerStream {
        PerStream {
            names: [const { OnceLock::new() }; STREAM_SLOTS],
            counts: [const { [const { AtomicU64::new(0) }; N_TYPES] }; STREAM_SLOTS],
            other: [const { AtomicU64::new(0) }; N_TYPES],
        }
    }

    /// Adds one to the counter of `stream` and `kind`.
    pub fn add(&self, stream: &str, kind: EventType) {
        self.slot(stream)[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Takes `n` back from the counter of `stream` and `kind` (events rolled back after a write
    /// failure).
    pub fn sub(&self, stream: &str, kind: EventType, n: u64) {
        let _ = self.slot(stream)[kind.index()].fetch_update(
            Ordering::Relaxed,
            Ordering::Relaxed,
            |c| Some(c.saturating_sub(n)),
        );
    }

    /// The counters of `stream`, claiming a free slot for a new name.
    fn slot(&self, stream: &str) -> &[AtomicU64; N_TYPES] {
        for (name, counts) in self.names.iter().zip(&self.counts) {
            // Only the main loop sets names, so a slot is never raced for.
            match name.get() {
                Some(existing) if existing == stream => {}
                Some(_) => continue,
                None => {
                    let _ = name.set(stream.to_string());
                }
            }
            return counts;
        }
        &self.other
    }

    /// (stream, type, count) for every stream seen and every type, `other` streams last when
    /// used.
    pub fn by_stream_and_type(&self) -> Vec<(String, &'static str, u64)> {
        let named = self
            .names
            .iter()
            .zip(&self.counts)
            .filter_map(|(name, counts)| Some((name.get()?.clone(), counts)));
        let other = self
            .other
            .iter()
            .any(|c| c.load(Ordering::Relaxed) > 0)
            .then(|| ("other".to_string(), &self.other));
        named
            .chain(other)
            .flat_map(|(stream, counts)| {
                EventType::ALL.iter().zip(counts).map(move |(kind, count)| {
                    (stream.clone(), kind.as_str(), count.load(Ordering::Relaxed))
                })
            })
            .collect()
    }
}

/// Archived events per type in ten-second buckets over the last ten minutes.
#[derive(Debug)]
pub struct RateHistory {
    /// The bucket period (Unix seconds / `RATE_BUCKET_SECS`) each slot currently counts.
    periods: [AtomicI64; RATE_BUCKETS],
    counts: [[AtomicU64; N_TYPES]; RATE_BUCKETS],
}

impl RateHistory {
    pub(super) fn new() -> RateHistory {
        RateHistory {
            periods: [const { AtomicI64::new(i64::MIN) }; RATE_BUCKETS],
            counts: [const { [const { AtomicU64::new(0) }; N_TYPES] }; RATE_BUCKETS],
        }
    }

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
    /// Per `meta.stream` and type; a run sees one or a few streams.
    pub by_stream: Vec<(String, [u64; N_TYPES])>,
    pub rejects: [u64; N_REJECT_REASONS],
}

impl Unwritten {
    /// One archived event.
    pub fn event(&mut self, stream: &str, kind: EventType) {
        self.n_events += 1;
        match self.by_stream.iter_mut().find(|(s, _)| s == stream) {
            Some((_, counts)) => counts[kind.index()] += 1,
            None => {
                let mut counts = [0; N_TYPES];
                counts[kind.index()] = 1;
                self.by_stream.push((stream.to_string(), counts));
            }
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
        self.rejects = [0; N_REJECT_REASONS];
    }
}

#[cfg(test)]
mod tests {
    use super::super::Stats;
    use super::*;

    /// Sums the tests read; `/status` sums the same triples in `health`.
    impl PerStream {
        /// (stream, count) pairs, `other` last when used.
        fn snapshot(&self) -> Vec<(String, u64)> {
            let mut out: Vec<(String, u64)> = Vec::new();
            for (stream, _, n) in self.by_stream_and_type() {
                match out.last_mut() {
                    Some((last, total)) if *last == stream => *total += n,
                    _ => out.push((stream, n)),
                }
            }
            out
        }

        /// (type, count) pairs over all streams, in `EventType` order.
        fn by_type(&self) -> Vec<(String, u64)> {
            let mut out: Vec<(String, u64)> = EventType::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), 0))
                .collect();
            for (_, kind, n) in self.by_stream_and_type() {
                if let Some((_, total)) = out.iter_mut().find(|(k, _)| k == kind) {
                    *total += n;
                }
            }
            out
        }
    }

    #[test]
    fn per_stream_slots_fill_then_overflow_to_other() {
        let stats = Stats::default();
        for idx in 0..(STREAM_SLOTS + 2) {
            stats
                .archived_by_stream
                .add(&format!("s{idx}"), EventType::Edit);
        }
        stats.archived_by_stream.add("s0", EventType::Log);
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
        let by_type = stats.archived_by_stream.by_type();
        assert_eq!(by_type.iter().map(|(_, n)| n).sum::<u64>(), 3);
        assert_eq!(by_type[EventType::Edit.index()], ("edit".to_string(), 2));
        assert_eq!(stats.rejects.total(), 1);
    }
}
