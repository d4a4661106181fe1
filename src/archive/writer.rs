//! One gzip NDJSON file being written: a `.part` file that becomes its final name when finished.
//!
//! Owns the file handle, the gzip encoder and the byte counts of one segment. It does not choose
//! names or decide when to finish; `archive/mod.rs` does.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::Error;

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

/// An open segment.
pub struct Segment {
    part_path: PathBuf,
    final_path: PathBuf,
    encoder: GzEncoder<CountingWriter<BufWriter<File>>>,
    n_lines: u64,
}

impl Segment {
    /// Creates `part_path` (which must not exist yet); it will be renamed to `final_path`.
    pub fn create(part_path: PathBuf, final_path: PathBuf, level: u32) -> Result<Segment, Error> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part_path)
            .map_err(|e| Error::io("creating", &part_path, e))?;
        let counting = CountingWriter {
            inner: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
            n_bytes: 0,
        };
        Ok(Segment {
            part_path,
            final_path,
            encoder: GzEncoder::new(counting, Compression::new(level)),
            n_lines: 0,
        })
    }

    /// Appends `line` and a line feed.
    pub fn write_line(&mut self, line: &[u8]) -> Result<(), Error> {
        self.encoder
            .write_all(line)
            .and_then(|()| self.encoder.write_all(b"\n"))
            .map_err(|e| Error::io("writing", &self.part_path, e))?;
        self.n_lines += 1;
        Ok(())
    }

    /// Lines written so far.
    pub fn n_lines(&self) -> u64 {
        self.n_lines
    }

    /// Compressed bytes handed to the file so far (the gzip encoder may hold a few more).
    pub fn compressed_bytes(&self) -> u64 {
        self.encoder.get_ref().n_bytes
    }

    /// The `.part` path being written.
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    /// Ends the gzip stream, makes the file durable and gives it its final name.
    ///
    /// SAFETY (crash window): the data is fsynced before the rename, and the directory after it,
    /// so after a crash at any point the file exists either as a complete `.part` or as a complete
    /// final file, never as a final name over incomplete data.
    pub fn finish(self) -> Result<PathBuf, Error> {
        let part_path = self.part_path;
        let counting = self
            .encoder
            .finish()
            .map_err(|e| Error::io("finishing", &part_path, e))?;
        let file = counting
            .inner
            .into_inner()
            .map_err(|e| Error::io("flushing", &part_path, e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io("syncing", &part_path, e))?;
        fs::rename(&part_path, &self.final_path)
            .map_err(|e| Error::io("renaming", &part_path, e))?;
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
