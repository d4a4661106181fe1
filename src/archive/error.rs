//! `archive::Error`: every failure names the file or directory involved; and `open_no_follow`,
//! the one way files of the archive directory are opened (never through a symbolic link),
//! whose failures are these errors.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// An archive error always names the file or directory involved.
#[derive(Debug)]
pub enum Error {
    /// A file operation failed (disk full, permissions, I/O error).
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The checkpoint exists but cannot be used.
    Checkpoint { path: PathBuf, message: String },
    /// Another process holds the directory lock.
    Locked { dir: PathBuf, pid: String },
    /// A file the archiver writes or reads in its directory is a symbolic link.
    Symlink { path: PathBuf },
    /// The directory's layout (or naming) is not the one asked for.
    Layout { dir: PathBuf, message: String },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Error {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// True when the process (or the system) has no file descriptor left.
    pub fn is_out_of_descriptors(&self) -> bool {
        matches!(self, Error::Io { source, .. }
            if matches!(source.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)))
    }

    /// True for failures that may go away by themselves (a full disk being cleaned up).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Io { .. })
    }
}

/// Opens `path` in the archive directory with `options`, never through a symbolic link
/// (`O_NOFOLLOW`): a planted link would make us overwrite or read a file elsewhere.
pub(crate) fn open_no_follow(
    options: &mut fs::OpenOptions,
    action: &'static str,
    path: &Path,
) -> Result<fs::File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    options
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Error::Symlink {
                path: path.to_path_buf(),
            },
            _ => Error::io(action, path, e),
        })
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                action,
                path,
                source,
            } => write!(f, "{action} {}: {source}", path.display()),
            Error::Checkpoint { path, message } => write!(
                f,
                "checkpoint {} cannot be used: {message}; to start afresh without it, move it away \
                 (events since it will not be fetched again, and open .part files will be completed as they are)",
                path.display()
            ),
            Error::Symlink { path } => write!(
                f,
                "{} is a symbolic link; the archiver does not follow links in its directory: \
                 remove it or move the archive",
                path.display()
            ),
            Error::Layout { dir, message } => write!(f, "{}: {message}", dir.display()),
            Error::Locked { dir, pid } => {
                write!(
                    f,
                    "another wikistream-archiver holds {} (pid {pid})",
                    dir.display()
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Checkpoint { .. }
            | Error::Locked { .. }
            | Error::Symlink { .. }
            | Error::Layout { .. } => None,
        }
    }
}
