//! Issue 15: the partitioned layout (days, streams, stragglers, the recorded layout, the
//! `--on-ready` key) and reads that seek (serve by timestamp and offset, cat by time), on
//! events whose `meta.dt` goes backwards.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::util::events::write_input;
use crate::util::{self, Serve};

/// `n` events one second apart from `start_s`, every seventh `lag_s` older than its neighbours
/// (real events are out of order by seconds); `dt_of(idx)` may move any of them.
fn events_from(
    start_s: i64,
    n: usize,
    lag_s: i64,
    dt_of: impl Fn(usize, i64) -> i64,
) -> Vec<String> {
    let fixture = util::lines_of(&util::fixture("recentchange-200.ndjson"));
    (0..n)
        .map(|idx| {
            let mut value: serde_json::Value =
                serde_json::from_str(&fixture[idx % fixture.len()]).expect("json");
            let mut ms = (start_s + idx as i64) * 1000 + (idx as i64 * 37) % 1000;
            if idx % 7 == 6 {
                ms -= lag_s * 1000;
            }
            let ms = dt_of(idx, ms);
            value["meta"]["dt"] = rfc3339(ms).into();
            value["meta"]["id"] = format!("{idx:08x}-0000-4000-8000-{:012x}", idx * 31).into();
            value["meta"]["domain"] = "en.wikipedia.org".into();
            value["meta"]["offset"] = (9_000_000 + idx as u64).into();
            serde_json::to_string(&value).expect("json")
        })
        .collect()
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

fn dt_ms(line: &str) -> i64 {
    let value: serde_json::Value = serde_json::from_str(line).expect("json");
    let dt = value["meta"]["dt"].as_str().expect("dt");
    let t = time::OffsetDateTime::parse(dt, &time::format_description::well_known::Rfc3339)
        .expect("rfc3339");
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Archives all of `input` as `serve` with `serve_flags` offers it into `output_dir`.
fn archive_all(input: &Path, serve_flags: &[&str], output_dir: &Path, n: usize, run: &[&str]) {
    let log_dir = output_dir.parent().expect("parent");
    let serve = Serve::start(input, serve_flags, log_dir);
    let max = n.to_string();
    let finished = util::run_archiver(
        &serve.url(),
        output_dir,
        &[&["--max-events", max.as_str()], run].concat(),
        log_dir,
    );
    let log = serve.stderr();
    serve.stop();
    assert_eq!(
        finished.status.code(),
        Some(0),
        "{}\n{log}",
        finished.stderr
    );
}

#[test]
fn days_are_partitions_and_stragglers_stay_in_their_day() {
    let dir = util::temp_dir();
    // 2024-11-23T23:50:00Z for 20 minutes, one event a second; two stragglers from the day
    // before midnight: one 2 minutes after it (within the grace: its day's file is still
    // open), one 9 minutes after it (past the grace: a file of its own in its day).
    let midnight = 1_732_406_400;
    let events = events_from(midnight - 600, 1200, 4, |idx, ms| match idx {
        720 => (midnight - 1) * 1000,
        1140 => (midnight - 120) * 1000,
        _ => ms,
    });
    let output_dir = dir.path().join("archive");
    let input = write_input(dir.path(), &events);
    archive_all(&input, &[], &output_dir, events.len(), &["-v"]);
    let files = util::data_files(&output_dir);
    let day = |date: &str| -> Vec<&String> {
        let prefix = format!("recentchange/date={date}/");
        files.iter().filter(|f| f.starts_with(&prefix)).collect()
    };
    assert_eq!(day("2024-11-23").len(), 2, "{files:?}");
    assert_eq!(day("2024-11-24").len(), 1, "{files:?}");
    assert_eq!(files.len(), 3, "{files:?}");
    // Every event is in the partition of its date, and none is lost or repeated.
    for file in &files {
        let date = &file["recentchange/date=".len()..][..10];
        for line in util::gz_lines(&output_dir.join(file)) {
            assert_eq!(&rfc3339(dt_ms(&line))[..10], date, "{file}");
        }
    }
    let mut archived = util::archive_lines(&output_dir);
    let mut expected = util::expected_archive(&events);
    archived.sort();
    expected.sort();
    assert_eq!(archived, expected);
    // The day's file was completed after the grace, and named after its first event.
    let first = &day("2024-11-23")[0];
    assert!(
        util::base_name(first).starts_with("recentchange-20241123T235"),
        "{files:?}"
    );
    let late = util::gz_lines(&output_dir.join(day("2024-11-23")[1]));
    assert_eq!(late.len(), 1, "the late straggler alone");
    let report = util::run_binary(
        &["verify", "--json", output_dir.to_str().expect("utf-8")],
        dir.path(),
        Duration::from_secs(30),
    );
    let report: serde_json::Value = serde_json::from_str(&report.stdout).expect("json");
    assert_eq!(report["out_of_partition"]["count"], 0, "{report}");
    assert_eq!(report["clean"], true, "{report}");
}

#[test]
fn a_directory_keeps_its_layout_and_flat_works_as_before() {
    let dir = util::temp_dir();
    let events = events_from(1_732_352_400, 300, 4, |_, ms| ms);
    let input = write_input(dir.path(), &events);
    let serve = Serve::start(&input, &[], dir.path());
    let output_dir = dir.path().join("archive");
    let run = |flags: &[&str]| util::run_archiver(&serve.url(), &output_dir, flags, dir.path());
    run(&["--layout", "flat", "--max-events", "100"]).expect(0, &[]);
    let checkpoint = fs::read_to_string(output_dir.join("checkpoint.json")).expect("flat");
    assert!(checkpoint.contains("\"layout\": \"flat\""), "{checkpoint}");
    run(&["--layout", "partitioned", "--max-events", "10"])
        .expect(1, &["has the flat layout", "--layout"]);
    // Without the flag it keeps its layout.
    run(&["--max-events", "200"]).expect(0, &[]);
    let files = util::data_files(&output_dir);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| !f.contains('/')), "{files:?}");
    util::assert_same_events(&util::archive_lines(&output_dir), &events);
    // The Python archiver's names have no partitions.
    let other = dir.path().join("other");
    util::run_archiver(
        &serve.url(),
        &other,
        &["--naming", "wikistreamreader", "--layout", "partitioned"],
        dir.path(),
    )
    .expect(2, &["--naming wikistreamreader needs --layout flat"]);
    util::run_archiver(
        &serve.url(),
        &other,
        &["--naming", "wikistreamreader", "--max-events", "5"],
        dir.path(),
    )
    .expect(0, &[]);
    assert!(other.join("checkpoint.json").exists());
    serve.stop();
}

