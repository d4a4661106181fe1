//! The archive's side of shipping: it says when a file was completed, and asks before
//! retention deletes one. `ship` implements it; the archive knows nothing of S3 or children.

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
