//! The archive directory: opening it, appending events, recording rejects, closing files.
//!
//! Owns file names and sequence numbers; `writer.rs` owns the bytes of one file. It does not parse
//! SSE, talk to the network or decide what is a reject: callers hand it finished lines.

mod writer;

use std::borrow::Cow;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use time::macros::format_description;

pub use writer::Segment;

/// An archive error always names the file or directory involved.
#[derive(Debug)]
pub enum Error {
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl Error {
    fn io(action: &'static str, path: &Path, source: io::Error) -> Error {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                action,
                path,
                source,
            } => write!(f, "{action} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
        }
    }
}

/// Final archive files end in this.
pub const SEGMENT_SUFFIX: &str = ".ndjson.gz";
/// Files being written end in this (after the final name).
pub const PART_SUFFIX: &str = ".part";

/// `20250131T120000Z`: sorts as text in time order and is safe in every file system.
fn compact_utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .expect("formatting a UTC time with a fixed description cannot fail")
}

/// `<label>-<UTC start>-<seq 6 digits>.ndjson.gz`.
pub fn segment_file_name(label: &str, start: OffsetDateTime, seq: u64) -> String {
    format!("{label}-{}-{seq:06}{SEGMENT_SUFFIX}", compact_utc(start))
}

/// The sequence number in a segment (or `.part`) name of `label`, if it is one.
pub fn parse_segment_seq(label: &str, file_name: &str) -> Option<u64> {
    let name = file_name.strip_suffix(PART_SUFFIX).unwrap_or(file_name);
    let rest = name
        .strip_prefix(label)?
        .strip_prefix('-')?
        .strip_suffix(SEGMENT_SUFFIX)?;
    let (stamp, seq) = rest.split_once('-')?;
    let stamp_ok = stamp.len() == 16 && stamp.as_bytes()[8] == b'T' && stamp.ends_with('Z');
    if !stamp_ok || seq.len() < 6 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    seq.parse().ok()
}

/// A file name label for a stream list or URL: `recentchange`, `recentchange+page-create`.
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

/// The archive directory and the files open in it.
pub struct Archive {
    dir: PathBuf,
    label: String,
    level: u32,
    /// When this run started: names the rejects file.
    run_start: OffsetDateTime,
    segment: Option<Segment>,
    rejects: Option<Segment>,
    next_seq: u64,
    /// Compressed bytes of the files this run completed.
    completed_bytes: u64,
}

impl Archive {
    /// Opens (creating if needed) `dir` for stream `label`; nothing is written until an event comes.
    pub fn open(
        dir: &Path,
        label: &str,
        level: u32,
        now: OffsetDateTime,
    ) -> Result<Archive, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
        check_writable(dir)?;
        let mut next_seq = 1;
        let entries = fs::read_dir(dir).map_err(|e| Error::io("reading directory", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("reading directory", dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(seq) = parse_segment_seq(label, name) {
                next_seq = next_seq.max(seq + 1);
                if name.ends_with(PART_SUFFIX) {
                    log::warn!(
                        "{} is an unfinished file from an earlier run; it is left as it is",
                        dir.join(name).display()
                    );
                }
            }
        }
        Ok(Archive {
            dir: dir.to_path_buf(),
            label: label.to_string(),
            level,
            run_start: now,
            segment: None,
            rejects: None,
            next_seq,
            completed_bytes: 0,
        })
    }

    /// Appends one event's JSON as a line; opens a segment first if none is open.
    pub fn append(&mut self, data: &str, now: OffsetDateTime) -> Result<(), Error> {
        if self.segment.is_none() {
            let name = segment_file_name(&self.label, now, self.next_seq);
            let segment = self.create(name)?;
            log::info!("opened {}", segment.part_path().display());
            self.next_seq += 1;
            self.segment = Some(segment);
        }
        let segment = self.segment.as_mut().expect("a segment was opened above");
        segment.write_line(one_line(data).as_bytes())
    }

    /// Appends one line to this run's rejects file, opening it first if needed.
    pub fn reject(&mut self, line: &str) -> Result<(), Error> {
        if self.rejects.is_none() {
            let stamp = compact_utc(self.run_start);
            let mut name = format!("rejects-{stamp}{SEGMENT_SUFFIX}");
            let mut n_tries = 1;
            while self.dir.join(&name).exists()
                || self.dir.join(format!("{name}{PART_SUFFIX}")).exists()
            {
                n_tries += 1;
                name = format!("rejects-{stamp}-{n_tries}{SEGMENT_SUFFIX}");
            }
            self.rejects = Some(self.create(name)?);
        }
        let rejects = self
            .rejects
            .as_mut()
            .expect("the rejects file was opened above");
        rejects.write_line(line.as_bytes())
    }

    /// Compressed bytes written by this run, to archive and rejects files.
    pub fn bytes_written(&self) -> u64 {
        let open = [&self.segment, &self.rejects]
            .into_iter()
            .flatten()
            .map(Segment::compressed_bytes);
        self.completed_bytes + open.sum::<u64>()
    }

    /// Finishes and renames every open file; returns the completed paths.
    pub fn close(&mut self) -> Result<Vec<PathBuf>, Error> {
        let mut completed = Vec::new();
        for segment in [self.segment.take(), self.rejects.take()]
            .into_iter()
            .flatten()
        {
            let n_lines = segment.n_lines();
            let path = segment.finish()?;
            self.completed_bytes += fs::metadata(&path).map_or(0, |m| m.len());
            log::info!("completed {} ({n_lines} lines)", path.display());
            completed.push(path);
        }
        Ok(completed)
    }

    fn create(&self, final_name: String) -> Result<Segment, Error> {
        let final_path = self.dir.join(&final_name);
        let part_path = self.dir.join(format!("{final_name}{PART_SUFFIX}"));
        Segment::create(part_path, final_path, self.level)
    }
}

/// Fails early, with the path, when `dir` cannot take new files.
fn check_writable(dir: &Path) -> Result<(), Error> {
    let probe = dir.join(format!(".wikistream-archiver-probe-{}", std::process::id()));
    fs::write(&probe, b"").map_err(|e| Error::io("writing in directory", dir, e))?;
    fs::remove_file(&probe).map_err(|e| Error::io("removing", &probe, e))
}

/// An archive line must not contain a line feed. After JSON validation a line feed can only be
/// insignificant whitespace between tokens (JSON strings cannot hold a raw one), so it is replaced
/// by a space: the JSON value is unchanged. Events from Wikimedia never need this.
fn one_line(data: &str) -> Cow<'_, str> {
    if data.contains('\n') {
        Cow::Owned(data.replace('\n', " "))
    } else {
        Cow::Borrowed(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn segment_names_round_trip() {
        let name = segment_file_name("recentchange", datetime!(2025-01-31 12:00:05 UTC), 42);
        assert_eq!(name, "recentchange-20250131T120005Z-000042.ndjson.gz");
        assert_eq!(parse_segment_seq("recentchange", &name), Some(42));
        assert_eq!(
            parse_segment_seq("recentchange", &format!("{name}.part")),
            Some(42)
        );
        assert_eq!(parse_segment_seq("recent", &name), None);
        assert_eq!(
            parse_segment_seq("recentchange", "recentchange-x-000001.ndjson.gz"),
            None
        );
        assert_eq!(
            parse_segment_seq("recentchange", "rejects-20250131T120005Z.ndjson.gz"),
            None
        );
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

    #[test]
    fn line_feeds_in_json_become_spaces() {
        assert_eq!(one_line("{\"a\":\n1}"), "{\"a\": 1}");
        assert!(matches!(one_line("{}"), Cow::Borrowed(_)));
    }
}
