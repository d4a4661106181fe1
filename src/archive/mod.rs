//! The archive directory: `Archive` appends events and rejects, checkpoints, rotates and
//! completes files, and applies retention.
//!
//! This file owns sequence numbers and the order of durable steps. Its parts own the rest:
//! `naming` every file name, `lock` the one-writer lock, `recover` crash recovery at start,
//! `hook` the `--on-ready` children, `listing` directory listings for readers, `writer` the
//! bytes of one file, `reader` reading members back, `checkpoint` the checkpoint format,
//! `rotate` and `retention` their pure policies. It does not parse SSE, talk to the network or
//! decide what is a reject: callers hand it finished lines and the resume position (`Cursor`)
//! that goes with them.

pub mod checkpoint;
mod error;
mod hook;
pub mod listing;
pub mod lock;
pub mod naming;
pub mod reader;
mod recover;
pub mod retention;
pub mod rotate;
pub mod seek;
mod writer;

use std::borrow::Cow;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use time::{Date, OffsetDateTime};

use self::checkpoint::{Checkpoint, FileKind, OpenFile};
pub use self::error::Error;
use self::hook::OnReady;
use self::listing::{Found, walk};
pub use self::listing::{Listing, list_archive};
pub use self::lock::{DirLock, LOCK_FILE};
pub use self::naming::{FileRole, Layout, Naming, classify};
pub use self::reader::{IntactPrefix, intact_prefix};
pub use self::recover::{DAMAGED_DIR, Rewind};
use self::writer::Segment;
use crate::event::RecentIds;

/// How the archive behaves; fixed for a run.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    /// The layout asked for (`--layout`); `None` keeps the directory's, or partitions a new one.
    pub layout: Option<Layout>,
    /// The stream names asked for (`recentchange`): the directory names of the partitioned
    /// layout, for events whose `meta.stream` is one of them (`mediawiki.recentchange` too).
    pub streams: Vec<String>,
    pub naming: Naming,
    pub level: u32,
    pub policy: rotate::Policy,
    /// Program run with each completed file's path.
    pub on_ready: Option<OsString>,
    /// Which completed files to delete.
    pub retention: retention::Policy,
}

/// The resume position that goes with the archived bytes: written into every checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    pub last_event_id: &'a str,
    pub last_dt: &'a str,
    /// Recent `meta.id`s, so that events resent after a resume are recognised.
    pub recent_ids: &'a RecentIds,
}

/// The resume position read back from a checkpoint.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resume {
    pub last_event_id: String,
    pub last_dt: String,
    pub recent_ids: Vec<u128>,
    /// Set when there is no id to resume after (the open file came up shorter than the
    /// checkpoint said, or the server sends no ids): the first connection asks for `since=`
    /// this time (Unix ms) instead.
    pub since_ms: Option<i64>,
    /// The open file came up shorter than the checkpoint: its lost events are fetched again.
    pub rewound: bool,
}

/// Where an event goes in the partitioned layout: its `meta.stream` and `meta.dt`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Place<'a> {
    pub stream: Option<&'a str>,
    pub dt_ms: Option<i64>,
}

/// A file being written, with what rotation needs to know about it.
struct OpenSegment {
    kind: FileKind,
    segment: Segment,
    /// The path relative to the archive directory while open, and when completed.
    name: String,
    final_name: String,
    opened_at: OffsetDateTime,
    /// The partitioned layout's stream directory and date of the file.
    partition: Option<(String, Date)>,
}

/// A file for day D stays open for events dated D until an event of its stream dated at least
/// this long after D's end arrives; events of the live feed are out of order by seconds.
pub const STRAGGLER_GRACE_MS: i64 = 5 * 60 * 1000;
/// At most this many files of one stream are open at once (days that events jump between).
const MAX_OPEN_PER_STREAM: usize = 4;

impl OpenSegment {
    fn record(&self) -> OpenFile {
        let (n_lines, length) = self.segment.durable();
        OpenFile {
            kind: self.kind,
            name: self.name.clone(),
            final_name: self.final_name.clone(),
            length,
            n_lines,
            opened_at: self.opened_at.unix_timestamp(),
        }
    }
}

