//! Reading archive files back: lines of gzip members whose CRC and length check out, and where
//! the intact part of a file ends.
//!
//! A file is a series of gzip members (one per checkpoint). A member's lines are handed on only
//! after its trailer has been checked, so a flipped byte or a torn tail never yields a wrong
//! line; reading stops at the first bad member and says where it was. Used by recovery at start
//! (`intact_prefix`), `cat` and `verify`, and by `serve` through the pull reader `MemberLines`,
//! so that all of them hand on the same lines of a damaged file. It does not list directories
//! or parse JSON.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::Error;
use super::error::open_no_follow;

/// Read buffer for an archive file and for decoded text: large enough that a read is a few
/// syscalls per gzip member, small next to the inflater's own state. Readers share it.
pub const FILE_BUFFER_BYTES: usize = 64 * 1024;
/// A member's text is held until its CRC is checked, up to this much; members of larger files
/// (e.g. with `--checkpoint-interval off`) are handed on in pieces before the check, and a
/// failed check then reports how many lines went out unverified.
const MEMBER_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// Counts the bytes consumed from a `BufRead`, so member boundaries can be located exactly.
struct CountingReader<R> {
    inner: R,
    n_consumed: u64,
}

impl<R: BufRead> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n_consumed += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for CountingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.n_consumed += amount as u64;
        self.inner.consume(amount);
    }
}

/// Where a file stops being readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Compressed offset where the bad member starts (= `Report::intact_bytes`).
    pub offset: u64,
    /// The file ends inside the member (a torn tail) rather than holding bad bytes.
    pub truncated: bool,
    /// What the decoder said.
    pub message: String,
    /// Lines of the bad member handed on before the damage was found (large members only).
    pub n_unverified_lines: u64,
}

impl Damage {
    /// Whether this is damage, given whether the file is still being written: the open file's
    /// torn tail is only what was written since its last checkpoint.
    pub fn is_damage(&self, open: bool) -> bool {
        !(open && self.truncated)
    }
}

/// What reading a file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Lines handed on from intact members.
    pub n_lines: u64,
    /// Decoded bytes of those lines, newlines included.
    pub text_bytes: u64,
    /// Bytes up to the end of the last intact member.
    pub intact_bytes: u64,
    /// Size of the file.
    pub file_bytes: u64,
    pub damage: Option<Damage>,
}

/// Reads the lines (without their newline) of the intact members of the gzip file at `path`.
/// `on_line` may fail (a closed stdout); its error ends the reading and is returned as is.
pub fn read_lines(
    path: &Path,
    on_line: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<Report, ReadError> {
    read_lines_from(path, 0, on_line)
}

/// `read_lines` from byte `offset` on, which must be the start of a member (`archive::seek`
/// finds one); the report's offsets stay those of the whole file.
pub fn read_lines_from(
    path: &Path,
    offset: u64,
    on_line: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<Report, ReadError> {
    let mut file = File::open(path).map_err(|e| ReadError::File(Error::io("opening", path, e)))?;
    if offset > 0 {
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| ReadError::File(Error::io("reading", path, e)))?;
    }
    read_lines_of(file, offset, path, on_line)
}

/// `read_lines` over an open file (recovery opens it without following links), positioned at
/// byte `offset`.
fn read_lines_of(
    file: File,
    offset: u64,
    path: &Path,
    on_line: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<Report, ReadError> {
    let file_bytes = file
        .metadata()
        .map_err(|e| ReadError::File(Error::io("reading metadata of", path, e)))?
        .len();
    let mut reader = CountingReader {
        inner: BufReader::with_capacity(FILE_BUFFER_BYTES, file),
        n_consumed: offset,
    };
    let mut report = Report {
        n_lines: 0,
        text_bytes: 0,
        intact_bytes: offset,
        file_bytes,
        damage: None,
    };
    let mut buf = vec![0u8; FILE_BUFFER_BYTES];
    // Decoded text not yet handed on: the current member's, plus a line that a previous member
    // left without its newline.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        match reader.fill_buf() {
            Ok([]) => break,
            Ok(_) => {}
            Err(e) => return Err(ReadError::File(Error::io("reading", path, e))),
        }
        // Lines and bytes of this member handed on so far; they count once its check passes.
        let (mut n_member_lines, mut n_member_bytes) = (0, 0);
        let mut decoder = flate2::bufread::GzDecoder::new(&mut reader);
        let failure = loop {
            match decoder.read(&mut buf) {
                Ok(0) => break None,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(e) => break Some(e),
            }
            if pending.len() > MEMBER_BUFFER_BYTES {
                let (n, n_bytes) = hand_on_lines(&mut pending, on_line)?;
                n_member_lines += n;
                n_member_bytes += n_bytes;
            }
        };
        drop(decoder);
        if let Some(e) = failure {
            // The decoder says UnexpectedEof when the data ends inside the member (a bad
            // checksum or bad deflate data is InvalidInput or InvalidData); the file must end
            // there too, or it is bad data that merely looked unfinished.
            let truncated =
                e.kind() == io::ErrorKind::UnexpectedEof && matches!(reader.fill_buf(), Ok([]));
            report.damage = Some(Damage {
                offset: report.intact_bytes,
                truncated,
                message: e.to_string(),
                n_unverified_lines: n_member_lines,
            });
            // A line begun in an earlier, intact member stays unfinished: not handed on.
            return Ok(report);
        }
        report.intact_bytes = reader.n_consumed;
        let (n, n_bytes) = hand_on_lines(&mut pending, on_line)?;
        report.n_lines += n_member_lines + n;
        report.text_bytes += n_member_bytes + n_bytes;
    }
    if !pending.is_empty() {
        // Archive lines always end in a newline; a last line without one is still checked data.
        on_line(&pending).map_err(ReadError::Sink)?;
        report.n_lines += 1;
        report.text_bytes += pending.len() as u64;
    }
    Ok(report)
}

