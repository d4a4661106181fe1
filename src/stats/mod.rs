//! Counters and gauges shared between the main loop (the only writer) and the health thread and
//! exit summary (readers).
//!
//! Plain relaxed atomics: each number is independent, and a reader that sees one counter a few
//! events ahead of another is harmless. Labels come from fixed sets (event types, reasons) or a
//! small fixed number of stream slots, so cardinality is bounded and nothing here allocates on
//! the main loop's path. The two strings (/status's open file and last id) sit behind a mutex
//! that the main loop only ever `try_lock`s: it never waits for a reader.

mod counts;
mod ship;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

pub use self::counts::{
    Labelled, PerStream, RATE_BUCKET_SECS, RATE_BUCKETS, RateHistory, STREAM_SLOTS,
    TOP_WIKIS_SHOWN, Unwritten, WikiCounts,
};
pub use self::ship::ShipStats;
use crate::event::{EventType, RejectReason};
use crate::filter;
use crate::human;
use crate::labels::{Label, ReconnectReason, RotationReason};

/// How many completed files `/status` lists.
pub const COMPLETED_SHOWN: usize = 5;
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

/// Running totals and current state since the process started.
#[derive(Debug)]
pub struct Stats {
    pub events_archived: AtomicU64,
    /// Archived events per stream and type.
    pub archived_by_stream: PerStream,
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
    /// Completed files deleted by `--keep-days` / `--max-archive-bytes`.
    pub retention_deletions: AtomicU64,
    /// Unix milliseconds of the last checkpoint written; 0: none yet.
    pub last_checkpoint_ms: AtomicI64,
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
    /// Shipping to S3 or `--on-ready`: written by the shipper thread.
    pub ship: ShipStats,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            events_archived: AtomicU64::new(0),
            archived_by_stream: PerStream::new(),
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
            retention_deletions: AtomicU64::new(0),
            last_checkpoint_ms: AtomicI64::new(0),
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
            rates: RateHistory::new(),
            ship: ShipStats::default(),
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
        self.archived_by_stream.add(stream, kind);
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
        for (stream, counts) in &unwritten.by_stream {
            for (kind, n) in EventType::ALL.iter().zip(counts) {
                self.archived_by_stream.sub(stream, *kind, *n);
            }
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
                status: "events_archived",
                summary: Some(("event archived", "events archived")),
                help: "Events written to the archive, by meta.stream and event type.",
                samples: Samples::Cross(
                    "stream",
                    "type",
                    self.archived_by_stream
                        .by_stream_and_type()
                        .into_iter()
                        .map(|(s, t, n)| (s, t.to_string(), n))
                        .collect(),
                ),
            },
            Counter {
                metric: "rejects_total",
                status: "rejects",
                summary: Some(("reject", "rejects")),
                help: "Events written to the rejects file, by reason.",
                samples: Samples::Labelled("reason", self.rejects.owned_snapshot()),
            },
            Counter {
                metric: "canaries_total",
                status: "canaries",
                summary: Some(("canary dropped", "canaries dropped")),
                help: "Canary (heartbeat) events received.",
                samples: plain(&self.canaries),
            },
            Counter {
                metric: "duplicates_total",
                status: "duplicates",
                summary: Some(("duplicate dropped", "duplicates dropped")),
                help: "Events dropped because their meta.id was archived already.",
                samples: plain(&self.duplicates),
            },
            Counter {
                metric: "filtered_total",
                status: "filtered",
                summary: Some(("filtered out", "filtered out")),
                help: "Events not archived because a filter left them out, by filter.",
                samples: Samples::Labelled("reason", self.filtered.owned_snapshot()),
            },
            Counter {
                metric: "reconnects_total",
                status: "reconnects",
                summary: Some(("reconnect", "reconnects")),
                help: "Reconnections, by what ended the previous attempt.",
                samples: Samples::Labelled("reason", self.reconnects.owned_snapshot()),
            },
            Counter {
                metric: "received_bytes_total",
                status: "bytes_received",
                summary: Some(("received", "received")),
                help: "Bytes of stream body received.",
                samples: plain(&self.bytes_received),
            },
            Counter {
                metric: "written_bytes_total",
                status: "bytes_written",
                summary: Some(("written", "written")),
                help: "Compressed bytes written to archive and rejects files.",
                samples: plain(&self.bytes_written),
            },
            Counter {
                metric: "rotations_total",
                status: "rotations",
                summary: Some(("rotation", "rotations")),
                help: "Completed archive files, by trigger.",
                samples: Samples::Labelled("reason", self.rotations.owned_snapshot()),
            },
            Counter {
                metric: "checkpoints_total",
                status: "checkpoints",
                summary: Some(("checkpoint", "checkpoints")),
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
                summary: Some(("gap", "gaps")),
                help: "Resumes that jumped forward in time by more than --gap-warn.",
                samples: plain(&self.gaps),
            },
            Counter {
                metric: "retention_deleted_files_total",
                status: "retention_deleted_files",
                summary: None,
                help: "Completed files deleted by --keep-days or --max-archive-bytes.",
                samples: plain(&self.retention_deletions),
            },
            Counter {
                metric: "refetches_total",
                status: "refetches",
                summary: None,
                help: "Starts that found the open file shorter than its checkpoint and fetched the lost events again.",
                samples: plain(&self.refetches),
            },
            Counter {
                metric: "shipped_files_total",
                status: "shipped_files",
                summary: None,
                help: "Completed files (and day marks) the destination confirmed: S3, or --on-ready exiting 0.",
                samples: plain(&self.ship.delivered),
            },
            Counter {
                metric: "shipped_bytes_total",
                status: "shipped_bytes",
                summary: None,
                help: "Bytes of the completed files the destination confirmed.",
                samples: plain(&self.ship.bytes_shipped),
            },
            Counter {
                metric: "ship_failures_total",
                status: "ship_failures",
                summary: None,
                help: "Failed deliveries of completed files, by reason; each is retried.",
                samples: Samples::Labelled("reason", self.ship.failures.owned_snapshot()),
            },
        ]
    }

    /// One line for the log at exit.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .counters()
            .iter()
            .filter_map(|c| {
                let (one, many) = c.summary?;
                let n = c.samples.total();
                Some(match c.metric.ends_with("_bytes_total") {
                    true => format!("{} {many}", human::size(n)),
                    false => human::count(n, one, many),
                })
            })
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
    /// The words after the number in the exit summary, for one and for many; `None` leaves
    /// it out of the summary. Byte counts are shown in binary units.
    pub summary: Option<(&'static str, &'static str)>,
    pub help: &'static str,
    pub samples: Samples,
}

/// A counter's value: one number, or one per label value.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    Plain(u64),
    /// The label key, and (value, count) pairs.
    Labelled(&'static str, Vec<(String, u64)>),
    /// Two label keys, and (value, value, count): `/status` shows each key's sums as
    /// `<status>_by_<key>`.
    Cross(&'static str, &'static str, Vec<(String, String, u64)>),
}

impl Samples {
    /// The number, or the sum over labels.
    pub fn total(&self) -> u64 {
        match self {
            Samples::Plain(n) => *n,
            Samples::Labelled(_, pairs) => pairs.iter().map(|(_, n)| n).sum(),
            Samples::Cross(_, _, triples) => triples.iter().map(|(_, _, n)| n).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "2 events archived, 1 reject, 0 canaries dropped, 0 duplicates dropped, 0 filtered out, \
             1 reconnect, 1.2 KiB received, 0 B written, 1 rotation, 0 checkpoints, 0 gaps"
        );
        let metrics: Vec<&str> = stats.counters().iter().map(|c| c.metric).collect();
        assert!(metrics.iter().all(|m| m.ends_with("_total")), "{metrics:?}");
    }
}
