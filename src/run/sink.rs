//! Where a session's kept events go: the archive (`run`), the archive and stdout (`run --tee`),
//! or stdout only (`tail`). One enum in place of an optional archive beside an optional printer.
//!
//! It owns what happens when stdout goes away: `tail` stops, `--tee` goes on archiving.

use std::io;

use crate::archive::Archive;
use crate::console::{self, Printer};

/// The destination of kept events.
pub enum Sink {
    Archive(Archive),
    /// `--tee`: the printer is gone (`None`) once stdout was closed; archiving goes on.
    ArchiveAndPrint(Archive, Option<Printer>),
    Print(Printer),
}

/// Standard output is gone and nothing else is left to write to (`tail | head`).
#[derive(Debug, PartialEq, Eq)]
pub struct OutputClosed;

impl Sink {
    /// The archive, unless printing only.
    pub fn archive(&self) -> Option<&Archive> {
        match self {
            Sink::Archive(archive) | Sink::ArchiveAndPrint(archive, _) => Some(archive),
            Sink::Print(_) => None,
        }
    }

    /// Whether events go to standard output (`tail`, `--tee`).
    pub fn prints(&self) -> bool {
        matches!(self, Sink::Print(_) | Sink::ArchiveAndPrint(_, Some(_)))
    }

    /// The archive, unless printing only.
    pub fn archive_mut(&mut self) -> Option<&mut Archive> {
        match self {
            Sink::Archive(archive) | Sink::ArchiveAndPrint(archive, _) => Some(archive),
            Sink::Print(_) => None,
        }
    }

    /// Prints an archived event for `tail` and `--tee`.
    pub fn print(&mut self, data: &str) -> Result<(), OutputClosed> {
        self.with_printer(|printer| printer.print(data))
    }

    /// Writes out what the printer buffered.
    pub fn flush(&mut self) -> Result<(), OutputClosed> {
        self.with_printer(Printer::flush)
    }

    fn with_printer(
        &mut self,
        write: impl FnOnce(&mut Printer) -> io::Result<()>,
    ) -> Result<(), OutputClosed> {
        match self {
            Sink::Archive(_) | Sink::ArchiveAndPrint(_, None) => Ok(()),
            Sink::ArchiveAndPrint(_, tee @ Some(_)) => {
                if let Some(Err(e)) = tee.as_mut().map(write) {
                    log::warn!(
                        "writing standard output: {e}; --tee stops printing, archiving goes on"
                    );
                    *tee = None;
                }
                Ok(())
            }
            Sink::Print(printer) => write(printer).map_err(|e| {
                if !console::is_closed_pipe(&e) {
                    log::error!("writing standard output: {e}");
                }
                OutputClosed
            }),
        }
    }
}
