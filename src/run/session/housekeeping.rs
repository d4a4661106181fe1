//! The session's periodic work between reads: checkpoints, completing files (rotation,
//! SIGUSR1, shutdown), retention after shipping, and what the health thread and the counters are
//! told of the archive.

use std::sync::atomic::Ordering;
use std::time::Instant;

use time::OffsetDateTime;

use super::{PUBLISH_INTERVAL, Session, Stop};
use crate::archive::{self, Archive, News, rotate};
use crate::run::Signals;
use crate::run::sink::OutputClosed;
use crate::stats::Stats;
use crate::times::unix_ms;

impl Session {
    /// Forgets the tally of what a checkpoint has since made durable.
    pub(super) fn note_durable(&mut self) {
        let total = self.sink.archive().map_or(0, Archive::checkpoints_total);
        if total != self.seen_checkpoints {
            self.seen_checkpoints = total;
            self.unwritten.clear();
        }
    }

    /// Makes what was handled since the last checkpoint durable, if anything was.
    pub(in crate::run) fn checkpoint_if_dirty(&mut self) -> Result<(), archive::Error> {
        match self.dirty {
            true => self.checkpoint(),
            false => Ok(()),
        }
    }

    fn checkpoint(&mut self) -> Result<(), archive::Error> {
        if let Some((archive, point)) = self.archive_and_point() {
            archive.checkpoint(point)?;
        }
        self.dirty = false;
        self.last_checkpoint = Instant::now();
        self.note_durable();
        Ok(())
    }

    /// Completes the open event files: all of them for a signal or shutdown (`Some`), else
    /// those the rotation policy says are due.
    pub(super) fn complete_files(
        &mut self,
        all: Option<rotate::RotationReason>,
    ) -> Result<(), archive::Error> {
        let now = self.clock.now();
        if let Some((archive, point)) = self.archive_and_point() {
            match all {
                Some(reason) => archive.complete_all(reason, point, now)?,
                None => archive.complete_due(point, now)?,
            }
        }
        self.absorb_news(now);
        self.note_durable();
        Ok(())
    }

    /// Counts what the archive did: files completed (by rotation, or at a new day inside
    /// `append`), checkpoints (any proves that writing works again), retention's deletions.
    pub(super) fn absorb_news(&mut self, now: OffsetDateTime) {
        let Some(archive) = self.sink.archive_mut() else {
            return;
        };
        let News {
            n_checkpoints,
            n_deleted,
            completed,
        } = archive.take_news();
        let stats = &self.stats;
        for (path, reason) in completed {
            stats.rotations.add(reason);
            stats.note_completed(&path, unix_ms(now));
        }
        if n_checkpoints > 0 {
            Stats::add(&stats.checkpoints, n_checkpoints);
            stats.write_error_since.store(0, Ordering::Relaxed);
            stats
                .last_checkpoint_ms
                .store(unix_ms(now), Ordering::Relaxed);
        }
        Stats::add(&stats.retention_deletions, n_deleted);
    }

    /// Periodic work between reads: retention after shipping, SIGUSR1, minute rotation,
    /// checkpoints, and what the health thread shows.
    pub(in crate::run) fn housekeeping(&mut self, signals: &Signals) -> Result<(), Stop> {
        if self.sink.flush() == Err(OutputClosed) {
            return Err(Stop::OutputClosed);
        }
        if let Some(wikis) = &self.wikis
            && self.last_published.elapsed() >= PUBLISH_INTERVAL
        {
            self.stats.try_set_top_wikis(wikis);
            self.last_published = Instant::now();
        }
        let now = self.clock.now();
        let Some(archive) = self.sink.archive_mut() else {
            return Ok(());
        };
        let failed = Stop::ArchiveFailed;
        archive.retention_after_shipping(now).map_err(failed)?;
        if signals.rotate.swap(false, Ordering::Relaxed) {
            log::info!("SIGUSR1: completing the open file");
            self.complete_files(Some(rotate::RotationReason::Signal))
                .map_err(failed)?;
        }
        self.complete_due(self.clock.now()).map_err(failed)?;
        let interval_passed = self
            .cfg
            .checkpoint_interval
            .is_some_and(|i| self.last_checkpoint.elapsed() >= i);
        if interval_passed {
            self.checkpoint_if_dirty().map_err(failed)?;
        }
        self.absorb_news(self.clock.now());
        self.publish();
        Ok(())
    }

    pub(super) fn complete_due(&mut self, now: OffsetDateTime) -> Result<(), archive::Error> {
        match self.sink.archive().and_then(|a| a.rotation_due(now)) {
            Some(_) => self.complete_files(None),
            None => Ok(()),
        }
    }

    /// Hands the archive's state to the health thread.
    fn publish(&mut self) {
        let Some(archive) = self.sink.archive() else {
            return;
        };
        let stats = &self.stats;
        stats
            .bytes_written
            .store(archive.bytes_written(), Ordering::Relaxed);
        stats
            .open_file_bytes
            .store(archive.open_bytes(), Ordering::Relaxed);
        let open_name = archive.newest_open_name().unwrap_or("");
        stats.try_set_status_text(open_name, &self.point.last_event_id);
    }
}
