//! Where each line goes: an event's JSON to the file of its stream and day (partitioned, as
//! `partition::place` and `partition::route` decide, within `--max-streams` and
//! `--max-open-files`) or to the one open file (flat), a reject to the rejects file; each file
//! opened when its first line comes, with fewer files open when descriptors run out.

use std::borrow::Cow;

use time::OffsetDateTime;

use super::checkpoint::FileKind;
use super::naming::{self, Layout, Naming};
use super::partition::{self, Place, Target};
use super::rotate::RotationReason;
use super::writer::{PartFile, create_dirs};
use super::{Appended, Archive, Error, ResumePoint};
use crate::event::RejectReason;

/// Descriptors kept free below the number at which they ran out: a checkpoint's temporary file,
/// a directory sync, the rejects file and an `--on-ready` child's pipes.
const FD_RESERVE: usize = 4;

impl Archive {
    /// Appends one event's JSON as a line to the file it belongs in, opening that first if
    /// needed; partitioned, an event without a place (`partition::place`) or of one stream too
    /// many is refused, for the caller to write to the rejects. Partitioned, it first completes
    /// the stream's files of earlier days whose grace has passed (before the line, so that
    /// their checkpoint does not hold an event it does not claim).
    pub fn append(
        &mut self,
        data: &str,
        place: &Place<'_>,
        now: OffsetDateTime,
        point: &ResumePoint,
    ) -> Result<Appended, Error> {
        let idx = match self.layout {
            Layout::Flat if !self.event_files.is_empty() => 0,
            Layout::Flat => {
                let (name, final_name) = self.cfg.naming.event_file_names(now, self.next_seq);
                self.next_seq += 1;
                let open = self.create(FileKind::Events, name, final_name, now, None, point)?;
                self.event_files.push(open);
                0
            }
            Layout::Partitioned => {
                let (stream, event_time) = match partition::place(place, &self.cfg.streams, now) {
                    Ok((stream, time)) => (stream.to_string(), time),
                    Err(reason) => return Ok(Appended::Refused(reason)),
                };
                if !self.admit_stream(&stream) {
                    return Ok(Appended::Refused(RejectReason::TooManyStreams));
                }
                self.partition_for(stream, event_time, now, point)?
            }
        };
        self.n_lines_written += 1;
        let open = &mut self.event_files[idx];
        open.last_write = self.n_lines_written;
        open.part.write_line(one_line(data).as_bytes())?;
        Ok(Appended::Written)
    }

    /// Whether events of `stream` may be written: an asked-for stream always, another one
    /// while this run has written fewer than `--max-streams` others.
    fn admit_stream(&mut self, stream: &str) -> bool {
        if self.cfg.streams.iter().any(|asked| asked == stream)
            || self.other_streams.contains(stream)
        {
            return true;
        }
        if self.other_streams.len() >= self.cfg.max_streams {
            return false;
        }
        self.other_streams.insert(stream.to_string());
        true
    }

    /// The index of the open file of `stream` for an event at `event_time`, after completing
    /// the files its arrival completes (`partition::route`); opens one if needed, completing
    /// the least recently written file first when `--max-open-files` are open.
    fn partition_for(
        &mut self,
        stream: String,
        event_time: OffsetDateTime,
        now: OffsetDateTime,
        point: &ResumePoint,
    ) -> Result<usize, Error> {
        let files = &self.event_files;
        let open = |idx: usize| files[idx].partition();
        let route = partition::route(files.len(), open, &stream, event_time);
        let mut done = Vec::with_capacity(route.complete.len());
        for &idx in route.complete.iter().rev() {
            done.push(self.event_files.remove(idx));
        }
        for open in done.into_iter().rev() {
            self.complete(open, Some(point), RotationReason::Date)?;
        }
        let date = match route.target {
            Target::Open(idx) => return Ok(idx),
            Target::New(date) => date,
        };
        while self.event_files.len() >= self.open_files_ceiling {
            self.complete_least_recent(point)?;
        }
        let rel_dir = naming::partition_dir(&stream, date);
        create_dirs(&self.cfg.dir, &rel_dir)?;
        let naming = Naming::Ours {
            label: stream.clone(),
        };
        let (name, final_name) = naming.event_file_names(event_time, self.next_seq);
        self.next_seq += 1;
        let open = self.create(
            FileKind::Events,
            format!("{rel_dir}/{name}"),
            format!("{rel_dir}/{final_name}"),
            now,
            Some((stream, date)),
            point,
        )?;
        self.event_files.push(open);
        Ok(self.event_files.len() - 1)
    }

    /// Completes the event file written least recently (reason `open_files`), if any is open.
    pub(super) fn complete_least_recent(&mut self, point: &ResumePoint) -> Result<bool, Error> {
        let oldest =
            (0..self.event_files.len()).min_by_key(|&idx| self.event_files[idx].last_write);
        let Some(idx) = oldest else {
            return Ok(false);
        };
        let open = self.event_files.remove(idx);
        self.complete(open, Some(point), RotationReason::OpenFiles)?;
        Ok(true)
    }

    /// Creates the `.part` file `name`. Out of file descriptors (a lower `ulimit -n` than the
    /// limits assume), it completes open event files, least recently written first, until
    /// the file opens or none is left: archiving goes on with fewer files open.
    pub(super) fn create_part(
        &mut self,
        name: &str,
        final_name: &str,
        point: &ResumePoint,
    ) -> Result<PartFile, Error> {
        let (part_path, final_path) = (self.cfg.dir.join(name), self.cfg.dir.join(final_name));
        loop {
            match PartFile::create(part_path.clone(), final_path.clone(), self.cfg.level) {
                Err(e) if e.is_out_of_descriptors() && !self.event_files.is_empty() => {
                    self.lower_ceiling(&e);
                    while self.event_files.len() >= self.open_files_ceiling {
                        self.complete_least_recent(point)?;
                    }
                }
                other => return other,
            }
        }
    }

    /// Out of descriptors (`e`) with this many files open: from now on, keep `FD_RESERVE`
    /// fewer open, so that the checkpoint and the directory syncs find a descriptor too.
    pub(super) fn lower_ceiling(&mut self, e: &Error) {
        let ceiling = self.event_files.len().saturating_sub(FD_RESERVE).max(1);
        log::warn!(
            "{e}: keeping at most {ceiling} event files open from now on (--max-open-files is {})",
            self.cfg.max_open_files
        );
        self.open_files_ceiling = self.open_files_ceiling.min(ceiling);
    }

    /// Appends one line to the rejects file, opening it first if needed.
    pub fn reject(
        &mut self,
        line: &str,
        now: OffsetDateTime,
        point: &ResumePoint,
    ) -> Result<(), Error> {
        if self.rejects.is_none() {
            let rel_dir = match self.layout {
                Layout::Partitioned => {
                    create_dirs(&self.cfg.dir, naming::REJECTS_DIR)?;
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
            let open = self.create(FileKind::Rejects, name, final_name, now, None, point)?;
            self.rejects = Some(open);
        }
        let open = self
            .rejects
            .as_mut()
            .expect("the rejects file was opened above");
        open.part.write_line(line.as_bytes())
    }
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
