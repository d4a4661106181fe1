//! `verify`: checks an archive directory and reports what it holds and what is wrong with it.
//!
//! `Checker` is the pure core: it sees every archived line in file order and keeps bounded
//! state (a window of recent `meta.id`s, the last offset per topic-partition, the latest
//! `meta.dt`), so a year of files takes the same memory as an hour. `run` is the I/O shell:
//! listing, reading through `archive::reader`, progress on a terminal, and the report as text or
//! JSON. It never writes into the archive.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::archive::reader::{self, ReadError};
use crate::archive::{self, FileRole};
use crate::cli::VerifyArgs;
use crate::event::{self, RecentIds};
use crate::tools::{Error, quiet_on_closed_pipe};

/// How many recent ids duplicate detection remembers: about 25 MB, ninety minutes of the live
/// stream. Duplicates from reconnects and restarts are seconds apart, so detection is exact for
/// them; two copies of an event further apart than this many events are not noticed.
pub const DUPLICATE_WINDOW: usize = 1 << 19;
/// Problems of one kind listed in full; the rest are counted.
const LISTED_PROBLEMS: usize = 50;
/// The progress line is redrawn at most this often.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

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
    fn unreadable(file: String, e: &dyn std::fmt::Display) -> DamagedFile {
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

/// Everything `verify` found.
#[derive(Debug, Default)]
pub struct Summary {
    pub n_files: u64,
    pub n_events: u64,
    pub n_rejects: u64,
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
}

impl Summary {
    /// No damage, duplicates or gaps.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty()
            && self.n_duplicates == 0
            && self.n_offset_gaps == 0
            && self.n_time_gaps == 0
            && self.n_bad_lines == 0
    }
}

/// The last event seen in one topic-partition.
struct PartitionState {
    offset: i64,
    dt: String,
}

/// The pure core: feed it every line in archive order.
pub struct Checker {
    gap_ms: i64,
    offset_slack: i64,
    recent_ids: RecentIds,
    partitions: HashMap<(String, i64), PartitionState>,
    /// The latest `meta.dt` so far (events are not strictly in time order).
    latest: Option<(i64, String)>,
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
        let dt_ms = event::parse_dt_ms(dt);
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
        let key = (topic.to_string(), partition);
        let Some(state) = self.partitions.get_mut(&key) else {
            let state = PartitionState {
                offset,
                dt: dt.to_string(),
            };
            self.partitions.insert(key, state);
            return;
        };
        let n_missing = offset - state.offset - 1;
        if n_missing > self.offset_slack {
            let summary = &mut self.summary;
            summary.n_offset_gaps += 1;
            summary.n_missing_offsets += n_missing as u64;
            let gap = OffsetGap {
                topic: topic.to_string(),
                partition,
                before: state.offset,
                after: offset,
                before_dt: state.dt.clone(),
                after_dt: dt.to_string(),
                file: file.to_string(),
            };
            push_bounded(&mut summary.offset_gaps, gap);
        }
        // A lower offset (a duplicate, or events out of order) does not move the mark back.
        if offset > state.offset {
            state.offset = offset;
            state.dt.clear();
            state.dt.push_str(dt);
        }
    }
}

/// A self-updating progress line on stderr, only when stderr is a terminal.
struct Progress {
    enabled: bool,
    started: Instant,
    last_drawn: Instant,
    /// Decoded bytes read so far, for the speed shown.
    n_bytes: u64,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            enabled: io::stderr().is_terminal(),
            started: Instant::now(),
            last_drawn: Instant::now(),
            n_bytes: 0,
        }
    }

    fn draw(&mut self, file_idx: usize, n_files: usize, summary: &Summary, force: bool) {
        if !self.enabled || (!force && self.last_drawn.elapsed() < PROGRESS_INTERVAL) {
            return;
        }
        self.last_drawn = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let _ = write!(
            io::stderr(),
            "\r\x1b[Kverify: file {}/{n_files}, {} events, {:.0} MB/s",
            file_idx + 1,
            summary.n_events,
            self.n_bytes as f64 / secs / 1e6
        );
    }

    fn clear(&self) {
        if self.enabled {
            let _ = write!(io::stderr(), "\r\x1b[K");
        }
    }
}

