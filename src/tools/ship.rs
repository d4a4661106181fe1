//! `ship DIR --to s3://…`: uploads an existing archive's completed files that the journal does
//! not list yet, as `run --ship-to` does (same lane, journal and keys), and exits; `--dry-run`
//! prints what it would upload; `--check` compares the bucket with the directory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::Error;
use crate::archive::listing::walk;
use crate::archive::naming::{Layout, classify};
use crate::human;
use crate::ship::{self, ArchiveView, Drained, Lane, s3};
use crate::stats::Stats;

/// How often one file is tried before `ship` gives up on it.
const ATTEMPTS: u32 = 6;

/// What `ship` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Upload,
    DryRun,
    Check,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub to: ship::To,
    pub mode: Mode,
    pub dir: PathBuf,
}

/// Runs `ship`; `Ok(false)` when something could not be uploaded or the bucket differs
/// (already reported).
pub fn run(cfg: &Config) -> Result<bool, Error> {
    let view = ArchiveView {
        dir: cfg.dir.clone(),
        layout: layout_of(&cfg.dir)?,
        naming: None,
    };
    let failed = Error::message;
    if cfg.mode == Mode::Check {
        let ship::To::S3 {
            target,
            credentials,
        } = &cfg.to
        else {
            return Err(failed("--check needs an S3 destination".into()));
        };
        return check(&view, &s3::Bucket::new(target.clone(), credentials.clone()));
    }
    let stats = Arc::new(Stats::default());
    let mut lane = Lane::open(cfg.to.destination(), view, stats).map_err(failed)?;
    if cfg.mode == Mode::DryRun {
        let pending = lane.pending().map_err(failed)?;
        let mut bytes = 0;
        for item in &pending {
            let size = match item {
                ship::Item::File(local) => local.size,
                ship::Item::Mark(_) => 0,
            };
            bytes += size;
            let key = lane.object_key(item.rel()).unwrap_or_default();
            println!("{}\t{key}\t{size}", item.rel());
        }
        eprintln!(
            "would upload {} ({})",
            human::count(pending.len() as u64, "object", "objects"),
            human::size(bytes)
        );
        return Ok(true);
    }
    match lane.drain(ATTEMPTS).map_err(failed)? {
        Drained::Done { items, bytes } => {
            log::info!(
                "shipped {} ({}); nothing is left to upload",
                human::count(items, "object", "objects"),
                human::size(bytes)
            );
            Ok(true)
        }
        Drained::Failed(rel, failure) => {
            log::error!(
                "{rel} could not be uploaded ({}): {}",
                failure.kind,
                failure.message
            );
            Ok(false)
        }
    }
}

/// The directory's layout: flat when it holds archive files at its top, else partitioned.
fn layout_of(dir: &std::path::Path) -> Result<Layout, Error> {
    let flat = walk(dir, Layout::Flat).map_err(Error::from_archive)?;
    Ok(match flat.iter().any(|f| classify(&f.name).is_some()) {
        true => Layout::Flat,
        false => Layout::Partitioned,
    })
}

/// Lists the bucket under the prefix and compares each completed file: missing, another size,
/// or another SHA-256 (recorded at upload) is reported.
fn check(view: &ArchiveView, bucket: &s3::Bucket) -> Result<bool, Error> {
    let failed = Error::message;
    let listed: HashMap<String, u64> = bucket
        .list(&bucket.target.prefix)
        .map_err(|f| {
            failed(format!(
                "listing {}: {}",
                bucket.target.display(),
                f.message
            ))
        })?
        .into_iter()
        .collect();
    let (mut n_ok, mut n_bad) = (0, 0);
    for local in ship::list(view).map_err(failed)? {
        let key = bucket.target.key(&ship::object_rel(&local.rel));
        let problem = match listed.get(&key) {
            None => Some("missing".to_string()),
            Some(&size) if size != local.size => Some(format!(
                "different: {size} bytes in the bucket, {} here",
                local.size
            )),
            Some(_) => {
                let path = view.dir.join(&local.rel);
                let here = s3::file_sha256(&path)
                    .map_err(|e| Error::new(format!("reading {}", path.display()), e))?;
                let head = bucket
                    .head(&key)
                    .map_err(|f| failed(format!("{key}: {}", f.message)))?;
                match head.and_then(|h| h.sha256) {
                    Some(there) if there == here => None,
                    Some(_) => Some("different: another SHA-256".into()),
                    None => Some(
                        "different: no SHA-256 recorded (not uploaded by wikistream-archiver)"
                            .into(),
                    ),
                }
            }
        };
        match problem {
            None => n_ok += 1,
            Some(problem) => {
                n_bad += 1;
                println!("{key}\t{problem}");
            }
        }
    }
    let extra = listed.len().saturating_sub(n_ok);
    eprintln!(
        "{}: {n_ok} identical, {n_bad} missing or different; {extra} other objects under the prefix (marks, files deleted here)",
        bucket.target.display()
    );
    Ok(n_bad == 0)
}
