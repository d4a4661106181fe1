//! What the upstream sends is untrusted (issue 23): stream names and dates never become unsafe
//! paths or stop archiving, the streams and files one run keeps are bounded, the checkpoint
//! always fits its reader, and one request to stop is one request.

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::util::events::{archiver, checkpoint_id, finish_run, make_events};
use crate::util::scenario::Scenario;
use crate::util::scripted::{Reply, ScriptedServer};
use crate::util::{self, Running};

/// A hostile upstream: every connection gets all of `events` as SSE (ids by `meta.offset`), and
/// then nothing more. `serve` would not send events of streams no URL can name.
fn upstream(events: &[String]) -> ScriptedServer {
    let mut body =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n".to_vec();
    for (idx, event) in events.iter().enumerate() {
        let frame = format!(
            "event: message\nid: [{{\"topic\":\"t\",\"partition\":0,\"offset\":{}}}]\ndata: {event}\n\n",
            5_000_000_000u64 + idx as u64
        );
        body.extend_from_slice(frame.as_bytes());
    }
    ScriptedServer::start(move |_, _| Reply::whole(body.clone()))
}

/// `event` (a realistic event line) with `meta.stream` set to the raw JSON `stream`.
fn with_stream(event: &str, stream: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(event).expect("json");
    value["meta"]["stream"] = serde_json::from_str(stream).expect("a JSON value");
    serde_json::to_string(&value).expect("json")
}

/// `event` with `meta.dt` set to the raw JSON `dt`, or removed for `None`.
fn with_dt(event: &str, dt: Option<&str>) -> String {
    let mut value: serde_json::Value = serde_json::from_str(event).expect("json");
    match dt {
        Some(dt) => value["meta"]["dt"] = serde_json::from_str(dt).expect("a JSON value"),
        None => {
            value["meta"].as_object_mut().expect("meta").remove("dt");
        }
    }
    serde_json::to_string(&value).expect("json")
}

/// The entries of `dir`, sorted.
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("listing")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The reasons of the rejects in `output_dir`, and each reject's original data.
fn rejected(output_dir: &std::path::Path) -> Vec<(String, String)> {
    util::rejects(output_dir)
        .iter()
        .map(|r| {
            let reason = r["reason"].as_str().expect("reason").to_string();
            (reason, r["data"].as_str().expect("data").to_string())
        })
        .collect()
}