/// The archive directory and the files open in it.
pub struct Archive {
    cfg: Config,
    layout: Layout,
    /// Flat: at most one. Partitioned: per stream, one per date still open.
    segments: Vec<OpenSegment>,
    rejects: Option<OpenSegment>,
    next_seq: u64,
    /// Compressed bytes of the files completed by this process.
    completed_bytes: u64,
    on_ready: OnReady,
    /// Checkpoints written since `take_checkpoint_count` last asked.
    n_checkpoints: u64,
    /// Checkpoints written since the archive was opened.
    n_checkpoints_total: u64,
    /// Files deleted by retention since `take_deletion_count` last asked.
    n_deleted: u64,
    /// Event files completed since `take_completed` last asked, with the reason.
    newly_completed: Vec<(PathBuf, rotate::Reason)>,
}

impl Archive {
    /// Opens `cfg.dir` (the caller holds its `DirLock`), recovers from the last checkpoint, and
    /// returns the archive with the position to resume from.
    pub fn open(cfg: Config) -> Result<(Archive, Resume), Error> {
        let dir = cfg.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| Error::io("creating directory", &dir, e))?;
        check_writable(&dir)?;
        let saved = checkpoint::read(&dir)?;
        let layout = choose_layout(&cfg, saved.as_ref())?;
        let mut archive = Archive {
            on_ready: OnReady::new(cfg.on_ready.clone()),
            cfg,
            layout,
            segments: Vec::new(),
            rejects: None,
            next_seq: saved.as_ref().map_or(1, |c| c.next_seq.max(1)),
            completed_bytes: 0,
            n_checkpoints: 0,
            n_checkpoints_total: 0,
            n_deleted: 0,
            newly_completed: Vec::new(),
        };
        let listed: HashSet<String> = saved
            .iter()
            .flat_map(|c| c.files.iter().map(|f| f.name.clone()))
            .collect();
        archive.recover_orphans(&listed)?;
        let mut resume = Resume::default();
        if let Some(saved) = saved {
            let mut rewind = None;
            for file in &saved.files {
                rewind = archive.reopen(file)?.or(rewind);
            }
            let since_ms = match saved.last_event_id.is_empty() {
                true => crate::times::parse_rfc3339_ms(&saved.last_dt),
                false => None,
            };
            resume = Resume {
                last_event_id: saved.last_event_id,
                last_dt: saved.last_dt,
                recent_ids: saved
                    .recent_ids
                    .iter()
                    .filter_map(|hex| u128::from_str_radix(hex, 16).ok())
                    .collect(),
                // Without an id (a server that sends none, or a rewind below), the position is
                // the last archived time.
                since_ms,
                rewound: false,
            };
            if let Some(rewind) = rewind {
                log::warn!(
                    "events after meta.dt {} were lost on disk; fetching them again from the \
                     stream (since={})",
                    rewind.last_dt,
                    rewind.since_ms
                );
                resume = Resume {
                    last_event_id: String::new(),
                    last_dt: rewind.last_dt,
                    recent_ids: rewind.recent_ids,
                    since_ms: Some(rewind.since_ms),
                    rewound: true,
                };
                // Record the repaired lengths and the rewound position at once: the old
                // checkpoint names bytes that no longer exist.
                let recent =
                    RecentIds::with_keys(resume.recent_ids.len().max(1), &resume.recent_ids);
                let cursor = Cursor {
                    last_event_id: "",
                    last_dt: &resume.last_dt,
                    recent_ids: &recent,
                };
                archive.write_checkpoint(cursor, None)?;
            }
        }
        Ok((archive, resume))
    }

    /// The layout of the directory (recorded in its checkpoint).
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Appends one event's JSON as a line to the file it belongs in, opening that first if
    /// needed. Partitioned, it first completes the stream's files of earlier days whose grace
    /// has passed (before the line, so that their checkpoint does not hold an event it does
    /// not claim).
    pub fn append(
        &mut self,
        data: &str,
        place: Place<'_>,
        now: OffsetDateTime,
        cursor: Cursor<'_>,
    ) -> Result<(), Error> {
        let idx = match self.layout {
            Layout::Flat if !self.segments.is_empty() => 0,
            Layout::Flat => {
                let (name, final_name) = self.cfg.naming.segment_names(now, self.next_seq);
                self.next_seq += 1;
                let open = self.create(FileKind::Segment, name, final_name, now, None, cursor)?;
                self.segments.push(open);
                0
            }
            Layout::Partitioned => self.partition_for(place, now, cursor)?,
        };
        self.segments[idx]
            .segment
            .write_line(one_line(data).as_bytes())
    }

    /// The index of the open file for an event at `place`, after completing its stream's
    /// files whose day is over (see `STRAGGLER_GRACE_MS`); opens one if needed.
    fn partition_for(
        &mut self,
        place: Place<'_>,
        now: OffsetDateTime,
        cursor: Cursor<'_>,
    ) -> Result<usize, Error> {
        let stream = self.stream_dir(place.stream);
        let event_time = place
            .dt_ms
            .and_then(|ms| OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok())
            .unwrap_or(now);
        let date = event_time.date();
        let event_ms = crate::times::unix_ms(event_time);
        let over = |open: &OpenSegment| {
            open.partition.as_ref().is_some_and(|(s, d)| {
                *s == stream
                    && *d < date
                    && day_end_ms(*d).saturating_add(STRAGGLER_GRACE_MS) <= event_ms
            })
        };
        while let Some(idx) = self.segments.iter().position(over) {
            let open = self.segments.remove(idx);
            self.complete(open, cursor, rotate::Reason::Date)?;
        }
        let same = |open: &OpenSegment| open.partition.as_ref() == Some(&(stream.clone(), date));
        if let Some(idx) = self.segments.iter().position(same) {
            return Ok(idx);
        }
        let of_stream: Vec<usize> = (0..self.segments.len())
            .filter(|&i| {
                self.segments[i]
                    .partition
                    .as_ref()
                    .is_some_and(|(s, _)| *s == stream)
            })
            .collect();
        if of_stream.len() >= MAX_OPEN_PER_STREAM {
            let oldest = of_stream
                .into_iter()
                .min_by_key(|&i| self.segments[i].opened_at)
                .expect("the stream has open files");
            let open = self.segments.remove(oldest);
            self.complete(open, cursor, rotate::Reason::Date)?;
        }
        let rel_dir = naming::partition_dir(&stream, date);
        self.make_dirs(&rel_dir)?;
        let naming = Naming::Ours {
            label: stream.clone(),
        };
        let (name, final_name) = naming.segment_names(event_time, self.next_seq);
        self.next_seq += 1;
        let open = self.create(
            FileKind::Segment,
            format!("{rel_dir}/{name}"),
            format!("{rel_dir}/{final_name}"),
            now,
            Some((stream, date)),
            cursor,
        )?;
        self.segments.push(open);
        Ok(self.segments.len() - 1)
    }

    /// The directory name of an event's stream: the asked-for name it matches, or its own.
    fn stream_dir(&self, stream: Option<&str>) -> String {
        let Some(stream) = stream else {
            return naming::stream_label(&self.cfg.streams[..self.cfg.streams.len().min(1)]);
        };
        let asked = self.cfg.streams.iter().find(|name| {
            stream == name.as_str() || stream.strip_prefix("mediawiki.") == Some(name.as_str())
        });
        naming::stream_label(&[asked.map_or(stream, String::as_str).to_string()])
    }

    /// Creates the directories of `rel_dir` (relative, `/`-separated) under the archive
    /// directory, refusing links, and makes new entries durable.
    fn make_dirs(&self, rel_dir: &str) -> Result<(), Error> {
        let mut path = self.cfg.dir.clone();
        for part in rel_dir.split('/') {
            path.push(part);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Error::Symlink { path });
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&path).map_err(|e| Error::io("creating directory", &path, e))?;
                    writer::sync_dir(&path)?;
                }
                Err(e) => return Err(Error::io("reading metadata of", &path, e)),
            }
        }
        Ok(())
    }

    /// Appends one line to the rejects file, opening it first if needed.
    pub fn reject(
        &mut self,
        line: &str,
        now: OffsetDateTime,
        cursor: Cursor<'_>,
    ) -> Result<(), Error> {
        if self.rejects.is_none() {
            let rel_dir = match self.layout {
                Layout::Partitioned => {
                    self.make_dirs(naming::REJECTS_DIR)?;
                    format!("{}/", naming::REJECTS_DIR)
                }
                Layout::Flat => String::new(),
            };
            let names = |n_try| {
                let (name, final_name) = naming::rejects_names(now, n_try);
                (format!("{rel_dir}{name}"), format!("{rel_dir}{final_name}"))
            };
            let mut n_try = 1;
            let (mut name, mut final_name) = names(n_try);
            while self.cfg.dir.join(&final_name).exists() || self.cfg.dir.join(&name).exists() {
                n_try += 1;
                (name, final_name) = names(n_try);
            }
            let open = self.create(FileKind::Rejects, name, final_name, now, None, cursor)?;
            self.rejects = Some(open);
        }
        let open = self
            .rejects
            .as_mut()
            .expect("the rejects file was opened above");
        open.segment.write_line(line.as_bytes())
    }

    /// Creates a file and checkpoints at once, so that every `.part` file this process writes into
    /// is known to the checkpoint before its first line (recovery then never has to guess).
    fn create(
        &mut self,
        kind: FileKind,
        name: String,
        final_name: String,
        now: OffsetDateTime,
        partition: Option<(String, Date)>,
        cursor: Cursor<'_>,
    ) -> Result<OpenSegment, Error> {
        let dir = &self.cfg.dir;
        let segment = Segment::create(dir.join(&name), dir.join(&final_name), self.cfg.level)?;
        log::info!("opened {}", segment.part_path().display());
        let open = OpenSegment {
            kind,
            segment,
            name,
            final_name,
            opened_at: now,
            partition,
        };
        self.write_checkpoint(cursor, Some(&open))?;
        Ok(open)
    }

    /// Whether an open segment must be completed now, and why.
    pub fn rotation_due(&self, now: OffsetDateTime) -> Option<rotate::Reason> {
        self.segments.iter().find_map(|open| self.due(open, now))
    }

    fn due(&self, open: &OpenSegment, now: OffsetDateTime) -> Option<rotate::Reason> {
        rotate::due(
            &self.cfg.policy,
            open.opened_at,
            open.segment.n_lines(),
            open.segment.compressed_bytes(),
            now,
        )
    }

    /// Makes everything written so far durable and records it with `cursor` in the checkpoint.
    pub fn checkpoint(&mut self, cursor: Cursor<'_>) -> Result<(), Error> {
        self.write_checkpoint(cursor, None)
    }

    /// Ends members, fsyncs, and writes the checkpoint listing the open files (plus `extra`, a file
    /// being created).
    fn write_checkpoint(
        &mut self,
        cursor: Cursor<'_>,
        extra: Option<&OpenSegment>,
    ) -> Result<(), Error> {
        let mut files = Vec::new();
        for open in self.segments.iter_mut().chain(self.rejects.as_mut()) {
            open.segment.end_member()?;
            files.push(open.record());
        }
        files.extend(extra.map(OpenSegment::record));
        let saved = Checkpoint {
            version: checkpoint::VERSION,
            files,
            last_event_id: cursor.last_event_id.to_string(),
            last_dt: cursor.last_dt.to_string(),
            // Keep the checkpoint small: resends after a reconnect concern the boundary millisecond.
            recent_ids: cursor
                .recent_ids
                .newest(RECENT_IDS_IN_CHECKPOINT)
                .iter()
                .map(|key| format!("{key:x}"))
                .collect(),
            next_seq: self.next_seq,
            layout: Some(self.layout.as_str().to_string()),
        };
        checkpoint::write(&self.cfg.dir, self.layout, &saved)?;
        self.n_checkpoints += 1;
        self.n_checkpoints_total += 1;
        Ok(())
    }

    /// How many checkpoints were written since the archive was opened: everything written
    /// before the latest one is durable.
    pub fn checkpoints_total(&self) -> u64 {
        self.n_checkpoints_total
    }

    /// How many files retention deleted since the last call.
    pub fn take_deletion_count(&mut self) -> u64 {
        std::mem::take(&mut self.n_deleted)
    }

    /// How many checkpoints were written since the last call.
    pub fn take_checkpoint_count(&mut self) -> u64 {
        std::mem::take(&mut self.n_checkpoints)
    }

    /// Completes the open segments that `reason` applies to (all of them for a signal or
    /// shutdown, else those due by the policy): seal, checkpoint without them, rename, run
    /// `--on-ready`; then applies retention.
    pub fn rotate(
        &mut self,
        reason: rotate::Reason,
        cursor: Cursor<'_>,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let all = matches!(reason, rotate::Reason::Signal | rotate::Reason::Shutdown);
        let mut idx = 0;
        let mut any = false;
        while idx < self.segments.len() {
            let reason = match all {
                true => Some(reason),
                false => self.due(&self.segments[idx], now),
            };
            match reason {
                Some(reason) => {
                    let open = self.segments.remove(idx);
                    self.complete(open, cursor, reason)?;
                    any = true;
                }
                None => idx += 1,
            }
        }
        if any {
            self.apply_retention(now)?;
        }
        Ok(())
    }

    /// Completes a file taken out of `self`: seal it, checkpoint without it, rename it, and hand
    /// it to `--on-ready`. The checkpoint comes before the rename (see `SealedSegment::complete`).
    fn complete(
        &mut self,
        open: OpenSegment,
        cursor: Cursor<'_>,
        reason: rotate::Reason,
    ) -> Result<(), Error> {
        let sealed = open.segment.seal()?;
        self.write_checkpoint(cursor, None)?;
        let n_lines = sealed.n_lines;
        let path = sealed.complete()?;
        let why = match open.kind {
            FileKind::Segment => format!("rotation by {reason}"),
            FileKind::Rejects => format!("rejects, at {reason}"),
        };
        log::info!("completed {} ({n_lines} lines, {why})", path.display());
        if open.kind == FileKind::Segment {
            self.newly_completed.push((path.clone(), reason));
        }
        self.completed(path, &open.final_name, open.kind);
        Ok(())
    }

    /// The event files completed since the last call, with why.
    pub fn take_completed(&mut self) -> Vec<(PathBuf, rotate::Reason)> {
        std::mem::take(&mut self.newly_completed)
    }

    /// Deletes completed files beyond `--keep-days` / `--max-archive-bytes`, oldest first, never
    /// an open one. Rejects files count too: they are archive output like the rest.
    pub fn apply_retention(&mut self, now: OffsetDateTime) -> Result<(), Error> {
        let policy = self.cfg.retention;
        if !policy.is_active() {
            return Ok(());
        }
        let dir = self.cfg.dir.clone();
        let mut completed = Vec::new();
        for Found { rel, name, entry } in walk(&dir, self.layout)? {
            let is_segment = match self.layout {
                Layout::Flat => matches!(self.cfg.naming.parse(&name), Some((_, None))),
                Layout::Partitioned => {
                    matches!(classify(&name), Some(FileRole::Events { open: false, .. }))
                }
            };
            let is_rejects = naming::parse_rejects(&name) == Some(None);
            if !is_segment && !is_rejects {
                continue;
            }
            let meta = entry
                .metadata()
                .map_err(|e| Error::io("reading metadata of", &entry.path(), e))?;
            let modified = meta.modified().map(OffsetDateTime::from).unwrap_or(now);
            completed.push(retention::Completed {
                name: rel,
                modified,
                size: meta.len(),
            });
        }
        for name in retention::select(&policy, &completed, now) {
            let path = dir.join(&name);
            fs::remove_file(&path).map_err(|e| Error::io("deleting", &path, e))?;
            if self.layout == Layout::Partitioned
                && let Some(parent) = path.parent()
                && parent != dir
            {
                // The last file of a day takes its partition directory along (if now empty).
                let _ = fs::remove_dir(parent);
            }
            self.n_deleted += 1;
            log::info!(
                "deleted {} (--keep-days / --max-archive-bytes)",
                path.display()
            );
        }
        Ok(())
    }

    /// Completes every open file (at shutdown).
    pub fn close(&mut self, cursor: Cursor<'_>, now: OffsetDateTime) -> Result<(), Error> {
        self.rotate(rotate::Reason::Shutdown, cursor, now)?;
        if let Some(open) = self.rejects.take() {
            self.complete(open, cursor, rotate::Reason::Shutdown)?;
        }
        Ok(())
    }

    /// Records a completed file and starts the `--on-ready` program for it with its path and
    /// its key (`rel`, the path relative to the directory); archive files only, not rejects.
    fn completed(&mut self, path: PathBuf, rel: &str, kind: FileKind) {
        self.completed_bytes += fs::metadata(&path).map_or(0, |m| m.len());
        if kind == FileKind::Segment {
            self.on_ready.start(&path, rel);
        }
    }

    /// Collects finished `--on-ready` programs and logs their failures; never blocks.
    pub fn reap_children(&mut self) {
        self.on_ready.reap();
    }

    /// The newest open segment's name and the compressed size of all open segments, if any
    /// is open.
    pub fn open_file(&self) -> Option<(&str, u64)> {
        let newest = self.segments.iter().max_by_key(|o| o.opened_at)?;
        let bytes = self.segments.iter().map(|o| o.segment.compressed_bytes());
        Some((newest.name.as_str(), bytes.sum()))
    }

    /// Compressed bytes written by this process, to archive and rejects files.
    pub fn bytes_written(&self) -> u64 {
        let open = self
            .segments
            .iter()
            .chain(&self.rejects)
            .map(|o| o.segment.compressed_bytes());
        self.completed_bytes + open.sum::<u64>()
    }
}

