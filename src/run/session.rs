//! One pass from a checkpoint: the events of every connection until a write failure or the end.
//! It acts on each event's verdict (`judge`: write, count, log), keeps the resume point that
//! goes with what was written, and does the periodic work between reads: checkpoints, rotation,
//! SIGUSR1, `--on-ready` children and publishing to the health thread.
//!
//! It never opens or reads connections (connection.rs drives it through the methods below,
//! and keeps what belongs to one connection) and decides nothing that `judge`,
//! `archive::rotate` or `client::Backoff` decide.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::judge::{self, Verdict};
use super::sink::{OutputClosed, Sink};
use super::{Clock, Config, Output, SessionConfig};
use crate::archive::{self, Appended, Archive, Field, Recovered, ResumePoint, rotate};
use crate::console::Printer;
use crate::event::{self, EventType, RejectReason};
use crate::labels::Label;
use crate::logging::LogLimiter;
use crate::sse;
use crate::stats::{Stats, Unwritten, WikiCounts};
use crate::times::{self, unix_ms};

mod housekeeping;

/// How often the per-wiki counts are sorted and handed to `/status`: the status page polls
/// about this often, and sorting a thousand wikis each time costs little.
const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// Why a session stops taking events.
pub(super) enum Stop {
    /// `--max-events` were archived (or printed).
    MaxEvents,
    /// Writing failed: the session is abandoned and a new one starts from the checkpoint.
    ArchiveFailed(archive::Error),
    /// `tail`'s standard output was closed (`| head`).
    OutputClosed,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::MaxEvents => write!(f, "reached --max-events"),
            Stop::ArchiveFailed(e) => write!(f, "archive failed: {e}"),
            Stop::OutputClosed => write!(f, "standard output closed"),
        }
    }
}

/// After a resume, the first archived event's time is compared with the last archived one's,
/// to warn of a gap; a connection starts in `Pending` when it resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GapCheck {
    Pending,
    Done,
}

/// One pass from a checkpoint: lives across connections until a write failure or the end.
pub(super) struct Session {
    sink: Sink,
    cfg: SessionConfig,
    stats: Arc<Stats>,
    /// Events per wiki for `/status`; None without a status port, where nobody reads them.
    wikis: Option<WikiCounts>,
    last_published: Instant,
    clock: Clock,
    /// The resume point that goes with what was written. Its id is that of the last event
    /// handled: an `id:` line of an event that never completed is not used, or a cut
    /// connection would skip that event on resume.
    point: ResumePoint,
    /// `since=` for the first connection when the archive has no id to resume after.
    since_fallback_ms: Option<i64>,
    /// Events archived (or printed) by this process, for `--max-events`.
    n_archived: u64,
    /// Events were handled since the last checkpoint.
    dirty: bool,
    last_checkpoint: Instant,
    /// What was counted since the last checkpoint, taken back if writing fails before the next.
    unwritten: Unwritten,
    /// The archive's checkpoint count when `unwritten` was last cleared.
    seen_checkpoints: u64,
    /// Rejects for want of a place are logged at most once a minute.
    place_rejects_log: LogLimiter,
}

