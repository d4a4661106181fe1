//! Opening an archive directory: checking that it takes files, choosing its layout (the one its
//! checkpoint records, else the one asked for), and recovering from the last checkpoint with
//! `recover`'s help, which yields the position to resume from.
//!
//! It writes only what recovery must: repaired files and, after a rewind, a new checkpoint.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use super::checkpoint::{self, Checkpoint};
use super::error::open_no_follow;
use super::listing::walk;
use super::naming::{Layout, Naming, classify};
use super::{Archive, Config, Error, News, Recovered, ResumePoint};
use crate::event::{DEDUP_WINDOW, RecentIds};

impl Archive {
    /// Opens `cfg.dir` (the caller holds its `DirLock`), recovers from the last checkpoint, and
    /// returns the archive with the point to resume from.
    pub fn open(cfg: Config) -> Result<(Archive, Recovered), Error> {
        let dir = cfg.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| Error::io("creating directory", &dir, e))?;
        check_writable(&dir)?;
        let saved = checkpoint::read(&dir)?;
        let layout = choose_layout(&cfg, saved.as_ref())?;
        let cfg_max_open_files = cfg.max_open_files.max(1);
        let mut archive = Archive {
            handoff: None,
            confirmed_seen: 0,
            cfg,
            layout,
            event_files: Vec::new(),
            rejects: None,
            next_seq: saved.as_ref().map_or(1, |c| c.next_seq.max(1)),
            completed_bytes: 0,
            n_checkpoints_total: 0,
            news: News::default(),
            n_lines_written: 0,
            other_streams: HashSet::new(),
            open_files_ceiling: cfg_max_open_files,
        };
        let listed: HashSet<String> = saved
            .iter()
            .flat_map(|c| c.files.iter().map(|f| f.name.clone()))
            .collect();
        archive.recover_orphans(&listed)?;
        let Some(saved) = saved else {
            return Ok((archive, Recovered::fresh()));
        };
        let mut rewound = None;
        for file in &saved.files {
            rewound = archive.reopen_listed(file)?.or(rewound);
        }
        if let Some(rewound) = rewound {
            log::warn!(
                "events after meta.dt {} were lost on disk; fetching them again from the stream \
                 (since={})",
                rewound.point.last_dt,
                rewound.since_ms.unwrap_or_default()
            );
            // Record the repaired lengths and the rewound point at once: the old checkpoint
            // names bytes that no longer exist.
            archive.write_checkpoint(&rewound.point, None)?;
            return Ok((archive, rewound));
        }
        let keys: Vec<u128> = saved
            .recent_ids
            .iter()
            .filter_map(|hex| u128::from_str_radix(hex, 16).ok())
            .collect();
        let recovered = Recovered {
            // Without an id (a server that sends none), the point is the last archived time.
            since_ms: match saved.last_event_id.is_empty() {
                true => crate::times::parse_rfc3339_ms(&saved.last_dt),
                false => None,
            },
            point: ResumePoint {
                last_event_id: saved.last_event_id,
                last_dt: saved.last_dt,
                recent_ids: RecentIds::with_keys(DEDUP_WINDOW, &keys),
            },
            rewound: false,
        };
        Ok((archive, recovered))
    }
}

/// The layout of the directory: the one its checkpoint records (flat when it records none, or
/// when there is no checkpoint but flat files); else the one asked for, partitioned by default
/// (flat with the Python archiver's naming, which has no partitions).
fn choose_layout(cfg: &Config, saved: Option<&Checkpoint>) -> Result<Layout, Error> {
    let layout_error = |message: String| Error::Layout {
        dir: cfg.dir.clone(),
        message,
    };
    let recorded = match saved {
        Some(saved) => Some(saved.layout().map_err(|e| Error::Checkpoint {
            path: checkpoint::path(&cfg.dir, Layout::Flat),
            message: e.to_string(),
        })?),
        None => walk(&cfg.dir, Layout::Flat)?
            .iter()
            .any(|f| classify(&f.name).is_some())
            .then_some(Layout::Flat),
    };
    let wsr = cfg.naming == Naming::WikistreamReader;
    let layout = match (recorded, cfg.layout) {
        (Some(recorded), Some(asked)) if recorded != asked => {
            return Err(layout_error(format!(
                "this archive directory has the {} layout, not the {} one asked for by --layout; \
                 keep its layout (leave out --layout) or use another directory",
                recorded.as_str(),
                asked.as_str()
            )));
        }
        (Some(recorded), _) => recorded,
        (None, Some(asked)) => asked,
        (None, None) if wsr => Layout::Flat,
        (None, None) => Layout::Partitioned,
    };
    if layout == Layout::Partitioned && wsr {
        return Err(layout_error(
            "this archive directory has the partitioned layout; --naming wikistreamreader \
             needs the flat one"
                .into(),
        ));
    }
    Ok(layout)
}

/// Fails early, with the path, when `dir` cannot take new files.
fn check_writable(dir: &Path) -> Result<(), Error> {
    let probe = dir.join(format!(".wikistream-archiver-probe-{}", std::process::id()));
    // `create_new` also refuses a link planted at the probe's name.
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    drop(
        open_no_follow(&mut options, "writing in directory", &probe).map_err(|e| match e {
            Error::Io { source, .. } => Error::io("writing in directory", dir, source),
            other => other,
        })?,
    );
    fs::remove_file(&probe).map_err(|e| Error::io("removing", &probe, e))
}
