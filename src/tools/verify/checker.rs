//! `verify`'s pure core: `Checker` sees every archived line in file order and keeps bounded
//! state (a window of recent `meta.id`s, the last offset per topic-partition, the latest
//! `meta.dt`), so a year of files takes the same memory as an hour. It collects a `Summary`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::event::{self, RecentIds};

/// How many recent ids duplicate detection remembers (see `defaults`).
pub const DUPLICATE_WINDOW: usize = crate::defaults::DUPLICATE_WINDOW;
/// Problems of one kind listed in full; the rest are counted.
const LISTED_PROBLEMS: usize = 50;

/// A file that cannot be read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedFile {
    pub file: String,
    pub offset: u64,
    pub lost_bytes: u64,
    pub truncated: bool,
    pub message: String,
}

impl DamagedFile {
    /// A file that could not be opened or read at all.
    pub(super) fn unreadable(file: String, e: &dyn std::fmt::Display) -> DamagedFile {
        DamagedFile {
            file,
            offset: 0,
            lost_bytes: 0,
            truncated: false,
            message: e.to_string(),
        }
    }
}

/// Missing offsets in one topic-partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetGap {
    pub topic: String,
    pub partition: i64,
    /// The last offset before the gap and the first after it.
    pub before: i64,
    pub after: i64,
    pub before_dt: String,
    pub after_dt: String,
    pub file: String,
}

/// A stretch of time without events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeGap {
    pub before_dt: String,
    pub after_dt: String,
    pub seconds: i64,
    pub file: String,
}

/// A `meta.id` seen twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub id: String,
    pub dt: String,
    pub file: String,
}

/// An event in a partition (`date=…`) of another date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfPartition {
    pub dt: String,
    pub file: String,
}

/// Everything `verify` found.
#[derive(Debug, Default)]
pub struct Summary {
    pub n_files: u64,
    pub n_events: u64,
    pub n_rejects: u64,
    /// Rejects by the reason their line gives (at most `MAX_REJECT_REASONS` reasons; the
    /// rest, and lines without one, under `other`).
    pub rejects_by_reason: std::collections::BTreeMap<String, u64>,
    pub n_canaries: u64,
    /// Lines that are not JSON objects (should never be in an archive).
    pub n_bad_lines: u64,
    pub compressed_bytes: u64,
    pub text_bytes: u64,
    pub first_dt: Option<(i64, String)>,
    pub last_dt: Option<(i64, String)>,
    pub damaged: Vec<DamagedFile>,
    /// The open file's tail written since its last checkpoint: normal, not damage.
    pub unfinished_bytes: u64,
    pub n_duplicates: u64,
    pub duplicates: Vec<Duplicate>,
    pub n_offset_gaps: u64,
    pub n_missing_offsets: u64,
    pub offset_gaps: Vec<OffsetGap>,
    pub n_time_gaps: u64,
    pub time_gaps: Vec<TimeGap>,
    /// Events whose `meta.dt` is not in the date of their file's partition.
    pub n_out_of_partition: u64,
    pub out_of_partition: Vec<OutOfPartition>,
}

/// How many distinct reject reasons `verify` tells apart: the archiver writes about ten; a
/// damaged or foreign rejects file must not grow the map without bound.
const MAX_REJECT_REASONS: usize = 32;
/// How a rejects line names its reason.
const REASON_KEY: &[u8] = b"\"reason\":\"";

