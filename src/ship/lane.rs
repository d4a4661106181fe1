//! One destination's lane: what is pending (completed files not in the journal, oldest first,
//! then the marks of complete days), delivering one item, and the two ways to go through
//! them: `run` on the shipping thread for ever, with backoff, and `drain` for `ship DIR`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::journal::Journal;
use super::retry::{jitter, retry_delay};
use super::{Confirmed, Destination, Failure, FailureKind};
use crate::archive::listing::list_dir;
use crate::archive::naming::{self, FileRole, Layout, Naming, PART_SUFFIX, REJECTS_DIR, classify};
use crate::archive::retention::completed_files;
use crate::logging::LogLimiter;
use crate::stats::Stats;

/// The name of a day's mark in its date directory (Hadoop's): the day is complete, and its
/// files are in the bucket.
pub const MARK_NAME: &str = "_SUCCESS";
/// How often the lane looks at the directory while nothing woke it.
const RESCAN_INTERVAL: Duration = Duration::from_secs(60);
/// The archive directory as the lane reads it.
#[derive(Debug, Clone)]
pub struct ArchiveView {
    pub dir: PathBuf,
    pub layout: Layout,
    /// The flat layout's naming; `None` takes the files of either.
    pub naming: Option<Naming>,
}

/// A completed file: its path relative to the archive directory, size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub rel: String,
    pub size: u64,
    pub modified_ms: i64,
}

/// Something to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    File(Local),
    /// The mark of a complete day: `<stream>/date=D/_SUCCESS`.
    Mark(String),
}

impl Item {
    pub fn rel(&self) -> &str {
        match self {
            Item::File(local) => &local.rel,
            Item::Mark(rel) => rel,
        }
    }
}

/// How `drain` ended.
#[derive(Debug)]
pub enum Drained {
    /// Everything pending was delivered: how many items and file bytes.
    Done { items: u64, bytes: u64 },
    /// An item could not be delivered.
    Failed(String, Failure),
}

/// One destination, its journal and the archive it ships.
pub struct Lane {
    destination: Destination,
    view: ArchiveView,
    journal: Journal,
    confirmed: Arc<Confirmed>,
    stats: Arc<Stats>,
    limiter: LogLimiter,
}

impl Lane {
    /// Opens the destination's journal in the archive directory (one lane per destination
    /// kind and directory at a time).
    pub fn open(
        destination: Destination,
        view: ArchiveView,
        stats: Arc<Stats>,
    ) -> Result<Lane, String> {
        let on_disk: HashSet<String> = list(&view)?.into_iter().map(|l| l.rel).collect();
        let keep = |key: &str| match key.strip_suffix(MARK_NAME) {
            Some(dir) => view.dir.join(dir).is_dir(),
            None => on_disk.contains(key),
        };
        let name = destination.journal_name();
        let identity = destination.journal_identity();
        let (journal, keys) = Journal::open(&view.dir, &name, &identity, keep)?;
        stats.ship.enabled.store(true, Ordering::Relaxed);
        if let Ok(mut shown) = stats.ship.destination.lock() {
            *shown = destination.describe();
        }
        Ok(Lane {
            destination,
            view,
            journal,
            confirmed: Arc::new(Confirmed::new(keys)),
            stats,
            limiter: LogLimiter::default(),
        })
    }

    /// What the archive holds to ask before deleting.
    pub fn confirmed(&self) -> Arc<Confirmed> {
        Arc::clone(&self.confirmed)
    }