#[test]
fn hostile_stream_names_go_to_the_rejects_and_archiving_goes_on() {
    let base = make_events(60, 1);
    let long = format!("\"{}\"", "s".repeat(300));
    let hostile = [
        "\"..\"",
        "\"\\u002e\\u002e\"",
        "\"_checkpoint.json\"",
        "\".lock\"",
        long.as_str(),
        "\".\"",
        "\"_rejects\"",
        "\"_damaged\"",
        "\"a\\u0000b\"",
        "\"a\\nb\"",
        "\"Recentchange\"",
        "\"../../x\"",
        "\"checkpoint.json\"",
        "5",
    ];
    let mut events = Vec::new();
    let mut bad = Vec::new();
    for (idx, event) in base.iter().enumerate() {
        if let Some(stream) = hostile.get(idx / 4).filter(|_| idx % 4 == 1) {
            bad.push(with_stream(event, stream));
            events.push(bad.last().expect("just pushed").clone());
        } else {
            events.push(event.clone());
        }
    }
    let good: Vec<String> = events
        .iter()
        .filter(|e| !bad.contains(e))
        .cloned()
        .collect();
    let server = upstream(&events);
    let url = format!("http://127.0.0.1:{}/v2/stream/recentchange", server.port);
    let dir = util::temp_dir();
    let output_dir = dir.path().join("archive");
    // Killed once after the hostile events, so that the restart reads the checkpoint the run
    // wrote while they came.
    let flags = ["--checkpoint-interval", "0.1"];
    let running = Running::start(archiver(&url, &output_dir, &flags), dir.path(), "first");
    util::wait_for("every event", Duration::from_secs(30), || {
        checkpoint_id(&output_dir).contains("\"offset\":5000000059}")
    });
    running.signal("KILL");
    let _ = running.wait(Duration::from_secs(10));
    let log = finish_run(
        archiver(&url, &output_dir, &flags),
        dir.path(),
        &output_dir,
        "\"offset\":5000000059}",
    );
    server.stop();
    util::assert_same_events(&util::archive_lines(&output_dir), &good);
    let rejects = rejected(&output_dir);
    assert!(
        rejects.iter().all(|(reason, _)| reason == "bad_stream"),
        "{rejects:?}"
    );
    let mut data: Vec<String> = rejects.into_iter().map(|(_, data)| data).collect();
    data.sort();
    data.dedup();
    let mut expected = bad.clone();
    expected.sort();
    assert_eq!(data, expected, "every hostile event, its line kept");
    // Nothing outside the archive directory, and only the layout's own names inside it.
    assert_eq!(
        entries(&output_dir),
        [".lock", "_checkpoint.json", "_rejects", "recentchange"]
    );
    assert!(
        entries(dir.path())
            .iter()
            .all(|name| !name.starts_with("date=") && !name.starts_with('.')),
        "{:?}",
        entries(dir.path())
    );
    assert!(log.contains("bad_stream"), "{log}");
    let verify = util::run_binary(
        &["verify", "--json", output_dir.to_str().expect("utf-8")],
        dir.path(),
        Duration::from_secs(30),
    );
    let report: serde_json::Value = serde_json::from_str(&verify.stdout).expect("json");
    assert_eq!(verify.status.code(), Some(0), "{}", verify.stdout);
    assert!(
        report["rejects_by_reason"]["bad_stream"].as_u64() >= Some(bad.len() as u64),
        "{report}"
    );
}

#[test]
fn unreadable_and_far_future_dates_go_to_the_rejects() {
    let base = make_events(40, 1);
    let dates: [Option<&str>; 8] = [
        Some("\"2024-02-30T00:00:00Z\""),
        Some("\"+275760-09-13T00:00:00Z\""),
        Some("\"2024-11-23T25:00:00Z\""),
        Some("\"\""),
        Some("5"),
        None,
        Some("\"9999-12-31T23:59:59Z\""),
        Some("\"1970-01-01T00:00:00Z\""),
    ];
    let mut events = base.clone();
    let mut bad = Vec::new();
    for (idx, dt) in dates.iter().enumerate() {
        let event = with_dt(&base[3 + idx * 4], *dt);
        events[3 + idx * 4] = event.clone();
        bad.push(event);
    }
    let good: Vec<String> = events
        .iter()
        .filter(|e| !bad.contains(e))
        .cloned()
        .collect();
    let scenario = Scenario::events(events).serve(&[]);
    let running = scenario.start(&["--status-port", "0"], "run");
    let port = util::health_port(&running);
    util::wait_for("every event", Duration::from_secs(30), || {
        util::events::checkpoint_id(&scenario.output_dir).contains("\"offset\":5000000039}")
    });
    let (_, metrics) = util::http(port, "GET", "/metrics");
    running.signal("TERM");
    let finished = running.wait(Duration::from_secs(10));
    scenario.stop();
    finished.expect(0, &[]);
    scenario.assert_archived(&good);
    assert_eq!(
        util::metric_sum(&metrics, "wikistream_rejects_total", "reason=\"bad_date\""),
        dates.len() as u64,
        "{metrics}"
    );
    let rejects = rejected(&scenario.output_dir);
    assert_eq!(rejects.len(), dates.len(), "{rejects:?}");
    assert!(rejects.iter().all(|(reason, _)| reason == "bad_date"));
    // The event dated 9999 completed nothing: the day's events are in one file.
    let files = util::data_files(&scenario.output_dir);
    let event_files: Vec<&String> = files.iter().filter(|f| !util::is_rejects(f)).collect();
    assert_eq!(event_files.len(), 1, "{files:?}");
    assert!(
        !finished.stderr.contains("rotation by date"),
        "{}",
        finished.stderr
    );
}

