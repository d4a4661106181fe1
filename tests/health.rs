//! The health endpoint of the real binary: /check, /metrics, /status, wrong paths and methods,
//! and proof that hostile or busy clients do not slow archiving.

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{self, Running, Serve};

/// Starts an archiver with a health port; returns it and the port it logged.
fn start_with_health(
    url: &str,
    output_dir: &Path,
    log_dir: &Path,
    extra: &[&str],
) -> (Running, u16) {
    let mut cmd = util::command();
    cmd.args([
        "--url",
        url,
        "--output-dir",
        output_dir.to_str().expect("utf-8"),
        "--status-port",
        "0",
    ])
    .args(extra);
    let running = Running::start(cmd, log_dir, "run");
    let port = util::health_port(&running);
    (running, port)
}

#[test]
fn check_metrics_status_and_errors() {
    let dir = util::temp_dir();
    let serve = Serve::start(
        &util::fixture("recentchange-200.ndjson"),
        &["--stall-after", "150"],
        dir.path(),
    );
    let output_dir = dir.path().join("archive");
    let (running, port) = start_with_health(
        &serve.url(),
        &output_dir,
        dir.path(),
        &["--max-silence", "2"],
    );
    util::wait_for("all 149 events archived", Duration::from_secs(30), || {
        util::status(port)["events_archived"] == 149
    });
    assert_eq!(util::http(port, "GET", "/check"), (200, "OK\n".to_string()));
    let (code, head_body) = util::http(port, "HEAD", "/check");
    assert_eq!((code, head_body.as_str()), (200, ""));
    let (code, metrics) = util::http(port, "GET", "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("# TYPE wikistream_events_archived_total counter"),
        "{metrics}"
    );
    let on_stream = "stream=\"mediawiki.recentchange\"";
    assert_eq!(
        util::metric_sum(&metrics, "wikistream_events_archived_total", on_stream),
        149,
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "wikistream_events_archived_total{stream=\"mediawiki.recentchange\",type=\"edit\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("process_resident_memory_bytes "),
        "{metrics}"
    );
    assert!(
        !metrics.contains("wikistream_last_checkpoint_timestamp_seconds 0\n"),
        "a checkpoint was written: {metrics}"
    );
    assert!(metrics.contains("wikistream_canaries_total 1"), "{metrics}");
    assert!(metrics.contains("wikistream_connected 1"), "{metrics}");
    assert!(
        metrics.contains("wikistream_build_info{version=\""),
        "{metrics}"
    );
    let (code, status) = util::http(port, "GET", "/status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).expect("status is JSON");
    assert_eq!(status["events_archived"], 149);
    assert_eq!(status["healthy"], true);
    assert!(
        status["open_file"]
            .as_str()
            .expect("open file")
            .ends_with(".ndjson.gz.part"),
        "{status}"
    );
    assert!(
        status["last_event_id"]
            .as_str()
            .expect("id")
            .contains("\"offset\":5000000149"),
        "{status}"
    );
    assert_eq!(util::http(port, "GET", "/nope").0, 404);
    assert_eq!(util::http(port, "POST", "/check").0, 405);
    // The server stalled after 150 events: after --max-silence, /check fails with a reason.
    std::thread::sleep(Duration::from_millis(2600));
    let (code, reason) = util::http(port, "GET", "/check");
    assert_eq!(code, 500);
    assert!(reason.starts_with("no event for "), "{reason}");
    running.signal("TERM");
    assert_eq!(running.wait(Duration::from_secs(10)).status.code(), Some(0));
    serve.stop();
}

#[test]
fn busy_and_silent_clients_do_not_slow_archiving() {
    let dir = util::temp_dir();
    let events = util::lines_of(&util::fixture("recentchange-200.ndjson"));
    let expected = util::expected_archive(&events);
    let serve = Serve::start(
        &util::fixture("recentchange-200.ndjson"),
        &["--rate", "100"],
        dir.path(),
    );
    let output_dir = dir.path().join("archive");
    let max = expected.len().to_string();
    let started = Instant::now();
    let (running, port) = start_with_health(
        &serve.url(),
        &output_dir,
        dir.path(),
        &["--max-events", &max],
    );
    // A client that connects and never sends a byte.
    let _silent = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let hammers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut n_ok = 0;
                let until = Instant::now() + Duration::from_millis(1500);
                while Instant::now() < until {
                    if TcpStream::connect(("127.0.0.1", port)).is_ok()
                        && util::http(port, "GET", "/metrics").0 == 200
                    {
                        n_ok += 1;
                    }
                }
                n_ok
            })
        })
        .collect();
    let (code, _) = util::http(port, "GET", "/check");
    assert_eq!(code, 200, "/check must answer while /metrics is hammered");
    let n_requests: i32 = hammers.into_iter().map(|h| h.join().expect("hammer")).sum();
    assert!(n_requests > 20, "only {n_requests} /metrics answers");
    let finished = running.wait(Duration::from_secs(30));
    let took = started.elapsed();
    serve.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    util::assert_same_events(&util::archive_lines(&output_dir), &expected);
    // 198 events at 100 per second take about 2 s. Time is the behaviour here (the load must
    // not slow archiving down), measured against that with a wide margin for a busy machine.
    assert!(
        took < Duration::from_secs(15),
        "archiving took {took:?} under load"
    );
}