    /// What is not delivered yet: files oldest first, then the marks of complete days.
    pub fn pending(&self) -> Result<Vec<Item>, String> {
        let all = list(&self.view)?;
        // `--on-ready` gets event files only, as it always did: its programs feed event
        // pipelines (Kafka, Elasticsearch) that a rejects line does not belong in.
        let takes_rejects = matches!(self.destination, Destination::S3(_));
        let mut files: Vec<Local> = all
            .iter()
            .filter(|l| !self.confirmed.contains(&l.rel))
            .filter(|l| takes_rejects || !is_rejects(&l.rel))
            .cloned()
            .collect();
        files.sort_by(|a, b| (a.modified_ms, &a.rel).cmp(&(b.modified_ms, &b.rel)));
        let mut marks: Vec<String> = Vec::new();
        if self.marks_days() {
            let busy: HashSet<&str> = files.iter().filter_map(|l| parent(&l.rel)).collect();
            let mut dirs: Vec<String> = all
                .iter()
                .filter_map(|l| parent(&l.rel).map(str::to_string))
                .collect();
            dirs.sort();
            dirs.dedup();
            marks = dirs
                .into_iter()
                .filter(|d| !busy.contains(d.as_str()))
                .map(|d| format!("{d}/{MARK_NAME}"))
                .filter(|mark| !self.confirmed.contains(mark) && self.day_complete(mark))
                .collect();
        }
        Ok(files
            .into_iter()
            .map(Item::File)
            .chain(marks.into_iter().map(Item::Mark))
            .collect())
    }

    /// Only S3 gets marks, and only of the partitioned layout's days.
    fn marks_days(&self) -> bool {
        self.view.layout == Layout::Partitioned && matches!(self.destination, Destination::S3(_))
    }

    /// Whether the day of `<stream>/date=D/…` is complete: the archive has moved on to a later
    /// date of the stream (it completes a day's files only past the straggler grace), and no
    /// file of the day is open. By the archive's own progress, not the clock, so that a
    /// backfill (`--since` days ago) marks each day once it is done.
    fn day_complete(&self, rel: &str) -> bool {
        let Some((stream, date)) = naming::parse_partition(rel) else {
            return false;
        };
        let later = names_in(&self.view.dir.join(stream))
            .iter()
            .any(|name| naming::parse_date_dir(name).is_some_and(|d| d > date));
        stream != REJECTS_DIR
            && later
            && !names_in(&self.day_dir(rel))
                .iter()
                .any(|name| name.ends_with(PART_SUFFIX))
    }

    /// The directory of `rel` in the archive.
    fn day_dir(&self, rel: &str) -> PathBuf {
        self.view.dir.join(parent(rel).unwrap_or_default())
    }

    /// Delivers `item` and records it; a file completing its day brings the day's mark along.
    pub fn deliver(&mut self, item: &Item) -> Result<(), Failure> {
        let journal_failure = |e: String| Failure::new(FailureKind::Local, e);
        let Item::File(local) = item else {
            self.put_mark(item.rel())?;
            self.journal.confirm(item.rel()).map_err(journal_failure)?;
            self.confirmed.insert(item.rel());
            self.count(0);
            return Ok(());
        };
        let mark = parent(&local.rel)
            .filter(|_| self.marks_days())
            .map(|dir| format!("{dir}/{MARK_NAME}"));
        if let Some(mark) = &mark
            && self.confirmed.remove(mark)
        {
            // A late file of a marked day: the mark is put again after it.
            self.journal.revoke(mark).map_err(journal_failure)?;
        }
        let path = self.view.dir.join(&local.rel);
        let bytes = match &self.destination {
            Destination::S3(bucket) => {
                bucket.put_file(&bucket.target.key(&object_rel(&local.rel)), &path)?
            }
            Destination::Command(hook) => {
                hook.deliver(&path, &local.rel)?;
                local.size
            }
        };
        self.journal.confirm(&local.rel).map_err(journal_failure)?;
        log::info!(
            "shipped {} ({bytes} bytes) to {}",
            local.rel,
            self.destination.describe()
        );
        if let Some(mark) = mark
            && self.day_complete(&local.rel)
            && self.dir_all_confirmed(&local.rel)
        {
            // Before the file is confirmed to retention, which may then delete it and its
            // directory, and with it what tells that the day is complete.
            self.put_mark(&mark)?;
            self.journal.confirm(&mark).map_err(journal_failure)?;
            self.confirmed.insert(&mark);
            self.count(0);
        }
        self.confirmed.insert(&local.rel);
        self.count(bytes);
        Ok(())
    }