/// `n` events, each of its own stream `s0000`, `s0001`, …, all of one day.
fn one_per_stream(n: usize) -> Vec<String> {
    make_events(n, 1)
        .iter()
        .enumerate()
        .map(|(idx, event)| with_stream(event, &format!("\"s{idx:04}\"")))
        .collect()
}

/// The archived lines of `output_dir`, sorted: several streams' files interleave.
fn archived_sorted(output_dir: &std::path::Path) -> Vec<String> {
    let mut lines = util::archive_lines(output_dir);
    lines.sort();
    lines
}

/// `events`, sorted.
fn sorted(mut events: Vec<String>) -> Vec<String> {
    events.sort();
    events
}

#[test]
fn streams_beyond_the_limit_go_to_the_rejects_and_open_files_stay_bounded() {
    // 300 streams of one event each, then events of the asked-for stream.
    let base = make_events(320, 1);
    let mut events: Vec<String> = base[..300]
        .iter()
        .enumerate()
        .map(|(idx, event)| with_stream(event, &format!("\"s{idx:04}\"")))
        .collect();
    events.extend_from_slice(&base[300..]);
    let server = upstream(&events);
    let dir = util::temp_dir();
    let output_dir = dir.path().join("archive");
    let url = format!("http://127.0.0.1:{}/v2/stream/recentchange", server.port);
    let flags = ["--max-events", "60", "--max-streams", "40"];
    let finished = util::run_archiver(&url, &output_dir, &flags, dir.path());
    server.stop();
    finished.expect(0, &[]);
    // 40 streams archived; the other 260 are rejects, and archiving never stopped.
    let expected = sorted([&events[..40], &events[300..]].concat());
    assert_eq!(archived_sorted(&output_dir), expected);
    let streams: BTreeSet<String> = util::data_files(&output_dir)
        .iter()
        .filter(|f| !util::is_rejects(f))
        .map(|f| f.split('/').next().expect("stream").to_string())
        .collect();
    assert_eq!(streams.len(), 41, "{streams:?}");
    // At most --max-open-files (8 by default) were open: the others were completed on the way.
    assert!(
        finished.stderr.matches("rotation by open_files").count() >= 40 - 8,
        "{}",
        finished.stderr
    );
    let rejects = rejected(&output_dir);
    assert_eq!(rejects.len(), 260);
    assert!(
        rejects
            .iter()
            .all(|(reason, _)| reason == "too_many_streams")
    );
}