impl Summary {
    /// Counts one line of a rejects file, by the reason it gives: the archiver writes
    /// `"reason":"…"` with a label of lower case letters and `_`; anything else is `other`.
    pub fn reject(&mut self, line: &[u8]) {
        self.n_rejects += 1;
        let reason = line
            .windows(REASON_KEY.len())
            .position(|w| w == REASON_KEY)
            .map(|at| &line[at + REASON_KEY.len()..])
            .and_then(|rest| {
                let end = rest.iter().position(|&b| b == b'"')?;
                let label = &rest[..end];
                let is_label = (1..=32).contains(&label.len())
                    && label.iter().all(|&b| b.is_ascii_lowercase() || b == b'_');
                is_label.then(|| String::from_utf8_lossy(label).into_owned())
            })
            .filter(|r| {
                self.rejects_by_reason.contains_key(r)
                    || self.rejects_by_reason.len() < MAX_REJECT_REASONS
            });
        let key = reason.unwrap_or_else(|| "other".to_string());
        *self.rejects_by_reason.entry(key).or_insert(0) += 1;
    }

    /// No damage, duplicates or gaps.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty()
            && self.n_duplicates == 0
            && self.n_offset_gaps == 0
            && self.n_time_gaps == 0
            && self.n_bad_lines == 0
            && self.n_out_of_partition == 0
    }
}

/// A run of offsets seen in one topic-partition (holes within the slack included).
struct Run {
    end: i64,
    start_dt: String,
    start_file: String,
    end_dt: String,
}

/// At most this many runs are kept per topic-partition; beyond, the lowest hole is taken for
/// a gap at once. Holes close as out-of-order events arrive (the partitioned layout puts a
/// day's stragglers into an earlier file), so only a badly gapped archive reaches this.
const MAX_RUNS: usize = 4096;

/// The pure core: feed it every line in archive order.
pub struct Checker {
    gap_ms: i64,
    offset_slack: i64,
    recent_ids: RecentIds,
    /// Per topic-partition, the runs of offsets seen, by first offset: the holes between them
    /// are the gaps, reported by `finish`.
    partitions: HashMap<(String, i64), BTreeMap<i64, Run>>,
    /// The latest `meta.dt` so far (events are not strictly in time order).
    latest: Option<(i64, String)>,
    /// The UTC day (start and end, Unix ms) of the current file's partition, if it has one.
    pub partition_day: Option<(i64, i64)>,
    pub summary: Summary,
}

fn push_bounded<T>(list: &mut Vec<T>, item: T) {
    if list.len() < LISTED_PROBLEMS {
        list.push(item);
    }
}

impl Checker {
    /// A checker reporting time gaps longer than `gap` and offset jumps that skip more than
    /// `offset_slack` offsets.
    pub fn new(gap: Duration, offset_slack: u64) -> Checker {
        Checker {
            gap_ms: gap.as_millis() as i64,
            offset_slack: offset_slack as i64,
            recent_ids: RecentIds::new(DUPLICATE_WINDOW),
            partitions: HashMap::new(),
            latest: None,
            partition_day: None,
            summary: Summary::default(),
        }
    }

