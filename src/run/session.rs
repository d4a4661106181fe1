//! One pass from a checkpoint: the events of every connection until a write failure or the end.
//! It acts on each event's `sort` verdict (write, count, log), keeps the resume position that
//! goes with what was written, and does the periodic work between reads: checkpoints, rotation,
//! SIGUSR1, `--on-ready` children and publishing to the health thread.
//!
//! It never opens connections (connection.rs) and decides nothing that `sort`, `archive::rotate`
//! or `client::Backoff` decide.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::connection::Disconnect;
use super::sink::{OutputClosed, Sink};
use super::sort::{self, Verdict};
use super::{Clock, Config, Output, SessionConfig, Signals};
use crate::archive::{self, Archive, Cursor, Resume, rotate};
use crate::console::Printer;
use crate::event::{self, EventType, RecentIds, RejectReason};
use crate::labels::Label;
use crate::sse::{self, Item};
use crate::stats::{Stats, Unwritten, WikiCounts};
use crate::times::{self, unix_ms};

/// How many recent `meta.id`s are remembered to drop repeats. At 100 events/s this covers well
/// over a minute; resends after a reconnect concern the boundary millisecond only. 16 bytes each.
const DEDUP_WINDOW: usize = 8192;
/// How often the per-wiki counts are sorted and handed to `/status`: the status page polls
/// about this often, and sorting a thousand wikis each time costs little.
const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// The resume position that goes with what was written.
struct Position {
    /// The id of the last event handled; an `id:` line of an event that never completed is not
    /// used, or a cut connection would skip that event on resume.
    resume_id: String,
    /// `meta.dt` of the last archived event, for gap warnings and the `since=` fallback.
    last_dt: String,
    recent_ids: RecentIds,
}

impl Position {
    fn cursor(&self) -> Cursor<'_> {
        Cursor {
            last_event_id: &self.resume_id,
            last_dt: &self.last_dt,
            recent_ids: &self.recent_ids,
        }
    }
}

/// One pass from a checkpoint: lives across connections until a write failure or the end.
pub(super) struct Session {
    sink: Sink,
    pub(super) cfg: SessionConfig,
    pub(super) stats: Arc<Stats>,
    /// Events per wiki for `/status`; None without a status port, where nobody reads them.
    wikis: Option<WikiCounts>,
    last_published: Instant,
    clock: Clock,
    position: Position,
    /// `since=` for the first connection when the archive has no id to resume after.
    pub(super) resume_since_ms: Option<i64>,
    pub(super) server_retry: Option<Duration>,
    pub(super) n_archived: u64,
    pub(super) n_events_this_connection: u64,
    /// The next archived event is the first after a resume: compare its time with `last_dt`.
    pub(super) check_gap: bool,
    /// Events were handled since the last checkpoint.
    pub(super) dirty: bool,
    last_checkpoint: Instant,
    /// Set by `handle` when archiving must stop (a file error, `--max-events`, stdout gone).
    pub(super) failure: Option<Disconnect>,
    /// What was counted since the last checkpoint, taken back if writing fails before the next.
    unwritten: Unwritten,
    /// The archive's checkpoint count when `unwritten` was last cleared.
    seen_checkpoints: u64,
}

impl Session {
    /// A session writing into `archive` (none for `tail`) from the position `resume`.
    pub(super) fn new(
        archive: Option<Archive>,
        resume: Resume,
        cfg: &Config,
        clock: Clock,
        stats: Arc<Stats>,
    ) -> Session {
        let sink = match (cfg.output, archive) {
            (Output::Print(format), _) => Sink::Print(Printer::stdout(format)),
            (Output::ArchiveAndPrint(format), Some(archive)) => {
                Sink::ArchiveAndPrint(archive, Some(Printer::stdout(format)))
            }
            (Output::Archive, Some(archive)) => Sink::Archive(archive),
            (_, None) => unreachable!("run opens an archive unless printing only"),
        };
        let seen_checkpoints = sink.archive().map_or(0, Archive::checkpoints_total);
        Session {
            sink,
            cfg: cfg.session.clone(),
            stats,
            wikis: cfg.health.map(|_| WikiCounts::default()),
            last_published: Instant::now(),
            clock,
            position: Position {
                resume_id: resume.last_event_id,
                last_dt: resume.last_dt,
                recent_ids: RecentIds::with_keys(DEDUP_WINDOW, &resume.recent_ids),
            },
            resume_since_ms: resume.since_ms,
            server_retry: None,
            n_archived: 0,
            n_events_this_connection: 0,
            check_gap: false,
            dirty: false,
            last_checkpoint: Instant::now(),
            failure: None,
            unwritten: Unwritten::default(),
            seen_checkpoints,
        }
    }

