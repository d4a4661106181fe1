//! One gzip NDJSON file being written: a `.part` file made of gzip members, renamed to its final
//! name when finished.
//!
//! Owns the file handle, the compressor and the byte counts of one file being written (an event file or a rejects file), and knows where the
//! durable (fsynced, member-complete) prefix ends. It does not choose names or decide when to
//! end a member or finish; `archive/mod.rs` does.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::{Compress, Compression, FlushCompress, Status};

use super::Error;
use super::error::open_no_follow;

/// Lines are gathered into blocks of this size before they reach the compressor: each call into
/// it has a fixed cost that a line of about a kilobyte would feel (measured with callgrind).
const STAGING_BYTES: usize = 64 * 1024;

/// Compressed output is gathered in a block of this size before it is written: large enough that
/// a Pi's SD card sees few small writes, small enough to be irrelevant for RSS.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Window of the compressor: 32 KB, gzip's (and the largest deflate allows).
const WINDOW_BITS: u8 = 15;

/// The gzip members of one file, made by one compressor that is reset from member to member:
/// zlib-rs writes each member's header and its CRC trailer, and a reset keeps its tables (about
/// 300 KB), so a checkpoint neither allocates nor faults them in again.
struct Members {
    compress: Compress,
    /// Compressed bytes not yet written to `file` (its capacity is never exceeded).
    out: Vec<u8>,
    file: File,
    /// Compressed bytes made so far: those written to `file` and those in `out`.
    n_bytes: u64,
}

impl Members {
    fn new(file: File, level: u32, n_bytes: u64) -> Members {
        Members {
            compress: Compress::new_gzip(Compression::new(level), WINDOW_BITS),
            out: Vec::with_capacity(WRITE_BUFFER_BYTES),
            file,
            n_bytes,
        }
    }

    /// Compresses all of `input` into the current member, writing `out` whenever it fills up;
    /// with `FlushCompress::Finish`, also ends the member (its trailer is then in `out` or the
    /// file).
    fn deflate(&mut self, mut input: &[u8], flush: FlushCompress) -> io::Result<()> {
        let finishing = flush == FlushCompress::Finish;
        loop {
            if self.out.len() == self.out.capacity() {
                self.write_out()?;
            }
            let (in_before, out_before) = (self.compress.total_in(), self.out.len());
            let status = self
                .compress
                .compress_vec(input, &mut self.out, flush)
                .map_err(io::Error::other)?;
            // Both counts are bounded by the slices given (input, out's spare capacity).
            input = &input[(self.compress.total_in() - in_before) as usize..];
            self.n_bytes += (self.out.len() - out_before) as u64;
            let room_left = self.out.len() < self.out.capacity();
            match status {
                Status::StreamEnd => return Ok(()),
                Status::Ok | Status::BufError if !finishing && input.is_empty() && room_left => {
                    return Ok(());
                }
                Status::Ok | Status::BufError => {}
            }
        }
    }

    fn write_out(&mut self) -> io::Result<()> {
        self.file.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }

    /// Ends the current member and makes the file durable up to its end; the next bytes given
    /// start a new member.
    fn end(&mut self) -> io::Result<()> {
        self.deflate(&[], FlushCompress::Finish)?;
        self.write_out()?;
        self.file.sync_data()?;
        self.compress.reset();
        Ok(())
    }
}

/// A `.part` file being written: gzip members, one per checkpoint.
pub struct PartFile {
    part_path: PathBuf,
    final_path: PathBuf,
    members: Members,
    /// Uncompressed lines not yet handed to the compressor.
    staging: Vec<u8>,
    n_lines: u64,
    /// Lines and bytes of the durable prefix: complete members, fsynced.
    n_lines_durable: u64,
    durable_len: u64,
}

impl PartFile {
    /// Creates `part_path` (which must not exist yet); it will be renamed to `final_path`.
    pub fn create(part_path: PathBuf, final_path: PathBuf, level: u32) -> Result<PartFile, Error> {
        let file = open_no_follow(
            OpenOptions::new().write(true).create_new(true),
            "creating",
            &part_path,
        )?;
        Ok(PartFile::with_file(
            part_path, final_path, level, file, 0, 0,
        ))
    }

