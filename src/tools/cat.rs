//! `cat`: archive files back to NDJSON on stdout, in sequence order, with the run filters and a
//! `meta.dt` range.
//!
//! Reading goes through `archive::reader`, so only lines of intact gzip members come out; a torn
//! or damaged tail is reported on stderr and the next file follows. A closed stdout (`| head`)
//! ends the command quietly. It never writes into the archive.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::archive::reader::{self, ReadError, Report};
use crate::archive::{self, FileRole};
use crate::event;
use crate::filter::Filter;
use crate::tools::{Error, quiet_on_closed_pipe};

/// Standard output is written in blocks of this size: a pipe into another program takes large
/// writes best.
const STDOUT_BUFFER_BYTES: usize = 256 * 1024;

/// What `cat` reads and prints.
#[derive(Debug)]
pub struct Config {
    /// Files or directories.
    pub paths: Vec<PathBuf>,
    pub filter: Filter,
    /// Print counts instead of events.
    pub count: bool,
}

/// A file to read and whether it is still being written.
pub struct Input {
    pub path: PathBuf,
    pub open: bool,
}

/// Expands files and directories into the files to read, in order.
pub fn inputs(paths: &[PathBuf]) -> Result<Vec<Input>, Error> {
    let mut out = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path)
            .map_err(|e| Error::new(format!("reading {}", path.display()), e))?;
        if metadata.is_dir() {
            let listing = archive::list_archive(path).map_err(Error::from_archive)?;
            out.extend(listing.events.into_iter().map(|(path, role)| Input {
                path,
                open: matches!(role, FileRole::Events { open: true, .. }),
            }));
        } else {
            let name = path.file_name().map(|n| n.to_string_lossy());
            let role = name.as_deref().and_then(archive::classify);
            out.push(Input {
                path: path.clone(),
                open: matches!(role, Some(FileRole::Events { open: true, .. })),
            });
        }
    }
    Ok(out)
}

/// Whether a line passes `filter` (lines that are not JSON objects never do, unless no filter
/// is set).
pub fn keep(filter: &Filter, line: &[u8]) -> bool {
    if filter.is_empty() {
        return true;
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return false;
    };
    event::inspect(text).is_ok_and(|meta| filter.check(text, &meta).is_ok())
}

/// Says on stderr what could not be read of a file; returns whether that is damage (a torn
/// tail of the open file is not: it holds what was written since the last checkpoint).
pub fn report_damage(path: &Path, open: bool, report: &Report) -> bool {
    let Some(damage) = &report.damage else {
        return false;
    };
    let lost = report.file_bytes - damage.offset;
    let is_damage = damage.is_damage(open);
    let what = match (open, damage.truncated) {
        (true, true) => "are not readable yet (written since the last checkpoint)".to_string(),
        (_, true) => format!("are a torn tail ({})", damage.message),
        (_, false) => format!("are damaged ({})", damage.message),
    };
    log::warn!(
        "{}: read {} events; the last {lost} bytes from offset {} {what}{}",
        path.display(),
        report.n_lines,
        damage.offset,
        if damage.n_unverified_lines > 0 {
            format!(
                "; {} lines of the damaged part were printed before the damage was found",
                damage.n_unverified_lines
            )
        } else {
            String::new()
        }
    );
    is_damage
}

/// Prints the events (or counts); returns false when a file was damaged.
pub fn run(args: &Config) -> Result<bool, Error> {
    let inputs = inputs(&args.paths)?;
    let mut out = BufWriter::with_capacity(STDOUT_BUFFER_BYTES, io::stdout().lock());
    let mut all_intact = true;
    let mut n_total = 0u64;
    for input in &inputs {
        let mut n_kept = 0u64;
        let result = reader::read_lines(&input.path, &mut |line| {
            if !keep(&args.filter, line) {
                return Ok(());
            }
            n_kept += 1;
            if args.count {
                return Ok(());
            }
            out.write_all(line)?;
            out.write_all(b"\n")
        });
        let report = match result {
            Ok(report) => report,
            Err(ReadError::Sink(e)) => return quiet_on_closed_pipe(e).map(|()| true),
            Err(ReadError::File(e)) => return Err(Error::from_archive(e)),
        };
        all_intact &= !report_damage(&input.path, input.open, &report);
        n_total += n_kept;
        if args.count
            && let Err(e) = writeln!(out, "{n_kept:>12} {}", input.path.display())
        {
            return quiet_on_closed_pipe(e).map(|()| true);
        }
    }
    let end = match args.count {
        true => writeln!(out, "{n_total:>12} total").and_then(|()| out.flush()),
        false => out.flush(),
    };
    match end {
        Ok(()) => Ok(all_intact),
        Err(e) => quiet_on_closed_pipe(e).map(|()| true),
    }
}
