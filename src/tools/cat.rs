//! `cat`: archive files back to NDJSON on stdout, in sequence order, with the run filters and a
//! `meta.dt` range. A range seeks: per stream, the files are chosen by the times in their names
//! and the first one is entered by bisection (`archive::seek`), so `--from` an hour ago reads
//! about an hour, not the years before it; reading stops after the last file `--to` needs.
//!
//! Reading goes through `archive::reader`, so only lines of intact gzip members come out; a torn
//! or damaged tail is reported on stderr and the next file follows. A closed stdout (`| head`)
//! ends the command quietly. It never writes into the archive.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::archive::reader::{self, ReadError, Report};
use crate::archive::seek::{self, ORDER_SLACK_MS};
use crate::archive::{self, FileRole, naming};
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

/// A file to read, from which byte (a member start), and whether it is still being written.
pub struct Input {
    pub path: PathBuf,
    pub offset: u64,
    pub open: bool,
}

/// Expands files and directories into the files to read, in order; in directories, only those
/// that may hold events of `[from, to)`.
pub fn inputs(paths: &[PathBuf], from: Option<i64>, to: Option<i64>) -> Result<Vec<Input>, Error> {
    let mut out = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path)
            .map_err(|e| Error::new(format!("reading {}", path.display()), e))?;
        if metadata.is_dir() {
            let listing = archive::list_archive(path).map_err(Error::from_archive)?;
            let files: Vec<Input> = listing
                .events
                .into_iter()
                .map(|(path, role)| Input {
                    path,
                    offset: 0,
                    open: matches!(role, FileRole::Events { open: true, .. }),
                })
                .collect();
            out.extend(in_range(path, files, from, to));
        } else {
            let name = path.file_name().map(|n| n.to_string_lossy());
            let role = name.as_deref().and_then(archive::classify);
            out.push(Input {
                path: path.clone(),
                offset: 0,
                open: matches!(role, Some(FileRole::Events { open: true, .. })),
            });
        }
    }
    Ok(out)
}

/// The files of archive directory `dir` (in sequence order) that `[from, to)` needs: per stream
/// (partition directory, or all flat files), the range their names allow, the first entered
/// at the member where events reach `from` (less the slack).
fn in_range(dir: &Path, files: Vec<Input>, from: Option<i64>, to: Option<i64>) -> Vec<Input> {
    if from.is_none() && to.is_none() {
        return files;
    }
    let stream_of = |input: &Input| {
        let rel = input.path.strip_prefix(dir).unwrap_or(&input.path);
        let rel = rel.to_string_lossy();
        naming::parse_partition(&rel).map(|(stream, _)| stream.to_string())
    };
    let keys: Vec<Option<String>> = files.iter().map(stream_of).collect();
    let mut keep = vec![false; files.len()];
    let mut offsets = vec![0; files.len()];
    let mut groups: Vec<&Option<String>> = keys.iter().collect();
    groups.sort();
    groups.dedup();
    for group in groups {
        let members: Vec<usize> = (0..files.len()).filter(|&i| keys[i] == *group).collect();
        let name_ms: Vec<Option<i64>> = members
            .iter()
            .map(|&i| {
                let name = files[i].path.file_name().map(|n| n.to_string_lossy());
                name.as_deref().and_then(naming::name_time_ms)
            })
            .collect();
        let range = seek::files_for_range(&name_ms, from, to, group.is_some());
        for &i in &members[range.clone()] {
            keep[i] = true;
        }
        if let (Some(from), Some(&first)) = (from, members[range].first()) {
            let mut before = |line: &[u8]| dt_ms(line).is_some_and(|ms| ms < from - ORDER_SLACK_MS);
            match seek::start_of(&files[first].path, &mut before) {
                Ok(offset) => offsets[first] = offset,
                Err(e) => log::warn!(
                    "{}: reading from its start: {e}",
                    files[first].path.display()
                ),
            }
        }
    }
    files
        .into_iter()
        .zip(keep.into_iter().zip(offsets))
        .filter(|(_, (keep, _))| *keep)
        .map(|(input, (_, offset))| Input { offset, ..input })
        .collect()
}

/// `meta.dt` of an archive line, in Unix ms.
fn dt_ms(line: &[u8]) -> Option<i64> {
    let meta = event::inspect(std::str::from_utf8(line).ok()?).ok()?;
    crate::times::parse_rfc3339_ms(meta.dt.as_deref()?)
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
#[inline(never)] // an entry point of main.rs: see `config::from_args`
pub fn run(args: &Config) -> Result<bool, Error> {
    let inputs = inputs(&args.paths, args.filter.from_ms, args.filter.to_ms)?;
    let mut out = BufWriter::with_capacity(STDOUT_BUFFER_BYTES, io::stdout().lock());
    let mut all_intact = true;
    let mut n_total = 0u64;
    for input in &inputs {
        let mut n_kept = 0u64;
        let result = reader::read_lines_from(&input.path, input.offset, &mut |line| {
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
            Err(ReadError::File(e)) => {
                // Reported, and the rest is read: as `verify` does; the exit says it (1).
                eprintln!("wikistream-archiver: {e}: skipped");
                all_intact = false;
                continue;
            }
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