#[test]
fn out_of_descriptors_it_sheds_open_files_and_goes_on() {
    let events = one_per_stream(200);
    let server = upstream(&events);
    let dir = util::temp_dir();
    let output_dir = dir.path().join("archive");
    // A lower descriptor limit than --max-open-files assumes.
    let script = format!(
        "ulimit -n 40 && exec \"$0\" --url {} --output-dir {} --max-streams 1000 \
         --max-open-files 256 --max-events 200",
        server.url(),
        output_dir.display()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg(util::bin());
    let finished = Running::start(cmd, dir.path(), "limited").wait(Duration::from_secs(60));
    server.stop();
    finished.expect(0, &["Too many open files"]);
    assert_eq!(archived_sorted(&output_dir), sorted(events));
}

#[test]
fn a_checkpoint_at_the_most_open_files_reads_back_after_kill_9() {
    let events = one_per_stream(300);
    let server = upstream(&events);
    let dir = util::temp_dir();
    let output_dir = dir.path().join("archive");
    let flags = ["--max-streams", "1000", "--max-open-files", "256"];
    let running = Running::start(
        archiver(&server.url(), &output_dir, &flags),
        dir.path(),
        "first",
    );
    util::wait_for("every event", Duration::from_secs(30), || {
        checkpoint_id(&output_dir).contains("\"offset\":5000000299}")
    });
    running.signal("KILL");
    let _ = running.wait(Duration::from_secs(10));
    let checkpoint = fs::read_to_string(util::checkpoint_path(&output_dir)).expect("read");
    let listed = checkpoint.matches(".part\"").count();
    assert!(listed >= 256, "{listed} files in the checkpoint");
    let log = finish_run(
        archiver(&server.url(), &output_dir, &flags),
        dir.path(),
        &output_dir,
        "\"offset\":5000000299}",
    );
    server.stop();
    assert!(log.contains("continuing"), "{log}");
    assert_eq!(archived_sorted(&output_dir), sorted(events));
}

/// Sends `signal` to `pid` (a process of `running`) with kill(1).
fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn the_same_signal_twice_is_one_request_and_a_later_one_ends_at_once() {
    let scenario = Scenario::events(make_events(3000, 1)).serve(&["--rate", "200"]);
    let running = scenario.start(&[], "twice");
    running.wait_for_log("connected", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let pid = running.child.id();
    kill("TERM", pid);
    kill("TERM", pid);
    let finished = running.wait(Duration::from_secs(10));
    finished.expect(0, &["shutting down"]);
    assert!(
        util::data_files(&scenario.output_dir)
            .iter()
            .all(|f| !f.ends_with(".part")),
        "files left open"
    );
    // A second request well after the first ends the process at once, and says so. The process
    // is held still in between, and has many files to complete, so that the first request is
    // not done before the second.
    let many = upstream(&one_per_stream(600));
    let many_dir = util::temp_dir();
    let output_dir = many_dir.path().join("archive");
    let flags = ["--max-streams", "3000", "--max-open-files", "256"];
    let running = Running::start(
        archiver(&many.url(), &output_dir, &flags),
        many_dir.path(),
        "later",
    );
    util::wait_for("many open files", Duration::from_secs(30), || {
        checkpoint_id(&output_dir).contains("\"offset\":5000000599}")
    });
    let pid = running.child.id();
    kill("TERM", pid);
    // Held still once the first request is seen, while it completes hundreds of files.
    running.wait_for_log("shutting down", Duration::from_secs(10));
    kill("STOP", pid);
    std::thread::sleep(Duration::from_millis(1200));
    kill("TERM", pid);
    kill("CONT", pid);
    let finished = running.wait(Duration::from_secs(10));
    many.stop();
    scenario.stop();
    finished.expect(1, &["a second signal to stop"]);
}

/// One raw request to `port`; the response as far as it came within `wait`.
fn raw_request(port: u16, request: &[u8], wait: Duration) -> String {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket.write_all(request).expect("request");
    socket.set_read_timeout(Some(wait)).expect("timeout");
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = socket.read(&mut buf) {
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn serve_answers_what_it_cannot_use_and_bare_lf_heads() {
    let scenario = Scenario::fixture().serve(&[]);
    let port = scenario.upstream_port();
    let wait = Duration::from_secs(2);
    for id in [
        "[{\"topic\":\"t\",\"partition\":0,\"offset\":99999999999999999999}]",
        "[{\"topic\":\"t\",\"partition\":0,\"timestamp\":1e300}]",
    ] {
        let request =
            format!("GET /v2/stream/recentchange HTTP/1.1\r\nLast-Event-ID: {id}\r\n\r\n");
        let response = raw_request(port, request.as_bytes(), wait);
        assert!(response.starts_with("HTTP/1.1 400"), "{id}: {response}");
    }
    let bare_lf = raw_request(
        port,
        b"GET /v2/stream/recentchange HTTP/1.1\nHost: x\n\n",
        wait,
    );
    assert!(bare_lf.starts_with("HTTP/1.1 200"), "{bare_lf}");
    let post = raw_request(port, b"POST /v2/stream/recentchange HTTP/1.1\r\n\r\n", wait);
    assert!(
        post.starts_with("HTTP/1.1 405") && post.contains("\"method\":\"post\""),
        "{post}"
    );
    scenario.stop();
}

#[test]
fn serve_keeps_answering_while_slow_clients_trickle_their_heads() {
    use std::io::Write;
    let scenario = Scenario::fixture().serve(&[]);
    let port = scenario.upstream_port();
    // 300 clients that each send a little of a head now and then, and never finish it.
    let mut slow: Vec<std::net::TcpStream> = (0..300)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    for socket in &mut slow {
        let _ = socket.write_all(b"GET /v2/stream/recentchange HTTP/1.1\r\nX-Slow: ");
    }
    std::thread::sleep(Duration::from_millis(500));
    for socket in &mut slow {
        let _ = socket.write_all(b"x");
    }
    let started = std::time::Instant::now();
    let response = raw_request(
        port,
        b"GET /v2/stream/recentchange HTTP/1.1\r\n\r\n",
        Duration::from_secs(1),
    );
    let took = started.elapsed();
    println!("a well-behaved client among 300 slow ones: first bytes in {took:?}");
    assert!(
        response.starts_with("HTTP/1.1 200") && response.contains("data: "),
        "{response}"
    );
    drop(slow);
    scenario.stop();
}

#[test]
fn cat_verify_and_serve_agree_on_a_damaged_directory() {
    use std::io::{Seek, SeekFrom, Write};
    let scenario = Scenario::events(make_events(600, 1)).serve(&["--rate", "1000"]);
    let finished = scenario.archive(&["--max-events", "600", "--checkpoint-interval", "0.05"]);
    finished.expect(0, &[]);
    scenario.stop();
    let dir = &scenario.output_dir;
    let files = util::data_files(dir);
    let file = dir.join(&files[0]);
    let len = fs::metadata(&file).expect("metadata").len();
    // A flipped byte in the middle, and a torn tail at the end.
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .expect("open");
    f.seek(SeekFrom::Start(len / 2)).expect("seek");
    f.write_all(b"\xff\xff\xff\xff").expect("damage");
    f.set_len(len - 7).expect("truncate");
    drop(f);
    // And a file that cannot be read: a link where an archive file would be.
    let name = files[0].replace("-000001.", "-000099.");
    std::os::unix::fs::symlink(&file, dir.join(&name)).expect("symlink");
    let path = dir.to_str().expect("utf-8");
    let cat = util::run_binary(
        &["cat", "--count", path],
        scenario.path(),
        Duration::from_secs(30),
    );
    assert_eq!(cat.status.code(), Some(1), "{}", cat.stderr);
    let total: u64 = cat
        .stdout
        .lines()
        .last()
        .and_then(|line| line.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a total: {}", cat.stdout));
    assert!(total > 0 && total < 600, "{total}");
    let verify = util::run_binary(
        &["verify", "--json", path],
        scenario.path(),
        Duration::from_secs(30),
    );
    let report: serde_json::Value = serde_json::from_str(&verify.stdout).expect("json");
    assert_eq!(report["events"].as_u64(), Some(total), "{report}");
    let replay = util::Serve::start(dir, &[], scenario.path());
    let tail = Running::start(
        {
            let mut cmd = util::command();
            cmd.args(["tail", "--url", &replay.url(), "--format", "json"]);
            cmd
        },
        scenario.path(),
        "tail",
    );
    util::wait_for("serve to send everything", Duration::from_secs(30), || {
        replay.stderr().contains("events sent")
    });
    let log = replay.stderr();
    drop(tail);
    replay.stop();
    assert!(
        log.contains(&format!("all {total} events sent")),
        "cat: {total}; {log}"
    );
}
