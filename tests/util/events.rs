//! Events and archiver runs that many tests share: realistic events with unique ids, an input
//! file for `serve`, the archiver's command line, a run until the checkpoint holds the last
//! event, and checks on what it wrote.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Running, Serve};

/// `n` distinct realistic events: the fixture's, with unique `meta.id`s and rising `meta.dt`s.
/// `same_ms` events in a row share one millisecond (to provoke timestamp resends).
pub fn make_events(n: usize, same_ms: usize) -> Vec<String> {
    let fixture = super::lines_of(&super::fixture("recentchange-200.ndjson"));
    let base_ms: i64 = 1_732_352_400_000;
    (0..n)
        .map(|idx| {
            let mut value: serde_json::Value =
                serde_json::from_str(&fixture[idx % fixture.len()]).expect("json");
            let ms = base_ms + (idx / same_ms) as i64 * 7;
            let dt = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .expect("time");
            let dt = dt
                .format(&time::format_description::well_known::Rfc3339)
                .expect("format");
            value["meta"]["id"] = format!("{idx:08x}-0000-4000-8000-{:012x}", idx * 7919).into();
            value["meta"]["dt"] = dt.into();
            value["meta"]["domain"] = "en.wikipedia.org".into();
            // Kafka offsets grow by one per event, as on the real stream.
            value["meta"]["offset"] = (5_000_000_000 + idx as u64).into();
            serde_json::to_string(&value).expect("json")
        })
        .collect()
}

/// Writes `events` to `DIR/input.ndjson`, one per line.
pub fn write_input(dir: &Path, events: &[String]) -> PathBuf {
    let path = dir.join("input.ndjson");
    fs::write(&path, events.join("\n") + "\n").expect("writing input");
    path
}

/// Writes `events` as the input of a `serve` started with `flags`.
pub fn serve_events(dir: &Path, events: &[String], flags: &[&str]) -> Serve {
    Serve::start(&write_input(dir, events), flags, dir)
}

/// Asserts that `gzip -t` passes on every archive file in `dir`.
pub fn assert_all_gzip_valid(dir: &Path) {
    for name in super::data_files(dir) {
        let status = Command::new("gzip")
            .arg("-t")
            .arg(dir.join(&name))
            .status()
            .expect("gzip -t");
        assert!(status.success(), "gzip -t failed on {name}");
    }
}

/// The checkpoint's resume id, or "" when there is none.
pub fn checkpoint_id(dir: &Path) -> String {
    fs::read_to_string(super::checkpoint_path(dir))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| v["last_event_id"].as_str().map(String::from))
        .unwrap_or_default()
}

/// The archiver's command line for `url` into `output_dir`, with `extra` flags.
pub fn archiver(url: &str, output_dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = super::command();
    cmd.args([
        "--url",
        url,
        "--output-dir",
        output_dir.to_str().expect("utf-8"),
    ])
    .args(extra);
    cmd
}

/// Runs an archiver until the checkpoint holds `last_id_part` (all events are durable), then
/// stops it with SIGTERM and checks the exit.
pub fn finish_run(cmd: Command, log_dir: &Path, output_dir: &Path, last_id_part: &str) -> String {
    let running = Running::start(cmd, log_dir, "final");
    // Its signal handlers are in place once it says what it archives.
    running.wait_for_log("archiving", Duration::from_secs(20));
    let until = Instant::now() + Duration::from_secs(60);
    while !checkpoint_id(output_dir).contains(last_id_part) {
        assert!(
            Instant::now() < until,
            "the archive never caught up; log:\n{}",
            running.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    running.signal("TERM");
    let finished = running.wait(Duration::from_secs(10));
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    finished.stderr
}