#[test]
fn on_ready_gets_the_path_and_the_key_relative_to_the_directory() {
    let dir = util::temp_dir();
    let events = events_from(1_732_352_400, 120, 4, |_, ms| ms);
    let input = write_input(dir.path(), &events);
    let log = dir.path().join("ready.log");
    let script = dir.path().join("ready.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\necho \"$1 $2\" >> {}\n", log.display()),
    )
    .expect("script");
    std::process::Command::new("chmod")
        .args(["+x"])
        .arg(&script)
        .status()
        .expect("chmod");
    let output_dir = dir.path().join("archive");
    archive_all(
        &input,
        &[],
        &output_dir,
        events.len(),
        &[
            "--rotate-events",
            "50",
            "--on-ready",
            script.to_str().expect("utf-8"),
        ],
    );
    util::wait_for("three --on-ready runs", Duration::from_secs(10), || {
        fs::read_to_string(&log).is_ok_and(|t| t.lines().count() == 3)
    });
    let text = fs::read_to_string(&log).expect("log");
    for line in text.lines() {
        let (path, key) = line.split_once(' ').expect("two arguments");
        assert!(
            key.starts_with("recentchange/date=2024-11-23/recentchange-"),
            "{line}"
        );
        assert_eq!(Path::new(path), output_dir.join(key), "{line}");
        assert!(Path::new(path).exists(), "{line}");
    }
}

#[test]
fn replay_by_timestamp_and_offset_seeks_and_loses_nothing_when_meta_dt_goes_backwards() {
    let dir = util::temp_dir();
    // Fifty minutes of events, every seventh 200 s late: seeks skip whole files and members,
    // and must start early enough (the slack is 5 min) not to pass over late events.
    let events = events_from(1_732_352_400, 3000, 200, |_, ms| ms);
    let expected = util::expected_archive(&events);
    let input = write_input(dir.path(), &events);
    // Plain NDJSON input, offset ids, a reconnect every 97 events: bisection by byte offset.
    let first = dir.path().join("first");
    archive_all(
        &input,
        &["--id-offsets", "--disconnect-every", "97", "--retry", "10"],
        &first,
        expected.len(),
        &["--rotate-events", "100"],
    );
    util::assert_same_events(&util::archive_lines(&first), &expected);
    // The archive as input, timestamp ids, a reconnect every 61: files and gzip members.
    let second = dir.path().join("second");
    archive_all(
        &first,
        &["--disconnect-every", "61", "--retry", "10"],
        &second,
        expected.len(),
        &["--rotate-events", "250"],
    );
    util::assert_same_events(&util::archive_lines(&second), &expected);
    // cat --from/--to seeks too, and prints exactly what a full scan's filter keeps.
    let (from, to) = (
        1_732_352_400_000 + 1234 * 1000,
        1_732_352_400_000 + 2345 * 1000,
    );
    let cat = util::run_binary(
        &[
            "cat",
            "--from",
            &rfc3339(from),
            "--to",
            &rfc3339(to),
            first.to_str().expect("utf-8"),
        ],
        dir.path(),
        Duration::from_secs(30),
    );
    assert!(cat.status.success(), "{}", cat.stderr);
    let printed: Vec<String> = cat.stdout.lines().map(String::from).collect();
    let in_range: Vec<String> = expected
        .iter()
        .filter(|l| (from..to).contains(&dt_ms(l)))
        .cloned()
        .collect();
    assert!(in_range.len() > 1000);
    util::assert_same_events(&printed, &in_range);
}

#[test]
fn serve_says_ok_at_once_and_keeps_the_connection_alive() {
    let dir = util::temp_dir();
    let events = events_from(1_732_352_400, 50, 4, |_, ms| ms);
    let input = write_input(dir.path(), &events);
    let serve = Serve::start(&input, &[], dir.path());
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", serve.port)).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        socket,
        "GET /v2/stream/recentchange?since=2030-01-01T00%3A00%3A00Z HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .expect("request");
    // Nothing is at or after 2030: only `:ok` and keep-alive comments come.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(":ok\n\n") {
        let n = socket.read(&mut buf).expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(!text.contains("data:"), "{text}");
    serve.stop();
}