/// The lines of a gzip archive file, one at a time, by the same rule as `read_lines`: a
/// member's lines come out only once its CRC and length checked (or, past
/// `MEMBER_BUFFER_BYTES` of it, before), and reading ends at the first bad member.
pub struct MemberLines {
    /// The file between members; `None` inside a member or once ended.
    between: Option<BufReader<File>>,
    decoder: Option<flate2::bufread::GzDecoder<BufReader<File>>>,
    /// Decoded text; `text[start..checked]` may be handed on.
    text: Vec<u8>,
    start: usize,
    checked: usize,
    buf: Vec<u8>,
    /// Why reading ended early, once it did.
    damage: Option<io::Error>,
}

impl MemberLines {
    /// Reads `file`, positioned at a member start.
    pub fn new(file: BufReader<File>) -> MemberLines {
        MemberLines {
            between: Some(file),
            decoder: None,
            text: Vec::new(),
            start: 0,
            checked: 0,
            buf: vec![0u8; FILE_BUFFER_BYTES],
            damage: None,
        }
    }

    /// The next line (without its newline); `None` at the end, or at damage (`damage` says).
    pub fn next_line(&mut self) -> Option<&[u8]> {
        loop {
            let ready = &self.text[self.start..self.checked];
            if let Some(len) = ready.iter().position(|&b| b == b'\n') {
                let line = self.start..self.start + len;
                self.start += len + 1;
                return Some(&self.text[line]);
            }
            if !self.decode_more() {
                // Archive lines end in a newline; a last checked line without one still counts.
                let rest = self.start..self.checked;
                self.start = self.checked;
                return (!rest.is_empty()).then(|| &self.text[rest]);
            }
        }
    }

    /// What ended reading early, if anything did.
    pub fn damage(&self) -> Option<&io::Error> {
        self.damage.as_ref()
    }

    /// Decodes more of the file; `false` at its end or at damage.
    fn decode_more(&mut self) -> bool {
        if self.decoder.is_none() {
            let Some(mut file) = self.between.take() else {
                return false;
            };
            match file.fill_buf() {
                Ok([]) => return false,
                Ok(_) => {}
                Err(e) => {
                    self.damage = Some(e);
                    return false;
                }
            }
            // Keep what is not handed on yet (an unfinished line) at the front.
            self.text.drain(..self.start);
            self.checked -= self.start;
            self.start = 0;
            self.decoder = Some(flate2::bufread::GzDecoder::new(file));
        }
        let decoder = self.decoder.as_mut().expect("inside a member");
        match decoder.read(&mut self.buf) {
            Ok(0) => {
                // The trailer checked: the whole member may be handed on.
                self.checked = self.text.len();
                let decoder = self.decoder.take().expect("inside a member");
                self.between = Some(decoder.into_inner());
            }
            Ok(n) => {
                self.text.extend_from_slice(&self.buf[..n]);
                if self.text.len() - self.start > MEMBER_BUFFER_BYTES
                    && let Some(last) = self.text.iter().rposition(|&b| b == b'\n')
                {
                    self.checked = self.checked.max(last + 1);
                }
            }
            Err(e) => {
                // Nothing unchecked of this member is handed on.
                self.text.truncate(self.checked);
                self.decoder = None;
                self.damage = Some(e);
                return false;
            }
        }
        true
    }
}