    /// Whether every other completed file in the directory of `rel` is confirmed. It reads
    /// that one directory, not the whole archive: it runs after every upload.
    fn dir_all_confirmed(&self, rel: &str) -> bool {
        let dir = parent(rel).unwrap_or_default();
        names_in(&self.day_dir(rel))
            .iter()
            .filter(|name| matches!(classify(name), Some(FileRole::Events { open: false, .. })))
            .map(|name| format!("{dir}/{name}"))
            .all(|other| other == rel || self.confirmed.contains(&other))
    }

    fn put_mark(&self, rel: &str) -> Result<(), Failure> {
        match &self.destination {
            Destination::S3(bucket) => {
                bucket.put_bytes(&bucket.target.key(rel), b"", "application/octet-stream")?;
                log::info!("shipped {rel}: the day is complete");
                Ok(())
            }
            Destination::Command(_) => Ok(()),
        }
    }

    fn count(&self, bytes: u64) {
        Stats::add(&self.stats.ship.delivered, 1);
        Stats::add(&self.stats.ship.bytes_shipped, bytes);
    }

    /// The S3 key of a file, for `ship --dry-run`.
    pub fn object_key(&self, rel: &str) -> Option<String> {
        match &self.destination {
            Destination::S3(bucket) => Some(bucket.target.key(&object_rel(rel))),
            Destination::Command(_) => None,
        }
    }

    /// Counts and logs a failure, and says what an operator must fix; returns the delay before
    /// the next try.
    fn failed(&mut self, item: &Item, failure: &Failure, n_failures: u32) -> Duration {
        self.stats.ship.failures.add(failure.kind);
        let delay = retry_delay(n_failures, failure, jitter());
        if failure.kind.needs_operator() {
            self.stats.ship.set_problem(&failure.message);
        }
        if let Some(held_back) = self.limiter.allow() {
            let more = match held_back {
                0 => String::new(),
                n => format!(" ({n} more failures since the last report)"),
            };
            log::warn!(
                "shipping {} to {} failed ({}): {}; trying again in {} s{more}",
                item.rel(),
                self.destination.describe(),
                failure.kind,
                failure.message,
                delay.as_secs().max(1)
            );
        }
        delay
    }

    fn recovered(&mut self) {
        let had_problem = self.stats.ship.problem.lock().is_ok_and(|p| !p.is_empty());
        if had_problem {
            log::info!("shipping to {} works again", self.destination.describe());
            self.stats.ship.set_problem("");
        }
    }

