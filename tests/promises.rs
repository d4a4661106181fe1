//! Promises of README.md that no other test checks: the User-Agent on every request, later
//! errors retried with a backoff that grows and resets, several streams on one connection,
//! `--keep-days` in the running archiver, sequence numbers across runs, and canaries as signs
//! of life for `/check`.

use std::time::Duration;

use crate::util::events::{archiver, make_events, serve_events, write_input};
use crate::util::scenario::Scenario;
use crate::util::{self, Running, Serve};

/// Every `reconnecting in X s` delay in a log, in order.
fn reconnect_delays(log: &str) -> Vec<f64> {
    log.split("reconnecting in ")
        .skip(1)
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn the_user_agent_goes_with_every_request() {
    let dir = util::temp_dir();
    let events = make_events(100, 1);
    for (flags, agent) in [
        (
            vec!["--user-agent", "promise-test/1 (ops@example.org)"],
            "promise-test/1 (ops@example.org)".to_string(),
        ),
        (
            vec![],
            format!(
                "wikistream-archiver/{} (+https://github.com/wikistream-archiver)",
                env!("CARGO_PKG_VERSION")
            ),
        ),
    ] {
        let serve = serve_events(
            dir.path(),
            &events,
            &["--disconnect-every", "30", "--retry", "10"],
        );
        let output_dir = dir.path().join(format!("archive-{}", flags.len()));
        let mut args = vec!["--max-events", "100"];
        args.extend(flags.iter());
        let finished = util::run_archiver(&serve.url(), &output_dir, &args, dir.path());
        let log = serve.stderr();
        serve.stop();
        finished.expect(0, &[]);
        let n_requests = log.matches("from User-Agent").count();
        assert!(n_requests >= 4, "{n_requests} requests: {log}");
        assert_eq!(
            log.matches(&format!("from User-Agent {agent:?}")).count(),
            n_requests,
            "every request, reconnects included, carries {agent:?}: {log}"
        );
    }
}

#[test]
fn later_errors_are_retried_with_a_backoff_that_grows_and_resets() {
    // The 2nd and 3rd requests get 404: a configuration error on the first connection, but
    // only a passing fault once the stream has worked.
    let scenario = Scenario::events(make_events(150, 1)).serve(&[
        "--status-later",
        "404",
        "--disconnect-every",
        "50",
        "--retry",
        "200",
    ]);
    let events = &scenario.events;
    let finished = scenario.archive(&["--max-events", "150"]);
    scenario.stop();
    finished.expect(0, &["answered HTTP 404"]);
    scenario.assert_archived(events);
    let delays = reconnect_delays(&finished.stderr);
    assert!(delays.len() >= 4, "{delays:?}: {}", finished.stderr);
    // After events (reset, base 200 ms), after the first 404 (doubled), after the second
    // (doubled again), after events again (reset).
    let [after_events, first_404, second_404, after_recovery] = delays[..4] else {
        unreachable!()
    };
    assert!((0.1..=0.2).contains(&after_events), "{delays:?}");
    assert!(
        first_404 >= after_events && (0.2..=0.4).contains(&first_404),
        "{delays:?}"
    );
    assert!(
        second_404 > after_events && (0.4..=0.8).contains(&second_404),
        "{delays:?}"
    );
    assert!(
        (0.1..=0.2).contains(&after_recovery),
        "reset after events: {delays:?}"
    );
}

#[test]
fn several_streams_on_one_connection_are_archived_resumed_and_exact() {
    let dir = util::temp_dir();
    let mut events = make_events(400, 1);
    for (idx, line) in events.iter_mut().enumerate() {
        if idx % 3 == 0 {
            let mut value: serde_json::Value = serde_json::from_str(line).expect("json");
            value["meta"]["stream"] = "mediawiki.page-create".into();
            value["meta"]["topic"] = "eqiad.mediawiki.page-create".into();
            value["meta"]["offset"] = (idx as u64 / 3).into();
            *line = serde_json::to_string(&value).expect("json");
        }
    }
    let serve = serve_events(
        dir.path(),
        &events,
        &["--disconnect-every", "45", "--retry", "10"],
    );
    let output_dir = dir.path().join("archive");
    let base = format!("http://127.0.0.1:{}/v2/stream/", serve.port);
    let args = |max: &'static str| {
        let mut cmd = util::command();
        cmd.args([
            "--base-url",
            &base,
            "--stream",
            "recentchange,page-create",
            "--output-dir",
        ])
        .arg(&output_dir)
        .args(["--max-events", max]);
        cmd
    };
    // A first run stops part-way; the second resumes from its checkpoint.
    Running::start(args("170"), dir.path(), "first")
        .wait(Duration::from_secs(60))
        .expect(0, &[]);
    Running::start(args("230"), dir.path(), "second")
        .wait(Duration::from_secs(60))
        .expect(0, &["resuming after"]);
    serve.stop();
    // Each stream under its own directory, in order and exact; one checkpoint for both.
    let names = util::data_files(&output_dir);
    for stream in ["recentchange", "page-create"] {
        let lines: Vec<String> = names
            .iter()
            .filter(|n| n.starts_with(&format!("{stream}/date=")))
            .flat_map(|n| util::gz_lines(&output_dir.join(n)))
            .collect();
        let meta_stream = format!("\"stream\":\"mediawiki.{stream}\"");
        let expected: Vec<String> = events
            .iter()
            .filter(|e| e.contains(&meta_stream))
            .cloned()
            .collect();
        assert!(!expected.is_empty());
        util::assert_same_events(&lines, &expected);
    }
    assert_eq!(
        util::archive_lines(&output_dir).len(),
        events.len(),
        "{names:?}"
    );
    assert!(output_dir.join("_checkpoint.json").exists());
}

