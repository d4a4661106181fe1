//! Crash recovery at start: `.part` files that no checkpoint lists are completed, and files the
//! checkpoint lists are reopened at their durable length.
//!
//! Nothing readable is thrown away. A torn or damaged gzip tail is cut off, the whole lines that
//! still decompress from it are written back as a fresh member, and the bytes that could not be
//! read are moved to `DIR/_damaged/` (Spark and Hadoop skip names that start with `_`). When a
//! checkpointed file ends before the checkpoint says, the events after the last one that
//! survived are fetched again: a rewound `Recovered` resume point says from where. The checkpoint format is
//! `checkpoint.rs`'s, the member scan `reader.rs`'s.

use std::collections::{HashSet, VecDeque};
use std::fs::{self, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::checkpoint::{FileKind, OpenFile};
use super::error::open_no_follow;
use super::listing::{Found, walk};
use super::naming::{FileRole, Layout, PART_SUFFIX, classify, parse_partition, parse_rejects};
use super::reader::{IntactPrefix, salvage, scan_intact};
use super::rotate::RotationReason;
use super::writer::{PartFile, create_dirs, sync_parent_dir};
use super::{Archive, Error, Recovered, ResumePoint, WritingFile};
use crate::event::{self, DEDUP_WINDOW, RecentIds};

/// Where unreadable bytes go, inside the archive directory.
pub const DAMAGED_DIR: &str = "_damaged";
/// A rewound resume point remembers the `meta.id`s of the last surviving events, as many as the
/// window holds: the events a timestamp seek sends again are those since the seek point,
/// seconds of the stream.
const REWIND_IDS: usize = DEDUP_WINDOW;
/// With nothing of a file left, its events are fetched again from this long before the file
/// was opened: `meta.dt` runs a few seconds behind the wall clock that named the file.
const REWIND_MARGIN_SECS: i64 = 60;

/// The last surviving events of a file: their id keys and the last `meta.dt`.
#[derive(Default)]
struct Survivors {
    ids: VecDeque<u128>,
    last_dt: String,
}

impl Survivors {
    fn note(&mut self, line: &[u8]) {
        let Some(meta) = std::str::from_utf8(line)
            .ok()
            .and_then(|t| event::inspect(t).ok())
        else {
            return;
        };
        if let Some(id) = meta.id.as_deref() {
            if self.ids.len() == REWIND_IDS {
                self.ids.pop_front();
            }
            self.ids.push_back(event::id_key(id));
        }
        if let Some(dt) = meta.dt.as_deref() {
            self.last_dt.clear();
            self.last_dt.push_str(dt);
        }
    }
}

impl Archive {
    /// Completes `.part` files that no checkpoint knows (e.g. the checkpoint was lost, or a crash
    /// came between a rotation's checkpoint and its rename): repaired as far as they read, then
    /// given their final name. Only an empty file is removed.
    pub(super) fn recover_orphans(&mut self, listed: &HashSet<String>) -> Result<(), Error> {
        let dir = self.cfg.dir.clone();
        let mut orphans = Vec::new();
        for Found { rel, name, .. } in walk(&dir, self.layout)? {
            let parsed = match self.layout {
                Layout::Flat => self.cfg.naming.parse(&name),
                // Ours, with the stream directory's label.
                Layout::Partitioned => match classify(&name) {
                    Some(FileRole::Events { seq, open }) => Some((
                        seq,
                        open.then(|| name.strip_suffix(PART_SUFFIX).unwrap_or(&name).to_string()),
                    )),
                    _ => None,
                },
            };
            let open = match parsed {
                Some((seq, final_name)) => {
                    self.next_seq = self.next_seq.max(seq + 1);
                    final_name
                }
                None => parse_rejects(&name).flatten(),
            };
            if let Some(final_name) = open
                && !listed.contains(&rel)
            {
                // The final name goes in the same directory.
                let final_rel = match rel.rsplit_once('/') {
                    Some((parent, _)) => format!("{parent}/{final_name}"),
                    None => final_name,
                };
                orphans.push((rel, final_rel));
            }
        }
        orphans.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, final_name) in orphans {
            let path = dir.join(&name);
            let final_path = dir.join(&final_name);
            let prefix = scan_intact(&path, &mut |_| {})?;
            if prefix.file_length == 0 {
                log::warn!("{} is empty; removing it", path.display());
                fs::remove_file(&path).map_err(|e| Error::io("removing", &path, e))?;
                continue;
            }
            let salvaged = self.repair_tail(&path, &prefix)?;
            if prefix.length == 0 && salvaged.is_empty() {
                // Every byte went to `_damaged/`: nothing is left to complete.
                fs::remove_file(&path).map_err(|e| Error::io("removing", &path, e))?;
                continue;
            }
            let n_lines = prefix.n_lines + salvaged.len() as u64;
            if salvaged.is_empty() {
                fs::rename(&path, &final_path).map_err(|e| Error::io("renaming", &path, e))?;
                sync_parent_dir(&final_path)?;
            } else {
                let mut part = PartFile::reopen(
                    path.clone(),
                    final_path.clone(),
                    self.cfg.level,
                    prefix.length,
                    prefix.n_lines,
                )?;
                for line in &salvaged {
                    part.write_line(line)?;
                }
                part.seal()?.complete()?;
            }
            log::warn!(
                "completed {} left by an earlier run ({n_lines} lines)",
                final_path.display()
            );
            self.hand_on(final_path);
        }
        Ok(())
    }

    /// When the file at `path` does not read to its end: moves the unreadable bytes after the
    /// intact prefix to `_damaged/`, cuts the file to the prefix, and returns the whole lines
    /// that still decompress from what was cut, for the caller to write back.
    fn repair_tail(&self, path: &Path, prefix: &IntactPrefix) -> Result<Vec<Vec<u8>>, Error> {
        if prefix.length >= prefix.file_length {
            return Ok(Vec::new());
        }
        let salvaged = salvage(path, prefix.length)?;
        let kept = self.move_damaged(path, prefix.length)?;
        log::warn!(
            "{} has a torn tail (or damage): keeping {} of {} bytes ({} lines) and {} whole lines \
             that still decompress after them; the other bytes are in {}",
            path.display(),
            prefix.length,
            prefix.file_length,
            prefix.n_lines,
            salvaged.len(),
            kept.display()
        );
        let file = open_no_follow(OpenOptions::new().write(true), "opening", path)?;
        file.set_len(prefix.length)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("truncating", path, e))?;
        Ok(salvaged)
    }

    /// Copies the bytes of `path` from `offset` on into a new file under `_damaged/`, durably,
    /// and returns its path. The original is cut only after this returns.
    fn move_damaged(&self, path: &Path, offset: u64) -> Result<PathBuf, Error> {
        create_dirs(&self.cfg.dir, DAMAGED_DIR)?;
        let dir = self.cfg.dir.join(DAMAGED_DIR);
        let name = path
            .file_name()
            .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
        let mut n_try = 0;
        let (mut out, target) = loop {
            let suffix = if n_try == 0 {
                String::new()
            } else {
                format!("-{n_try}")
            };
            let target = dir.join(format!("{name}.from-{offset}{suffix}"));
            match open_no_follow(
                OpenOptions::new().write(true).create_new(true),
                "creating",
                &target,
            ) {
                Ok(file) => break (file, target),
                Err(Error::Io { source, .. })
                    if source.kind() == io::ErrorKind::AlreadyExists && n_try < 1000 =>
                {
                    n_try += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let mut source = open_no_follow(OpenOptions::new().read(true), "opening", path)?;
        source
            .seek(SeekFrom::Start(offset))
            .and_then(|_| io::copy(&mut source, &mut out))
            .and_then(|_| out.flush())
            .and_then(|()| out.sync_all())
            .map_err(|e| Error::io("copying damaged bytes to", &target, e))?;
        sync_parent_dir(&target)?;
        Ok(target)
    }

    /// Reopens a file listed in the checkpoint (`recover_listed`), unless as many event files
    /// as may be open are open, or descriptors run out: then the file is completed at its
    /// durable length instead, and so are reopened ones beyond the lowered ceiling.
    ///
    /// Crash window: no checkpoint is written on the way. A file completed here is still
    /// listed by the old checkpoint under its `.part` name; the next open finds that name gone
    /// and the final name there, and takes the file as completed. Its bytes are the durable
    /// ones the checkpoint covers, so nothing is lost or written twice.
    pub(super) fn reopen_listed(&mut self, file: &OpenFile) -> Result<Option<Recovered>, Error> {
        let full = self.event_files.len() >= self.open_files_ceiling;
        if file.kind == FileKind::Events && full {
            return self.complete_listed(file);
        }
        match self.recover_listed(file) {
            Err(e) if e.is_out_of_descriptors() && !self.event_files.is_empty() => {
                self.lower_ceiling(&e);
                while self.event_files.len() >= self.open_files_ceiling {
                    let open = self.event_files.pop().expect("files are open");
                    self.complete(open, None, RotationReason::OpenFiles)?;
                }
                self.complete_listed(file)
            }
            other => other,
        }
    }

    /// Reopens listed `file` only to complete it at once.
    fn complete_listed(&mut self, file: &OpenFile) -> Result<Option<Recovered>, Error> {
        let rewound = self.recover_listed(file)?;
        let reopened = self.event_files.pop_if(|open| open.name == file.name);
        if let Some(open) = reopened {
            self.complete(open, None, RotationReason::OpenFiles)?;
        }
        Ok(rewound)
    }

    /// Reopens a file listed in the checkpoint, cut to its durable length. When the file ends
    /// before that length, its readable lines are kept and the returned rewound resume point
    /// says where to fetch the rest again.
    pub(super) fn recover_listed(&mut self, file: &OpenFile) -> Result<Option<Recovered>, Error> {
        let dir = &self.cfg.dir;
        let part_path = dir.join(&file.name);
        let final_path = dir.join(&file.final_name);
        let actual_len = match fs::symlink_metadata(&part_path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::Symlink { path: part_path });
            }
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if file.length > 0 && !final_path.exists() {
                    log::warn!(
                        "{} is listed in the checkpoint but missing",
                        part_path.display()
                    );
                }
                return Ok(None);
            }
            Err(e) => return Err(Error::io("reading metadata of", &part_path, e)),
        };
        let opened_at = OffsetDateTime::from_unix_timestamp(file.opened_at)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let (part, rewind) = if actual_len < file.length {
            let (part, rewind) = self.salvage_short(file, part_path, final_path, actual_len)?;
            (part, Some(rewind))
        } else {
            if actual_len > file.length {
                log::info!(
                    "{}: dropping {} bytes written after the last checkpoint",
                    part_path.display(),
                    actual_len - file.length
                );
            }
            let part = PartFile::reopen(
                part_path,
                final_path,
                self.cfg.level,
                file.length,
                file.n_lines,
            )?;
            (part, None)
        };
        let partition = match (self.layout, file.kind) {
            (Layout::Partitioned, FileKind::Events) => {
                parse_partition(&file.name).map(|(stream, date)| (stream.to_string(), date))
            }
            _ => None,
        };
        let open = WritingFile {
            kind: file.kind,
            part,
            name: file.name.clone(),
            final_name: file.final_name.clone(),
            opened_at,
            partition,
            last_write: 0,
        };
        log::info!(
            "continuing {} ({} lines)",
            open.part.part_path().display(),
            open.part.n_lines()
        );
        match file.kind {
            FileKind::Events => self.event_files.push(open),
            FileKind::Rejects => self.rejects = Some(open),
        }
        // Lost rejects are not fetched again on their own: their events come with the rest.
        Ok(rewind.filter(|_| file.kind == FileKind::Events))
    }

    /// A checkpointed file that came up shorter than the checkpoint says: keeps what is
    /// readable of it and returns it open, with the rewound resume point that fetches the rest
    /// again.
    fn salvage_short(
        &self,
        file: &OpenFile,
        part_path: PathBuf,
        final_path: PathBuf,
        actual_len: u64,
    ) -> Result<(PartFile, Recovered), Error> {
        let mut survivors = Survivors::default();
        let prefix = scan_intact(&part_path, &mut |line| survivors.note(line))?;
        log::warn!(
            "{} is shorter ({actual_len} bytes) than the checkpoint says ({})",
            part_path.display(),
            file.length,
        );
        let salvaged = self.repair_tail(&part_path, &prefix)?;
        let mut part = PartFile::reopen(
            part_path,
            final_path,
            self.cfg.level,
            prefix.length,
            prefix.n_lines,
        )?;
        for line in &salvaged {
            survivors.note(line);
            part.write_line(line)?;
        }
        part.end_member()?;
        let since_ms = match crate::times::parse_rfc3339_ms(&survivors.last_dt) {
            Some(ms) => ms,
            None => (file.opened_at - REWIND_MARGIN_SECS).saturating_mul(1000),
        };
        // With nothing left, the seek time itself stands in for the last `meta.dt`, so that
        // the checkpoint `Archive::open` writes next carries it (a checkpoint without an id
        // resumes from it).
        let last_dt = match survivors.last_dt.is_empty() {
            true => crate::times::rfc3339_ms(since_ms),
            false => survivors.last_dt,
        };
        let keys: Vec<u128> = survivors.ids.into();
        let rewind = Recovered {
            point: ResumePoint {
                last_event_id: String::new(),
                last_dt,
                recent_ids: RecentIds::with_keys(DEDUP_WINDOW, &keys),
            },
            since_ms: Some(since_ms),
            rewound: true,
        };
        Ok((part, rewind))
    }
}