    /// Forgets the tally of what a checkpoint has since made durable.
    fn note_durable(&mut self) {
        let total = self.sink.archive().map_or(0, Archive::checkpoints_total);
        if total != self.seen_checkpoints {
            self.seen_checkpoints = total;
            self.unwritten.clear();
        }
    }

    /// The session is abandoned after a write failure: what it wrote since the last checkpoint
    /// is cut off at the next open, so the counters and `--max-events` forget it too.
    pub(super) fn forget_unwritten(&mut self) {
        self.note_durable();
        self.stats.uncount(&self.unwritten);
        self.n_archived = self.n_archived.saturating_sub(self.unwritten.n_events);
        if self.unwritten.n_events > 0 {
            log::info!(
                "{} events since the last checkpoint were not kept; they will be fetched again",
                self.unwritten.n_events
            );
        }
        self.unwritten.clear();
    }

    /// The id to resume after, if any.
    pub(super) fn resume_id(&self) -> &str {
        &self.position.resume_id
    }

    /// `meta.dt` of the last archived event, empty if none.
    pub(super) fn last_dt(&self) -> &str {
        &self.position.last_dt
    }

    /// Forgets the resume id (the server refused it).
    /// Whether events go to standard output as well as (or instead of) the archive.
    pub(super) fn prints(&self) -> bool {
        self.sink.prints()
    }

    pub(super) fn clear_resume_id(&mut self) {
        self.position.resume_id.clear();
    }

    /// The archive (none for `tail`) and the resume position that goes with what was written.
    fn archive_and_cursor(&mut self) -> Option<(&mut Archive, Cursor<'_>)> {
        let archive = self.sink.archive_mut()?;
        Some((archive, self.position.cursor()))
    }

    pub(super) fn checkpoint(&mut self) -> Result<(), archive::Error> {
        if let Some((archive, cursor)) = self.archive_and_cursor() {
            archive.checkpoint(cursor)?;
        }
        self.dirty = false;
        self.last_checkpoint = Instant::now();
        self.note_durable();
        Ok(())
    }

    fn rotate(&mut self, reason: rotate::Reason) -> Result<(), archive::Error> {
        let now = self.clock.now();
        if let Some((archive, cursor)) = self.archive_and_cursor() {
            archive.rotate(reason, cursor, now)?;
        }
        self.count_completed(now);
        self.note_durable();
        Ok(())
    }

    /// Counts the files the archive completed (by rotation, or at a new day inside `append`).
    fn count_completed(&mut self, now: OffsetDateTime) {
        let Some(archive) = self.sink.archive_mut() else {
            return;
        };
        for (path, reason) in archive.take_completed() {
            self.stats.rotations.add(reason);
            self.stats.note_completed(&path, unix_ms(now));
        }
    }

