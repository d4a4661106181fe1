//! Every file name in an archive directory, made or parsed: the two layouts (partitioned by
//! stream and date, or flat), event files in both namings, rejects files, and what a name
//! says about its file (`classify`, `name_time_ms`).
//!
//! Pure: names in, names out. It does not list directories (`listing.rs`) or touch files.

use time::{Date, OffsetDateTime};

use crate::times::compact_utc;

/// How the files of an archive directory are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `<stream>/date=YYYY-MM-DD/<stream>-<first event's UTC time>-<seq>.ndjson.gz`, rejects in
    /// `_rejects/`, the checkpoint `_checkpoint.json`: Hive-style partitions that Spark, DuckDB
    /// and Athena prune by date, and names that their globs and Hadoop's input rules skip.
    Partitioned,
    /// Everything in the directory itself, files named after the time they were opened (the
    /// only layout of earlier builds, and the Python archiver's).
    Flat,
}

impl Layout {
    pub const NAMES: [(&'static str, Layout); 2] =
        [("partitioned", Layout::Partitioned), ("flat", Layout::Flat)];

    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Partitioned => "partitioned",
            Layout::Flat => "flat",
        }
    }

    pub fn parse(text: &str) -> Option<Layout> {
        Layout::NAMES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, layout)| *layout)
    }
}

/// The rejects directory of the partitioned layout (`_`: Spark and Hadoop skip it).
pub const REJECTS_DIR: &str = "_rejects";

