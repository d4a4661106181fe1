//! The one-writer lock on an archive directory: `DIR/.lock`, held with `flock` for the life of
//! the process and holding the holder's pid for the error message of the next one.
//!
//! It knows nothing of the files around it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use super::Error;
use super::error::open_no_follow;

/// The lock file in the archive directory.
pub const LOCK_FILE: &str = ".lock";

/// An exclusive lock on the archive directory, held for the life of the process.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Creates `dir` if needed and takes its lock, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
        let path = dir.join(LOCK_FILE);
        let mut file = open_no_follow(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            "opening lock file",
            &path,
        )?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = if pid.trim().is_empty() {
                    "unknown".to_string()
                } else {
                    pid.trim().to_string()
                };
                return Err(Error::Locked {
                    dir: dir.to_path_buf(),
                    pid,
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io("locking", &path, e)),
        }
        file.set_len(0)
            .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(|e| Error::io("writing lock file", &path, e))?;
        Ok(DirLock { _file: file })
    }
}