    /// The shipping thread: delivers what is pending, oldest first, retrying with backoff,
    /// and waits for the archive to complete more. Ends when the archive is gone.
    pub fn run(mut self, woken: &Receiver<()>) {
        let mut queue: Vec<Item> = Vec::new();
        let mut rescan = true;
        let mut n_failures = 0;
        let mut retry_at: Option<Instant> = None;
        let mut told = 0;
        loop {
            if rescan {
                told = self.confirmed.told.load(Ordering::Relaxed);
                match self.pending() {
                    Ok(items) => queue = items,
                    Err(e) => log::warn!("shipping: {e}"),
                }
                self.publish_backlog(&queue);
                rescan = false;
            }
            self.confirmed
                .failing
                .store(retry_at.is_some(), Ordering::Relaxed);
            let wait = match (queue.first().cloned(), retry_at) {
                (None, _) => {
                    self.confirmed.settled.store(told, Ordering::Relaxed);
                    RESCAN_INTERVAL
                }
                (Some(_), Some(at)) if at > Instant::now() => at - Instant::now(),
                (Some(item), _) => match self.deliver(&item) {
                    Ok(()) => {
                        queue.remove(0);
                        (n_failures, retry_at) = (0, None);
                        self.recovered();
                        self.publish_backlog(&queue);
                        continue;
                    }
                    Err(failure)
                        if failure.kind == FailureKind::Local
                            && !self.view.dir.join(item.rel()).exists() =>
                    {
                        // Deleted meanwhile (by hand): nothing to ship.
                        queue.remove(0);
                        continue;
                    }
                    Err(failure) => {
                        n_failures += 1;
                        let delay = self.failed(&item, &failure, n_failures);
                        retry_at = Some(Instant::now() + delay);
                        // Look again at the next try: the file may be gone, others older.
                        rescan = true;
                        delay
                    }
                },
            };
            match woken.recv_timeout(wait) {
                Ok(()) => {
                    while woken.try_recv().is_ok() {}
                    rescan = true;
                }
                Err(RecvTimeoutError::Timeout) => rescan |= queue.is_empty(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Sets the backlog in the stats.
    fn publish_backlog(&self, queue: &[Item]) {
        let files = queue.iter().filter_map(|i| match i {
            Item::File(l) => Some(l),
            Item::Mark(_) => None,
        });
        let (mut n, mut bytes, mut oldest) = (0, 0, i64::MAX);
        for local in files {
            n += 1;
            bytes += local.size;
            oldest = oldest.min(local.modified_ms.max(1));
        }
        self.stats
            .ship
            .set_pending(n, bytes, if n == 0 { 0 } else { oldest });
    }

    /// Delivers everything pending now, each item tried up to `attempts` times with backoff;
    /// stops at the first item that fails for good.
    pub fn drain(&mut self, attempts: u32) -> Result<Drained, String> {
        let (mut items, mut bytes) = (0, 0);
        let pending = self.pending()?;
        self.publish_backlog(&pending);
        for item in pending {
            let mut n_failures = 0;
            loop {
                match self.deliver(&item) {
                    Ok(()) => break,
                    Err(failure) => {
                        n_failures += 1;
                        if n_failures >= attempts || failure.kind.needs_operator() {
                            return Ok(Drained::Failed(item.rel().to_string(), failure));
                        }
                        std::thread::sleep(self.failed(&item, &failure, n_failures));
                    }
                }
            }
            items += 1;
            if let Item::File(local) = &item {
                bytes += local.size;
            }
        }
        Ok(Drained::Done { items, bytes })
    }
}

/// The path of a file under the bucket's prefix: rejects files of the flat layout go to
/// `_rejects/` as the partitioned layout's are.
pub fn object_rel(rel: &str) -> String {
    match naming::parse_rejects(rel) {
        Some(None) if !rel.contains('/') => format!("{REJECTS_DIR}/{rel}"),
        _ => rel.to_string(),
    }
}

/// Whether a relative path names a rejects file.
fn is_rejects(rel: &str) -> bool {
    naming::parse_rejects(rel.rsplit('/').next().unwrap_or(rel)).is_some()
}

/// The completed files of the archive.
pub fn list(view: &ArchiveView) -> Result<Vec<Local>, String> {
    let now = time::OffsetDateTime::now_utc();
    let files = completed_files(&view.dir, view.layout, view.naming.as_ref(), now)
        .map_err(|e| e.to_string())?;
    Ok(files
        .into_iter()
        .map(|c| Local {
            rel: c.name,
            size: c.size,
            modified_ms: i64::try_from(c.modified.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
        })
        .collect())
}

/// The names in `dir` (none when it cannot be read).
fn names_in(dir: &Path) -> Vec<String> {
    list_dir(dir).map_or_else(
        |_| Vec::new(),
        |entries| entries.into_iter().map(|(name, _)| name).collect(),
    )
}

/// The directory part of a relative path.
fn parent(rel: &str) -> Option<&str> {
    rel.rsplit_once('/').map(|(dir, _)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_of_keys() {
        assert_eq!(
            parent("rc/date=2024-01-01/a.gz"),
            Some("rc/date=2024-01-01")
        );
        assert_eq!(parent("a.gz"), None);
    }
}