/// The partition directory of `stream`'s events of `date`, relative to the archive directory.
pub fn partition_dir(stream: &str, date: Date) -> String {
    format!(
        "{stream}/date={:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The stream and date of a path `<stream>/date=YYYY-MM-DD/<file>` relative to the directory.
pub fn parse_partition(rel: &str) -> Option<(&str, Date)> {
    let mut parts = rel.split('/');
    let (stream, partition, _file) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || stream.is_empty() {
        return None;
    }
    Some((stream, parse_date_dir(partition)?))
}

/// The date of a partition directory name `date=YYYY-MM-DD`.
pub fn parse_date_dir(name: &str) -> Option<Date> {
    let text = name.strip_prefix("date=")?;
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year: i32 = text[..4].parse().ok()?;
    let month: u8 = text[5..7].parse().ok()?;
    let day: u8 = text[8..].parse().ok()?;
    Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

/// The UTC time (Unix ms, whole seconds) an event file's name carries, in either naming:
/// in the partitioned layout the time of its first event, in the flat one the time it was
/// opened.
pub fn name_time_ms(base: &str) -> Option<i64> {
    let base = base.strip_suffix(PART_SUFFIX).unwrap_or(base);
    let stamp = match base.strip_suffix(SEGMENT_SUFFIX) {
        Some(rest) => {
            let (before_seq, _) = rest.rsplit_once('-')?;
            before_seq.rsplit_once('-')?.1.strip_suffix('Z')?
        }
        None => {
            let rest = base.strip_suffix(".ready").unwrap_or(base);
            rest.strip_prefix("stream_")?.split_once('_')?.0
        }
    };
    let bytes = stamp.as_bytes();
    if bytes.len() != 15
        || bytes[8] != b'T'
        || !stamp
            .bytes()
            .filter(|b| *b != b'T')
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| stamp[range].parse::<u32>().ok();
    let date = Date::from_calendar_date(
        num(0..4)? as i32,
        time::Month::try_from(num(4..6)? as u8).ok()?,
        num(6..8)? as u8,
    )
    .ok()?;
    let time =
        time::Time::from_hms(num(9..11)? as u8, num(11..13)? as u8, num(13..15)? as u8).ok()?;
    Some(date.with_time(time).assume_utc().unix_timestamp() * 1000)
}

/// Our final archive files end in this.
pub const SEGMENT_SUFFIX: &str = ".ndjson.gz";
/// Our files being written end in this (after the final name).
pub const PART_SUFFIX: &str = ".part";
/// Rejects files start with this, in every naming.
const REJECTS_PREFIX: &str = "rejects-";

/// How event files are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Naming {
    /// `<label>-<UTC start>-<seq 6>.ndjson.gz`, `.part` while open.
    Ours { label: String },
    /// The Python `wikistreamreader`'s: `stream_<YYYYMMDDTHHMMSS>_<seq 9>.gz`, `.ready` when complete.
    WikistreamReader,
}

impl Naming {
    /// The name while open and the final name of event file `seq` opened at `start`.
    pub fn event_file_names(&self, start: OffsetDateTime, seq: u64) -> (String, String) {
        match self {
            Naming::Ours { label } => {
                let name = format!("{label}-{}-{seq:06}{SEGMENT_SUFFIX}", compact_utc(start));
                (format!("{name}{PART_SUFFIX}"), name)
            }
            Naming::WikistreamReader => {
                let stamp = compact_utc(start);
                let name = format!("stream_{}_{seq:09}.gz", &stamp[..15]);
                let ready = format!("{name}.ready");
                (name, ready)
            }
        }
    }

    /// For an event file name: its sequence number and, if it is still open, its final name.
    pub fn parse(&self, name: &str) -> Option<(u64, Option<String>)> {
        match self {
            Naming::Ours { label } => {
                let (base, open) = match name.strip_suffix(PART_SUFFIX) {
                    Some(base) => (base, true),
                    None => (name, false),
                };
                let rest = base
                    .strip_prefix(label.as_str())?
                    .strip_prefix('-')?
                    .strip_suffix(SEGMENT_SUFFIX)?;
                let (stamp, seq) = rest.split_once('-')?;
                let stamp_ok =
                    stamp.len() == 16 && stamp.as_bytes()[8] == b'T' && stamp.ends_with('Z');
                let seq = parse_digits(seq, 6)?;
                stamp_ok.then(|| (seq, open.then(|| base.to_string())))
            }
            Naming::WikistreamReader => {
                let (base, open) = match name.strip_suffix(".ready") {
                    Some(base) => (base, false),
                    None => (name, true),
                };
                let rest = base.strip_prefix("stream_")?.strip_suffix(".gz")?;
                let (stamp, seq) = rest.split_once('_')?;
                let stamp_ok = stamp.len() == 15 && stamp.as_bytes()[8] == b'T';
                let seq = parse_digits(seq, 9)?;
                stamp_ok.then(|| (seq, open.then(|| format!("{base}.ready"))))
            }
        }
    }
}

fn parse_digits(text: &str, min_len: usize) -> Option<u64> {
    (text.len() >= min_len && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())?
}

/// A file name label for a stream list: `recentchange`, `recentchange+page-create`.
pub fn stream_label(names: &[String]) -> String {
    let joined = names.join("+");
    let clean: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "stream".to_string()
    } else {
        clean
    }
}

/// The open and final names of a rejects file opened at `start`; `n_try` above 1 tells apart
/// files opened in the same second.
pub fn rejects_names(start: OffsetDateTime, n_try: u32) -> (String, String) {
    let stamp = compact_utc(start);
    let final_name = match n_try {
        0 | 1 => format!("{REJECTS_PREFIX}{stamp}{SEGMENT_SUFFIX}"),
        n => format!("{REJECTS_PREFIX}{stamp}-{n}{SEGMENT_SUFFIX}"),
    };
    (format!("{final_name}{PART_SUFFIX}"), final_name)
}

/// For a rejects file name: `Some(None)` when complete, `Some(Some(final name))` when open.
pub fn parse_rejects(name: &str) -> Option<Option<String>> {
    let (base, open) = match name.strip_suffix(PART_SUFFIX) {
        Some(base) => (base, true),
        None => (name, false),
    };
    (base.starts_with(REJECTS_PREFIX) && base.ends_with(SEGMENT_SUFFIX))
        .then(|| open.then(|| base.to_string()))
}

/// What a file in an archive directory holds, going by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRole {
    /// Events; `seq` orders files, `open` marks the file still being written.
    Events { seq: u64, open: bool },
    /// Rejected events.
    Rejects,
}

