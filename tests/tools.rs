//! Working with archives: filters while archiving, `cat`, `verify`, `tail`, and `serve` as an
//! EventStreams stand-in (round trip, streams, resume, NDJSON, limits).

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::util::{self, Finished, Serve};

const TIMEOUT: Duration = Duration::from_secs(60);

fn run(args: &[&str], dir: &Path) -> Finished {
    util::run_binary(args, dir, TIMEOUT)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `n` events one `step_s` seconds apart from the fixture, with unique ids and growing offsets.
fn spaced_events(n: usize, step_s: i64) -> Vec<String> {
    let fixture = util::lines_of(&util::fixture("recentchange-200.ndjson"));
    (0..n)
        .map(|idx| {
            let mut value: serde_json::Value =
                serde_json::from_str(&fixture[idx % fixture.len()]).expect("json");
            let secs = 1_732_352_400 + idx as i64 * step_s;
            let dt = time::OffsetDateTime::from_unix_timestamp(secs)
                .expect("time")
                .format(&time::format_description::well_known::Rfc3339)
                .expect("format");
            value["meta"]["id"] = format!("{idx:08x}-0000-4000-8000-000000000000").into();
            value["meta"]["dt"] = dt.into();
            value["meta"]["offset"] = (7_000_000 + idx as u64).into();
            value["meta"]["domain"] = "en.wikipedia.org".into();
            serde_json::to_string(&value).expect("json")
        })
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) -> PathBuf {
    fs::write(path, lines.join("\n") + "\n").expect("writing input");
    path.to_path_buf()
}

fn write_gz(path: &Path, lines: &[String]) -> PathBuf {
    let mut encoder = flate2::write::GzEncoder::new(
        fs::File::create(path).expect("create"),
        flate2::Compression::default(),
    );
    encoder
        .write_all((lines.join("\n") + "\n").as_bytes())
        .expect("gzip");
    encoder.finish().expect("gzip");
    path.to_path_buf()
}

/// Archives everything `serve` offers from `input` (with `serve_flags`) into `output_dir`.
fn archive(input: &Path, serve_flags: &[&str], run_flags: &[&str], n: usize, dir: &Path) {
    let serve = Serve::start(input, serve_flags, dir);
    let mut flags = vec!["--max-events".to_string(), n.to_string()];
    flags.extend(run_flags.iter().map(|f| f.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let output_dir = dir.join("archive");
    let finished = util::run_archiver(&serve.url(), &output_dir, &flags, dir);
    let log = serve.stderr();
    serve.stop();
    assert!(finished.status.success(), "{}\n{log}", finished.stderr);
}

fn verify(dir: &Path, archive: &Path) -> (Finished, serde_json::Value) {
    let finished = run(&["verify", "--json", path_str(archive)], dir);
    let report = serde_json::from_str(&finished.stdout)
        .unwrap_or_else(|e| panic!("verify --json: {e}: {}", finished.stdout));
    (finished, report)
}

#[test]
fn round_trip_through_serve_is_exact_and_verifies_clean() {
    let dir = util::temp_dir();
    let events = util::expected_archive(&util::lines_of(&util::fixture("recentchange-200.ndjson")));
    let first_dir = dir.path().join("first");
    fs::create_dir(&first_dir).expect("mkdir");
    archive(
        &util::fixture("recentchange-200.ndjson"),
        &[
            "--disconnect-every",
            "17",
            "--cut-mid-event",
            "--retry",
            "10",
        ],
        &["--rotate-events", "50"],
        events.len(),
        &first_dir,
    );
    let first = first_dir.join("archive");
    util::assert_same_events(&util::archive_lines(&first), &events);
    let (finished, report) = verify(dir.path(), &first);
    assert!(finished.status.success(), "{}", finished.stdout);
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(report["events"], events.len());
    assert_eq!(report["files"], 4);

    // Serve that archive (timestamp ids, the default) and archive it again, with faults.
    let second_dir = dir.path().join("second");
    fs::create_dir(&second_dir).expect("mkdir");
    archive(
        &first,
        &[
            "--id-timestamps",
            "--disconnect-every",
            "23",
            "--retry",
            "10",
        ],
        &[],
        events.len(),
        &second_dir,
    );
    let second = second_dir.join("archive");
    util::assert_same_events(&util::archive_lines(&second), &events);
    let (finished, report) = verify(dir.path(), &second);
    assert!(finished.status.success(), "{}", finished.stdout);
    assert_eq!(report["clean"], true, "{report}");
}

#[test]
fn verify_finds_each_injected_problem() {
    let dir = util::temp_dir();
    // Four hours, one event a minute, one file an hour.
    let events = spaced_events(240, 60);
    let input = write_lines(&dir.path().join("input.ndjson"), &events);
    archive(&input, &[], &["--rotate-events", "60"], 240, dir.path());
    let archive = dir.path().join("archive");
    let files = util::data_files(&archive);
    assert_eq!(files.len(), 4, "{files:?}");
    let (finished, report) = verify(dir.path(), &archive);
    assert!(finished.status.success());
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(report["first_dt"], "2024-11-23T09:00:00Z");
    assert_eq!(report["last_dt"], "2024-11-23T12:59:00Z");

    let copy = |name: &str| -> PathBuf {
        let target = dir.path().join(name);
        fs::create_dir(&target).expect("mkdir");
        for file in &files {
            let to = target.join(file);
            fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            fs::copy(archive.join(file), to).expect("copy");
        }
        target
    };

    // A removed hour: a time gap and an offset gap, with their ranges.
    let removed = copy("removed");
    fs::remove_file(removed.join(&files[1])).expect("remove");
    let (finished, report) = verify(dir.path(), &removed);
    assert!(finished.status.success(), "gaps alone are not damage");
    assert_eq!(report["clean"], false);
    assert_eq!(report["time_gaps"]["count"], 1, "{report}");
    let gap = &report["time_gaps"]["examples"][0];
    assert_eq!(gap["before_dt"], "2024-11-23T09:59:00Z");
    assert_eq!(gap["after_dt"], "2024-11-23T11:00:00Z");
    assert_eq!(report["offset_gaps"]["missing_offsets"], 60);

    // A flipped byte in the middle of a completed file.
    let flipped = copy("flipped");
    let target = flipped.join(&files[2]);
    let mut bytes = fs::read(&target).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    fs::write(&target, &bytes).expect("write");
    let (finished, report) = verify(dir.path(), &flipped);
    assert_eq!(finished.status.code(), Some(1));
    assert_eq!(report["damaged_files"][0]["file"], files[2].as_str());

    // A file moved into another day's partition: its events are outside their date.
    let moved = copy("moved");
    let elsewhere = moved.join("recentchange/date=2024-11-24");
    fs::create_dir_all(&elsewhere).expect("mkdir");
    let base = util::base_name(&files[1]);
    fs::rename(moved.join(&files[1]), elsewhere.join(base)).expect("move");
    let (finished, report) = verify(dir.path(), &moved);
    assert!(finished.status.success(), "misplaced events are not damage");
    assert_eq!(report["clean"], false, "{report}");
    assert_eq!(report["out_of_partition"]["count"], 60, "{report}");
    assert_eq!(
        report["out_of_partition"]["examples"][0]["file"],
        format!("recentchange/date=2024-11-24/{base}")
    );

    // A truncated completed file.
    let truncated = copy("truncated");
    let target = truncated.join(&files[3]);
    let bytes = fs::read(&target).expect("read");
    fs::write(&target, &bytes[..bytes.len() - 100]).expect("write");
    let (finished, report) = verify(dir.path(), &truncated);
    assert_eq!(finished.status.code(), Some(1));
    assert_eq!(report["damaged_files"][0]["truncated"], true, "{report}");

    // A duplicated event: a gzip member with an old line appended to the last file.
    let duplicated = copy("duplicated");
    let mut encoder = flate2::write::GzEncoder::new(
        fs::OpenOptions::new()
            .append(true)
            .open(duplicated.join(&files[3]))
            .expect("open"),
        flate2::Compression::default(),
    );
    encoder
        .write_all(format!("{}\n", events[230]).as_bytes())
        .expect("append");
    encoder.finish().expect("finish");
    let (finished, report) = verify(dir.path(), &duplicated);
    assert_eq!(finished.status.code(), Some(1));
    assert_eq!(report["duplicates"]["count"], 1, "{report}");
    assert_eq!(
        report["duplicates"]["examples"][0]["id"],
        "000000e6-0000-4000-8000-000000000000"
    );
    // The text report names the problem for people too.
    let text = run(&["verify", path_str(&duplicated)], dir.path());
    assert!(
        text.stdout.contains("1 duplicate meta.ids"),
        "{}",
        text.stdout
    );
}

#[test]
fn cat_reads_files_in_order_filters_and_survives_a_torn_part_file() {
    let dir = util::temp_dir();
    let events = spaced_events(120, 60);
    let input = write_lines(&dir.path().join("input.ndjson"), &events);
    archive(&input, &[], &["--rotate-events", "50"], 120, dir.path());
    let archive = dir.path().join("archive");
    let all = run(&["cat", path_str(&archive)], dir.path());
    assert!(all.status.success(), "{}", all.stderr);
    let lines: Vec<String> = all.stdout.lines().map(String::from).collect();
    util::assert_same_events(&lines, &events);

    let count = run(&["cat", "--count", path_str(&archive)], dir.path());
    assert!(
        count.stdout.ends_with("         120 total\n"),
        "{}",
        count.stdout
    );

    let ranged = run(
        &[
            "cat",
            "--from",
            "2024-11-23T09:10:00Z",
            "--to",
            "2024-11-23T09:20:00Z",
            "--type",
            "edit,new",
            path_str(&archive),
        ],
        dir.path(),
    );
    let expected: Vec<String> = events[10..20]
        .iter()
        .filter(|l| l.contains("\"type\":\"edit\"") || l.contains("\"type\":\"new\""))
        .cloned()
        .collect();
    let lines: Vec<String> = ranged.stdout.lines().map(String::from).collect();
    assert_eq!(lines, expected);

    // The last file as an open `.part` file with a torn last member: what its intact members
    // hold is printed, the tail is reported, and cat succeeds.
    let files = util::data_files(&archive);
    let last = archive.join(files.last().expect("files"));
    let part = PathBuf::from(format!("{}.part", last.display()));
    let mut bytes = fs::read(&last).expect("read");
    // Add one intact member, then cut a second one in half.
    let member = |text: &str| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text.as_bytes()).expect("gzip");
        encoder.finish().expect("gzip")
    };
    bytes.extend(member("{\"extra\":1}\n"));
    let torn = member("{\"extra\":2}\n");
    bytes.extend(&torn[..torn.len() / 2]);
    fs::remove_file(&last).expect("remove");
    fs::write(&part, &bytes).expect("write part");
    let torn_cat = run(&["cat", path_str(&archive)], dir.path());
    assert!(torn_cat.status.success(), "{}", torn_cat.stderr);
    let lines: Vec<&str> = torn_cat.stdout.lines().collect();
    assert_eq!(lines.len(), 121);
    assert_eq!(lines[120], "{\"extra\":1}");
    assert!(
        torn_cat.stderr.contains("not readable yet"),
        "{}",
        torn_cat.stderr
    );
    // The same torn tail in a completed file is damage: reported, exit 1.
    fs::rename(&part, &last).expect("rename");
    let damaged = run(&["cat", path_str(&last)], dir.path());
    assert_eq!(damaged.status.code(), Some(1));
    assert!(damaged.stderr.contains("torn tail"), "{}", damaged.stderr);
}

#[test]
fn cat_into_a_closed_pipe_exits_quietly() {
    let dir = util::temp_dir();
    let big: Vec<String> = spaced_events(3000, 1);
    let input = write_gz(&dir.path().join("big.ndjson.gz"), &big);
    assert_quiet_on_closed_pipe(&["cat", path_str(&input)]);
}

/// Runs the binary with `args`, reads a little of its output and closes the pipe, as `| head`
/// does: it must exit 0 without a word on stderr.
fn assert_quiet_on_closed_pipe(args: &[&str]) {
    let mut child = util::command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).expect("some output");
    drop(stdout);
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{args:?}: {output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "", "{args:?}");
}

