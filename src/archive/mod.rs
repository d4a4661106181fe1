//! The archive directory: recovery at start, appending events and rejects, checkpoints,
//! rotation, completion, the `--on-ready` hook and the one-writer lock.
//!
//! Owns file names, sequence numbers and the order of durable steps; `writer.rs` owns the bytes of
//! one file, `checkpoint.rs` the checkpoint format, `rotate.rs` the rotation policy. It does not
//! parse SSE, talk to the network or decide what is a reject: callers hand it finished lines and
//! the resume position (`Cursor`) that goes with them.

pub mod checkpoint;
pub mod reader;
pub mod retention;
pub mod rotate;
mod writer;

use std::borrow::Cow;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use time::OffsetDateTime;
use time::macros::format_description;

use self::checkpoint::{Checkpoint, FileKind, OpenFile};
pub use self::reader::{IntactPrefix, intact_prefix};
use self::writer::{Segment, sync_dir};
use crate::event::RecentIds;

/// An archive error always names the file or directory involved.
#[derive(Debug)]
pub enum Error {
    /// A file operation failed (disk full, permissions, I/O error).
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The checkpoint exists but cannot be used.
    Checkpoint { path: PathBuf, message: String },
    /// Another process holds the directory lock.
    Locked { dir: PathBuf, pid: String },
}

impl Error {
    fn io(action: &'static str, path: &Path, source: io::Error) -> Error {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// True for failures that may go away by themselves (a full disk being cleaned up).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Io { .. })
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
            Error::Checkpoint { path, message } => write!(
                f,
                "checkpoint {} cannot be used: {message}; to start afresh without it, move it away \
                 (events since it will not be fetched again, and open .part files will be completed as they are)",
                path.display()
            ),
            Error::Locked { dir, pid } => {
                write!(
                    f,
                    "another wikistream-archiver holds {} (pid {pid})",
                    dir.display()
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Checkpoint { .. } | Error::Locked { .. } => None,
        }
    }
}

/// Our final archive files end in this.
pub const SEGMENT_SUFFIX: &str = ".ndjson.gz";
/// Our files being written end in this (after the final name).
pub const PART_SUFFIX: &str = ".part";
/// The lock file in the archive directory.
pub const LOCK_FILE: &str = ".lock";

/// How files are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Naming {
    /// `<label>-<UTC start>-<seq 6>.ndjson.gz`, `.part` while open.
    Ours { label: String },
    /// The Python `wikistreamreader`'s: `stream_<YYYYMMDDTHHMMSS>_<seq 9>.gz`, `.ready` when complete.
    WikistreamReader,
}

