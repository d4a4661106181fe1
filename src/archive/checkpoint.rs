//! The checkpoint (`_checkpoint.json` in the partitioned layout, `checkpoint.json` in the flat
//! one): what is durably archived, the layout, and where to resume.
//!
//! The format (encode/decode) is pure; `write` replaces the file atomically. A checkpoint never
//! points past data that has been fsynced: callers end a gzip member and fsync the file before
//! they call `write`. It does not decide when to checkpoint; `archive/mod.rs` does.

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::open_no_follow;
use super::naming::Layout;
use super::partition::MAX_STREAM_NAME_BYTES;
use super::writer::sync_parent_dir;
use super::{Error, MAX_OPEN_FILES_LIMIT, MAX_RESUME_ID_BYTES, RECENT_IDS_IN_CHECKPOINT};

/// The checkpoint file name of the flat layout (and of every archive of earlier builds).
pub const FILE_NAME: &str = "checkpoint.json";
/// The checkpoint file name of the partitioned layout: `_` keeps it out of Spark's reads.
pub const PARTITIONED_FILE_NAME: &str = "_checkpoint.json";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// Which kind of file an open file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// An event file; `"segment"` in the format, as every checkpoint has written it.
    #[serde(rename = "segment")]
    Events,
    Rejects,
}

/// A file being written: its `.part` name and how much of it is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenFile {
    pub kind: FileKind,
    /// The name while open (e.g. `…ndjson.gz.part`).
    pub name: String,
    /// The name it gets when completed.
    pub final_name: String,
    /// Bytes of the file that are complete gzip members and fsynced.
    pub length: u64,
    /// Lines in those bytes.
    pub n_lines: u64,
    /// When the file was opened, seconds since the epoch (rotation by minute uses it).
    pub opened_at: i64,
}

/// Everything needed to continue after a crash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    pub files: Vec<OpenFile>,
    /// The SSE id of the last event whose outcome is in the durable bytes ("" if none yet).
    pub last_event_id: String,
    /// `meta.dt` of the last archived event ("" if none yet).
    pub last_dt: String,
    /// Recent `meta.id` keys (hex), newest last, so that resent events are still recognised.
    pub recent_ids: Vec<String>,
    /// The sequence number of the next event file.
    pub next_seq: u64,
    /// The directory's layout; checkpoints of earlier builds have none and are flat.
    #[serde(default)]
    pub layout: Option<String>,
}

impl Checkpoint {
    /// The layout this checkpoint records.
    pub fn layout(&self) -> Result<Layout, DecodeError> {
        match self.layout.as_deref() {
            None => Ok(Layout::Flat),
            Some(name) => Layout::parse(name)
                .ok_or_else(|| DecodeError::Malformed(format!("unknown layout {name:?}"))),
        }
    }
}

/// Why a checkpoint cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON, or not the shape this version writes.
    Malformed(String),
    /// Written by another format version.
    UnknownVersion(u64),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(why) => write!(f, "not a valid checkpoint ({why})"),
            DecodeError::UnknownVersion(v) => {
                write!(
                    f,
                    "checkpoint format version {v} is not supported by this build (version {VERSION})"
                )
            }
        }
    }
}

/// Serialises a checkpoint.
pub fn encode(checkpoint: &Checkpoint) -> String {
    serde_json::to_string_pretty(checkpoint).expect("serialising a checkpoint cannot fail")
}

/// Parses a checkpoint, checking its version first.
pub fn decode(text: &str) -> Result<Checkpoint, DecodeError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => return Err(DecodeError::UnknownVersion(v)),
        None => return Err(DecodeError::Malformed("no version field".into())),
    }
    let checkpoint: Checkpoint =
        serde_json::from_value(value).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    checkpoint.layout()?;
    for file in &checkpoint.files {
        // A relative path of plain names (`stream/date=…/file`): never out of the directory.
        let plain = |name: &str| {
            !name.contains('\\')
                && name
                    .split('/')
                    .all(|part| !part.is_empty() && part != "." && part != "..")
        };
        if !plain(&file.name) || !plain(&file.final_name) {
            return Err(DecodeError::Malformed(format!(
                "file name {:?} is not a plain relative name",
                file.name
            )));
        }
    }
    Ok(checkpoint)
}

/// The checkpoint path in `dir` for `layout`.
pub fn path(dir: &Path, layout: Layout) -> PathBuf {
    dir.join(match layout {
        Layout::Partitioned => PARTITIONED_FILE_NAME,
        Layout::Flat => FILE_NAME,
    })
}

/// An upper bound of one open file's entry: two names of a stream directory, a date directory
/// and a file name of at most `MAX_STREAM_NAME_BYTES` each, with the numbers and keys.
const MAX_FILE_ENTRY_BYTES: u64 = 1024;
/// The largest checkpoint the writer can make: every file it may keep open (the event files
/// `MAX_OPEN_FILES_LIMIT` allows and the rejects file), the recent ids (hex keys of at most 32
/// digits and their quotes), the resume id (a JSON string escapes a byte into at most six),
/// and the rest of the fields (the last `meta.dt` is kept only when it reads as a date).
const MAX_WRITTEN_BYTES: u64 = (MAX_OPEN_FILES_LIMIT as u64 + 1) * MAX_FILE_ENTRY_BYTES
    + RECENT_IDS_IN_CHECKPOINT as u64 * 40
    + MAX_RESUME_ID_BYTES as u64 * 6
    + 4096;
