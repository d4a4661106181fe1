//! `serve`'s inputs: archive directories and NDJSON(.gz) files, read as a stream of events
//! (`SourceReader`), the streams they hold (`Catalog`), and all inputs merged in `meta.dt` order
//! (`Merge`).
//!
//! This is a second gzip reader beside `archive::reader`, on purpose: the merge must *pull* one
//! event at a time from several inputs, while `archive::reader` pushes a file's lines into a
//! callback only after each member's CRC checked (what `cat` and `verify` promise). It also reads
//! plain NDJSON. A damaged file ends that input early with a warning; a replay server may show
//! what is readable.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::archive::reader::{FILE_BUFFER_BYTES, MemberLines};
use crate::archive::{self, partition, seek};
use crate::tools::Error;

/// Lines read from the start of each input to learn which streams it holds.
const STREAM_SCAN_LINES: usize = 1000;

/// The inputs: per input, its files in order; and the stream names found in them.
pub(super) struct Catalog {
    pub(super) sources: Vec<Vec<PathBuf>>,
    pub(super) streams: BTreeSet<String>,
}

impl Catalog {
    pub(super) fn load(inputs: &[PathBuf]) -> Result<Catalog, Error> {
        let mut sources = Vec::new();
        let mut streams = BTreeSet::new();
        for input in inputs {
            let context = || format!("reading {}", input.display());
            let metadata = std::fs::metadata(input).map_err(|e| Error::new(context(), e))?;
            let files: Vec<PathBuf> = if metadata.is_dir() {
                let listing = archive::list_archive(input).map_err(Error::from_archive)?;
                listing.events.into_iter().map(|(path, _)| path).collect()
            } else {
                vec![input.clone()]
            };
            let mut reader = SourceReader::new(files.iter().map(|f| (f.clone(), 0)).collect());
            for _ in 0..STREAM_SCAN_LINES {
                let Some(event) = reader.next_event(&mut HashMap::new()) else {
                    break;
                };
                streams.insert(event.stream.unwrap_or_default());
            }
            // A partitioned archive names its streams in its directories, whatever its first
            // lines hold.
            for path in &files {
                let rel = path.strip_prefix(input).unwrap_or(path).to_string_lossy();
                if let Some((stream, _)) = archive::naming::parse_partition(&rel) {
                    streams.insert(stream.to_string());
                }
            }
            sources.push(files);
        }
        streams.remove("");
        Ok(Catalog { sources, streams })
    }

    /// Whether a stream name in a URL is served: `recentchange` is `mediawiki.recentchange`.
    pub(super) fn knows(&self, name: &str) -> bool {
        self.streams.is_empty()
            || self
                .streams
                .iter()
                .any(|stream| partition::is_asked_stream(stream, name))
    }
}

/// One event as read from an input.
pub(super) struct ArchivedEvent {
    pub(super) data: Vec<u8>,
    /// `meta.dt` in milliseconds; `i64::MIN` when missing, so such events sort first.
    pub(super) dt_ms: i64,
    pub(super) stream: Option<String>,
    pub(super) topic: String,
    pub(super) partition: i64,
    pub(super) offset: i64,
    /// The offset is the event's own `meta.offset`, not counted by this reader.
    pub(super) has_offset: bool,
}

impl ArchivedEvent {
    /// The event of one input line; offsets missing from `meta` are counted per topic in
    /// `counters`.
    pub(super) fn parse(line: &[u8], counters: &mut HashMap<String, i64>) -> ArchivedEvent {
        let text = String::from_utf8_lossy(line);
        let meta = crate::event::inspect(&text).unwrap_or_default();
        let stream = meta.stream.as_deref().map(String::from);
        let topic = match (&meta.topic, &stream) {
            (Some(topic), _) => topic.to_string(),
            (None, Some(stream)) => format!("eqiad.{stream}"),
            (None, None) => "eqiad.unknown".to_string(),
        };
        let counter = counters.entry(topic.clone()).or_insert(0);
        let offset = meta.offset.unwrap_or(*counter);
        *counter = offset + 1;
        ArchivedEvent {
            dt_ms: meta
                .dt
                .as_deref()
                .and_then(crate::times::parse_rfc3339_ms)
                .unwrap_or(i64::MIN),
            partition: meta.partition.unwrap_or(0),
            stream,
            topic,
            offset,
            has_offset: meta.offset.is_some(),
            data: line.to_vec(),
        }
    }
}

/// The lines of one input file: plain NDJSON, or gzip read member by checked member.
enum Lines {
    Plain(BufReader<File>),
    Gzip(Box<MemberLines>),
}

/// Reads the events of one input's files in order, streaming from gzip or plain NDJSON, each
/// file from its start offset (a line or member start).
struct SourceReader {
    files: std::vec::IntoIter<(PathBuf, u64)>,
    current: Option<(PathBuf, Lines)>,
    line: Vec<u8>,
}

impl SourceReader {
    fn new(files: Vec<(PathBuf, u64)>) -> SourceReader {
        SourceReader {
            files: files.into_iter(),
            current: None,
            line: Vec::new(),
        }
    }

