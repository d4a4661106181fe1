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
mod writer;

use std::borrow::Cow;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use self::checkpoint::{Checkpoint, FileKind, OpenFile};
pub use self::error::Error;
use self::hook::OnReady;
use self::listing::list_dir;
pub use self::listing::{Listing, list_archive};
pub use self::lock::{DirLock, LOCK_FILE};
pub use self::naming::{FileRole, Naming, classify};
pub use self::reader::{IntactPrefix, intact_prefix};
pub use self::recover::{DAMAGED_DIR, Rewind};
use self::writer::Segment;
use crate::event::RecentIds;

/// How the archive behaves; fixed for a run.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
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

/// A file being written, with what rotation needs to know about it.
struct OpenSegment {
    kind: FileKind,
    segment: Segment,
    name: String,
    final_name: String,
    opened_at: OffsetDateTime,
}

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
    segment: Option<OpenSegment>,
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
}

impl Archive {
    /// Opens `cfg.dir` (the caller holds its `DirLock`), recovers from the last checkpoint, and
    /// returns the archive with the position to resume from.
    pub fn open(cfg: Config) -> Result<(Archive, Resume), Error> {
        let dir = cfg.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| Error::io("creating directory", &dir, e))?;
        check_writable(&dir)?;
        let saved = checkpoint::read(&dir)?;
        let mut archive = Archive {
            on_ready: OnReady::new(cfg.on_ready.clone()),
            cfg,
            segment: None,
            rejects: None,
            next_seq: saved.as_ref().map_or(1, |c| c.next_seq.max(1)),
            completed_bytes: 0,
            n_checkpoints: 0,
            n_checkpoints_total: 0,
            n_deleted: 0,
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

    /// Appends one event's JSON as a line, opening a segment first if none is open.
    pub fn append(
        &mut self,
        data: &str,
        now: OffsetDateTime,
        cursor: Cursor<'_>,
    ) -> Result<(), Error> {
        if self.segment.is_none() {
            let (name, final_name) = self.cfg.naming.segment_names(now, self.next_seq);
            self.next_seq += 1;
            self.segment = Some(self.create(FileKind::Segment, name, final_name, now, cursor)?);
        }
        let open = self.segment.as_mut().expect("a segment was opened above");
        open.segment.write_line(one_line(data).as_bytes())
    }

    /// Appends one line to the rejects file, opening it first if needed.
    pub fn reject(
        &mut self,
        line: &str,
        now: OffsetDateTime,
        cursor: Cursor<'_>,
    ) -> Result<(), Error> {
        if self.rejects.is_none() {
            let mut n_try = 1;
            let (mut name, mut final_name) = naming::rejects_names(now, n_try);
            while self.cfg.dir.join(&final_name).exists() || self.cfg.dir.join(&name).exists() {
                n_try += 1;
                (name, final_name) = naming::rejects_names(now, n_try);
            }
            self.rejects = Some(self.create(FileKind::Rejects, name, final_name, now, cursor)?);
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
        };
        self.write_checkpoint(cursor, Some(&open))?;
        Ok(open)
    }

    /// Whether the open segment must be completed now.
    pub fn rotation_due(&self, now: OffsetDateTime) -> Option<rotate::Reason> {
        let open = self.segment.as_ref()?;
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
        for open in [self.segment.as_mut(), self.rejects.as_mut()]
            .into_iter()
            .flatten()
        {
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
        };
        checkpoint::write(&self.cfg.dir, &saved)?;
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

    /// Completes the open segment (if any): seal, checkpoint without it, rename, run `--on-ready`.
    pub fn rotate(
        &mut self,
        reason: rotate::Reason,
        cursor: Cursor<'_>,
        now: OffsetDateTime,
    ) -> Result<Option<PathBuf>, Error> {
        let Some(open) = self.segment.take() else {
            return Ok(None);
        };
        let path = self.complete(open, cursor, &format!("rotation by {reason}"))?;
        self.apply_retention(now)?;
        Ok(Some(path))
    }

    /// Completes a file taken out of `self`: seal it, checkpoint without it, rename it, and hand
    /// it to `--on-ready`. The checkpoint comes before the rename (see `SealedSegment::complete`).
    fn complete(
        &mut self,
        open: OpenSegment,
        cursor: Cursor<'_>,
        why: &str,
    ) -> Result<PathBuf, Error> {
        let sealed = open.segment.seal()?;
        self.write_checkpoint(cursor, None)?;
        let n_lines = sealed.n_lines;
        let path = sealed.complete()?;
        log::info!("completed {} ({n_lines} lines, {why})", path.display());
        self.completed(path.clone(), open.kind);
        Ok(path)
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
        for (name, entry) in list_dir(&dir)? {
            let is_segment = matches!(self.cfg.naming.parse(&name), Some((_, None)));
            let is_rejects = naming::parse_rejects(&name) == Some(None);
            if !is_segment && !is_rejects {
                continue;
            }
            let meta = entry
                .metadata()
                .map_err(|e| Error::io("reading metadata of", &entry.path(), e))?;
            let modified = meta.modified().map(OffsetDateTime::from).unwrap_or(now);
            completed.push(retention::Completed {
                name,
                modified,
                size: meta.len(),
            });
        }
        for name in retention::select(&policy, &completed, now) {
            let path = dir.join(&name);
            fs::remove_file(&path).map_err(|e| Error::io("deleting", &path, e))?;
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
            self.complete(open, cursor, "rejects, at shutdown")?;
        }
        Ok(())
    }

    /// Records a completed file and starts the `--on-ready` program for it (archive files only,
    /// not rejects).
    fn completed(&mut self, path: PathBuf, kind: FileKind) {
        self.completed_bytes += fs::metadata(&path).map_or(0, |m| m.len());
        if kind == FileKind::Segment {
            self.on_ready.start(&path);
        }
    }

    /// Collects finished `--on-ready` programs and logs their failures; never blocks.
    pub fn reap_children(&mut self) {
        self.on_ready.reap();
    }

    /// The open segment's `.part` name and compressed size so far, if one is open.
    pub fn open_file(&self) -> Option<(&str, u64)> {
        self.segment
            .as_ref()
            .map(|o| (o.name.as_str(), o.segment.compressed_bytes()))
    }

    /// Compressed bytes written by this process, to archive and rejects files.
    pub fn bytes_written(&self) -> u64 {
        let open = [&self.segment, &self.rejects]
            .into_iter()
            .flatten()
            .map(|o| o.segment.compressed_bytes());
        self.completed_bytes + open.sum::<u64>()
    }
}

/// How many recent ids a checkpoint carries: at 100 events/s about ten seconds, far more than
/// the events sharing the resume millisecond, at ~40 KB of JSON per checkpoint.
const RECENT_IDS_IN_CHECKPOINT: usize = 1024;

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
