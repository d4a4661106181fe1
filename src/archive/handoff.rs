//! The archive's side of shipping: it says when a file was completed, and asks before
//! retention deletes one. `ship` implements it; the archive knows nothing of S3 or children.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{Archive, Error};

/// Shipping, as the archive sees it.
pub trait Handoff: Send + Sync {
    /// A file (events or rejects) was completed: there is something new to ship.
    fn completed(&self);
    /// Whether retention may delete the completed file `rel` (its path relative to the archive
    /// directory): only once the destination confirmed it.
    fn may_delete(&self, rel: &str) -> bool;
    /// Retention deleted `rel`.
    fn deleted(&self, rel: &str);
    /// How many files the destination confirmed so far: when it grows, retention may have
    /// something to delete.
    fn confirmed_total(&self) -> u64;
}

impl Archive {
    /// Hands completed files to shipping from now on; files completed before (while opening)
    /// are on disk, where it finds them.
    pub fn set_handoff(&mut self, handoff: Arc<dyn Handoff>) {
        self.handoff = Some(handoff);
    }

    /// Applies retention when shipping confirmed files since it last ran (`--keep-days 0`
    /// deletes them now).
    pub fn retention_after_shipping(&mut self, now: OffsetDateTime) -> Result<(), Error> {
        let confirmed = self.handoff.as_ref().map(|h| h.confirmed_total());
        match confirmed {
            Some(n) if n != self.confirmed_seen && self.cfg.retention.is_active() => {
                self.apply_retention(now)
            }
            _ => Ok(()),
        }
    }
}