#[test]
fn keep_days_deletes_old_completed_files_but_never_the_open_one() {
    let scenario = Scenario::events(make_events(600, 1)).serve(&["--rate", "400"]);
    let (events, output_dir) = (&scenario.events, &scenario.output_dir);
    // A first run leaves an open .part behind (kill -9) ...
    let running = Running::start(
        scenario.command(&["--checkpoint-interval", "0.1"]),
        scenario.path(),
        "first",
    );
    util::wait_for("checkpointed events", Duration::from_secs(20), || {
        util::checkpoint_lines(output_dir) > 50
    });
    running.signal("KILL");
    let _ = running.wait(Duration::from_secs(10));
    // ... then the open file and a completed one are made 30 days old.
    let old_partition = output_dir.join("recentchange/date=2020-01-01");
    std::fs::create_dir_all(&old_partition).expect("mkdir");
    let old_done = old_partition.join("recentchange-20200101T000000Z-000000.ndjson.gz");
    std::fs::copy(
        util::fixture("recentchange-200.ndjson"),
        scenario.path().join("plain"),
    )
    .expect("copy");
    let gz = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c {} > {}",
            scenario.path().join("plain").display(),
            old_done.display()
        ))
        .status()
        .expect("gzip");
    assert!(gz.success());
    let part = util::data_files(output_dir)
        .into_iter()
        .find(|n| n.ends_with(".part") && !util::is_rejects(n))
        .expect("an open file");
    for path in [&old_done, &output_dir.join(&part)] {
        let status = std::process::Command::new("touch")
            .args(["-d", "30 days ago"])
            .arg(path)
            .status()
            .expect("touch");
        assert!(status.success());
    }
    // The running archiver applies retention when it opens the archive, not only when it
    // completes a file (this run completes none until it stops).
    let running = Running::start(
        scenario.command(&["--keep-days", "7"]),
        scenario.path(),
        "second",
    );
    running.wait_for_log(
        "recentchange-20200101T000000Z-000000.ndjson.gz (--keep-days",
        Duration::from_secs(20),
    );
    assert!(!old_done.exists(), "the old completed file is deleted");
    assert!(!old_partition.exists(), "its emptied partition too");
    assert!(output_dir.join(&part).exists(), "the open file is kept");
    util::wait_for("more events", Duration::from_secs(20), || {
        util::checkpoint_lines(output_dir) > 100
    });
    running.signal("TERM");
    running.wait(Duration::from_secs(10)).expect(0, &[]);
    // The old open file was continued and completed, not deleted.
    let completed = part.strip_suffix(".part").expect("part");
    assert!(
        output_dir.join(completed).exists(),
        "{:?}",
        util::data_files(output_dir)
    );
    let archived = scenario.archived();
    util::assert_same_events(&archived, &events[..archived.len()]);
    scenario.stop();
}

