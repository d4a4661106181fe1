//! Retention under `--keep-days` and `--max-archive-bytes`: `select`, a pure choice over a
//! listing, oldest first, and `apply`, the walk that lists the completed files and deletes the
//! chosen ones. An open file is never in the listing, so it is never chosen.
//!
//! No clock: callers pass `now`.

use std::fs;
use std::path::Path;

use time::{Duration, OffsetDateTime};

use super::Error;
use super::handoff::Handoff;
use super::listing::{Found, walk};
use super::naming::{self, FileRole, Layout, Naming, classify};

/// The retention limits; both optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Delete completed files older than this (`--keep-days`).
    pub keep: Option<std::time::Duration>,
    /// Delete the oldest completed files while all of them together exceed this many bytes.
    pub max_bytes: Option<u64>,
}

impl Policy {
    /// True when any limit is set.
    pub fn is_active(&self) -> bool {
        self.keep.is_some() || self.max_bytes.is_some()
    }
}

/// A completed file as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    pub name: String,
    pub modified: OffsetDateTime,
    pub size: u64,
}

/// The names to delete, oldest first; a file `may_delete` refuses (not shipped yet) stays, and
/// still counts towards `max_bytes`.
pub fn select(
    policy: &Policy,
    files: &[Completed],
    now: OffsetDateTime,
    may_delete: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut by_age: Vec<&Completed> = files.iter().collect();
    by_age.sort_by(|a, b| {
        a.modified
            .cmp(&b.modified)
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut total: u64 = by_age.iter().map(|f| f.size).sum();
    // A limit too large for the calendar keeps everything.
    let cutoff = policy.keep.and_then(|keep| {
        let keep = Duration::try_from(keep).ok()?;
        now.checked_sub(keep)
    });
    let mut chosen = Vec::new();
    for file in by_age {
        let too_old = cutoff.is_some_and(|cutoff| file.modified < cutoff);
        let too_big = policy.max_bytes.is_some_and(|max| total > max);
        if !too_old && !too_big {
            break;
        }
        if !may_delete(&file.name) {
            continue;
        }
        total -= file.size;
        chosen.push(file.name.clone());
    }
    chosen
}

/// Deletes the completed files of `dir` beyond `policy`, oldest first, and returns how many.
/// Rejects files count too: they are archive output like the rest. In the partitioned layout
/// the last file of a day takes its (then empty) date directory along. With `handoff`, only
/// the files it confirmed are deleted.
pub fn apply(
    dir: &Path,
    layout: Layout,
    naming: &Naming,
    policy: &Policy,
    now: OffsetDateTime,
    handoff: Option<&dyn Handoff>,
) -> Result<u64, Error> {
    if !policy.is_active() {
        return Ok(0);
    }
    let completed = completed_files(dir, layout, Some(naming), now)?;
    let may_delete = |name: &str| handoff.is_none_or(|h| h.may_delete(name));
    let mut n_deleted = 0;
    for name in select(policy, &completed, now, may_delete) {
        let path = dir.join(&name);
        fs::remove_file(&path).map_err(|e| Error::io("deleting", &path, e))?;
        if let Some(handoff) = handoff {
            handoff.deleted(&name);
        }
        if layout == Layout::Partitioned
            && let Some(parent) = path.parent()
            && parent != dir
        {
            // Fails, as it should, while the directory holds anything else.
            let _ = fs::remove_dir(parent);
        }
        n_deleted += 1;
        log::info!(
            "deleted {} (--keep-days / --max-archive-bytes)",
            path.display()
        );
    }
    Ok(n_deleted)
}

/// The completed event and rejects files of `dir` (never an open one), with their sizes and
/// modification times (`now` where the file system has none). In the flat layout, event files
/// are those of `naming`, or of any naming when it is `None`.
pub fn completed_files(
    dir: &Path,
    layout: Layout,
    naming: Option<&Naming>,
    now: OffsetDateTime,
) -> Result<Vec<Completed>, Error> {
    let mut completed = Vec::new();
    for Found { rel, name, entry } in walk(dir, layout)? {
        let is_events = match (layout, naming) {
            (Layout::Flat, Some(naming)) => matches!(naming.parse(&name), Some((_, None))),
            _ => matches!(classify(&name), Some(FileRole::Events { open: false, .. })),
        };
        let is_rejects = naming::parse_rejects(&name) == Some(None);
        if !is_events && !is_rejects {
            continue;
        }
        let meta = entry
            .metadata()
            .map_err(|e| Error::io("reading metadata of", &entry.path(), e))?;
        let modified = meta.modified().map(OffsetDateTime::from).unwrap_or(now);
        completed.push(Completed {
            name: rel,
            modified,
            size: meta.len(),
        });
    }
    Ok(completed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn file(name: &str, modified: OffsetDateTime, size: u64) -> Completed {
        Completed {
            name: name.into(),
            modified,
            size,
        }
    }

    #[test]
    fn deletes_what_is_too_old() {
        let now = datetime!(2025-01-31 12:00 UTC);
        let files = [
            file("c", datetime!(2025-01-31 11:00 UTC), 10),
            file("a", datetime!(2025-01-20 11:00 UTC), 10),
            file("b", datetime!(2025-01-29 11:00 UTC), 10),
        ];
        let policy = Policy {
            keep: Some(std::time::Duration::from_secs(7 * 86_400)),
            max_bytes: None,
        };
        assert_eq!(select(&policy, &files, now, |_| true), ["a"]);
        assert!(
            select(&policy, &files, now, |name| name != "a").is_empty(),
            "not shipped"
        );
        let none_kept = Policy {
            keep: Some(std::time::Duration::ZERO),
            max_bytes: None,
        };
        assert_eq!(
            select(&none_kept, &files, now, |name| name != "b"),
            ["a", "c"]
        );
        assert!(select(&Policy::default(), &files, now, |_| true).is_empty());
    }

    #[test]
    fn deletes_oldest_until_under_the_byte_limit() {
        let now = datetime!(2025-01-31 12:00 UTC);
        let files = [
            file("new", datetime!(2025-01-31 11:00 UTC), 40),
            file("old", datetime!(2025-01-30 11:00 UTC), 40),
            file("mid", datetime!(2025-01-30 12:00 UTC), 40),
        ];
        let policy = Policy {
            keep: None,
            max_bytes: Some(50),
        };
        assert_eq!(select(&policy, &files, now, |_| true), ["old", "mid"]);
        // An unshipped file stays and still counts: the younger ones make room instead.
        assert_eq!(select(&policy, &files, now, |n| n != "old"), ["mid", "new"]);
        let policy = Policy {
            keep: None,
            max_bytes: Some(120),
        };
        assert!(select(&policy, &files, now, |_| true).is_empty());
    }

    #[test]
    fn a_limit_beyond_the_calendar_keeps_everything() {
        let policy = Policy {
            keep: Some(std::time::Duration::MAX),
            max_bytes: None,
        };
        let old = file("a", datetime!(1970-01-01 0:00 UTC), 1);
        assert!(select(&policy, &[old], datetime!(2025-01-31 12:00 UTC), |_| true).is_empty());
    }
}
