//! End-to-end archiving from the real `serve` with each fault it can inject. Every test checks
//! the decompressed archive against exactly the served events: same set, same order, none twice.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::scenario::{Events, Scenario};
use crate::util::{self, Finished, Running, Serve};

fn fixture_events() -> Vec<String> {
    util::lines_of(&util::fixture("recentchange-200.ndjson"))
}

/// Serves `input` with `serve_flags`, archives until `max_events` with `run_flags`, stops the
/// server; returns the scenario and how the run ended.
fn archive_from_serve(
    input: Events,
    serve_flags: &[&str],
    run_flags: &[&str],
    max_events: usize,
) -> (Scenario, Finished) {
    let scenario = input.serve(serve_flags);
    let max = max_events.to_string();
    let finished = scenario.archive(&[&["--max-events", &max][..], run_flags].concat());
    let serve_log = scenario.stop();
    assert!(
        finished.status.success(),
        "archiver failed: {}\nserve log:\n{serve_log}",
        finished.stderr
    );
    (scenario, finished)
}

/// Runs a whole-fixture archive with `serve_flags` and checks it is exact.
fn assert_exact_archive(serve_flags: &[&str], run_flags: &[&str]) -> Finished {
    let expected = util::expected_archive(&fixture_events());
    let (scenario, finished) =
        archive_from_serve(Scenario::fixture(), serve_flags, run_flags, expected.len());
    scenario.assert_archived(&expected);
    let names = util::data_files(&scenario.output_dir);
    assert!(
        names.iter().all(|n| !n.ends_with(".part")),
        "unfinished files left: {names:?}"
    );
    assert!(util::rejects(&scenario.output_dir).is_empty());
    finished
}

#[test]
fn archives_exactly_the_served_events() {
    let finished = assert_exact_archive(&[], &[]);
    // The second canary is the last line, after the last archived event: --max-events stops before it.
    assert!(
        finished.stderr.contains("1 canary dropped"),
        "{}",
        finished.stderr
    );
}

#[test]
fn file_name_and_gzip_are_valid() {
    let expected = util::expected_archive(&fixture_events());
    let (scenario, _) = archive_from_serve(Scenario::fixture(), &[], &["--level", "1"], 10);
    let names = util::data_files(&scenario.output_dir);
    assert_eq!(names.len(), 1, "{names:?}");
    let name = &names[0];
    // recentchange/date=YYYY-MM-DD/recentchange-YYYYMMDDTHHMMSSZ-000001.ndjson.gz, named after
    // the first event's meta.dt (UTC), in the partition of its date.
    let first: serde_json::Value = serde_json::from_str(&expected[0]).expect("json");
    let dt = first["meta"]["dt"].as_str().expect("meta.dt");
    let stamp: String = dt[..19]
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    assert_eq!(
        name,
        &format!(
            "recentchange/date={}/recentchange-{stamp}Z-000001.ndjson.gz",
            &dt[..10]
        )
    );
    let status = Command::new("gzip")
        .arg("-t")
        .arg(scenario.output_dir.join(name))
        .status()
        .expect("gzip -t");
    assert!(status.success(), "gzip -t failed on {name}");
    scenario.assert_archived(&expected[..10]);
}

#[test]
fn survives_a_disconnect_every_k_events() {
    let finished = assert_exact_archive(&["--disconnect-every", "7", "--retry", "20"], &[]);
    assert!(
        finished.stderr.matches("resuming after").count() >= 25,
        "{}",
        finished.stderr
    );
}

#[test]
fn survives_cuts_in_the_middle_of_events() {
    let finished = assert_exact_archive(
        &[
            "--disconnect-every",
            "13",
            "--cut-mid-event",
            "--retry",
            "20",
        ],
        &[],
    );
    assert!(
        finished.stderr.matches("resuming after").count() >= 14,
        "{}",
        finished.stderr
    );
}

#[test]
fn reconnects_after_a_stall() {
    let finished = assert_exact_archive(
        &["--stall-after", "30", "--retry", "20"],
        &["--idle-timeout", "1"],
    );
    assert!(
        finished.stderr.contains("no data for 1 s"),
        "{}",
        finished.stderr
    );
}

#[test]
fn waits_for_retry_after_on_429_and_503() {
    for code in ["429", "503"] {
        // The backoff alone waits at most 1 s; only Retry-After makes it 3 s.
        let finished = assert_exact_archive(&["--status-first", code, "--retry-after", "3"], &[]);
        finished.expect(0, &[&format!("HTTP {code}"), "reconnecting in 3.000 s"]);
    }
}

#[test]
fn retries_after_500() {
    let finished = assert_exact_archive(&["--status-first", "500"], &[]);
    assert!(finished.stderr.contains("HTTP 500"), "{}", finished.stderr);
}

