//! `verify`'s report: the `Summary` as text for people or as one JSON document.

use std::path::Path;

use serde_json::json;

use super::checker::{DUPLICATE_WINDOW, Summary};
use crate::human;

pub(super) fn dt_text(dt: &Option<(i64, String)>) -> &str {
    dt.as_ref().map_or("-", |(_, text)| text)
}

fn ratio(summary: &Summary) -> f64 {
    summary.text_bytes as f64 / summary.compressed_bytes.max(1) as f64
}

/// The report for people.
pub fn to_text(dir: &Path, summary: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "archive {}", dir.display());
    let _ = writeln!(out, "  files      {}", summary.n_files);
    let _ = writeln!(
        out,
        "  events     {} ({}), {}",
        summary.n_events,
        human::count(summary.n_canaries, "canary", "canaries"),
        human::count(summary.n_rejects, "reject", "rejects")
    );
    if !summary.rejects_by_reason.is_empty() {
        let reasons: Vec<String> = summary
            .rejects_by_reason
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        let _ = writeln!(out, "  rejects    {}", reasons.join(", "));
    }
    let _ = writeln!(
        out,
        "  time       {} .. {}",
        dt_text(&summary.first_dt),
        dt_text(&summary.last_dt)
    );
    let _ = writeln!(
        out,
        "  bytes      {} compressed, {} as JSON (ratio {:.1})",
        human::size(summary.compressed_bytes),
        human::size(summary.text_bytes),
        ratio(summary)
    );
    if summary.unfinished_bytes > 0 {
        let _ = writeln!(
            out,
            "  open file  {} written since its last checkpoint (not checked yet)",
            human::size(summary.unfinished_bytes)
        );
    }
    match summary.is_clean() {
        true => out.push_str("problems: none\n"),
        false => write_problems(&mut out, summary),
    }
    out
}

/// The problems part of the text report.
fn write_problems(out: &mut String, summary: &Summary) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "problems:");
    for damaged in &summary.damaged {
        let what = if damaged.truncated {
            "torn tail"
        } else {
            "damaged"
        };
        let _ = writeln!(
            out,
            "  {what}: {} from byte {} ({} bytes unreadable): {}",
            damaged.file, damaged.offset, damaged.lost_bytes, damaged.message
        );
    }
    if summary.n_bad_lines > 0 {
        let _ = writeln!(out, "  {} lines are not JSON objects", summary.n_bad_lines);
    }
    if summary.n_duplicates > 0 {
        let _ = writeln!(out, "  {} duplicate meta.ids:", summary.n_duplicates);
        for d in &summary.duplicates {
            let _ = writeln!(out, "    {} ({}) in {}", d.id, d.dt, d.file);
        }
    }
    if summary.n_offset_gaps > 0 {
        let _ = writeln!(
            out,
            "  {} offset gaps, {} offsets missing:",
            summary.n_offset_gaps, summary.n_missing_offsets
        );
        for g in &summary.offset_gaps {
            let _ = writeln!(
                out,
                "    {}[{}] {}..{} ({} missing) between {} and {} in {}",
                g.topic,
                g.partition,
                g.before,
                g.after,
                g.after - g.before - 1,
                g.before_dt,
                g.after_dt,
                g.file
            );
        }
    }
    if summary.n_time_gaps > 0 {
        let _ = writeln!(out, "  {} time gaps:", summary.n_time_gaps);
        for g in &summary.time_gaps {
            let _ = writeln!(
                out,
                "    {} .. {} ({} s) before {}",
                g.before_dt, g.after_dt, g.seconds, g.file
            );
        }
    }
    if summary.n_out_of_partition > 0 {
        let _ = writeln!(
            out,
            "  {} outside their partition's date (queries by date miss them):",
            human::count(summary.n_out_of_partition, "event", "events")
        );
        for o in &summary.out_of_partition {
            let _ = writeln!(out, "    meta.dt {} in {}", o.dt, o.file);
        }
    }
}

/// The report as one JSON document.
pub fn to_json(dir: &Path, summary: &Summary) -> serde_json::Value {
    json!({
        "dir": dir.display().to_string(),
        "clean": summary.is_clean(),
        "files": summary.n_files,
        "events": summary.n_events,
        "canaries": summary.n_canaries,
        "rejects": summary.n_rejects,
        "rejects_by_reason": summary.rejects_by_reason,
        "first_dt": summary.first_dt.as_ref().map(|(_, t)| t),
        "last_dt": summary.last_dt.as_ref().map(|(_, t)| t),
        "compressed_bytes": summary.compressed_bytes,
        "json_bytes": summary.text_bytes,
        "compression_ratio": ratio(summary),
        "unfinished_bytes": summary.unfinished_bytes,
        "bad_lines": summary.n_bad_lines,
        "damaged_files": summary.damaged.iter().map(|d| json!({
            "file": d.file, "offset": d.offset, "unreadable_bytes": d.lost_bytes,
            "truncated": d.truncated, "error": d.message,
        })).collect::<Vec<_>>(),
        "duplicates": {
            "count": summary.n_duplicates,
            "window": DUPLICATE_WINDOW,
            "examples": summary.duplicates.iter().map(|d| json!({
                "id": d.id, "dt": d.dt, "file": d.file,
            })).collect::<Vec<_>>(),
        },
        "offset_gaps": {
            "count": summary.n_offset_gaps,
            "missing_offsets": summary.n_missing_offsets,
            "examples": summary.offset_gaps.iter().map(|g| json!({
                "topic": g.topic, "partition": g.partition, "before": g.before, "after": g.after,
                "before_dt": g.before_dt, "after_dt": g.after_dt, "file": g.file,
            })).collect::<Vec<_>>(),
        },
        "time_gaps": {
            "count": summary.n_time_gaps,
            "examples": summary.time_gaps.iter().map(|g| json!({
                "before_dt": g.before_dt, "after_dt": g.after_dt, "seconds": g.seconds,
                "file": g.file,
            })).collect::<Vec<_>>(),
        },
        "out_of_partition": {
            "count": summary.n_out_of_partition,
            "examples": summary.out_of_partition.iter().map(|o| json!({
                "dt": o.dt, "file": o.file,
            })).collect::<Vec<_>>(),
        },
    })
}
