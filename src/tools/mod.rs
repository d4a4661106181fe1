//! Subcommands that are not the archiver itself: `parse` (the SSE parser's test surface) and
//! `serve` (the replay server for demos and tests).
//!
//! They share one small error type that names the file or address involved.

pub mod parse;
pub mod serve;

use std::fmt;
use std::io;

/// An I/O failure with what was being done to what.
#[derive(Debug)]
pub struct Error {
    context: String,
    source: io::Error,
}

impl Error {
    /// Wraps `source` with a description such as `reading /tmp/x`.
    pub fn new(context: impl Into<String>, source: io::Error) -> Error {
        Error {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