/// Hands on the complete lines at the front of `pending`, keeping an unfinished last line.
fn hand_on_lines(
    pending: &mut Vec<u8>,
    on_line: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<(u64, u64), ReadError> {
    let Some(last_newline) = pending.iter().rposition(|&b| b == b'\n') else {
        return Ok((0, 0));
    };
    let mut n_lines = 0;
    for line in pending[..last_newline].split(|&b| b == b'\n') {
        on_line(line).map_err(ReadError::Sink)?;
        n_lines += 1;
    }
    let n_bytes = last_newline as u64 + 1;
    pending.drain(..=last_newline);
    Ok((n_lines, n_bytes))
}

/// Why `read_lines` stopped early.
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be opened or read.
    File(Error),
    /// `on_line` failed.
    Sink(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::File(e) => write!(f, "{e}"),
            ReadError::Sink(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// The most decoded text `salvage` looks at: the torn member of a file written with
/// checkpoints holds a few seconds of events; without checkpoints it may be huge, and what lies
/// beyond this is kept in the damaged bytes instead.
const MAX_SALVAGE_BYTES: usize = 64 << 20;

/// The whole lines that still decode from the damaged part of the gzip file at `path`, which
/// starts at `offset` (the end of its intact prefix): the text of the torn member up to where it
/// breaks, cut to lines that end in a newline and are each one JSON object. These lines passed
/// no CRC check; the JSON check keeps any garbage out.
pub fn salvage(path: &Path, offset: u64) -> Result<Vec<Vec<u8>>, Error> {
    use std::io::{Seek, SeekFrom};
    let mut file = open_no_follow(std::fs::OpenOptions::new().read(true), "opening", path)?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| Error::io("reading", path, e))?;
    let mut decoder =
        flate2::read::GzDecoder::new(BufReader::with_capacity(FILE_BUFFER_BYTES, file));
    let mut text = Vec::new();
    let mut buf = vec![0u8; FILE_BUFFER_BYTES];
    while text.len() < MAX_SALVAGE_BYTES {
        match decoder.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    let whole = text
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |idx| idx + 1);
    Ok(text[..whole]
        .split(|&b| b == b'\n')
        .filter(|line| {
            std::str::from_utf8(line).is_ok_and(|text| crate::event::inspect(text).is_ok())
        })
        .map(<[u8]>::to_vec)
        .collect())
}

/// What a scan of a gzip file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntactPrefix {
    /// Bytes up to the end of the last gzip member that decodes with a correct CRC and length.
    pub length: u64,
    /// Lines in those members.
    pub n_lines: u64,
    /// Total bytes of the file.
    pub file_length: u64,
}

/// Walks the members of the gzip file at `path` and says where the intact prefix ends; each
/// intact line goes to `on_line`. The file is opened without following a link.
pub fn scan_intact(path: &Path, on_line: &mut dyn FnMut(&[u8])) -> Result<IntactPrefix, Error> {
    let file = open_no_follow(std::fs::OpenOptions::new().read(true), "opening", path)?;
    let report = match read_lines_of(file, 0, path, &mut |line| {
        on_line(line);
        Ok(())
    }) {
        Ok(report) => report,
        Err(ReadError::File(e)) => return Err(e),
        Err(ReadError::Sink(_)) => unreachable!("the sink above never fails"),
    };
    Ok(IntactPrefix {
        length: report.intact_bytes,
        n_lines: report.n_lines,
        file_length: report.file_bytes,
    })
}

/// Walks the members of the gzip file at `path` and says where the intact prefix ends.
pub fn intact_prefix(path: &Path) -> Result<IntactPrefix, Error> {
    scan_intact(path, &mut |_| {})
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn member(text: &str) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    fn read_all(path: &Path) -> (Vec<String>, Report) {
        let mut lines = Vec::new();
        let report = read_lines(path, &mut |line| {
            lines.push(String::from_utf8_lossy(line).into_owned());
            Ok(())
        })
        .unwrap();
        (lines, report)
    }

    #[test]
    fn lines_of_intact_members_only() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.gz");
        let first = member("a\nb\n");
        let second = member("c\n");
        let mut bytes = [first.clone(), second.clone()].concat();
        std::fs::write(&path, &bytes).unwrap();
        let (lines, report) = read_all(&path);
        assert_eq!(lines, ["a", "b", "c"]);
        assert_eq!(report.damage, None);
        assert_eq!(report.text_bytes, 6);

        // Torn: the second member is cut.
        bytes.truncate(first.len() + second.len() - 3);
        std::fs::write(&path, &bytes).unwrap();
        let (lines, report) = read_all(&path);
        assert_eq!(lines, ["a", "b"]);
        let damage = report.damage.expect("damage");
        assert!(damage.truncated);
        assert_eq!(damage.offset, first.len() as u64);

        // A flipped byte in the second member's checksum: its lines are not handed on.
        let mut bytes = [first.clone(), second.clone()].concat();
        let idx = first.len() + second.len() - 6;
        bytes[idx] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        let (lines, report) = read_all(&path);
        assert_eq!(lines, ["a", "b"]);
        assert!(!report.damage.expect("damage").truncated);
    }

    #[test]
    fn a_line_may_span_members_and_sink_errors_pass_through() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("y.gz");
        std::fs::write(&path, [member("a\nlo"), member("ng\nz")].concat()).unwrap();
        let (lines, report) = read_all(&path);
        assert_eq!(lines, ["a", "long", "z"]);
        assert_eq!(report.n_lines, 3);
        let result = read_lines(&path, &mut |_| Err(io::ErrorKind::BrokenPipe.into()));
        assert!(matches!(result, Err(ReadError::Sink(e)) if e.kind() == io::ErrorKind::BrokenPipe));
    }
}
