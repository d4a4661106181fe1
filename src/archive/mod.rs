//! The archive directory: `Archive` appends events and rejects, checkpoints, completes files
//! (by rotation, at a day's end, at shutdown) and applies retention.
//!
//! This file owns sequence numbers and the order of durable steps. Its parts own the rest:
//! `open` opening and the layout choice, `recover` crash recovery at start, `partition` where an
//! event goes, `naming` the names of event and rejects files, `lock` the one-writer lock,
//! `handoff` what shipping is told and asked, `listing` directory listings for readers, `writer` the
//! bytes of one file, `reader` reading members back, `checkpoint` the checkpoint format,
//! `rotate` and `retention` their policies. It does not parse SSE, talk to the network or decide
//! what is a reject: callers hand it finished lines and the resume point (`ResumePoint`) that
//! goes with them.

mod append;
pub mod checkpoint;
mod error;
pub mod handoff;
pub mod listing;
pub mod lock;
pub mod naming;
mod open;
pub mod partition;
pub mod reader;
mod recover;
pub mod retention;
pub mod rotate;
pub mod seek;
mod writer;

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use time::{Date, OffsetDateTime};

use self::checkpoint::{Checkpoint, FileKind, OpenFile};
pub use self::error::Error;
pub use self::handoff::Handoff;
pub use self::listing::{Listing, list_archive};
pub use self::lock::{DirLock, LOCK_FILE};
pub use self::naming::{FileRole, Layout, Naming, classify};
use self::partition::OpenPartition;
pub use self::partition::{Field, Place};
pub use self::reader::{IntactPrefix, intact_prefix};
pub use self::recover::DAMAGED_DIR;
use self::writer::PartFile;
use crate::event::{DEDUP_WINDOW, RecentIds, RejectReason};

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
    /// Which completed files to delete.
    pub retention: retention::Policy,
    /// Partitioned: how many streams beyond `streams` one run writes (`--max-streams`).
    pub max_streams: usize,
    /// How many event files are open at once at most (`--max-open-files`, at most
    /// `MAX_OPEN_FILES_LIMIT`); the least recently written one is completed for another.
    pub max_open_files: usize,
}

/// The resume point: where the stream continues (after the last handled event's id, else
/// from the last archived `meta.dt`), with the window of recent `meta.id`s that recognises the
/// events a resume sends again. Every checkpoint records the one that goes with its bytes.
#[derive(Debug)]
pub struct ResumePoint {
    /// The id of the last event handled, sent as `Last-Event-ID`; empty when there is none.
    pub last_event_id: String,
    /// `meta.dt` of the last archived event, for gap warnings and the `since=` fallback.
    pub last_dt: String,
    pub recent_ids: RecentIds,
}

impl ResumePoint {
    /// The resume point of a new archive: nothing handled yet.
    pub fn start() -> ResumePoint {
        ResumePoint {
            last_event_id: String::new(),
            last_dt: String::new(),
            recent_ids: RecentIds::new(DEDUP_WINDOW),
        }
    }
}

/// What opening an archive recovered: the resume point, and how the first connection starts.
#[derive(Debug)]
pub struct Recovered {
    pub point: ResumePoint,
    /// Set when there is no id to resume after (a file came up shorter than the checkpoint
    /// said, or the server sends no ids): the first connection asks for `since=` this time
    /// (Unix ms) instead.
    pub since_ms: Option<i64>,
    /// A file came up shorter than the checkpoint: its lost events are fetched again.
    pub rewound: bool,
}

impl Recovered {
    /// Nothing to recover: a new archive, or `tail`.
    pub fn fresh() -> Recovered {
        Recovered {
            point: ResumePoint::start(),
            since_ms: None,
            rewound: false,
        }
    }
}

/// The most event files `--max-open-files` may keep open at once: a bound on descriptors, on
/// compressor memory (some hundreds of KB each) and on the checkpoint, which lists them.
pub const MAX_OPEN_FILES_LIMIT: usize = 256;
/// The longest event id kept as the resume point's `Last-Event-ID`. EventStreams' ids are a
/// JSON entry of about 100 bytes per topic-partition; a longer one is not kept (the resume
/// point stays at the previous id), so that it bounds the checkpoint.
pub const MAX_RESUME_ID_BYTES: usize = 16 * 1024;

/// Whether an append wrote the line, or refused it for the rejects file and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    Written,
    Refused(RejectReason),
}

/// A file being written, with what rotation needs to know about it.
struct WritingFile {
    kind: FileKind,
    part: PartFile,
    /// The path relative to the archive directory while open, and when completed.
    name: String,
    final_name: String,
    opened_at: OffsetDateTime,
    /// The partitioned layout's stream directory and date of the file.
    partition: Option<(String, Date)>,
    /// When a line was last written into it, in the archive's count of lines written.
    last_write: u64,
}