/// Classifies a file name of either naming scheme, whatever the stream label.
pub fn classify(name: &str) -> Option<FileRole> {
    if parse_rejects(name).is_some() {
        return Some(FileRole::Rejects);
    }
    if let Some((seq, open)) = Naming::WikistreamReader.parse(name) {
        return Some(FileRole::Events {
            seq,
            open: open.is_some(),
        });
    }
    // Ours: `<label>-<stamp>-<seq>.ndjson.gz[.part]`; the label is whatever precedes the stamp.
    let base = name.strip_suffix(PART_SUFFIX).unwrap_or(name);
    let rest = base.strip_suffix(SEGMENT_SUFFIX)?;
    let (before_seq, _) = rest.rsplit_once('-')?;
    let (label, _) = before_seq.rsplit_once('-')?;
    if label.is_empty() {
        return None;
    }
    let naming = Naming::Ours {
        label: label.to_string(),
    };
    let (seq, open) = naming.parse(name)?;
    Some(FileRole::Events {
        seq,
        open: open.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn classify_both_namings_and_rejects() {
        assert_eq!(
            classify("recentchange+page-create-20250131T120000Z-000007.ndjson.gz.part"),
            Some(FileRole::Events { seq: 7, open: true })
        );
        assert_eq!(
            classify("recentchange-20250131T120000Z-000012.ndjson.gz"),
            Some(FileRole::Events {
                seq: 12,
                open: false
            })
        );
        assert_eq!(
            classify("stream_20250131T120000_000000003.gz.ready"),
            Some(FileRole::Events {
                seq: 3,
                open: false
            })
        );
        assert_eq!(
            classify("rejects-20250131T120000Z.ndjson.gz.part"),
            Some(FileRole::Rejects)
        );
        assert_eq!(classify("checkpoint.json"), None);
        assert_eq!(classify("-20250131T120000Z-000012.ndjson.gz"), None);
    }

    #[test]
    fn our_names_round_trip() {
        let naming = Naming::Ours {
            label: "recentchange".into(),
        };
        let (open, done) = naming.event_file_names(datetime!(2025-01-31 12:00:05 UTC), 42);
        assert_eq!(done, "recentchange-20250131T120005Z-000042.ndjson.gz");
        assert_eq!(open, format!("{done}.part"));
        assert_eq!(naming.parse(&open), Some((42, Some(done.clone()))));
        assert_eq!(naming.parse(&done), Some((42, None)));
        assert_eq!(
            Naming::Ours {
                label: "recent".into()
            }
            .parse(&done),
            None
        );
        assert_eq!(naming.parse("recentchange-x-000001.ndjson.gz"), None);
        assert_eq!(naming.parse("rejects-20250131T120005Z.ndjson.gz"), None);
    }

    #[test]
    fn wikistreamreader_names_round_trip() {
        let naming = Naming::WikistreamReader;
        let (open, done) = naming.event_file_names(datetime!(2025-11-07 00:05:00 UTC), 2);
        assert_eq!(open, "stream_20251107T000500_000000002.gz");
        assert_eq!(done, "stream_20251107T000500_000000002.gz.ready");
        assert_eq!(naming.parse(&open), Some((2, Some(done.clone()))));
        assert_eq!(naming.parse(&done), Some((2, None)));
        assert_eq!(naming.parse("stream_x_1.gz"), None);
    }

    #[test]
    fn rejects_names_round_trip() {
        let t = datetime!(2025-01-31 12:00:05 UTC);
        let (open, done) = rejects_names(t, 1);
        assert_eq!(done, "rejects-20250131T120005Z.ndjson.gz");
        assert_eq!(parse_rejects(&open), Some(Some(done.clone())));
        assert_eq!(parse_rejects(&done), Some(None));
        assert_eq!(
            rejects_names(t, 3).1,
            "rejects-20250131T120005Z-3.ndjson.gz"
        );
        assert_eq!(parse_rejects(&rejects_names(t, 3).1), Some(None));
        assert_eq!(parse_rejects("other.part"), None);
    }

    #[test]
    fn partitions_and_name_times() {
        let date = time::macros::date!(2025 - 01 - 31);
        let dir = partition_dir("recentchange", date);
        assert_eq!(dir, "recentchange/date=2025-01-31");
        let rel = format!("{dir}/recentchange-20250131T235959Z-000003.ndjson.gz");
        assert_eq!(parse_partition(&rel), Some(("recentchange", date)));
        assert_eq!(parse_partition("recentchange/x/f"), None);
        assert_eq!(parse_partition("recentchange/date=2025-02-30/f"), None);
        assert_eq!(parse_partition("a/date=2025-01-31/b/c"), None);
        assert_eq!(
            name_time_ms("recentchange-20250131T235959Z-000003.ndjson.gz.part"),
            Some(1_738_367_999_000)
        );
        assert_eq!(
            name_time_ms("stream_20250131T235959_000000003.gz.ready"),
            Some(1_738_367_999_000)
        );
        assert_eq!(name_time_ms("rejects-x.ndjson.gz"), None);
        assert_eq!(Layout::parse("flat"), Some(Layout::Flat));
        assert_eq!(Layout::parse("hive"), None);
    }

    #[test]
    fn labels_are_file_name_safe() {
        assert_eq!(
            stream_label(&["recentchange".into(), "page-create".into()]),
            "recentchange+page-create"
        );
        assert_eq!(stream_label(&["a/b c".into()]), "a_b_c");
        assert_eq!(stream_label(&[]), "stream");
    }
}
