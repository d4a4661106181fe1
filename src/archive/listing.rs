//! Listing an archive directory: the names in it (`list_dir`), the files of one layout with
//! their paths relative to the directory (`walk`), and for readers (`cat`, `verify`, `serve`)
//! its event files of both layouts in sequence order and its rejects files.
//!
//! It reads directory entries only, never file contents; names are judged by `naming`.

use std::fs;
use std::path::{Path, PathBuf};

use super::Error;
use super::naming::{FileRole, Layout, REJECTS_DIR, classify, parse_date_dir};

/// The entries of `dir` whose names are UTF-8 (all of ours are), with their names.
pub fn list_dir(dir: &Path) -> Result<Vec<(String, fs::DirEntry)>, Error> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("reading directory", dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading directory", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            out.push((name, entry));
        }
    }
    Ok(out)
}

/// A file found by `walk`: its path relative to the archive directory (`/`-separated), its
/// own name, and its directory entry.
pub struct Found {
    pub rel: String,
    pub name: String,
    pub entry: fs::DirEntry,
}

/// The files of `layout` in `dir`: flat, the files of the directory itself; partitioned, those
/// of every `<stream>/date=…/` and of `_rejects/`. Links and other odd entries are skipped.
pub fn walk(dir: &Path, layout: Layout) -> Result<Vec<Found>, Error> {
    let mut found = Vec::new();
    for (name, entry) in list_dir(dir)? {
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        match layout {
            Layout::Flat if !is_dir => found.push(Found {
                rel: name.clone(),
                name,
                entry,
            }),
            Layout::Partitioned if is_dir && name == REJECTS_DIR => {
                found.extend(files_in(&entry.path(), &name)?)
            }
            // Names starting with `_` or `.` are ours (`_damaged`) or nobody's.
            Layout::Partitioned if is_dir && !name.starts_with(['_', '.']) => {
                for (date_dir, date_entry) in list_dir(&entry.path())? {
                    let is_date_dir = date_entry.file_type().is_ok_and(|t| t.is_dir());
                    if is_date_dir && parse_date_dir(&date_dir).is_some() {
                        found.extend(files_in(&date_entry.path(), &format!("{name}/{date_dir}"))?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// The regular files of `dir`, whose path relative to the archive directory is `rel_dir`.
fn files_in(dir: &Path, rel_dir: &str) -> Result<Vec<Found>, Error> {
    Ok(list_dir(dir)?
        .into_iter()
        .filter(|(_, entry)| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|(name, entry)| Found {
            rel: format!("{rel_dir}/{name}"),
            name,
            entry,
        })
        .collect())
}

/// The files of an archive directory: event files in sequence order, and rejects files.
#[derive(Debug, Default)]
pub struct Listing {
    pub events: Vec<(PathBuf, FileRole)>,
    pub rejects: Vec<PathBuf>,
}

/// Lists `dir` for reading, in both layouts at once: event files by sequence (then name),
/// rejects files by name. Other files (the checkpoint, the lock) are left out.
pub fn list_archive(dir: &Path) -> Result<Listing, Error> {
    let mut listing = Listing::default();
    let mut events = Vec::new();
    let mut found = walk(dir, Layout::Flat)?;
    found.extend(walk(dir, Layout::Partitioned)?);
    for Found { rel, name, entry } in found {
        match classify(&name) {
            Some(FileRole::Rejects) => listing.rejects.push(entry.path()),
            Some(role @ FileRole::Events { seq, .. }) => {
                events.push((seq, rel, entry.path(), role))
            }
            None => {}
        }
    }
    events.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    listing.events = events
        .into_iter()
        .map(|(_, _, path, role)| (path, role))
        .collect();
    listing.rejects.sort();
    Ok(listing)
}
