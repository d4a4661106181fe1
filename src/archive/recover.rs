//! Crash recovery at start: `.part` files that no checkpoint lists are completed up to their
//! last intact gzip member, and files the checkpoint lists are reopened at their durable length.
//!
//! It runs before anything is written; the checkpoint format is `checkpoint.rs`'s, the member
//! scan `reader.rs`'s.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io;

use time::OffsetDateTime;

use super::checkpoint::{FileKind, OpenFile};
use super::listing::list_dir;
use super::naming::parse_rejects;
use super::reader::intact_prefix;
use super::writer::{Segment, sync_dir};
use super::{Archive, Error, OpenSegment};

impl Archive {
    /// Completes `.part` files that no checkpoint knows (e.g. the checkpoint was lost, or a crash
    /// came between a rotation's checkpoint and its rename): cut to the last intact gzip member,
    /// then given their final name. Only an empty file is removed.
    pub(super) fn recover_orphans(&mut self, listed: &HashSet<String>) -> Result<(), Error> {
        let dir = self.cfg.dir.clone();
        let mut orphans = Vec::new();
        for (name, _) in list_dir(&dir)? {
            let open = match self.cfg.naming.parse(&name) {
                Some((seq, final_name)) => {
                    self.next_seq = self.next_seq.max(seq + 1);
                    final_name.map(|f| (f, FileKind::Segment))
                }
                None => parse_rejects(&name)
                    .flatten()
                    .map(|f| (f, FileKind::Rejects)),
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
    pub(super) fn reopen(&mut self, file: &OpenFile) -> Result<(), Error> {
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
}