impl WritingFile {
    fn partition(&self) -> Option<OpenPartition<'_>> {
        self.partition.as_ref().map(|(stream, date)| OpenPartition {
            stream,
            date: *date,
            opened_at: self.opened_at,
        })
    }

    fn record(&self) -> OpenFile {
        let (n_lines, length) = self.part.durable();
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
    event_files: Vec<WritingFile>,
    rejects: Option<WritingFile>,
    next_seq: u64,
    /// Compressed bytes of the files completed by this process.
    completed_bytes: u64,
    /// Shipping, told of completed files and asked before retention deletes one.
    handoff: Option<Arc<dyn Handoff>>,
    /// `Handoff::confirmed_total` when retention last ran.
    confirmed_seen: u64,
    /// Checkpoints written since the archive was opened.
    n_checkpoints_total: u64,
    /// Lines written by this process, the clock of `WritingFile::last_write`.
    n_lines_written: u64,
    /// The streams beyond the asked-for ones that this run wrote, for `--max-streams`.
    other_streams: std::collections::HashSet<String>,
    /// How many event files may be open: `--max-open-files`, lower once descriptors ran out.
    open_files_ceiling: usize,
    /// What happened since `take_news` last asked.
    news: News,
}

/// What the archive did since it was last asked (`Archive::take_news`), for the counters.
#[derive(Debug, Default)]
pub struct News {
    /// Checkpoints written.
    pub n_checkpoints: u64,
    /// Completed files deleted by retention.
    pub n_deleted: u64,
    /// Event files completed, with the reason.
    pub completed: Vec<(PathBuf, rotate::RotationReason)>,
}

impl Archive {
    /// The layout of the directory (recorded in its checkpoint).
    pub fn layout(&self) -> Layout {
        self.layout
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
        point: &ResumePoint,
    ) -> Result<WritingFile, Error> {
        let part = self.create_part(&name, &final_name, point)?;
        log::info!("opened {}", part.part_path().display());
        let open = WritingFile {
            kind,
            part,
            name,
            final_name,
            opened_at: now,
            partition,
            last_write: self.n_lines_written,
        };
        self.write_checkpoint_shedding(point, Some(&open))?;
        Ok(open)
    }

    /// Whether an open event file must be completed now, and why.
    pub fn rotation_due(&self, now: OffsetDateTime) -> Option<rotate::RotationReason> {
        self.event_files.iter().find_map(|open| self.due(open, now))
    }

    fn due(&self, open: &WritingFile, now: OffsetDateTime) -> Option<rotate::RotationReason> {
        rotate::due(
            &self.cfg.policy,
            open.opened_at,
            open.part.n_lines(),
            open.part.compressed_bytes(),
            now,
        )
    }

    /// Makes everything written so far durable and records it with `point` in the checkpoint.
    pub fn checkpoint(&mut self, point: &ResumePoint) -> Result<(), Error> {
        self.write_checkpoint_shedding(point, None)
    }

    /// `write_checkpoint`, completing the least recently written files while descriptors are
    /// out (a file that is completed closes its own, and is no longer listed).
    fn write_checkpoint_shedding(
        &mut self,
        point: &ResumePoint,
        extra: Option<&WritingFile>,
    ) -> Result<(), Error> {
        loop {
            match self.write_checkpoint(point, extra) {
                Err(e) if e.is_out_of_descriptors() && !self.event_files.is_empty() => {
                    self.lower_ceiling(&e);
                    self.complete_least_recent(point)?;
                }
                other => return other,
            }
        }
    }

    /// Ends members, fsyncs, and writes the checkpoint listing the open files (plus `extra`, a file
    /// being created).
    fn write_checkpoint(
        &mut self,
        point: &ResumePoint,
        extra: Option<&WritingFile>,
    ) -> Result<(), Error> {
        let mut files = Vec::new();
        for open in self.event_files.iter_mut().chain(self.rejects.as_mut()) {
            open.part.end_member()?;
            files.push(open.record());
        }
        files.extend(extra.map(WritingFile::record));
        let saved = Checkpoint {
            version: checkpoint::VERSION,
            files,
            last_event_id: point.last_event_id.clone(),
            last_dt: point.last_dt.clone(),
            // Keep the checkpoint small: resends after a reconnect concern the boundary millisecond.
            recent_ids: point
                .recent_ids
                .newest(RECENT_IDS_IN_CHECKPOINT)
                .iter()
                .map(|key| format!("{key:x}"))
                .collect(),
            next_seq: self.next_seq,
            layout: Some(self.layout.as_str().to_string()),
        };
        checkpoint::write(&self.cfg.dir, self.layout, &saved)?;
        self.news.n_checkpoints += 1;
        self.n_checkpoints_total += 1;
        Ok(())
    }