#[test]
fn garbage_goes_to_rejects_and_the_rest_is_archived() {
    let good = fixture_events();
    let oversize = format!(
        "{{\"meta\":{{\"id\":\"big\"}},\"pad\":\"{}\"}}",
        "x".repeat(6000)
    );
    let bad = [
        "this is not json".to_string(),
        "[1,2,3]".to_string(),
        "{\"cut\":".to_string(),
        oversize,
    ];
    let mut input = Vec::new();
    for (idx, line) in good.iter().take(40).enumerate() {
        input.push(line.clone());
        if idx % 10 == 5 {
            input.push(bad[idx / 10].clone());
        }
    }
    // The oversize line is a JSON object, but too large: only the good lines are expected.
    let expected = util::expected_archive(&good[..40]);
    let (scenario, finished) = archive_from_serve(
        Scenario::events(input),
        &["--disconnect-every", "9", "--retry", "10"],
        &["--max-event-bytes", "4096"],
        expected.len(),
    );
    scenario.assert_archived(&expected);
    let rejects = util::rejects(&scenario.output_dir);
    let reasons: Vec<&str> = rejects
        .iter()
        .map(|r| r["reason"].as_str().expect("reason"))
        .collect();
    assert_eq!(
        reasons,
        ["invalid_json", "not_an_object", "invalid_json", "oversize"]
    );
    assert_eq!(rejects[0]["data"], "this is not json");
    assert_eq!(rejects[1]["data"], "[1,2,3]");
    assert!(rejects[3]["data"].as_str().expect("data").len() <= 4096);
    for reject in &rejects {
        assert_eq!(reject["event"], "message");
        assert!(
            reject["id"].as_str().expect("id").contains("offset"),
            "{reject}"
        );
        assert!(reject["received_at"].as_str().expect("time").ends_with('Z'));
    }
    assert_eq!(
        finished.stderr.matches("rejected event").count(),
        4,
        "{}",
        finished.stderr
    );
}

#[test]
fn keep_canary_archives_canaries() {
    let all = fixture_events();
    let (scenario, _) = archive_from_serve(Scenario::fixture(), &[], &["--keep-canary"], all.len());
    scenario.assert_archived(&all);
}

#[test]
fn since_starts_at_that_time() {
    let events = fixture_events();
    let dt = |line: &str| {
        let value: serde_json::Value = serde_json::from_str(line).expect("json");
        value["meta"]["dt"].as_str().expect("dt").to_string()
    };
    let since = dt(&events[50]);
    let expected = util::expected_archive(&events[50..]);
    let (scenario, _) = archive_from_serve(
        Scenario::fixture(),
        &[],
        &["--since", &since],
        expected.len(),
    );
    scenario.assert_archived(&expected);
}

#[test]
fn first_connection_404_is_a_configuration_error() {
    let dir = util::temp_dir();
    let serve = Serve::start(&util::fixture("recentchange-200.ndjson"), &[], dir.path());
    let url = format!("http://127.0.0.1:{}/v2/strem/recentchange", serve.port);
    let output_dir = dir.path().join("archive");
    let finished = util::run_archiver(&url, &output_dir, &[], dir.path());
    serve.stop();
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    assert!(finished.stderr.contains("HTTP 404"), "{}", finished.stderr);
    assert!(finished.stderr.contains(&url), "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("no route for /v2/strem/recentchange"),
        "{}",
        finished.stderr
    );
}

/// Starts an archiver on `serve`, waits until it has opened its file, sends SIGTERM and checks
/// the exit is clean, quick, and leaves a complete gzip file with a prefix of the events.
fn assert_clean_sigterm(serve_flags: &[&str]) {
    let dir = util::temp_dir();
    let serve = Serve::start(
        &util::fixture("recentchange-200.ndjson"),
        serve_flags,
        dir.path(),
    );
    let output_dir = dir.path().join("archive");
    let mut cmd = util::command();
    cmd.args([
        "--url",
        &serve.url(),
        "--output-dir",
        output_dir.to_str().expect("utf-8"),
    ]);
    let running = Running::start(cmd, dir.path(), "run");
    running.wait_for_log("opened", Duration::from_secs(20));
    // Streaming, not just connected: a checkpoint has recorded lines.
    util::wait_for("a checkpoint with events", Duration::from_secs(20), || {
        util::checkpoint_lines(&output_dir) > 0
    });
    let signalled = Instant::now();
    running.signal("TERM");
    let finished = running.wait(Duration::from_secs(10));
    let took = signalled.elapsed();
    serve.stop();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    assert!(
        took < Duration::from_secs(2),
        "took {took:?} to exit after SIGTERM"
    );
    let names = util::data_files(&output_dir);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with(".ndjson.gz"), "{names:?}");
    let status = Command::new("gzip")
        .arg("-t")
        .arg(output_dir.join(&names[0]))
        .status()
        .expect("gzip -t");
    assert!(status.success());
    let archived = util::archive_lines(&output_dir);
    let expected = util::expected_archive(&fixture_events());
    assert!(!archived.is_empty());
    util::assert_same_events(&archived, &expected[..archived.len()]);
}

#[test]
fn sigterm_while_streaming_finishes_the_file() {
    assert_clean_sigterm(&["--rate", "100"]);
}

#[test]
fn sigterm_while_blocked_in_a_read_finishes_the_file() {
    assert_clean_sigterm(&["--stall-after", "20"]);
}

#[test]
fn refused_connections_are_retried_until_sigterm() {
    let dir = util::temp_dir();
    // Bind and drop a listener to find a port that is (very likely) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut cmd = util::command();
    let output_dir = dir.path().join("archive");
    cmd.args([
        "--url",
        &format!("http://127.0.0.1:{port}/v2/stream/x"),
        "--output-dir",
        output_dir.to_str().expect("utf-8"),
    ]);
    let running = Running::start(cmd, dir.path(), "run");
    running.wait_for_log("reconnecting in", Duration::from_secs(20));
    running.wait_for_log("failed", Duration::from_secs(5));
    running.signal("INT");
    let finished = running.wait(Duration::from_secs(5));
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    assert!(
        util::data_files(&output_dir).is_empty(),
        "no event, so no file"
    );
}

#[test]
fn serve_reads_gzip_input_too() {
    let expected = util::expected_archive(&fixture_events());
    let (scenario, _) = archive_from_serve(Scenario::fixture().gzipped(), &[], &[], expected.len());
    scenario.assert_archived(&expected);
}
