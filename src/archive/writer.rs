//! One gzip NDJSON file being written: a `.part` file made of gzip members, renamed to its final
//! name when finished.
//!
//! Owns the file handle, the gzip encoder and the byte counts of one segment, and knows where
//! the durable (fsynced, member-complete) prefix ends. It does not choose names or decide when to
//! end a member or finish; `archive/mod.rs` does.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::Error;

/// Lines are gathered into blocks of this size before they reach the compressor: flate2's
/// pure-Rust backend zeroes its 32 KB output buffer on every call, so one call per line would
/// cost more than compressing the line (measured with callgrind: a quarter of all instructions
/// at the live rate went to memset).
const STAGING_BYTES: usize = 64 * 1024;

/// Compressed output is buffered in blocks of this size: large enough that a Pi's SD card sees few
/// small writes, small enough to be irrelevant for RSS.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Counts the bytes that pass through to the file (the compressed size).
struct CountingWriter<W> {
    inner: W,
    n_bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n_bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type Encoder = GzEncoder<CountingWriter<BufWriter<File>>>;

/// An open segment.
pub struct Segment {
    part_path: PathBuf,
    final_path: PathBuf,
    level: Compression,
    /// `None` only transiently while one member is ended and the next begun.
    encoder: Option<Encoder>,
    /// Uncompressed lines not yet handed to the encoder.
    staging: Vec<u8>,
    n_lines: u64,
    /// Lines and bytes of the durable prefix: complete members, fsynced.
    n_lines_durable: u64,
    durable_len: u64,
}

impl Segment {
    /// Creates `part_path` (which must not exist yet); it will be renamed to `final_path`.
    pub fn create(part_path: PathBuf, final_path: PathBuf, level: u32) -> Result<Segment, Error> {
        let file = Error::open(
            OpenOptions::new().write(true).create_new(true),
            "creating",
            &part_path,
        )?;
        Ok(Segment::with_file(part_path, final_path, level, file, 0, 0))
    }

    /// Reopens `part_path` after a restart: cuts it to `length` (dropping anything after the last
    /// checkpoint) and appends new gzip members after that.
    pub fn reopen(
        part_path: PathBuf,
        final_path: PathBuf,
        level: u32,
        length: u64,
        n_lines: u64,
    ) -> Result<Segment, Error> {
        let mut file = Error::open(
            OpenOptions::new().write(true).create(true).truncate(false),
            "reopening",
            &part_path,
        )?;
        file.set_len(length)
            .and_then(|()| file.seek(SeekFrom::Start(length)))
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io("truncating", &part_path, e))?;
        Ok(Segment::with_file(
            part_path, final_path, level, file, length, n_lines,
        ))
    }

    fn with_file(
        part_path: PathBuf,
        final_path: PathBuf,
        level: u32,
        file: File,
        length: u64,
        n_lines: u64,
    ) -> Segment {
        let level = Compression::new(level);
        let counting = CountingWriter {
            inner: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
            n_bytes: length,
        };
        Segment {
            part_path,
            final_path,
            level,
            encoder: Some(GzEncoder::new(counting, level)),
            staging: Vec::with_capacity(STAGING_BYTES),
            n_lines,
            n_lines_durable: n_lines,
            durable_len: length,
        }
    }

    /// Appends `line` and a line feed.
    pub fn write_line(&mut self, line: &[u8]) -> Result<(), Error> {
        self.staging.extend_from_slice(line);
        self.staging.push(b'\n');
        self.n_lines += 1;
        if self.staging.len() >= STAGING_BYTES {
            self.drain_staging()?;
        }
        Ok(())
    }

    /// Hands the staged lines to the compressor.
    fn drain_staging(&mut self) -> Result<(), Error> {
        let encoder = self
            .encoder
            .as_mut()
            .expect("the encoder is replaced before end_member returns");
        let result = encoder.write_all(&self.staging);
        self.staging.clear();
        if self.staging.capacity() > 4 * STAGING_BYTES {
            // One oversize line must not keep megabytes around.
            self.staging.shrink_to(STAGING_BYTES);
        }
        result.map_err(|e| Error::io("writing", &self.part_path, e))
    }

    /// Lines written so far (durable or not).
    pub fn n_lines(&self) -> u64 {
        self.n_lines
    }

    /// Lines and bytes of the durable prefix.
    pub fn durable(&self) -> (u64, u64) {
        (self.n_lines_durable, self.durable_len)
    }

    /// Compressed bytes handed to the file so far (the gzip encoder may hold a few more).
    pub fn compressed_bytes(&self) -> u64 {
        self.encoder
            .as_ref()
            .map_or(self.durable_len, |e| e.get_ref().n_bytes)
    }