/// The largest checkpoint read: twice what the writer can make, rounded up to a power of two,
/// so that its own checkpoint is always read back. A real one is about 40 KB; a larger file is damage or tampering, and is
/// refused before it is read into memory.
pub const MAX_CHECKPOINT_BYTES: u64 = (2 * MAX_WRITTEN_BYTES).next_power_of_two();
// Two names of `STREAM/date=YYYY-MM-DD/STREAM-YYYYMMDDTHHMMSSZ-SEQ.ndjson.gz.part` (a sequence
// number of up to 20 digits), the other fields and the JSON around them fit an entry.
const _: () = assert!(2 * (2 * MAX_STREAM_NAME_BYTES + 75) + 200 <= MAX_FILE_ENTRY_BYTES as usize);

/// Reads the checkpoint in `dir`, of either layout; `Ok(None)` if there is none.
pub fn read(dir: &Path) -> Result<Option<Checkpoint>, Error> {
    match read_file(path(dir, Layout::Partitioned))? {
        Some(checkpoint) => Ok(Some(checkpoint)),
        None => read_file(path(dir, Layout::Flat)),
    }
}

fn read_file(path: PathBuf) -> Result<Option<Checkpoint>, Error> {
    let file = match open_no_follow(
        fs::OpenOptions::new().read(true),
        "reading checkpoint",
        &path,
    ) {
        Ok(file) => file,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(MAX_CHECKPOINT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading checkpoint", &path, e))?;
    if bytes.len() as u64 > MAX_CHECKPOINT_BYTES {
        return Err(Error::Checkpoint {
            path,
            message: format!("it is larger than {MAX_CHECKPOINT_BYTES} bytes"),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| Error::Checkpoint {
        path: path.clone(),
        message: "it is not UTF-8 text".into(),
    })?;
    decode(&text).map(Some).map_err(|e| Error::Checkpoint {
        path,
        message: e.to_string(),
    })
}

/// Replaces the checkpoint in `dir` with `checkpoint`.
///
/// Crash window: the new content goes to a temporary file that is fsynced before it is
/// renamed over the old checkpoint, and the directory is fsynced after; a crash at any point
/// leaves either the old or the new checkpoint, complete, never a mix or nothing.
pub fn write(dir: &Path, layout: Layout, checkpoint: &Checkpoint) -> Result<(), Error> {
    let final_path = path(dir, layout);
    let mut tmp_path = final_path.clone().into_os_string();
    tmp_path.push(".tmp");
    let tmp_path = PathBuf::from(tmp_path);
    let mut file = open_no_follow(
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true),
        "creating",
        &tmp_path,
    )?;
    file.write_all(encode(checkpoint).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("writing", &tmp_path, e))?;
    drop(file);
    fs::rename(&tmp_path, &final_path).map_err(|e| Error::io("renaming", &tmp_path, e))?;
    sync_parent_dir(&final_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            version: VERSION,
            files: vec![OpenFile {
                kind: FileKind::Events,
                name: "rc-20250131T120000Z-000001.ndjson.gz.part".into(),
                final_name: "rc-20250131T120000Z-000001.ndjson.gz".into(),
                length: 1234,
                n_lines: 10,
                opened_at: 1_738_324_800,
            }],
            last_event_id: "[{\"topic\":\"t\",\"partition\":0,\"offset\":9}]".into(),
            last_dt: "2025-01-31T12:00:01Z".into(),
            recent_ids: vec!["ff".into()],
            next_seq: 2,
            layout: Some("partitioned".into()),
        }
    }

    #[test]
    fn round_trips() {
        assert_eq!(decode(&encode(&sample())), Ok(sample()));
    }

    #[test]
    fn unknown_version_is_refused() {
        let text = encode(&sample()).replace("\"version\": 1", "\"version\": 7");
        assert_eq!(decode(&text), Err(DecodeError::UnknownVersion(7)));
    }

    #[test]
    fn garbage_and_path_tricks_are_refused() {
        assert!(matches!(decode("{"), Err(DecodeError::Malformed(_))));
        assert!(matches!(decode("{}"), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            decode("{\"version\":1}"),
            Err(DecodeError::Malformed(_))
        ));
        let mut evil = sample();
        for name in ["../../etc/passwd", "/etc/passwd", "a//b", "a/./b", ""] {
            evil.files[0].name = name.into();
            assert!(
                matches!(decode(&encode(&evil)), Err(DecodeError::Malformed(_))),
                "{name}"
            );
        }
        let mut layout = sample();
        layout.layout = Some("hive".into());
        assert!(matches!(
            decode(&encode(&layout)),
            Err(DecodeError::Malformed(_))
        ));
        // Earlier builds wrote no layout field: such a checkpoint is flat.
        let old = encode(&sample()).replace("\"layout\": \"partitioned\"", "\"x\": 0");
        assert_eq!(decode(&old).unwrap().layout(), Ok(Layout::Flat));
    }

    #[test]
    fn write_then_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert_eq!(read(dir).unwrap(), None);
        write(dir, Layout::Partitioned, &sample()).unwrap();
        assert_eq!(read(dir).unwrap(), Some(sample()));
        assert!(dir.join("_checkpoint.json").exists());
        assert!(!dir.join("_checkpoint.json.tmp").exists());
        assert!(!dir.join("checkpoint.json").exists());
    }
}