    /// Reopens `part_path` after a restart: cuts it to `length` (dropping anything after the last
    /// checkpoint) and appends new gzip members after that.
    pub fn reopen(
        part_path: PathBuf,
        final_path: PathBuf,
        level: u32,
        length: u64,
        n_lines: u64,
    ) -> Result<PartFile, Error> {
        let mut file = open_no_follow(
            OpenOptions::new().write(true).create(true).truncate(false),
            "reopening",
            &part_path,
        )?;
        file.set_len(length)
            .and_then(|()| file.seek(SeekFrom::Start(length)))
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io("truncating", &part_path, e))?;
        Ok(PartFile::with_file(
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
    ) -> PartFile {
        PartFile {
            part_path,
            final_path,
            members: Members::new(file, level, length),
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
        let result = self.members.deflate(&self.staging, FlushCompress::None);
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

    /// Compressed bytes made so far (the compressor may hold a few more).
    pub fn compressed_bytes(&self) -> u64 {
        self.members.n_bytes
    }

    /// The `.part` path being written.
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    /// Ends the current gzip member (if it holds any line) and fsyncs, so that everything written
    /// so far is durable; the next line starts a new member. Multi-member gzip reads as one
    /// stream.
    pub fn end_member(&mut self) -> Result<(), Error> {
        if self.n_lines == self.n_lines_durable {
            return Ok(());
        }
        self.drain_staging()?;
        self.members
            .end()
            .map_err(|e| Error::io("ending a gzip member in", &self.part_path, e))?;
        self.durable_len = self.members.n_bytes;
        self.n_lines_durable = self.n_lines;
        Ok(())
    }

    /// Ends the gzip stream and makes the whole file durable, still under its `.part` name. A
    /// file without any line gets one empty member: an empty gzip stream is still a valid file.
    pub fn seal(mut self) -> Result<SealedFile, Error> {
        self.end_member()?;
        if self.durable_len == 0 {
            self.members
                .end()
                .map_err(|e| Error::io("finishing", &self.part_path, e))?;
        }
        // Every member was synced as it ended: the file is durable.
        Ok(SealedFile {
            part_path: self.part_path,
            final_path: self.final_path,
            n_lines: self.n_lines,
        })
    }
}

/// A file whose bytes are complete and durable, waiting for its rename.
pub struct SealedFile {
    pub part_path: PathBuf,
    pub final_path: PathBuf,
    pub n_lines: u64,
}

impl SealedFile {
    /// Gives the file its final name.
    ///
    /// Crash window: the data was fsynced by `seal`, and the directory is fsynced after
    /// the rename, so after a crash the file exists either as a complete `.part` (which startup
    /// recovery completes) or under its final name, never as a final name over missing data.
    pub fn complete(self) -> Result<PathBuf, Error> {
        fs::rename(&self.part_path, &self.final_path)
            .map_err(|e| Error::io("renaming", &self.part_path, e))?;
        sync_parent_dir(&self.final_path)?;
        Ok(self.final_path)
    }
}

/// Makes a rename or create in the directory holding `path` (its parent) durable.
pub fn sync_parent_dir(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing directory", dir, e))
}

/// Creates the directories of `rel_dir` (relative, `/`-separated) under `root`, refusing
/// links, and makes each new entry durable.
pub fn create_dirs(root: &Path, rel_dir: &str) -> Result<(), Error> {
    let mut path = root.to_path_buf();
    for part in rel_dir.split('/') {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::Symlink { path });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&path).map_err(|e| Error::io("creating directory", &path, e))?;
                sync_parent_dir(&path)?;
            }
            Err(e) => return Err(Error::io("reading metadata of", &path, e)),
        }
    }
    Ok(())
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
        let mut segment = PartFile::create(part.clone(), dir.join("x"), 6).unwrap();
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
        let mut segment = PartFile::create(part.clone(), dir.join("y"), 1).unwrap();
        segment.write_line(b"1").unwrap();
        segment.end_member().unwrap();
        let (n, len) = segment.durable();
        segment.write_line(b"lost").unwrap();
        drop(segment);
        let mut segment = PartFile::reopen(part.clone(), dir.join("y"), 1, len, n).unwrap();
        segment.write_line(b"2").unwrap();
        let path = segment.seal().unwrap().complete().unwrap();
        assert_eq!(gunzip(&path), "1\n2\n");
    }

    #[test]
    fn one_compressor_through_large_members_and_an_empty_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let part = dir.join("z.part");
        let mut segment = PartFile::create(part.clone(), dir.join("z"), 5).unwrap();
        let mut expected = String::new();
        // Three members of about 400 KB each: more than the window, the staging block and the
        // output block, so the compressor slides and the output is written in several pieces.
        for member in 0..3 {
            for i in 0..4000u32 {
                let line = format!(
                    "{{\"member\":{member},\"i\":{i},\"x\":\"{}\"}}",
                    i.wrapping_mul(2_654_435_761)
                );
                segment.write_line(line.as_bytes()).unwrap();
                expected.push_str(&line);
                expected.push('\n');
            }
            segment.end_member().unwrap();
            let (n, len) = segment.durable();
            assert_eq!(n, 4000 * (member + 1));
            assert_eq!(fs::metadata(&part).unwrap().len(), len);
            assert_eq!(segment.compressed_bytes(), len);
        }
        let path = segment.seal().unwrap().complete().unwrap();
        assert_eq!(gunzip(&path), expected);
        let prefix = intact_prefix(&path).unwrap();
        assert_eq!(
            (prefix.n_lines, prefix.length),
            (12_000, fs::metadata(&path).unwrap().len())
        );

        let empty = PartFile::create(dir.join("e.part"), dir.join("e"), 5).unwrap();
        let path = empty.seal().unwrap().complete().unwrap();
        assert_eq!(gunzip(&path), "");
        assert_eq!(intact_prefix(&path).unwrap().n_lines, 0);
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