    /// The `.part` path being written.
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    /// Ends the current gzip member (if it holds any line) and fsyncs, so that everything written
    /// so far is durable; then starts a new member. Multi-member gzip reads as one stream.
    pub fn end_member(&mut self) -> Result<(), Error> {
        if self.n_lines == self.n_lines_durable {
            return Ok(());
        }
        self.drain_staging()?;
        let encoder = self
            .encoder
            .take()
            .expect("an encoder is always present between calls");
        let mut counting = encoder
            .finish()
            .map_err(|e| Error::io("ending a gzip member in", &self.part_path, e))?;
        counting
            .inner
            .flush()
            .and_then(|()| counting.inner.get_ref().sync_data())
            .map_err(|e| Error::io("syncing", &self.part_path, e))?;
        self.durable_len = counting.n_bytes;
        self.n_lines_durable = self.n_lines;
        self.encoder = Some(GzEncoder::new(counting, self.level));
        Ok(())
    }

    /// Ends the gzip stream and makes the whole file durable, still under its `.part` name.
    pub fn seal(mut self) -> Result<SealedSegment, Error> {
        self.end_member()?;
        let encoder = self
            .encoder
            .take()
            .expect("an encoder is always present between calls");
        let counting = encoder
            .finish()
            .map_err(|e| Error::io("finishing", &self.part_path, e))?;
        let n_bytes = counting.n_bytes;
        let file = counting
            .inner
            .into_inner()
            .map_err(|e| Error::io("flushing", &self.part_path, e.into_error()))?;
        // Everything after the last member is the empty member's header and trailer: cut it,
        // unless the file has no other member (an empty gzip stream is still a valid file).
        let keep = if self.durable_len > 0 {
            self.durable_len
        } else {
            n_bytes
        };
        file.set_len(keep)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("syncing", &self.part_path, e))?;
        Ok(SealedSegment {
            part_path: self.part_path,
            final_path: self.final_path,
            n_lines: self.n_lines,
        })
    }
}

/// A segment whose bytes are complete and durable, waiting for its rename.
pub struct SealedSegment {
    pub part_path: PathBuf,
    pub final_path: PathBuf,
    pub n_lines: u64,
}

impl SealedSegment {
    /// Gives the file its final name.
    ///
    /// SAFETY (crash window): the data was fsynced by `seal`, and the directory is fsynced after
    /// the rename, so after a crash the file exists either as a complete `.part` (which startup
    /// recovery completes) or under its final name, never as a final name over missing data.
    pub fn complete(self) -> Result<PathBuf, Error> {
        fs::rename(&self.part_path, &self.final_path)
            .map_err(|e| Error::io("renaming", &self.part_path, e))?;
        sync_dir(&self.final_path)?;
        Ok(self.final_path)
    }
}

/// Makes a rename or create in the directory holding `path` durable.
pub fn sync_dir(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::reader::{IntactPrefix, intact_prefix};
    use std::io::Read;

    #[test]
    fn members_seal_and_intact_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let part = dir.join("x.part");
        let mut segment = Segment::create(part.clone(), dir.join("x"), 6).unwrap();
        segment.write_line(b"{\"a\":1}").unwrap();
        segment.end_member().unwrap();
        let (n1, len1) = segment.durable();
        assert_eq!(n1, 1);
        assert_eq!(fs::metadata(&part).unwrap().len(), len1);
        segment.write_line(b"{\"a\":2}").unwrap();
        segment.end_member().unwrap();
        // Nothing new: no empty member.
        let before = segment.durable();
        segment.end_member().unwrap();
        assert_eq!(segment.durable(), before);
        let sealed = segment.seal().unwrap();
        let prefix = intact_prefix(&sealed.part_path).unwrap();
        assert_eq!(
            prefix,
            IntactPrefix {
                length: before.1,
                n_lines: 2,
                file_length: before.1
            }
        );
        let final_path = sealed.complete().unwrap();
        assert_eq!(gunzip(&final_path), "{\"a\":1}\n{\"a\":2}\n");

        // A torn tail: the intact prefix ends at the last whole member.
        let mut bytes = fs::read(&final_path).unwrap();
        let full = bytes.len() as u64;
        bytes.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0]);
        fs::write(&final_path, &bytes).unwrap();
        assert_eq!(intact_prefix(&final_path).unwrap().length, full);
        bytes.truncate(len1 as usize + 5);
        fs::write(&final_path, &bytes).unwrap();
        let prefix = intact_prefix(&final_path).unwrap();
        assert_eq!((prefix.length, prefix.n_lines), (len1, 1));
    }

    #[test]
    fn reopen_cuts_to_the_durable_length_and_appends() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let part = dir.join("y.part");
        let mut segment = Segment::create(part.clone(), dir.join("y"), 1).unwrap();
        segment.write_line(b"1").unwrap();
        segment.end_member().unwrap();
        let (n, len) = segment.durable();
        segment.write_line(b"lost").unwrap();
        drop(segment);
        let mut segment = Segment::reopen(part.clone(), dir.join("y"), 1, len, n).unwrap();
        segment.write_line(b"2").unwrap();
        let path = segment.seal().unwrap().complete().unwrap();
        assert_eq!(gunzip(&path), "1\n2\n");
    }

    /// The whole decompressed text of a (multi-member) gzip file.
    fn gunzip(path: &Path) -> String {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        text
    }
}
