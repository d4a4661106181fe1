//! Subcommands that are not the archiver itself: `cat` and `verify` (reading archives back),
//! `parse` (the SSE parser's test surface) and `serve` (the replay server for demos and tests).
//!
//! They share one small error type that names the file or address involved.

pub mod cat;
pub mod parse;
pub mod schema;
pub mod serve;
pub mod ship;
pub mod verify;

use std::fmt;
use std::io;

/// A closed stdout (`… | head`) ends a command quietly; other write errors are reported.
pub fn quiet_on_closed_pipe(e: io::Error) -> Result<(), Error> {
    match crate::console::is_closed_pipe(&e) {
        true => Ok(()),
        false => Err(Error::new("writing standard output", e)),
    }
}

/// An I/O failure with what was being done to what.
#[derive(Debug)]
pub struct Error {
    context: String,
    source: Option<io::Error>,
}

impl Error {
    /// Wraps `source` with a description such as `reading /tmp/x`.
    pub fn new(context: impl Into<String>, source: io::Error) -> Error {
        Error {
            context: context.into(),
            source: Some(source),
        }
    }

    /// A failure told in words that name what failed.
    pub fn message(context: String) -> Error {
        Error {
            context,
            source: None,
        }
    }

    /// An archive error, which names its file already.
    pub fn from_archive(e: crate::archive::Error) -> Error {
        Error {
            context: e.to_string(),
            source: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.context),
            None => f.write_str(&self.context),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}
