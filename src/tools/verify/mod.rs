//! `verify`: checks an archive directory and reports what it holds and what is wrong with it.
//!
//! `checker` is the pure core and `report` renders its summary; this file is the I/O shell:
//! listing, reading through `archive::reader`, progress on a terminal, and printing the report.
//! It never writes into the archive.

mod checker;
mod report;

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

pub use self::checker::{
    Checker, DUPLICATE_WINDOW, DamagedFile, Duplicate, OffsetGap, Summary, TimeGap,
};
pub use self::report::{to_json, to_text};
use crate::archive::reader::{self, ReadError};
use crate::archive::{self, FileRole, naming};
use crate::tools::{Error, quiet_on_closed_pipe};

/// The progress line is redrawn at most this often.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// What `verify` checks, and how.
#[derive(Debug)]
pub struct Config {
    pub dir: std::path::PathBuf,
    /// Time gaps longer than this are problems.
    pub gap: Duration,
    /// Offset jumps that skip at most this many offsets are not gaps (dropped canaries).
    pub offset_slack: u64,
    pub json: bool,
}

/// A self-updating progress line on stderr, only when stderr is a terminal.
struct Progress {
    enabled: bool,
    started: Instant,
    last_drawn: Instant,
    /// Decoded bytes read so far, for the speed shown.
    n_bytes: u64,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            enabled: io::stderr().is_terminal(),
            started: Instant::now(),
            last_drawn: Instant::now(),
            n_bytes: 0,
        }
    }

    fn draw(&mut self, file_idx: usize, n_files: usize, summary: &Summary, force: bool) {
        if !self.enabled || (!force && self.last_drawn.elapsed() < PROGRESS_INTERVAL) {
            return;
        }
        self.last_drawn = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let _ = write!(
            io::stderr(),
            "\r\x1b[Kverify: file {}/{n_files}, {} events, {:.0} MB/s",
            file_idx + 1,
            summary.n_events,
            self.n_bytes as f64 / secs / 1e6
        );
    }

    fn clear(&self) {
        if self.enabled {
            let _ = write!(io::stderr(), "\r\x1b[K");
        }
    }
}

/// Checks the directory, prints the report; returns false when a file is damaged or events
/// are duplicated.
#[inline(never)] // an entry point of main.rs: see `config::from_args`
pub fn run(args: &Config) -> Result<bool, Error> {
    let listing = archive::list_archive(&args.dir).map_err(Error::from_archive)?;
    if listing.events.is_empty() {
        return Err(Error::new(
            format!("verifying {}", args.dir.display()),
            io::Error::new(
                io::ErrorKind::NotFound,
                "no archive files in this directory",
            ),
        ));
    }
    let mut checker = Checker::new(args.gap, args.offset_slack);
    let mut progress = Progress::new();
    let n_files = listing.events.len();
    for (file_idx, (path, role)) in listing.events.iter().enumerate() {
        let name = file_name(&args.dir, path);
        checker.partition_day = naming::parse_partition(&name).map(|(_, date)| day_ms(date));
        let report = {
            let checker = &mut checker;
            let progress = &mut progress;
            let mut n_since_draw = 0u32;
            reader::read_lines(path, &mut |line| {
                checker.line(line, &name);
                progress.n_bytes += line.len() as u64 + 1;
                n_since_draw += 1;
                if n_since_draw == 4096 {
                    n_since_draw = 0;
                    progress.draw(file_idx, n_files, &checker.summary, false);
                }
                Ok(())
            })
        };
        let report = match report {
            Ok(report) => report,
            Err(ReadError::File(e)) => {
                // Unreadable (e.g. permissions): damage too, and the check goes on.
                let damaged = DamagedFile::unreadable(name, &e);
                checker.summary.damaged.push(damaged);
                continue;
            }
            Err(ReadError::Sink(_)) => unreachable!("the sink above never fails"),
        };
        account(&mut checker.summary, name, role, report);
        progress.draw(file_idx, n_files, &checker.summary, true);
    }
    for path in &listing.rejects {
        let summary = &mut checker.summary;
        let result = reader::read_lines(path, &mut |line| {
            summary.reject(line);
            Ok(())
        });
        match result {
            Ok(_) => {}
            Err(e) => {
                let damaged = DamagedFile::unreadable(file_name(&args.dir, path), &e);
                checker.summary.damaged.push(damaged);
            }
        }
    }
    progress.clear();
    checker.finish();
    let summary = &checker.summary;
    let text = match args.json {
        true => format!("{:#}\n", to_json(&args.dir, summary)),
        false => to_text(&args.dir, summary),
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .or_else(quiet_on_closed_pipe)?;
    Ok(summary.damaged.is_empty() && summary.n_duplicates == 0)
}

/// Adds what reading one event file found to `summary`: its sizes, and damage unless it is
/// only the unchecked tail of the open file.
fn account(summary: &mut Summary, name: String, role: &FileRole, report: reader::Report) {
    summary.n_files += 1;
    summary.compressed_bytes += report.file_bytes;
    summary.text_bytes += report.text_bytes;
    let Some(damage) = report.damage else {
        return;
    };
    let lost_bytes = report.file_bytes - damage.offset;
    let open = matches!(role, FileRole::Events { open: true, .. });
    if !damage.is_damage(open) {
        summary.unfinished_bytes += lost_bytes;
    } else {
        summary.damaged.push(DamagedFile {
            file: name,
            offset: damage.offset,
            lost_bytes,
            truncated: damage.truncated,
            message: damage.message,
        });
    }
}

/// A file's path relative to the archive directory (`recentchange/date=…/…`), as reported.
fn file_name(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// The start and end of a UTC day, in Unix ms.
fn day_ms(date: time::Date) -> (i64, i64) {
    let start = date.midnight().assume_utc().unix_timestamp() * 1000;
    (start, start + 86_400_000)
}