    /// Completes every open file.
    pub(super) fn close(&mut self) -> Result<(), archive::Error> {
        // The segment goes the way of every rotation (and is counted like one); then the rest.
        self.rotate(rotate::Reason::Shutdown)?;
        let now = self.clock.now();
        if let Some((archive, cursor)) = self.archive_and_cursor() {
            archive.close(cursor, now)?;
            let n_bytes = archive.bytes_written();
            self.stats.bytes_written.store(n_bytes, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Periodic work between reads: `--on-ready` children, SIGUSR1, minute rotation,
    /// checkpoints, and what the health thread shows.
    pub(super) fn housekeeping(&mut self, signals: &Signals) -> Result<(), archive::Error> {
        if self.sink.flush() == Err(OutputClosed) {
            self.failure = Some(Disconnect::OutputClosed);
        }
        if let Some(wikis) = &self.wikis
            && self.last_published.elapsed() >= PUBLISH_INTERVAL
        {
            self.stats.try_set_top_wikis(wikis);
            self.last_published = Instant::now();
        }
        let Some(archive) = self.sink.archive_mut() else {
            return Ok(());
        };
        archive.reap_children();
        if signals.rotate.swap(false, Ordering::Relaxed) {
            log::info!("SIGUSR1: completing the open file");
            self.rotate(rotate::Reason::Signal)?;
        }
        self.rotate_if_due(self.clock.now())?;
        let interval_passed = self
            .cfg
            .checkpoint_interval
            .is_some_and(|i| self.last_checkpoint.elapsed() >= i);
        if self.dirty && interval_passed {
            self.checkpoint()?;
        }
        self.publish();
        Ok(())
    }

    fn rotate_if_due(&mut self, now: OffsetDateTime) -> Result<(), archive::Error> {
        match self.sink.archive().and_then(|a| a.rotation_due(now)) {
            Some(reason) => self.rotate(reason),
            None => Ok(()),
        }
    }

    /// Hands the archive's state to the health thread.
    fn publish(&mut self) {
        let Some(archive) = self.sink.archive_mut() else {
            return;
        };
        let stats = &self.stats;
        stats
            .bytes_written
            .store(archive.bytes_written(), Ordering::Relaxed);
        let (open_file, open_bytes) = archive.open_file().unwrap_or(("", 0));
        stats.open_file_bytes.store(open_bytes, Ordering::Relaxed);
        stats.try_set_status_text(open_file, &self.position.resume_id);
        // Any checkpoint (periodic, new file, rotation) proves that writing works again.
        let n_checkpoints = archive.take_checkpoint_count();
        if n_checkpoints > 0 {
            Stats::add(&stats.checkpoints, n_checkpoints);
            stats.write_error_since.store(0, Ordering::Relaxed);
            stats
                .last_checkpoint_ms
                .store(unix_ms(self.clock.now()), Ordering::Relaxed);
        }
        Stats::add(&stats.retention_deletions, archive.take_deletion_count());
    }

    /// Acts on one parsed item.
    pub(super) fn handle(&mut self, item: Item<'_>) {
        let event = match item {
            Item::Retry(ms) => {
                self.server_retry = Some(Duration::from_millis(ms));
                return;
            }
            Item::Event(event) => event,
        };
        if self.failure.is_some() {
            // Archiving stopped inside this chunk: later events are fetched again on resume.
            return;
        }
        self.n_events_this_connection += 1;
        // One clock read per event serves the health gauge, rotation and the rejects line.
        let now = self.clock.now();
        self.stats
            .last_event_at_ms
            .store(unix_ms(now), Ordering::Relaxed);
        let verdict = sort::sort(
            &event,
            self.cfg.keep_canary,
            &self.cfg.filter,
            &self.position.recent_ids,
        );
        let result = match verdict {
            Verdict::Archive { meta, key } => self.archive_event(event.data, &meta, key, now),
            Verdict::Reject(reason) => self.reject(reason, &event, now),
            Verdict::Canary => {
                Stats::add(&self.stats.canaries, 1);
                log::trace!("dropped canary event {}", event.id);
                Ok(())
            }
            Verdict::Filtered(reason) => {
                self.stats.filtered.add(reason);
                log::trace!("filtered out event {} by --{}", event.id, reason.as_str());
                Ok(())
            }
            Verdict::Duplicate => {
                Stats::add(&self.stats.duplicates, 1);
                log::debug!("dropped duplicate event {}", event.id);
                Ok(())
            }
        };
        if let Err(e) = result {
            self.failure = Some(Disconnect::ArchiveFailed(e));
            return;
        }
        self.dirty = true;
        if !event.id.is_empty() {
            self.position.resume_id.clear();
            self.position.resume_id.push_str(event.id);
        }
        if self
            .cfg
            .max_events
            .is_some_and(|max| self.n_archived >= max)
        {
            log::info!(
                "{} {} events (--max-events); stopping",
                if self.sink.archive().is_some() {
                    "archived"
                } else {
                    "printed"
                },
                self.n_archived
            );
            self.failure = Some(Disconnect::MaxEvents);
        }
    }

    fn archive_event(
        &mut self,
        data: &str,
        meta: &event::Meta<'_>,
        key: Option<u128>,
        now: OffsetDateTime,
    ) -> Result<(), archive::Error> {
        self.rotate_if_due(now)?;
        if let Some(dt) = &meta.dt {
            self.warn_on_gap(dt);
        }
        let dt_ms = meta.dt.as_deref().and_then(times::parse_rfc3339_ms);
        let place = archive::Place {
            stream: meta.stream.as_deref(),
            dt_ms,
        };
        if let Some((archive, cursor)) = self.archive_and_cursor() {
            archive.append(data, place, now, cursor)?;
            // A checkpoint inside `append` (a new file, a day completed) came before this line.
            self.count_completed(now);
            self.note_durable();
        }
        if self.sink.print(data) == Err(OutputClosed) {
            self.failure = Some(Disconnect::OutputClosed);
        }
        // The id is recorded only once the event is written: a checkpoint taken on the way
        // (rotation, new file) must not claim an event that is not in its bytes, or the resend
        // after a crash would be dropped as a duplicate.
        if let Some(key) = key {
            self.position.recent_ids.insert_key(key);
        }
        self.n_archived += 1;
        let stream = meta.stream.as_deref().unwrap_or("unknown");
        let kind = EventType::of(meta.kind.as_deref());
        self.stats.count_archived(stream, kind, unix_ms(now));
        if self.sink.archive().is_some() {
            self.unwritten.event(stream, kind);
        }
        if let Some(wikis) = &mut self.wikis {
            let wiki = meta.wiki.as_deref().or(meta.domain.as_deref());
            wikis.add(wiki.unwrap_or("unknown"));
        }
        if let Some(dt) = &meta.dt {
            self.position.last_dt.clear();
            self.position.last_dt.push_str(dt);
            if let Some(ms) = dt_ms {
                self.stats.last_dt_ms.store(ms, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// After a resume, says so if the first event is much later than the last one archived.
    fn warn_on_gap(&mut self, dt: &str) {
        let last_dt = &self.position.last_dt;
        if !std::mem::replace(&mut self.check_gap, false) || last_dt.is_empty() {
            return;
        }
        let (Some(before), Some(after)) = (
            times::parse_rfc3339_ms(last_dt),
            times::parse_rfc3339_ms(dt),
        ) else {
            return;
        };
        let jump = Duration::from_millis(after.saturating_sub(before).max(0) as u64);
        if jump > self.cfg.gap_warn {
            Stats::add(&self.stats.gaps, 1);
            log::warn!(
                "gap: the last archived event is from {last_dt}, the next one from {dt} ({} s later); events in between may be missing",
                jump.as_secs()
            );
        }
    }

    fn reject(
        &mut self,
        reason: RejectReason,
        event: &sse::Event<'_>,
        now: OffsetDateTime,
    ) -> Result<(), archive::Error> {
        let line = reject_line(now, reason, event);
        log::warn!(
            "rejected event {} ({reason}, {} bytes of data)",
            if event.id.is_empty() {
                "without id"
            } else {
                event.id
            },
            event.data.len()
        );
        self.stats.rejects.add(reason);
        if let Some((archive, cursor)) = self.archive_and_cursor() {
            archive.reject(&line, now, cursor)?;
            self.note_durable();
            self.unwritten.reject(reason);
        }
        Ok(())
    }
}

/// One line of the rejects file: `{"received_at","reason","event","id","data"}`.
pub fn reject_line(now: OffsetDateTime, reason: RejectReason, event: &sse::Event<'_>) -> String {
    let json = |s: &str| serde_json::to_string(s).expect("serialising a string cannot fail");
    format!(
        "{{\"received_at\":{},\"reason\":{},\"event\":{},\"id\":{},\"data\":{}}}",
        json(&times::rfc3339(now)),
        json(reason.as_str()),
        json(event.event_type),
        json(event.id),
        json(event.data)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_lines_are_json() {
        let event = sse::Event {
            event_type: "error",
            data: "bad \"x\"\n",
            id: "[1]",
            oversize: false,
        };
        let line = reject_line(
            time::macros::datetime!(2025-01-31 12:00:00 UTC),
            RejectReason::UnexpectedType,
            &event,
        );
        let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(value["reason"], "unexpected_type");
        assert_eq!(value["data"], "bad \"x\"\n");
        assert_eq!(value["received_at"], "2025-01-31T12:00:00Z");
        assert!(!line.contains('\n'));
    }
}