    /// How many checkpoints were written since the archive was opened: everything written
    /// before the latest one is durable.
    pub fn checkpoints_total(&self) -> u64 {
        self.n_checkpoints_total
    }

    /// What the archive did since the last call.
    pub fn take_news(&mut self) -> News {
        std::mem::take(&mut self.news)
    }

    /// Completes the open event files that the rotation policy says are due: seal, checkpoint
    /// without them, rename, run `--on-ready`; then applies retention.
    pub fn complete_due(&mut self, point: &ResumePoint, now: OffsetDateTime) -> Result<(), Error> {
        self.complete_where(point, now, |archive, open| archive.due(open, now))
    }

    /// Completes every open event file for `reason` (a signal, shutdown), as `complete_due`.
    pub fn complete_all(
        &mut self,
        reason: rotate::RotationReason,
        point: &ResumePoint,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        self.complete_where(point, now, |_, _| Some(reason))
    }

    fn complete_where(
        &mut self,
        point: &ResumePoint,
        now: OffsetDateTime,
        reason_for: impl Fn(&Archive, &WritingFile) -> Option<rotate::RotationReason>,
    ) -> Result<(), Error> {
        let mut idx = 0;
        let mut any = false;
        while idx < self.event_files.len() {
            match reason_for(self, &self.event_files[idx]) {
                Some(reason) => {
                    let open = self.event_files.remove(idx);
                    self.complete(open, Some(point), reason)?;
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
    /// it to `--on-ready`. The checkpoint comes before the rename (see `SealedFile::complete`);
    /// there is none while the archive opens (`point` is `None`: see `reopen_listed`).
    fn complete(
        &mut self,
        open: WritingFile,
        point: Option<&ResumePoint>,
        reason: rotate::RotationReason,
    ) -> Result<(), Error> {
        let sealed = open.part.seal()?;
        if let Some(point) = point {
            self.write_checkpoint(point, None)?;
        }
        let n_lines = sealed.n_lines;
        let path = sealed.complete()?;
        let why = match open.kind {
            FileKind::Events => format!("rotation by {reason}"),
            FileKind::Rejects => format!("rejects, at {reason}"),
        };
        log::info!("completed {} ({n_lines} lines, {why})", path.display());
        if open.kind == FileKind::Events {
            self.news.completed.push((path.clone(), reason));
        }
        self.hand_on(path);
        Ok(())
    }

    /// Deletes completed files beyond `--keep-days` / `--max-archive-bytes` (`retention::apply`),
    /// with shipping on only those it confirmed.
    pub fn apply_retention(&mut self, now: OffsetDateTime) -> Result<(), Error> {
        let (dir, naming, policy) = (&self.cfg.dir, &self.cfg.naming, &self.cfg.retention);
        if let Some(handoff) = &self.handoff {
            self.confirmed_seen = handoff.confirmed_total();
        }
        let handoff = self.handoff.as_deref();
        self.news.n_deleted += retention::apply(dir, self.layout, naming, policy, now, handoff)?;
        Ok(())
    }

    /// Completes every open file (at shutdown).
    pub fn close(&mut self, point: &ResumePoint, now: OffsetDateTime) -> Result<(), Error> {
        self.complete_all(rotate::RotationReason::Shutdown, point, now)?;
        if let Some(open) = self.rejects.take() {
            self.complete(open, Some(point), rotate::RotationReason::Shutdown)?;
        }
        Ok(())
    }

    /// Counts the bytes of a completed file (by rotation or by recovery) and tells shipping.
    fn hand_on(&mut self, path: PathBuf) {
        self.completed_bytes += fs::metadata(&path).map_or(0, |m| m.len());
        if let Some(handoff) = &self.handoff {
            handoff.completed();
        }
    }

    /// The name of the newest open event file, if any.
    pub fn newest_open_name(&self) -> Option<&str> {
        let newest = self.event_files.iter().max_by_key(|o| o.opened_at)?;
        Some(newest.name.as_str())
    }

    /// The compressed size of all open event files together.
    pub fn open_bytes(&self) -> u64 {
        self.event_files
            .iter()
            .map(|o| o.part.compressed_bytes())
            .sum()
    }

    /// Compressed bytes written by this process, to archive and rejects files.
    pub fn bytes_written(&self) -> u64 {
        let open = self
            .event_files
            .iter()
            .chain(&self.rejects)
            .map(|o| o.part.compressed_bytes());
        self.completed_bytes + open.sum::<u64>()
    }
}

/// How many recent ids a checkpoint carries: at 100 events/s about ten seconds, far more than
/// the events sharing the resume millisecond, at ~40 KB of JSON per checkpoint.
pub(crate) const RECENT_IDS_IN_CHECKPOINT: usize = 1024;