/// How many recent ids a checkpoint carries: at 100 events/s about ten seconds, far more than
/// the events sharing the resume millisecond, at ~40 KB of JSON per checkpoint.
const RECENT_IDS_IN_CHECKPOINT: usize = 1024;

/// The end of UTC day `date` (the next midnight), in Unix ms.
fn day_end_ms(date: Date) -> i64 {
    let next = date.next_day().unwrap_or(date);
    next.midnight()
        .assume_utc()
        .unix_timestamp()
        .saturating_mul(1000)
}

/// The layout of the directory: the one its checkpoint records (flat when it records none, or
/// when there is no checkpoint but flat files); else the one asked for, partitioned by default
/// (flat with the Python archiver's naming, which has no partitions).
fn choose_layout(cfg: &Config, saved: Option<&Checkpoint>) -> Result<Layout, Error> {
    let layout_error = |message: String| Error::Layout {
        dir: cfg.dir.clone(),
        message,
    };
    let recorded = match saved {
        Some(saved) => Some(saved.layout().map_err(|e| Error::Checkpoint {
            path: checkpoint::path(&cfg.dir, Layout::Flat),
            message: e.to_string(),
        })?),
        None => walk(&cfg.dir, Layout::Flat)?
            .iter()
            .any(|f| classify(&f.name).is_some())
            .then_some(Layout::Flat),
    };
    let wsr = cfg.naming == Naming::WikistreamReader;
    let layout = match (recorded, cfg.layout) {
        (Some(recorded), Some(asked)) if recorded != asked => {
            return Err(layout_error(format!(
                "this archive directory has the {} layout, not the {} one asked for by --layout; \
                 keep its layout (leave out --layout) or use another directory",
                recorded.as_str(),
                asked.as_str()
            )));
        }
        (Some(recorded), _) => recorded,
        (None, Some(asked)) => asked,
        (None, None) if wsr => Layout::Flat,
        (None, None) => Layout::Partitioned,
    };
    if layout == Layout::Partitioned && wsr {
        return Err(layout_error(
            "this archive directory has the partitioned layout; --naming wikistreamreader \
             needs the flat one"
                .into(),
        ));
    }
    Ok(layout)
}

/// Fails early, with the path, when `dir` cannot take new files.
fn check_writable(dir: &Path) -> Result<(), Error> {
    let probe = dir.join(format!(".wikistream-archiver-probe-{}", std::process::id()));
    // `create_new` also refuses a link planted at the probe's name.
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    drop(
        Error::open(&mut options, "writing in directory", &probe).map_err(|e| match e {
            Error::Io { source, .. } => Error::io("writing in directory", dir, source),
            other => other,
        })?,
    );
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

    #[test]
    fn line_feeds_in_json_become_spaces() {
        assert_eq!(one_line("{\"a\":\n1}"), "{\"a\": 1}");
        assert!(matches!(one_line("{}"), Cow::Borrowed(_)));
    }
}
