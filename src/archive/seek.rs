//! Finding a point in an archive without reading what comes before it: a binary search over a
//! stream's files by the times their names carry (`files_for_range`), over files by their first
//! lines (`first_file`), and inside one file by byte offset (`start_of`): at line starts in
//! plain NDJSON, at gzip member starts in gzip (our files end a member at every checkpoint, so
//! a member holds seconds of events).
//!
//! The caller says what "before the point" means for a line (`before`); events are only
//! roughly in `meta.dt` order, so callers compare times with `ORDER_SLACK_MS` to spare. A seek
//! only chooses where reading starts: callers still check every event they read after it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// How far events may be out of `meta.dt` order within the archive: a seek to time T starts
/// where events are this much older than T. It is the straggler grace, because a day's file
/// takes that day's late events until the grace has passed, so a later file can be followed by
/// events up to the grace older than its name's time (the live feed is out of order by seconds).
pub const ORDER_SLACK_MS: i64 = super::partition::STRAGGLER_GRACE_MS;
/// A byte bisection stops when its range is this small, and reads on from there.
const GRANULE: u64 = 16 * 1024;
/// The first bytes of a gzip member with deflate.
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
/// The longest first line a probe reads.
const MAX_PROBE_LINE: u64 = 16 << 20;

/// Whether the file at `path` is gzip (by its first bytes).
pub fn is_gzip(path: &Path) -> io::Result<bool> {
    let mut magic = [0u8; 2];
    let n = File::open(path)?.read(&mut magic)?;
    Ok(n == 2 && magic == GZIP_MAGIC[..2])
}

/// The largest index in `range` whose probe says true, or `range.start` if none does; probes
/// must say true up to some index and false after it.
fn last_true(range: Range<usize>, mut probe: impl FnMut(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (range.start, range.end);
    // Invariant: every index below `lo` is true or is range.start; every index ≥ `hi` false.
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        match probe(mid) {
            true => lo = mid,
            false => hi = mid,
        }
    }
    lo
}

/// Which of a stream's files (in sequence order, with the UTC times their names carry) a read
/// of `meta.dt` in `[from, to)` needs. File i holds the events from its name's time until the
/// next file's, give or take `ORDER_SLACK_MS`: files that end before `from` are skipped, and,
/// where `names_are_event_times` (the partitioned layout), files that begin after `to`. Flat
/// names are the times files were opened: a backfilled file holds older events, so only `from`
/// prunes them (an event is never written before its time).
pub fn files_for_range(
    name_ms: &[Option<i64>],
    from: Option<i64>,
    to: Option<i64>,
    names_are_event_times: bool,
) -> Range<usize> {
    let start = match from {
        Some(from) => name_ms
            .windows(2)
            .position(|pair| pair[1].is_none_or(|next| next.saturating_add(ORDER_SLACK_MS) >= from))
            .unwrap_or(name_ms.len().saturating_sub(1)),
        None => 0,
    };
    let end = match (to, names_are_event_times) {
        (Some(to), true) => name_ms[start..]
            .iter()
            .position(|ms| ms.is_some_and(|ms| ms.saturating_sub(ORDER_SLACK_MS) >= to))
            .map_or(name_ms.len(), |n| start + n),
        _ => name_ms.len(),
    };
    start.min(end)..end
}

/// The first whole line at or after byte `offset` of a file, with the offset to start reading
/// at to get it: in plain text the start of the line after the first newline at or after
/// `offset - 1` (0 at 0); in gzip the first member at or after `offset` whose first line looks
/// like a JSON object (bytes that merely look like a member header fail that).
pub fn line_at(path: &Path, offset: u64, gzip: bool) -> io::Result<Option<(u64, Vec<u8>)>> {
    let mut file = BufReader::with_capacity(GRANULE as usize, File::open(path)?);
    if !gzip {
        let mut start = offset;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset - 1))?;
            let mut skipped = Vec::new();
            let n = (&mut file)
                .take(MAX_PROBE_LINE)
                .read_until(b'\n', &mut skipped)?;
            start = offset - 1 + n as u64;
        }
        let mut line = Vec::new();
        (&mut file)
            .take(MAX_PROBE_LINE)
            .read_until(b'\n', &mut line)?;
        return Ok(line.ends_with(b"\n").then(|| {
            line.pop();
            (start, line)
        }));
    }
    let mut at = offset;
    file.seek(SeekFrom::Start(at))?;
    loop {
        let window = file.fill_buf()?;
        if window.len() < GZIP_MAGIC.len() {
            return Ok(None);
        }
        let Some(idx) = window
            .windows(GZIP_MAGIC.len())
            .position(|w| w == GZIP_MAGIC)
        else {
            let n = window.len() - (GZIP_MAGIC.len() - 1);
            file.consume(n);
            at += n as u64;
            // A partial magic at the window's end is read again with the next window.
            file.seek(SeekFrom::Start(at))?;
            continue;
        };
        let candidate = at + idx as u64;
        if let Some(line) = first_line_of_member(path, candidate)?
            && line.first() == Some(&b'{')
        {
            return Ok(Some((candidate, line)));
        }
        at = candidate + 1;
        file.seek(SeekFrom::Start(at))?;
    }
}