impl Session {
    /// A session writing into `archive` (none for `tail`) from what opening it recovered, after
    /// `n_archived` events of earlier sessions.
    pub(super) fn new(
        archive: Option<Archive>,
        recovered: Recovered,
        cfg: &Config,
        clock: Clock,
        stats: Arc<Stats>,
        n_archived: u64,
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
            point: recovered.point,
            since_fallback_ms: recovered.since_ms,
            n_archived,
            dirty: false,
            last_checkpoint: Instant::now(),
            unwritten: Unwritten::default(),
            seen_checkpoints,
            place_rejects_log: LogLimiter::default(),
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

    /// Events archived (or printed) by this process so far.
    pub(super) fn n_archived(&self) -> u64 {
        self.n_archived
    }

    /// What this session's settings say.
    pub(super) fn cfg(&self) -> &SessionConfig {
        &self.cfg
    }

    /// `since=` (Unix ms) for the first connection when there is no id to resume after; once.
    pub(super) fn take_since_fallback(&mut self) -> Option<i64> {
        self.since_fallback_ms.take()
    }

    /// The id to resume after, if any.
    pub(super) fn resume_id(&self) -> &str {
        &self.point.last_event_id
    }

    /// `meta.dt` of the last archived event, empty if none.
    pub(super) fn last_dt(&self) -> &str {
        &self.point.last_dt
    }

    /// Whether events go to standard output as well as (or instead of) the archive.
    pub(super) fn prints(&self) -> bool {
        self.sink.prints()
    }

    /// Forgets the resume id (the server refused it).
    pub(super) fn clear_resume_id(&mut self) {
        self.point.last_event_id.clear();
    }

    /// The archive (none for `tail`) and the resume point that goes with what was written.
    fn archive_and_point(&mut self) -> Option<(&mut Archive, &ResumePoint)> {
        let archive = self.sink.archive_mut()?;
        Some((archive, &self.point))
    }

    /// Completes every open file.
    pub(super) fn close(&mut self) -> Result<(), archive::Error> {
        // The event files go the way of every rotation (and are counted like one); then the rest.
        self.complete_files(Some(rotate::RotationReason::Shutdown))?;
        let now = self.clock.now();
        if let Some((archive, point)) = self.archive_and_point() {
            archive.close(point, now)?;
            let n_bytes = archive.bytes_written();
            self.stats.bytes_written.store(n_bytes, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Acts on one event; `gap` says whether it may be the first after a resume.
    pub(super) fn handle(&mut self, event: sse::Event<'_>, gap: &mut GapCheck) -> Result<(), Stop> {
        // One clock read per event serves the health gauge, rotation and the rejects line.
        let now = self.clock.now();
        self.stats
            .last_event_at_ms
            .store(unix_ms(now), Ordering::Relaxed);
        let verdict = judge::judge(
            &event,
            self.cfg.keep_canary,
            &self.cfg.filter,
            &self.point.recent_ids,
        );
        let result = match verdict {
            Verdict::Archive { meta, key } => {
                match self.archive_event(event.data, &meta, key, now, gap) {
                    // The archive found no place for it (partitioned layout).
                    Ok(Some(reason)) => self.reject(reason, &event, now),
                    other => other.map(|_| ()),
                }
            }
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
        if matches!(result, Err(Stop::ArchiveFailed(_))) {
            return result;
        }
        // The event was handled (a closed standard output stops `tail` after it).
        self.dirty = true;
        if !event.id.is_empty() && event.id.len() <= archive::MAX_RESUME_ID_BYTES {
            self.point.last_event_id.clear();
            self.point.last_event_id.push_str(event.id);
        }
        result?;
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
            return Err(Stop::MaxEvents);
        }
        Ok(())
    }

    fn archive_event(
        &mut self,
        data: &str,
        meta: &event::Meta<'_>,
        key: Option<u128>,
        now: OffsetDateTime,
        gap: &mut GapCheck,
    ) -> Result<Option<RejectReason>, Stop> {
        self.complete_due(now).map_err(Stop::ArchiveFailed)?;
        let dt_ms = meta.dt.as_deref().and_then(times::parse_rfc3339_ms);
        let place = archive::Place {
            stream: Field::of(meta.stream.as_deref(), meta.stream_unreadable),
            dt: Field::of(meta.dt.as_deref(), meta.dt_unreadable),
            dt_ms,
        };
        if let Some((archive, point)) = self.archive_and_point() {
            let appended = archive.append(data, &place, now, point);
            let appended = appended.map_err(Stop::ArchiveFailed)?;
            // A checkpoint inside `append` (a new file, a day completed) came before this line.
            self.absorb_news(now);
            self.note_durable();
            if let Appended::Refused(reason) = appended {
                return Ok(Some(reason));
            }
        }
        if let (Some(dt), Some(_)) = (&meta.dt, dt_ms)
            && std::mem::replace(gap, GapCheck::Done) == GapCheck::Pending
        {
            self.warn_on_gap(dt);
        }
        let printed = self.sink.print(data);
        // The id is recorded only once the event is written: a checkpoint taken on the way
        // (rotation, new file) must not claim an event that is not in its bytes, or the resend
        // after a crash would be dropped as a duplicate.
        if let Some(key) = key {
            self.point.recent_ids.insert_key(key);
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
        // Only a date that reads: it goes into the checkpoint, which must stay small.
        if let (Some(dt), Some(ms)) = (&meta.dt, dt_ms) {
            self.point.last_dt.clear();
            self.point.last_dt.push_str(dt);
            self.stats.last_dt_ms.store(ms, Ordering::Relaxed);
        }
        printed
            .map(|()| None)
            .map_err(|OutputClosed| Stop::OutputClosed)
    }

    /// After a resume, says so if the first event is much later than the last one archived.
    fn warn_on_gap(&self, dt: &str) {
        let last_dt = &self.point.last_dt;
        if last_dt.is_empty() {
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
    ) -> Result<(), Stop> {
        let line = reject_line(now, reason, event);
        let id = if event.id.is_empty() {
            "without id"
        } else {
            event.id
        };
        match reason {
            // What a hostile or broken upstream can send in a flood: a line a minute.
            RejectReason::BadStream | RejectReason::BadDate | RejectReason::TooManyStreams => {
                if let Some(n_held_back) = self.place_rejects_log.allow() {
                    log::warn!(
                        "rejected event {id} ({reason}: see --layout and --max-streams; {} like \
                         it since the last report)",
                        n_held_back
                    );
                }
            }
            _ => log::warn!(
                "rejected event {id} ({reason}, {} bytes of data)",
                event.data.len()
            ),
        }
        self.stats.rejects.add(reason);
        if let Some((archive, point)) = self.archive_and_point() {
            archive
                .reject(&line, now, point)
                .map_err(Stop::ArchiveFailed)?;
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
