//! Counters shared between the main loop (the only writer) and readers such as the exit summary
//! and, later, the health thread.
//!
//! Plain relaxed atomics: each number is independent, and a reader that sees one counter a few
//! events ahead of another is harmless. Nothing here blocks or allocates.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Running totals since the process started.
#[derive(Debug, Default)]
pub struct Stats {
    pub events_archived: AtomicU64,
    pub rejects: AtomicU64,
    pub canaries: AtomicU64,
    pub duplicates: AtomicU64,
    pub reconnects: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_written: AtomicU64,
    pub rotations: AtomicU64,
    pub checkpoints: AtomicU64,
    pub checkpoint_failures: AtomicU64,
    /// Resumes whose first event came much later than the last archived one (`--gap-warn`).
    pub gaps: AtomicU64,
    /// Unix seconds since when writing fails (e.g. disk full); 0 while writing works.
    pub write_error_since: AtomicI64,
}

impl Stats {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// One line for the log at exit.
    pub fn summary(&self) -> String {
        format!(
            "{} events archived, {} rejects, {} canaries dropped, {} duplicates dropped, {} reconnects, \
             {} bytes received, {} bytes written, {} rotations, {} checkpoints, {} gaps",
            Stats::get(&self.events_archived),
            Stats::get(&self.rejects),
            Stats::get(&self.canaries),
            Stats::get(&self.duplicates),
            Stats::get(&self.reconnects),
            Stats::get(&self.bytes_received),
            Stats::get(&self.bytes_written),
            Stats::get(&self.rotations),
            Stats::get(&self.checkpoints),
            Stats::get(&self.gaps),
        )
    }
}