#[test]
fn sequence_numbers_keep_growing_across_runs() {
    let scenario = Scenario::events(make_events(300, 1)).serve(&[]);
    let (events, output_dir) = (&scenario.events, &scenario.output_dir);
    let mut seen = Vec::new();
    for run in 0..3 {
        scenario
            .archive(&["--max-events", "60", "--rotate-events", "25"])
            .expect(0, &[]);
        let seqs: Vec<u64> = util::data_files(output_dir)
            .iter()
            .filter(|n| !util::is_rejects(n))
            .filter_map(|n| {
                util::base_name(n)
                    .split('-')
                    .nth(2)?
                    .split('.')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        let new: Vec<u64> = seqs.iter().copied().filter(|s| !seen.contains(s)).collect();
        assert!(!new.is_empty(), "run {run} made no file");
        assert!(
            new.iter().all(|s| seen.iter().all(|old| s > old)),
            "run {run}: new {new:?} after {seen:?}"
        );
        seen.extend(new);
    }
    scenario.stop();
    util::assert_same_events(&scenario.archived(), &events[..180]);
}

#[test]
fn canaries_count_as_signs_of_life_for_check() {
    let dir = util::temp_dir();
    let canaries: Vec<String> = make_events(12, 1)
        .into_iter()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(&line).expect("json");
            value["meta"]["domain"] = "canary".into();
            serde_json::to_string(&value).expect("json")
        })
        .collect();
    let serve = Serve::start(
        &write_input(dir.path(), &canaries),
        &["--rate", "4"],
        dir.path(),
    );
    let mut cmd = archiver(
        &serve.url(),
        &dir.path().join("archive"),
        &["--status-port", "0", "--max-silence", "1"],
    );
    cmd.env("RUST_LOG", "info");
    let running = Running::start(cmd, dir.path(), "run");
    let port = util::health_port(&running);
    // While canaries arrive (one each 250 ms) no event is archived, yet /check stays healthy
    // past --max-silence.
    util::wait_for("the first canary", Duration::from_secs(20), || {
        util::status(port)["canaries"].as_u64() > Some(0)
    });
    let mut n_checks = 0;
    while util::status(port)["canaries"].as_u64() < Some(10) {
        let (code, body) = util::http(port, "GET", "/check");
        assert_eq!(code, 200, "with canaries flowing: {body}");
        n_checks += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(n_checks >= 10, "{n_checks} checks");
    assert_eq!(util::status(port)["events_archived"], 0);
    // Once they stop, silence is noticed.
    util::wait_for(
        "/check failing after the canaries stop",
        Duration::from_secs(20),
        || util::http(port, "GET", "/check").0 == 500,
    );
    running.signal("TERM");
    running.wait(Duration::from_secs(10)).expect(0, &[]);
    serve.stop();
}

#[test]
fn serve_resumes_by_seeking_so_earlier_meta_dt_is_not_lost() {
    let dir = util::temp_dir();
    // Every fifth event is three seconds older than its neighbours, as real events are out of
    // order by seconds: a resume that filtered by meta.dt would drop them.
    let events: Vec<String> = make_events(600, 1)
        .into_iter()
        .enumerate()
        .map(|(idx, line)| {
            if idx % 5 != 4 {
                return line;
            }
            let mut value: serde_json::Value = serde_json::from_str(&line).expect("json");
            let dt = value["meta"]["dt"].as_str().expect("dt");
            let t = time::OffsetDateTime::parse(dt, &time::format_description::well_known::Rfc3339)
                .expect("rfc3339")
                - time::Duration::seconds(3);
            value["meta"]["dt"] = t
                .format(&time::format_description::well_known::Rfc3339)
                .expect("format")
                .into();
            serde_json::to_string(&value).expect("json")
        })
        .collect();
    let serve = Serve::start(
        &write_input(dir.path(), &events),
        &[
            "--id-timestamps",
            "--disconnect-every",
            "37",
            "--retry",
            "10",
        ],
        dir.path(),
    );
    let output_dir = dir.path().join("archive");
    let finished = util::run_archiver(
        &serve.url(),
        &output_dir,
        &["--max-events", "600"],
        dir.path(),
    );
    finished.expect(0, &["resuming after"]);
    util::assert_same_events(&util::archive_lines(&output_dir), &events);
    // `since` arrives percent-encoded from browsers and Python's urlencode.
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", serve.port)).expect("connect");
    use std::io::{Read, Write};
    write!(
        socket,
        "GET /v2/stream/recentchange?since=2024-11-23T09%3A00%3A03Z HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .expect("request");
    let mut head = [0u8; 12];
    socket.read_exact(&mut head).expect("response");
    assert_eq!(&head, b"HTTP/1.1 200");
    serve.stop();
}
