//! Where each line goes: an event's JSON to the file of its stream and day (partitioned, as
//! `partition::route` decides) or to the one open file (flat), a reject to the rejects file;
//! each file opened when its first line comes.

use std::borrow::Cow;

use time::OffsetDateTime;

use super::checkpoint::FileKind;
use super::naming::{self, Layout, Naming};
use super::partition::{self, Target};
use super::writer::create_dirs;
use super::{Archive, Error, Place, ResumePoint, WritingFile, rotate};

impl Archive {
    /// Appends one event's JSON as a line to the file it belongs in, opening that first if
    /// needed. Partitioned, it first completes the stream's files of earlier days whose grace
    /// has passed (before the line, so that their checkpoint does not hold an event it does
    /// not claim).
    pub fn append(
        &mut self,
        data: &str,
        place: Place<'_>,
        now: OffsetDateTime,
        point: &ResumePoint,
    ) -> Result<(), Error> {
        let idx = match self.layout {
            Layout::Flat if !self.event_files.is_empty() => 0,
            Layout::Flat => {
                let (name, final_name) = self.cfg.naming.event_file_names(now, self.next_seq);
                self.next_seq += 1;
                let open = self.create(FileKind::Events, name, final_name, now, None, point)?;
                self.event_files.push(open);
                0
            }
            Layout::Partitioned => self.partition_for(place, now, point)?,
        };
        self.event_files[idx]
            .part
            .write_line(one_line(data).as_bytes())
    }

    /// The index of the open file for an event at `place`, after completing the files its
    /// arrival completes (`partition::route`); opens one if needed.
    fn partition_for(
        &mut self,
        place: Place<'_>,
        now: OffsetDateTime,
        point: &ResumePoint,
    ) -> Result<usize, Error> {
        let stream = self.stream_dir(place.stream);
        let event_time = place
            .dt_ms
            .and_then(|ms| OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok())
            .unwrap_or(now);
        let open: Vec<_> = self
            .event_files
            .iter()
            .map(WritingFile::partition)
            .collect();
        let route = partition::route(&open, &stream, event_time);
        let mut done = Vec::with_capacity(route.complete.len());
        for &idx in route.complete.iter().rev() {
            done.push(self.event_files.remove(idx));
        }
        for open in done.into_iter().rev() {
            self.complete(open, point, rotate::RotationReason::Date)?;
        }
        let date = match route.target {
            Target::Open(idx) => return Ok(idx),
            Target::New(date) => date,
        };
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

    /// The directory name of an event's stream: the asked-for name it matches, or its own.
    fn stream_dir(&self, stream: Option<&str>) -> String {
        let Some(stream) = stream else {
            return naming::stream_label(&self.cfg.streams[..self.cfg.streams.len().min(1)]);
        };
        let asked = self
            .cfg
            .streams
            .iter()
            .find(|name| partition::is_asked_stream(stream, name));
        naming::stream_label(&[asked.map_or(stream, String::as_str).to_string()])
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