#[test]
fn filters_while_archiving_keep_only_matches_and_count_the_rest() {
    let dir = util::temp_dir();
    let fixture = util::lines_of(&util::fixture("recentchange-200.ndjson"));
    let expected: Vec<String> = util::expected_archive(&fixture)
        .into_iter()
        .filter(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            let wiki_ok = v["wiki"] == "enwiki" || v["wiki"] == "dewiki";
            wiki_ok && v["bot"] != true && (v["namespace"] == 0 || v["namespace"] == 14)
        })
        .collect();
    assert!(expected.len() > 5, "the fixture offers matches");
    let serve = Serve::start(&util::fixture("recentchange-200.ndjson"), &[], dir.path());
    let output_dir = dir.path().join("archive");
    let running = util::Running::start(
        {
            let mut cmd = util::command();
            cmd.args(["--url", &serve.url(), "--output-dir", path_str(&output_dir)])
                .args([
                    "--wiki",
                    "enwiki,dewiki",
                    "--no-bots",
                    "--namespace",
                    "0,14",
                ])
                .args(["--status-port", "0"]);
            cmd
        },
        dir.path(),
        "filtered",
    );
    let port = util::health_port(&running);
    let until = std::time::Instant::now() + TIMEOUT;
    let n_filtered = |metrics: &str| -> usize {
        metrics
            .lines()
            .filter(|l| l.starts_with("wikistream_filtered_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
            .sum()
    };
    // All 198 events that are not canaries were either archived or filtered out.
    let metrics = loop {
        let (_, metrics) = util::http(port, "GET", "/metrics");
        let archived = util::metric_sum(
            &metrics,
            "wikistream_events_archived_total",
            "stream=\"mediawiki.recentchange\"",
        ) == expected.len() as u64;
        if archived && n_filtered(&metrics) + expected.len() == 198 {
            break metrics;
        }
        assert!(std::time::Instant::now() < until, "{metrics}");
        std::thread::sleep(Duration::from_millis(50));
    };
    running.signal("TERM");
    let finished = running.wait(TIMEOUT);
    serve.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    util::assert_same_events(&util::archive_lines(&output_dir), &expected);
    assert!(metrics.contains("wikistream_filtered_total{reason=\"wiki\"} "));
}

#[test]
fn filter_flags_report_bad_values_by_name() {
    let dir = util::temp_dir();
    for (args, needle) in [
        (&["--match", "(unclosed"][..], "--match"),
        (&["--wiki", ","][..], "--wiki"),
        (&["--namespace", "main"][..], "--namespace"),
        (&["--no-bots", "--bots-only"][..], "--bots-only"),
        (&["cat", "--from", "soon"][..], "--from"),
        (&["tail", "--output-dir", "x"][..], "--output-dir"),
    ] {
        let finished = run(args, dir.path());
        assert_eq!(finished.status.code(), Some(2), "{args:?}");
        assert!(
            finished.stderr.contains(needle),
            "{args:?}: {}",
            finished.stderr
        );
    }
}

#[test]
fn tail_prints_events_as_json_or_lines() {
    let dir = util::temp_dir();
    let serve = Serve::start(&util::fixture("recentchange-200.ndjson"), &[], dir.path());
    let url = serve.url();
    let json = run(
        &[
            "tail",
            "--url",
            &url,
            "--format",
            "json",
            "--max-events",
            "20",
            "--type",
            "edit",
        ],
        dir.path(),
    );
    assert!(json.status.success(), "{}", json.stderr);
    let fixture =
        util::expected_archive(&util::lines_of(&util::fixture("recentchange-200.ndjson")));
    let logs: Vec<String> = fixture
        .into_iter()
        .filter(|l| l.contains("\"type\":\"edit\""))
        .take(20)
        .collect();
    let printed: Vec<String> = json.stdout.lines().map(String::from).collect();
    assert_eq!(printed, logs);
    // Readable lines, without colour when stdout is not a terminal.
    let lines = run(&["tail", "--url", &url, "--max-events", "3"], dir.path());
    assert!(lines.status.success(), "{}", lines.stderr);
    let first = lines.stdout.lines().next().expect("a line");
    assert!(
        first.starts_with("09:00:00 jawiki       edit       東京都 "),
        "{first}"
    );
    assert!(!lines.stdout.contains('\x1b'));
    // --tee archives and prints the same events.
    let output_dir = dir.path().join("teed");
    let teed = run(
        &[
            "--url",
            &url,
            "--output-dir",
            path_str(&output_dir),
            "--tee",
            "--format",
            "json",
            "--max-events",
            "30",
        ],
        dir.path(),
    );
    serve.stop();
    assert!(teed.status.success(), "{}", teed.stderr);
    let printed: Vec<String> = teed.stdout.lines().map(String::from).collect();
    assert_eq!(printed.len(), 30);
    util::assert_same_events(&util::archive_lines(&output_dir), &printed);
}

#[test]
fn tail_ends_quietly_on_a_closed_pipe_and_on_ctrl_c() {
    let dir = util::temp_dir();
    let serve = Serve::start(
        &util::fixture("recentchange-200.ndjson"),
        &["--rate", "50"],
        dir.path(),
    );
    assert_quiet_on_closed_pipe(&["tail", "--url", &serve.url()]);

    let running = util::Running::start(
        {
            let mut cmd = util::command();
            cmd.args(["tail", "--url", &serve.url()]);
            cmd
        },
        dir.path(),
        "tail",
    );
    util::wait_for("four printed events", TIMEOUT, || {
        running.stdout().lines().count() > 3
    });
    running.signal("INT");
    let finished = running.wait(TIMEOUT);
    serve.stop();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    assert_eq!(finished.stderr, "");
    assert!(finished.stdout.lines().count() > 3, "{}", finished.stdout);
}

/// Sends a GET with `headers`; returns the response head and what body arrived within a moment.
/// `get_once`, again while the answer is 429 (for up to 2 s): with `--max-connections-per-ip 1`
/// the previous request's slot is freed only once serve has seen that connection close.
fn get(port: u16, path: &str, headers: &str) -> (String, String) {
    for _ in 0..40 {
        let (head, body) = get_once(port, path, headers);
        if !head.starts_with("HTTP/1.1 429") {
            return (head, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    get_once(port, path, headers)
}

fn get_once(port: u16, path: &str, headers: &str) -> (String, String) {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_millis(700)))
        .expect("timeout");
    write!(socket, "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").expect("request");
    let mut response = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = socket.read(&mut buf) {
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

#[test]
fn serve_speaks_like_eventstreams() {
    let dir = util::temp_dir();
    // Two inputs, two streams, interleaved in time: recentchange at even seconds, page-create
    // at odd ones.
    let rc: Vec<String> = spaced_events(20, 2);
    let pc: Vec<String> = spaced_events(20, 2)
        .iter()
        .map(|line| {
            let mut v: serde_json::Value = serde_json::from_str(line).expect("json");
            let secs = 1_732_352_401 + v["meta"]["offset"].as_i64().unwrap() % 1000 * 2;
            v["meta"]["dt"] = time::OffsetDateTime::from_unix_timestamp(secs)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
                .into();
            v["meta"]["stream"] = "mediawiki.page-create".into();
            v["meta"]["topic"] = "eqiad.mediawiki.page-create".into();
            v["meta"]["id"] = format!("{}-pc", v["meta"]["id"].as_str().unwrap()).into();
            v.to_string()
        })
        .collect();
    let rc_path = write_lines(&dir.path().join("rc.ndjson"), &rc);
    let pc_path = write_gz(&dir.path().join("pc.ndjson.gz"), &pc);
    let serve = Serve::start(
        &rc_path,
        &[
            "--id-timestamps",
            "--input",
            path_str(&pc_path),
            "--max-connections-per-ip",
            "1",
        ],
        dir.path(),
    );
    let port = serve.port;

    let (head, body) = get(port, "/v2/stream/recentchange,page-create", "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Access-Control-Allow-Origin: *"), "{head}");
    let data: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.len(), 40, "{body}");
    for (idx, line) in data.iter().enumerate() {
        let expected = if idx % 2 == 0 {
            &rc[idx / 2]
        } else {
            &pc[idx / 2]
        };
        assert_eq!(line, expected, "event {idx} in meta.dt order");
    }
    let ids: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    let last: serde_json::Value = serde_json::from_str(ids[39]).expect("id json");
    assert_eq!(last.as_array().expect("array").len(), 2, "{last}");
    assert!(last[0]["timestamp"].is_i64(), "{last}");

    // Resuming with the id of event 9 (a page-create) sends the rest, and, as timestamps are
    // per topic-partition, the last event of each partition again (data[8] and data[9]).
    let (_, body) = get(
        port,
        "/v2/stream/recentchange,page-create",
        &format!("Last-Event-ID: {}\r\n", ids[9]),
    );
    let resumed: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(resumed, data[8..].to_vec());

    // One stream only; since= in RFC 3339; NDJSON on request.
    let (head, body) = get(
        port,
        "/v2/stream/page-create?since=2024-11-23T09:00:30Z",
        "Accept: application/json\r\n",
    );
    assert!(head.contains("Content-Type: application/json"), "{head}");
    let lines: Vec<&str> = body
        .split("\r\n")
        .filter(|l| l.starts_with('{'))
        .flat_map(|l| l.lines())
        .collect();
    assert_eq!(
        lines,
        pc[15..].iter().map(String::as_str).collect::<Vec<_>>()
    );

    let (head, body) = get(port, "/v2/stream/nosuchstream", "");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let error: serde_json::Value = serde_json::from_str(&body).expect("json error");
    assert_eq!(error["detail"], "Invalid streams: nosuchstream");

    let (head, body) = get(port, "/_info", "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("\"version\""), "{body}");

    // A second open stream from the same address is refused like the real service does. The
    // server notices the closed connections above within a fraction of a second: until then
    // even the first stream may be refused.
    let mut held = None;
    util::wait_for("a stream to be accepted", TIMEOUT, || {
        let mut socket = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(
            socket,
            "GET /v2/stream/recentchange HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        .expect("request");
        let mut first = [0u8; 12];
        socket.read_exact(&mut first).expect("response");
        let accepted = &first == b"HTTP/1.1 200";
        if accepted {
            held = Some(socket);
        }
        accepted
    });
    let (head, _) = get_once(port, "/v2/stream/recentchange", "");
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    drop(held);
    serve.stop();
}

/// The events of `events` whose `wiki` is `wiki` and whose `type` is `kind`, read here with
/// serde_json (not with the archiver's filter code).
fn by_wiki_and_type(events: &[String], wiki: &str, kind: &str) -> Vec<String> {
    events
        .iter()
        .filter(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("json");
            value["wiki"] == wiki && value["type"] == kind
        })
        .cloned()
        .collect()
}

#[test]
fn serve_filters_like_cat_and_a_resume_continues_past_what_it_left_out() {
    let events = util::events::make_events(600, 1);
    let expected = by_wiki_and_type(&events, "enwiki", "edit");
    assert!(expected.len() > 30, "{} events", expected.len());
    let scenario = crate::util::scenario::Scenario::events(events.clone())
        .gzipped()
        .serve(&["--disconnect-every", "7", "--retry", "10", "--rate", "300"]);
    // Our own client (WHATWG rules: an id without data moves the resume point), through
    // every drop.
    let url = format!("{}?wiki=enwiki&type=edit", scenario.url());
    let n = expected.len().to_string();
    let dir = scenario.path();
    let output_dir = dir.join("filtered");
    util::run_archiver(&url, &output_dir, &["--max-events", &n], dir).expect(0, &[]);
    util::assert_same_events(&util::archive_lines(&output_dir), &expected);
    // What cat keeps of the same archive is the same.
    let input = dir.join("input.ndjson.gz");
    let cat = run(
        &[
            "cat",
            "--wiki",
            "enwiki",
            "--type",
            "edit",
            path_str(&input),
        ],
        dir,
    );
    let cat_lines: Vec<String> = cat.stdout.lines().map(String::from).collect();
    assert_eq!(cat_lines, expected);
    // Raw: while events are left out, ids without data go out (at least once a second).
    let mut socket = TcpStream::connect(("127.0.0.1", scenario.upstream_port())).expect("connect");
    write!(
        socket,
        "GET /v2/stream/recentchange?wiki=nowiki HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .expect("request");
    socket
        .set_read_timeout(Some(Duration::from_millis(2500)))
        .expect("timeout");
    let mut body = Vec::new();
    let _ = socket.read_to_end(&mut body);
    let body = String::from_utf8_lossy(&body);
    assert!(!body.contains("data:"), "nothing matches nowiki: {body}");
    assert!(
        body.contains("\nid: [{\"topic\""),
        "a position without an event: {body}"
    );
    // A bad parameter is a 400 that names it.
    let mut socket = TcpStream::connect(("127.0.0.1", scenario.upstream_port())).expect("connect");
    write!(
        socket,
        "GET /v2/stream/recentchange?wikis=x HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    let _ = socket.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("unknown parameter: wikis"),
        "{answer}"
    );
}

#[test]
fn schema_prints_each_engines_definitions_for_the_directory() {
    let scenario = crate::util::scenario::Scenario::fixture().serve(&[]);
    scenario.archive(&["--max-events", "150"]).expect(0, &[]);
    let dir = path_str(&scenario.output_dir);
    let all = run(&["schema", dir], scenario.path());
    all.expect(0, &[]);
    for needle in [
        "CREATE OR REPLACE VIEW recentchange AS SELECT * FROM read_json(",
        "USING json\nPARTITIONED BY (`date`)",
        "CREATE EXTERNAL TABLE IF NOT EXISTS recentchange",
        "'projection.date.range' = '2024-11-23,NOW'",
    ] {
        assert!(all.stdout.contains(needle), "{needle}: {}", all.stdout);
    }
    let athena = run(
        &[
            "schema",
            "--engine",
            "athena",
            "--location",
            "s3://b/p",
            dir,
        ],
        scenario.path(),
    );
    assert!(
        athena.stdout.contains("LOCATION 's3://b/p/recentchange/'"),
        "{}",
        athena.stdout
    );
    assert!(!athena.stdout.contains("read_json"), "{}", athena.stdout);
    run(&["schema", "--engine", "oracle", dir], scenario.path())
        .expect(2, &["duckdb, spark or athena"]);
    let empty = scenario.path().join("empty");
    fs::create_dir_all(&empty).expect("mkdir");
    run(&["schema", path_str(&empty)], scenario.path()).expect(1, &["no archive files"]);
}