/// The first line decoded from a gzip member starting at `offset`, if it decodes.
fn first_line_of_member(path: &Path, offset: u64) -> io::Result<Option<Vec<u8>>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let decoder = flate2::read::MultiGzDecoder::new(BufReader::new(file));
    let mut line = Vec::new();
    match BufReader::new(decoder.take(MAX_PROBE_LINE)).read_until(b'\n', &mut line) {
        Ok(_) if line.ends_with(b"\n") => {
            line.pop();
            Ok(Some(line))
        }
        _ => Ok(None),
    }
}

/// Where to start reading the file at `path` (a line start, or a member start in gzip) so that
/// the lines from there on include every line not `before` the point: the last position found
/// whose line is `before`, by bisection, or 0.
pub fn start_of(path: &Path, before: &mut dyn FnMut(&[u8]) -> bool) -> io::Result<u64> {
    let gzip = is_gzip(path)?;
    let len = std::fs::metadata(path)?.len();
    let (mut lo, mut hi) = (0u64, len);
    while hi - lo > GRANULE {
        let mid = lo + (hi - lo) / 2;
        match line_at(path, mid, gzip)? {
            Some((start, line)) if start < hi && before(&line) => lo = start,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// Among `paths` (in reading order), the index of the last file whose first line is `before`
/// the point (0 if none): reading from it on misses nothing that is not before the point.
pub fn first_file(paths: &[PathBuf], before: &mut dyn FnMut(&[u8]) -> bool) -> usize {
    last_true(
        0..paths.len(),
        |idx| matches!(line_at(&paths[idx], 0, true), Ok(Some((0, line))) if before(&line)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn ranges_of_files_by_name_times() {
        let min = 60_000;
        let names: Vec<Option<i64>> = (0..10).map(|i| Some(i * 60 * min)).collect();
        // From 5 h: file 4 (4 h .. 5 h) may still hold events within the slack of 5 h.
        assert_eq!(
            files_for_range(&names, Some(5 * 60 * min), None, true),
            4..10
        );
        assert_eq!(
            files_for_range(&names, Some(5 * 60 * min + 6 * min), None, true),
            5..10
        );
        // To 7 h: file 7 begins at 7 h, within the slack.
        assert_eq!(
            files_for_range(&names, None, Some(7 * 60 * min), true),
            0..8
        );
        assert_eq!(
            files_for_range(&names, None, Some(7 * 60 * min - 6 * min), true),
            0..7
        );
        // Flat names are write times: `to` prunes nothing.
        assert_eq!(files_for_range(&names, None, Some(0), false), 0..10);
        // Past the end, the last file is still read (it has no known end).
        assert_eq!(files_for_range(&names, Some(i64::MAX), None, true), 9..10);
        assert_eq!(files_for_range(&[], Some(0), Some(1), true), 0..0);
    }

    #[test]
    fn last_true_bisects() {
        for n in 0..20 {
            for k in 0..=n {
                let found = last_true(0..n, |i| i < k);
                assert_eq!(found, k.saturating_sub(1).min(n.saturating_sub(1)));
            }
        }
    }

    fn numbered_lines(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("{{\"n\":{i:08}}}\n").into_bytes())
            .collect()
    }

    fn number(line: &[u8]) -> usize {
        std::str::from_utf8(&line[5..13]).unwrap().parse().unwrap()
    }

    #[test]
    fn plain_and_gzip_files_bisect_to_just_before_the_point() {
        let tmp = tempfile::tempdir().unwrap();
        let plain = tmp.path().join("plain.ndjson");
        std::fs::write(&plain, numbered_lines(200_000)).unwrap();
        let gz = tmp.path().join("members.gz");
        let mut out = File::create(&gz).unwrap();
        let text = numbered_lines(200_000);
        for chunk in text.chunks(15 * 10_000) {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            encoder.write_all(chunk).unwrap();
            out.write_all(&encoder.finish().unwrap()).unwrap();
        }
        drop(out);
        for path in [&plain, &gz] {
            let gzip = is_gzip(path).unwrap();
            for target in [0, 1, 77_777, 150_000, 199_999] {
                let mut probes = 0;
                let start = start_of(path, &mut |line| {
                    probes += 1;
                    number(line) < target
                })
                .unwrap();
                let (_, first) = line_at(path, start, gzip).unwrap().unwrap();
                let first = number(&first);
                assert!(first <= target, "{path:?} {target}: starts at {first}");
                // Within one granule (plain) or about a member (gzip) of the point.
                assert!(
                    target - first <= 20_000,
                    "{path:?} {target}: starts at {first}"
                );
                assert!(probes < 40, "{probes} probes");
            }
        }
    }
}