    /// Checks one archived line of `file`.
    pub fn line(&mut self, line: &[u8], file: &str) {
        let summary = &mut self.summary;
        summary.n_events += 1;
        let Some(meta) = std::str::from_utf8(line)
            .ok()
            .and_then(|text| event::inspect(text).ok())
        else {
            summary.n_bad_lines += 1;
            return;
        };
        if meta.is_canary() {
            summary.n_canaries += 1;
        }
        let dt = meta.dt.as_deref().unwrap_or_default();
        let dt_ms = crate::times::parse_rfc3339_ms(dt);
        if let (Some((start, end)), Some(ms)) = (self.partition_day, dt_ms)
            && !(start..end).contains(&ms)
        {
            summary.n_out_of_partition += 1;
            let out = OutOfPartition {
                dt: dt.to_string(),
                file: file.to_string(),
            };
            push_bounded(&mut summary.out_of_partition, out);
        }
        if let Some(id) = meta.id.as_deref()
            && !self.recent_ids.insert_key(event::id_key(id))
        {
            summary.n_duplicates += 1;
            let duplicate = Duplicate {
                id: id.to_string(),
                dt: dt.to_string(),
                file: file.to_string(),
            };
            push_bounded(&mut summary.duplicates, duplicate);
        }
        if let (Some(topic), Some(partition), Some(offset)) =
            (meta.topic.as_deref(), meta.partition, meta.offset)
        {
            self.offset(topic, partition, offset, dt, file);
        }
        let Some(dt_ms) = dt_ms else {
            return;
        };
        let summary = &mut self.summary;
        if summary.first_dt.as_ref().is_none_or(|(ms, _)| dt_ms < *ms) {
            summary.first_dt = Some((dt_ms, dt.to_string()));
        }
        match &mut self.latest {
            Some((latest_ms, latest_dt)) if dt_ms > *latest_ms => {
                if dt_ms - *latest_ms > self.gap_ms {
                    summary.n_time_gaps += 1;
                    let gap = TimeGap {
                        before_dt: latest_dt.clone(),
                        after_dt: dt.to_string(),
                        seconds: (dt_ms - *latest_ms) / 1000,
                        file: file.to_string(),
                    };
                    push_bounded(&mut summary.time_gaps, gap);
                }
                *latest_ms = dt_ms;
                latest_dt.clear();
                latest_dt.push_str(dt);
            }
            Some(_) => {}
            None => self.latest = Some((dt_ms, dt.to_string())),
        }
        summary.last_dt.clone_from(&self.latest);
    }

    fn offset(&mut self, topic: &str, partition: i64, offset: i64, dt: &str, file: &str) {
        let slack = self.offset_slack;
        let runs = self
            .partitions
            .entry((topic.to_string(), partition))
            .or_default();
        // Extend the run that ends just before (within the slack), or start one.
        let below = runs.range_mut(..=offset).next_back();
        let start = match below {
            Some((_, run)) if offset <= run.end => return,
            Some((&start, run)) if offset - run.end - 1 <= slack => {
                run.end = offset;
                run.end_dt.clear();
                run.end_dt.push_str(dt);
                start
            }
            _ => {
                let run = Run {
                    end: offset,
                    start_dt: dt.to_string(),
                    start_file: file.to_string(),
                    end_dt: dt.to_string(),
                };
                runs.insert(offset, run);
                offset
            }
        };
        // Join the next run when the hole between them is within the slack.
        let end = runs[&start].end;
        if let Some((&next_start, _)) = runs.range(start + 1..).next()
            && next_start - end - 1 <= slack
        {
            let next = runs.remove(&next_start).expect("listed above");
            let run = runs.get_mut(&start).expect("listed above");
            run.end = run.end.max(next.end);
            run.end_dt = next.end_dt;
        }
        if runs.len() > MAX_RUNS {
            let key = (topic.to_string(), partition);
            self.close_lowest_hole(&key);
        }
    }

    /// Reports the hole after the lowest run of `key` as a gap and joins the two runs.
    fn close_lowest_hole(&mut self, key: &(String, i64)) {
        let Some(runs) = self.partitions.get_mut(key) else {
            return;
        };
        let mut lowest = runs.keys().copied();
        let (Some(first), Some(second)) = (lowest.next(), lowest.next()) else {
            return;
        };
        let next = runs.remove(&second).expect("listed above");
        let run = runs.get_mut(&first).expect("listed above");
        let summary = &mut self.summary;
        summary.n_offset_gaps += 1;
        summary.n_missing_offsets += (second - run.end - 1) as u64;
        let gap = OffsetGap {
            topic: key.0.clone(),
            partition: key.1,
            before: run.end,
            after: second,
            before_dt: run.end_dt.clone(),
            after_dt: next.start_dt,
            file: next.start_file,
        };
        push_bounded(&mut summary.offset_gaps, gap);
        run.end = next.end;
        run.end_dt = next.end_dt;
    }