    /// Positions `files` at the point `before` describes: from the last file whose first event
    /// is before it, entered by bisection (`archive::seek`).
    fn seek(files: &[PathBuf], before: &mut dyn FnMut(&[u8]) -> bool) -> Vec<(PathBuf, u64)> {
        let first = seek::first_file(files, before);
        let Some(path) = files.get(first) else {
            return Vec::new();
        };
        let offset = seek::start_of(path, before).unwrap_or_else(|e| {
            log::warn!("{}: reading from its start: {e}", path.display());
            0
        });
        let mut out = vec![(path.clone(), offset)];
        out.extend(files[first + 1..].iter().map(|p| (p.clone(), 0)));
        out
    }

    fn open(path: &Path, offset: u64) -> io::Result<Lines> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut file = BufReader::with_capacity(FILE_BUFFER_BYTES, file);
        // Peek at the gzip magic without consuming it.
        let is_gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        Ok(match is_gzip {
            // CRC-checked members only, as `cat` and `verify` read them.
            true => Lines::Gzip(Box::new(MemberLines::new(file))),
            false => Lines::Plain(file),
        })
    }

    /// The next non-empty line, across files. A file that cannot be read to its end (the torn
    /// tail of an open `.part` file, damage) ends early with a log line.
    fn next_line(&mut self) -> Option<&[u8]> {
        loop {
            if self.current.is_none() {
                let (path, offset) = self.files.next()?;
                match SourceReader::open(&path, offset) {
                    Ok(reader) => self.current = Some((path, reader)),
                    Err(e) => {
                        log::warn!("skipping {}: {e}", path.display());
                        continue;
                    }
                }
            }
            let (path, reader) = self.current.as_mut().expect("opened above");
            self.line.clear();
            let read = match reader {
                Lines::Plain(file) => file.read_until(b'\n', &mut self.line).map(|n| n > 0),
                Lines::Gzip(members) => match members.next_line() {
                    Some(line) => {
                        self.line.extend_from_slice(line);
                        Ok(true)
                    }
                    None => match members.damage() {
                        Some(e) => Err(io::Error::new(e.kind(), e.to_string())),
                        None => Ok(false),
                    },
                },
            };
            match read {
                Ok(false) => self.current = None,
                Ok(true) => {
                    while self.line.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                        self.line.pop();
                    }
                    if !self.line.is_empty() {
                        return Some(&self.line);
                    }
                }
                Err(e) => {
                    log::warn!("{}: stopped reading: {e}", path.display());
                    self.current = None;
                }
            }
        }
    }

    /// The next event; offsets missing from `meta` are counted per topic in `counters`.
    fn next_event(&mut self, counters: &mut HashMap<String, i64>) -> Option<ArchivedEvent> {
        let line = self.next_line()?;
        Some(ArchivedEvent::parse(line, counters))
    }
}

/// All inputs merged by `meta.dt` (ties keep input order), only the requested streams.
pub(super) struct Merge {
    sources: Vec<SourceReader>,
    heads: Vec<Option<ArchivedEvent>>,
    wanted: Vec<String>,
    counters: HashMap<String, i64>,
}

impl Merge {
    /// The merge of the catalog's inputs, each positioned by `seek_past` when given: reading
    /// starts after the events it says lie before the start position (see `Positions`).
    pub(super) fn new(
        catalog: &Catalog,
        wanted: Vec<String>,
        mut seek_past: Option<&mut dyn FnMut(&ArchivedEvent) -> bool>,
    ) -> Merge {
        let mut sources = Vec::new();
        for files in &catalog.sources {
            let files = match seek_past.as_mut() {
                Some(seek_past) => {
                    let mut before =
                        |line: &[u8]| seek_past(&ArchivedEvent::parse(line, &mut HashMap::new()));
                    SourceReader::seek(files, &mut before)
                }
                None => files.iter().map(|f| (f.clone(), 0)).collect(),
            };
            sources.push(SourceReader::new(files));
        }
        let mut merge = Merge {
            sources,
            heads: Vec::new(),
            wanted,
            counters: HashMap::new(),
        };
        merge.heads = (0..merge.sources.len())
            .map(|idx| merge.pull(idx))
            .collect();
        merge
    }

    /// The next wanted event of source `idx`.
    fn pull(&mut self, idx: usize) -> Option<ArchivedEvent> {
        loop {
            let event = self.sources[idx].next_event(&mut self.counters)?;
            let wanted = match &event.stream {
                None => true,
                Some(stream) => self
                    .wanted
                    .iter()
                    .any(|name| partition::is_asked_stream(stream, name)),
            };
            if wanted {
                return Some(event);
            }
        }
    }

    pub(super) fn next(&mut self) -> Option<ArchivedEvent> {
        let idx = (0..self.heads.len())
            .filter(|&idx| self.heads[idx].is_some())
            .min_by_key(|&idx| self.heads[idx].as_ref().map(|e| e.dt_ms))?;
        let event = self.heads[idx].take();
        self.heads[idx] = self.pull(idx);
        event
    }
}