impl Naming {
    /// The name while open and the final name of segment `seq` opened at `start`.
    pub fn segment_names(&self, start: OffsetDateTime, seq: u64) -> (String, String) {
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

    /// For a segment file name: its sequence number and, if it is still open, its final name.
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

/// `20250131T120000Z`: sorts as text in time order and is safe in every file system.
fn compact_utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .expect("formatting a UTC time with a fixed description cannot fail")
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

/// An exclusive lock on the archive directory, held for the life of the process.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Creates `dir` if needed and takes its lock, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("opening lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = if pid.trim().is_empty() {
                    "unknown".to_string()
                } else {
                    pid.trim().to_string()
                };
                return Err(Error::Locked {
                    dir: dir.to_path_buf(),
                    pid,
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io("locking", &path, e)),
        }
        file.set_len(0)
            .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(|e| Error::io("writing lock file", &path, e))?;
        Ok(DirLock { _file: file })
    }
}

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
    on_ready_children: Vec<(Child, PathBuf)>,
    /// Checkpoints written since `take_checkpoint_count` last asked.
    n_checkpoints: u64,
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
            cfg,
            segment: None,
            rejects: None,
            next_seq: saved.as_ref().map_or(1, |c| c.next_seq.max(1)),
            completed_bytes: 0,
            on_ready_children: Vec::new(),
            n_checkpoints: 0,
        };
        let listed: HashSet<String> = saved
            .iter()
            .flat_map(|c| c.files.iter().map(|f| f.name.clone()))
            .collect();
        archive.recover_orphans(&listed)?;
        let mut resume = Resume::default();
        if let Some(saved) = saved {
            for file in &saved.files {
                archive.reopen(file)?;
            }
            resume = Resume {
                last_event_id: saved.last_event_id,
                last_dt: saved.last_dt,
                recent_ids: saved
                    .recent_ids
                    .iter()
                    .filter_map(|hex| u128::from_str_radix(hex, 16).ok())
                    .collect(),
            };
        }
        Ok((archive, resume))
    }

    /// Completes `.part` files that no checkpoint knows (e.g. the checkpoint was lost, or a crash
    /// came between a rotation's checkpoint and its rename): cut to the last intact gzip member,
    /// then given their final name. Only an empty file is removed.
    fn recover_orphans(&mut self, listed: &HashSet<String>) -> Result<(), Error> {
        let dir = self.cfg.dir.clone();
        let mut orphans = Vec::new();
        for (name, _) in list_dir(&dir)? {
            let open = match self.cfg.naming.parse(&name) {
                Some((seq, final_name)) => {
                    self.next_seq = self.next_seq.max(seq + 1);
                    final_name.map(|f| (f, FileKind::Segment))
                }
                None => rejects_final_name(&name).map(|f| (f, FileKind::Rejects)),
            };
            if let Some((final_name, kind)) = open
                && !listed.contains(&name)
            {
                orphans.push((name, final_name, kind));
            }
        }
        orphans.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, final_name, kind) in orphans {
            let path = dir.join(&name);
            let prefix = intact_prefix(&path)?;
            if prefix.length == 0 {
                log::warn!(
                    "{} holds no complete gzip member ({} bytes); removing it",
                    path.display(),
                    prefix.file_length
                );
                fs::remove_file(&path).map_err(|e| Error::io("removing", &path, e))?;
                continue;
            }
            if prefix.length < prefix.file_length {
                log::warn!(
                    "{} has a torn tail: keeping {} of {} bytes ({} lines)",
                    path.display(),
                    prefix.length,
                    prefix.file_length,
                    prefix.n_lines
                );
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| Error::io("opening", &path, e))?;
                file.set_len(prefix.length)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| Error::io("truncating", &path, e))?;
            }
            let final_path = dir.join(&final_name);
            fs::rename(&path, &final_path).map_err(|e| Error::io("renaming", &path, e))?;
            sync_dir(&final_path)?;
            log::warn!(
                "completed {} left by an earlier run ({} lines)",
                final_path.display(),
                prefix.n_lines
            );
            self.completed(final_path, kind);
        }
        Ok(())
    }

    /// Reopens a file listed in the checkpoint, cut to its durable length.
    fn reopen(&mut self, file: &OpenFile) -> Result<(), Error> {
        let dir = &self.cfg.dir;
        let part_path = dir.join(&file.name);
        let final_path = dir.join(&file.final_name);
        let actual_len = match fs::metadata(&part_path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if file.length > 0 && !final_path.exists() {
                    log::warn!(
                        "{} is listed in the checkpoint but missing",
                        part_path.display()
                    );
                }
                return Ok(());
            }
            Err(e) => return Err(Error::io("reading metadata of", &part_path, e)),
        };
        let (length, n_lines) = if actual_len < file.length {
            let prefix = intact_prefix(&part_path)?;
            log::warn!(
                "{} is shorter ({actual_len} bytes) than the checkpoint says ({}); keeping its {} intact bytes",
                part_path.display(),
                file.length,
                prefix.length
            );
            (prefix.length, prefix.n_lines)
        } else {
            (file.length, file.n_lines)
        };
        if actual_len > length {
            log::info!(
                "{}: dropping {} bytes written after the last checkpoint",
                part_path.display(),
                actual_len - length
            );
        }
        let segment = Segment::reopen(part_path, final_path, self.cfg.level, length, n_lines)?;
        let opened_at = OffsetDateTime::from_unix_timestamp(file.opened_at)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let open = OpenSegment {
            kind: file.kind,
            segment,
            name: file.name.clone(),
            final_name: file.final_name.clone(),
            opened_at,
        };
        log::info!(
            "continuing {} ({n_lines} lines)",
            open.segment.part_path().display()
        );
        match file.kind {
            FileKind::Segment => self.segment = Some(open),
            FileKind::Rejects => self.rejects = Some(open),
        }
        Ok(())
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
            let stamp = compact_utc(now);
            let mut n_tries = 1;
            let mut final_name = format!("rejects-{stamp}{SEGMENT_SUFFIX}");
            while self.cfg.dir.join(&final_name).exists()
                || self
                    .cfg
                    .dir
                    .join(format!("{final_name}{PART_SUFFIX}"))
                    .exists()
            {
                n_tries += 1;
                final_name = format!("rejects-{stamp}-{n_tries}{SEGMENT_SUFFIX}");
            }
            let name = format!("{final_name}{PART_SUFFIX}");
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
        Ok(())
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
            let is_rejects = name.starts_with("rejects-") && name.ends_with(SEGMENT_SUFFIX);
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
        let Some(program) = &self.cfg.on_ready else {
            return;
        };
        if kind == FileKind::Rejects {
            return;
        }
        match Command::new(program)
            .arg(&path)
            .stdin(Stdio::null())
            .spawn()
        {
            Ok(child) => self.on_ready_children.push((child, path)),
            Err(e) => log::warn!(
                "--on-ready {}: cannot start it for {}: {e}",
                program.to_string_lossy(),
                path.display()
            ),
        }
    }

    /// Collects finished `--on-ready` programs and logs their failures; never blocks.
    pub fn reap_children(&mut self) {
        self.on_ready_children
            .retain_mut(|(child, path)| match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        log::warn!("--on-ready failed for {}: {status}", path.display());
                    }
                    false
                }
                Ok(None) => true,
                Err(e) => {
                    log::warn!("--on-ready for {}: {e}", path.display());
                    false
                }
            });
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