    /// Reports the offset gaps: the holes left between runs once every line was seen.
    pub fn finish(&mut self) {
        let mut keys: Vec<(String, i64)> = self.partitions.keys().cloned().collect();
        keys.sort();
        for key in keys {
            while self.partitions[&key].len() > 1 {
                self.close_lowest_hole(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::report::{dt_text, to_json, to_text};
    use super::*;

    fn event(id: &str, offset: i64, dt: &str) -> String {
        format!(
            r#"{{"meta":{{"id":"{id}","dt":"{dt}","topic":"t","partition":0,"offset":{offset}}}}}"#
        )
    }

    #[test]
    fn clean_sequence() {
        let mut checker = Checker::new(Duration::from_secs(300), 1);
        checker.line(event("a", 1, "2024-01-01T00:00:00Z").as_bytes(), "f");
        // One missing offset (a dropped canary) is within the slack.
        checker.line(event("b", 3, "2024-01-01T00:01:00Z").as_bytes(), "f");
        checker.line(event("c", 4, "2024-01-01T00:00:59Z").as_bytes(), "f");
        // Out of order, as a day's stragglers read from an earlier file: no gap.
        checker.line(event("d", 7, "2024-01-01T00:01:01Z").as_bytes(), "f");
        checker.line(event("e", 5, "2024-01-01T00:01:01Z").as_bytes(), "g");
        checker.finish();
        let summary = &checker.summary;
        assert!(summary.is_clean(), "{summary:?}");
        assert_eq!(summary.n_events, 5);
        assert_eq!(dt_text(&summary.first_dt), "2024-01-01T00:00:00Z");
        assert_eq!(dt_text(&summary.last_dt), "2024-01-01T00:01:01Z");
    }

    #[test]
    fn duplicates_and_gaps_are_found() {
        let mut checker = Checker::new(Duration::from_secs(300), 1);
        checker.line(event("a", 1, "2024-01-01T00:00:00Z").as_bytes(), "f1");
        checker.line(event("a", 1, "2024-01-01T00:00:00Z").as_bytes(), "f1");
        checker.line(event("b", 10, "2024-01-01T01:00:00Z").as_bytes(), "f2");
        checker.line(b"not json", "f2");
        checker.finish();
        let summary = &checker.summary;
        assert_eq!(summary.n_duplicates, 1);
        assert_eq!(summary.duplicates[0].id, "a");
        assert_eq!(summary.n_offset_gaps, 1);
        assert_eq!(summary.n_missing_offsets, 8);
        assert_eq!(summary.n_time_gaps, 1);
        assert_eq!(summary.time_gaps[0].seconds, 3600);
        assert_eq!(summary.time_gaps[0].file, "f2");
        assert_eq!(summary.n_bad_lines, 1);
        let text = to_text(Path::new("d"), summary);
        assert!(text.contains("1 duplicate meta.ids"), "{text}");
        assert!(text.contains("t[0] 1..10 (8 missing)"), "{text}");
        assert_eq!(to_json(Path::new("d"), summary)["time_gaps"]["count"], 1);
    }

    #[test]
    fn rejects_are_counted_by_the_reason_they_give() {
        let mut summary = Summary::default();
        for line in [
            &br#"{"received_at":"2025-01-31T12:00:00Z","reason":"bad_date","event":"message"}"#[..],
            br#"{"reason":"bad_date"}"#,
            br#"{"reason":"bad_stream"}"#,
            br#"{"reason":"Not A Label"}"#,
            b"not json at all",
        ] {
            summary.reject(line);
        }
        for n in 0..40 {
            summary.reject(format!("{{\"reason\":\"r{}\"}}", "x".repeat(n % 30 + 1)).as_bytes());
        }
        assert_eq!(summary.n_rejects, 45);
        assert_eq!(summary.rejects_by_reason["bad_date"], 2);
        assert_eq!(summary.rejects_by_reason["bad_stream"], 1);
        assert!(summary.rejects_by_reason.len() <= MAX_REJECT_REASONS + 1);
        assert!(summary.rejects_by_reason["other"] >= 2);
    }
}