/// Checks the directory, prints the report; returns false when a file is damaged or events
/// are duplicated.
pub fn run(args: &VerifyArgs) -> Result<bool, Error> {
    let listing = archive::list_archive(&args.dir).map_err(Error::from_archive)?;
    if listing.events.is_empty() {
        return Err(Error::new(
            format!("verifying {}", args.dir.display()),
            io::Error::new(
                io::ErrorKind::NotFound,
                "no archive files in this directory",
            ),
        ));
    }
    let mut checker = Checker::new(args.gap, args.offset_slack);
    let mut progress = Progress::new();
    let n_files = listing.events.len();
    for (file_idx, (path, role)) in listing.events.iter().enumerate() {
        let name = file_name(path);
        let report = {
            let checker = &mut checker;
            let progress = &mut progress;
            let mut n_since_draw = 0u32;
            reader::read_lines(path, &mut |line| {
                checker.line(line, &name);
                progress.n_bytes += line.len() as u64 + 1;
                n_since_draw += 1;
                if n_since_draw == 4096 {
                    n_since_draw = 0;
                    progress.draw(file_idx, n_files, &checker.summary, false);
                }
                Ok(())
            })
        };
        let report = match report {
            Ok(report) => report,
            Err(ReadError::File(e)) => {
                // Unreadable (e.g. permissions): damage too, and the check goes on.
                let damaged = DamagedFile::unreadable(name, &e);
                checker.summary.damaged.push(damaged);
                continue;
            }
            Err(ReadError::Sink(_)) => unreachable!("the sink above never fails"),
        };
        let summary = &mut checker.summary;
        summary.n_files += 1;
        summary.compressed_bytes += report.file_bytes;
        summary.text_bytes += report.text_bytes;
        if let Some(damage) = report.damage {
            let lost_bytes = report.file_bytes - damage.offset;
            let open = matches!(role, FileRole::Events { open: true, .. });
            if !damage.is_damage(open) {
                summary.unfinished_bytes += lost_bytes;
            } else {
                summary.damaged.push(DamagedFile {
                    file: name,
                    offset: damage.offset,
                    lost_bytes,
                    truncated: damage.truncated,
                    message: damage.message,
                });
            }
        }
        progress.draw(file_idx, n_files, &checker.summary, true);
    }
    for path in &listing.rejects {
        let result = reader::read_lines(path, &mut |_| Ok(()));
        match result {
            Ok(report) => checker.summary.n_rejects += report.n_lines,
            Err(e) => {
                let damaged = DamagedFile::unreadable(file_name(path), &e);
                checker.summary.damaged.push(damaged);
            }
        }
    }
    progress.clear();
    let summary = &checker.summary;
    let text = match args.json {
        true => format!("{:#}\n", to_json(&args.dir, summary)),
        false => to_text(&args.dir, summary),
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .or_else(quiet_on_closed_pipe)?;
    Ok(summary.damaged.is_empty() && summary.n_duplicates == 0)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn dt_text(dt: &Option<(i64, String)>) -> &str {
    dt.as_ref().map_or("-", |(_, text)| text)
}

fn ratio(summary: &Summary) -> f64 {
    summary.text_bytes as f64 / summary.compressed_bytes.max(1) as f64
}

/// The report for people.
pub fn to_text(dir: &Path, summary: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "archive {}", dir.display());
    let _ = writeln!(out, "  files      {}", summary.n_files);
    let _ = writeln!(
        out,
        "  events     {} ({} canaries), {} rejects",
        summary.n_events, summary.n_canaries, summary.n_rejects
    );
    let _ = writeln!(
        out,
        "  time       {} .. {}",
        dt_text(&summary.first_dt),
        dt_text(&summary.last_dt)
    );
    let _ = writeln!(
        out,
        "  bytes      {} compressed, {} as JSON (ratio {:.1})",
        summary.compressed_bytes,
        summary.text_bytes,
        ratio(summary)
    );
    if summary.unfinished_bytes > 0 {
        let _ = writeln!(
            out,
            "  open file  {} bytes written since its last checkpoint (not checked yet)",
            summary.unfinished_bytes
        );
    }
    if summary.is_clean() {
        let _ = writeln!(out, "problems: none");
        return out;
    }
    let _ = writeln!(out, "problems:");
    for damaged in &summary.damaged {
        let what = if damaged.truncated {
            "torn tail"
        } else {
            "damaged"
        };
        let _ = writeln!(
            out,
            "  {what}: {} from byte {} ({} bytes unreadable): {}",
            damaged.file, damaged.offset, damaged.lost_bytes, damaged.message
        );
    }
    if summary.n_bad_lines > 0 {
        let _ = writeln!(out, "  {} lines are not JSON objects", summary.n_bad_lines);
    }
    if summary.n_duplicates > 0 {
        let _ = writeln!(out, "  {} duplicate meta.ids:", summary.n_duplicates);
        for d in &summary.duplicates {
            let _ = writeln!(out, "    {} ({}) in {}", d.id, d.dt, d.file);
        }
    }
    if summary.n_offset_gaps > 0 {
        let _ = writeln!(
            out,
            "  {} offset gaps, {} offsets missing:",
            summary.n_offset_gaps, summary.n_missing_offsets
        );
        for g in &summary.offset_gaps {
            let _ = writeln!(
                out,
                "    {}[{}] {}..{} ({} missing) between {} and {} in {}",
                g.topic,
                g.partition,
                g.before,
                g.after,
                g.after - g.before - 1,
                g.before_dt,
                g.after_dt,
                g.file
            );
        }
    }
    if summary.n_time_gaps > 0 {
        let _ = writeln!(out, "  {} time gaps:", summary.n_time_gaps);
        for g in &summary.time_gaps {
            let _ = writeln!(
                out,
                "    {} .. {} ({} s) before {}",
                g.before_dt, g.after_dt, g.seconds, g.file
            );
        }
    }
    out
}

/// The report as one JSON document.
pub fn to_json(dir: &Path, summary: &Summary) -> serde_json::Value {
    json!({
        "dir": dir.display().to_string(),
        "clean": summary.is_clean(),
        "files": summary.n_files,
        "events": summary.n_events,
        "canaries": summary.n_canaries,
        "rejects": summary.n_rejects,
        "first_dt": summary.first_dt.as_ref().map(|(_, t)| t),
        "last_dt": summary.last_dt.as_ref().map(|(_, t)| t),
        "compressed_bytes": summary.compressed_bytes,
        "json_bytes": summary.text_bytes,
        "compression_ratio": ratio(summary),
        "unfinished_bytes": summary.unfinished_bytes,
        "bad_lines": summary.n_bad_lines,
        "damaged_files": summary.damaged.iter().map(|d| json!({
            "file": d.file, "offset": d.offset, "unreadable_bytes": d.lost_bytes,
            "truncated": d.truncated, "error": d.message,
        })).collect::<Vec<_>>(),
        "duplicates": {
            "count": summary.n_duplicates,
            "window": DUPLICATE_WINDOW,
            "examples": summary.duplicates.iter().map(|d| json!({
                "id": d.id, "dt": d.dt, "file": d.file,
            })).collect::<Vec<_>>(),
        },
        "offset_gaps": {
            "count": summary.n_offset_gaps,
            "missing_offsets": summary.n_missing_offsets,
            "examples": summary.offset_gaps.iter().map(|g| json!({
                "topic": g.topic, "partition": g.partition, "before": g.before, "after": g.after,
                "before_dt": g.before_dt, "after_dt": g.after_dt, "file": g.file,
            })).collect::<Vec<_>>(),
        },
        "time_gaps": {
            "count": summary.n_time_gaps,
            "examples": summary.time_gaps.iter().map(|g| json!({
                "before_dt": g.before_dt, "after_dt": g.after_dt, "seconds": g.seconds,
                "file": g.file,
            })).collect::<Vec<_>>(),
        },
    })
}

#[cfg(test)]
mod tests {
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
        let summary = &checker.summary;
        assert!(summary.is_clean(), "{summary:?}");
        assert_eq!(summary.n_events, 3);
        assert_eq!(dt_text(&summary.first_dt), "2024-01-01T00:00:00Z");
        assert_eq!(dt_text(&summary.last_dt), "2024-01-01T00:01:00Z");
    }

    #[test]
    fn duplicates_and_gaps_are_found() {
        let mut checker = Checker::new(Duration::from_secs(300), 1);
        checker.line(event("a", 1, "2024-01-01T00:00:00Z").as_bytes(), "f1");
        checker.line(event("a", 1, "2024-01-01T00:00:00Z").as_bytes(), "f1");
        checker.line(event("b", 10, "2024-01-01T01:00:00Z").as_bytes(), "f2");
        checker.line(b"not json", "f2");
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
}
