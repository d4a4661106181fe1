//! Listing an archive directory: the names in it, and for readers (`cat`, `verify`, `serve`)
//! its event files in sequence order and its rejects files.
//!
//! It reads directory entries only, never file contents; names are judged by `naming`.

use std::fs;
use std::path::{Path, PathBuf};

use super::Error;
use super::naming::{FileRole, classify};

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

/// The files of an archive directory: event files in sequence order, and rejects files.
#[derive(Debug, Default)]
pub struct Listing {
    pub events: Vec<(PathBuf, FileRole)>,
    pub rejects: Vec<PathBuf>,
}

/// Lists `dir` for reading: event files by sequence (then name), rejects files by name.
/// Other files (the checkpoint, the lock) are left out.
pub fn list_archive(dir: &Path) -> Result<Listing, Error> {
    let mut listing = Listing::default();
    let mut events = Vec::new();
    for (name, entry) in list_dir(dir)? {
        match classify(&name) {
            Some(FileRole::Rejects) => listing.rejects.push(entry.path()),
            Some(role @ FileRole::Events { seq, .. }) => {
                events.push((seq, name, entry.path(), role))
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