/// The entries of `dir` whose names are UTF-8 (all of ours are), with their names.
fn list_dir(dir: &Path) -> Result<Vec<(String, fs::DirEntry)>, Error> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("reading directory", dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading directory", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            out.push((name, entry));
        }
    }
    Ok(out)
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
    if rejects_final_name(name).is_some()
        || (name.starts_with("rejects-") && name.ends_with(SEGMENT_SUFFIX))
    {
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

/// The files of an archive directory: event files in sequence order, and rejects files.
#[derive(Debug, Default)]
pub struct Listing {
    pub events: Vec<(PathBuf, FileRole)>,
    pub rejects: Vec<PathBuf>,
}

/// Lists `dir` for reading (`cat`, `verify`): event files by sequence (then name), rejects
/// files by name. Other files (the checkpoint, the lock) are left out.
pub fn list_archive(dir: &Path) -> Result<Listing, Error> {
    let mut listing = Listing::default();
    let mut events = Vec::new();
    for (name, entry) in list_dir(dir)? {
        match classify(&name) {
            Some(FileRole::Rejects) => listing.rejects.push(entry.path()),
            Some(role @ FileRole::Events { seq, .. }) => {
                events.push((seq, name, entry.path(), role))
            }
            None => {}
        }
    }
    events.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    listing.events = events
        .into_iter()
        .map(|(_, _, path, role)| (path, role))
        .collect();
    listing.rejects.sort();
    Ok(listing)
}

/// For an open rejects file name, its final name.
fn rejects_final_name(name: &str) -> Option<String> {
    let base = name.strip_suffix(PART_SUFFIX)?;
    (base.starts_with("rejects-") && base.ends_with(SEGMENT_SUFFIX)).then(|| base.to_string())
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
        let (open, done) = naming.segment_names(datetime!(2025-01-31 12:00:05 UTC), 42);
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
        let (open, done) = naming.segment_names(datetime!(2025-11-07 00:05:00 UTC), 2);
        assert_eq!(open, "stream_20251107T000500_000000002.gz");
        assert_eq!(done, "stream_20251107T000500_000000002.gz.ready");
        assert_eq!(naming.parse(&open), Some((2, Some(done.clone()))));
        assert_eq!(naming.parse(&done), Some((2, None)));
        assert_eq!(naming.parse("stream_x_1.gz"), None);
    }

    #[test]
    fn rejects_names() {
        assert_eq!(
            rejects_final_name("rejects-20250131T120005Z.ndjson.gz.part").as_deref(),
            Some("rejects-20250131T120005Z.ndjson.gz")
        );
        assert_eq!(
            rejects_final_name("rejects-20250131T120005Z.ndjson.gz"),
            None
        );
        assert_eq!(rejects_final_name("other.part"), None);
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
