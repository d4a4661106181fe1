//! The shipping journal: which completed files one destination has confirmed, in
//! `DIR/.ship/<destination>.journal`. A line is appended and synced only after the destination
//! confirmed the file (S3 answered 200, the `--on-ready` program exited 0), so a crash at any
//! point can only leave a confirmed file unrecorded, never an unconfirmed one recorded: the
//! file is then sent again after the restart, as the same key with the same bytes.
//!
//! Format: a header line `wikistream-archiver ship journal 1 <destination>`, then one line per
//! event: `+<key>` (confirmed) or `-<key>` (a day's mark to put again). A last line without its
//! newline was torn by a crash and is ignored. The journal is rewritten at open (atomically)
//! with only the keys whose files are still on disk, so it stays as small as the archive.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The directory of the journals, inside the archive directory (readers skip dot names).
pub const SHIP_DIR: &str = ".ship";
const HEADER: &str = "wikistream-archiver ship journal 1 ";
/// The largest journal read: a million keys of a hundred bytes.
const MAX_JOURNAL_BYTES: u64 = 100 << 20;

/// An open journal, locked against a second shipper of the same destination.
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Held while the journal is open.
    _lock: File,
}

impl Journal {
    /// Opens (or starts) the journal `name` of `dir` for `destination`, keeping only the
    /// confirmed keys for which `keep` holds, and returns them. A journal of another destination
    /// is set aside as `<name>.journal.previous`: everything is shipped again to the new one.
    pub fn open(
        dir: &Path,
        name: &str,
        destination: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<(Journal, HashSet<String>), String> {
        let ship_dir = dir.join(SHIP_DIR);
        fs::create_dir_all(&ship_dir)
            .map_err(|e| format!("creating {}: {e}", ship_dir.display()))?;
        let path = ship_dir.join(format!("{name}.journal"));
        let lock_path = ship_dir.join(format!("{name}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
        if lock.try_lock().is_err() {
            return Err(format!(
                "{} is in use: another wikistream-archiver ships this directory to the same kind of destination",
                lock_path.display()
            ));
        }
        let mut keys = HashSet::new();
        if let Some(text) = read_bounded(&path)? {
            match text.split_once('\n') {
                Some((header, body)) if header.strip_prefix(HEADER) == Some(destination) => {
                    keys = replay(body);
                }
                _ => {
                    let aside = path.with_extension("journal.previous");
                    log::warn!(
                        "{} records another destination: shipping every completed file to {destination} (old journal kept as {})",
                        path.display(),
                        aside.display()
                    );
                    fs::rename(&path, &aside)
                        .map_err(|e| format!("renaming {}: {e}", path.display()))?;
                }
            }
        }
        keys.retain(|k| keep(k));
        let mut text = format!("{HEADER}{destination}\n");
        let mut sorted: Vec<&String> = keys.iter().collect();
        sorted.sort();
        for key in sorted {
            text.push_str(&format!("+{key}\n"));
        }
        let tmp = ship_dir.join(format!("{name}.journal.tmp"));
        write_synced(&tmp, text.as_bytes())
            .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        fs::rename(&tmp, &path).map_err(|e| format!("renaming {}: {e}", tmp.display()))?;
        File::open(&ship_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("syncing {}: {e}", ship_dir.display()))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
        let journal = Journal {
            path,
            file,
            _lock: lock,
        };
        Ok((journal, keys))
    }

    /// Records `key` as confirmed, durably.
    pub fn confirm(&mut self, key: &str) -> Result<(), String> {
        self.append(&format!("+{key}\n"))
    }

    /// Records that `key` is to be sent again (a day's mark after a late file of the day).
    pub fn revoke(&mut self, key: &str) -> Result<(), String> {
        self.append(&format!("-{key}\n"))
    }

    fn append(&mut self, line: &str) -> Result<(), String> {
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| format!("writing {}: {e}", self.path.display()))
    }
}

/// The confirmed keys after the journal's lines; a torn last line is ignored.
fn replay(body: &str) -> HashSet<String> {
    let mut keys = HashSet::new();
    let complete = match body.rfind('\n') {
        Some(end) => &body[..end],
        None => "",
    };
    for line in complete.lines() {
        if let Some(key) = line.strip_prefix('+') {
            keys.insert(key.to_string());
        } else if let Some(key) = line.strip_prefix('-') {
            keys.remove(key);
        }
    }
    keys
}

fn read_bounded(path: &Path) -> Result<Option<String>, String> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("opening {}: {e}", path.display())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_JOURNAL_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmed_keys_survive_reopening_and_a_torn_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), "s3", "s3://b/p/", |_| true).unwrap();
        journal.confirm("a/date=2024-01-01/x.ndjson.gz").unwrap();
        journal.confirm("a/date=2024-01-01/_SUCCESS").unwrap();
        journal.confirm("gone").unwrap();
        journal.revoke("a/date=2024-01-01/_SUCCESS").unwrap();
        drop(journal);
        let path = dir.path().join(".ship/s3.journal");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"+torn-by-a-crash").unwrap();
        let (_journal, keys) =
            Journal::open(dir.path(), "s3", "s3://b/p/", |k| k != "gone").unwrap();
        let mut keys: Vec<&String> = keys.iter().collect();
        keys.sort();
        assert_eq!(keys, ["a/date=2024-01-01/x.ndjson.gz"]);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "wikistream-archiver ship journal 1 s3://b/p/\n+a/date=2024-01-01/x.ndjson.gz\n"
        );
    }

    #[test]
    fn another_destination_starts_over_and_one_shipper_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), "s3", "s3://b/p/", |_| true).unwrap();
        journal.confirm("k").unwrap();
        let second = Journal::open(dir.path(), "s3", "s3://b/p/", |_| true);
        assert!(second.err().unwrap().contains("in use"));
        drop(journal);
        let (_journal, keys) = Journal::open(dir.path(), "s3", "s3://other/", |_| true).unwrap();
        assert!(keys.is_empty(), "another destination starts over");
        assert!(dir.path().join(".ship/s3.journal.previous").exists());
    }

    #[test]
    fn replay_applies_lines_in_order() {
        let keys = replay("+a\n+b\n-a\n+c\n+d");
        let mut keys: Vec<String> = keys.into_iter().collect();
        keys.sort();
        assert_eq!(keys, ["b", "c"]);
    }
}
