//! Shipping to S3 exactly once, against a real S3 server (Garage, `util::garage`) on loopback,
//! through a fault-injecting proxy where a test needs faults; and `--on-ready` as a durable
//! destination. Every S3 test ends with the bucket exact: each completed file once, byte for
//! byte, no `.part`, nothing else.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::events::{archiver, checkpoint_id, make_events};
use crate::util::garage::Garage;
use crate::util::proxy::{Fault, Proxy};
use crate::util::scenario::Scenario;
use crate::util::{self, Running};

const PREFIX: &str = "archive";
const DAY_MARK: &str = "recentchange/date=2024-11-23/_SUCCESS";

/// `n` events: the first 60 % on 2024-11-23, the rest from 2024-11-24 00:10 (past the day's
/// grace, so the first day is completed); the 10th has a stream name that goes to the rejects.
fn two_days(n: usize) -> Vec<String> {
    make_events(n, 1)
        .into_iter()
        .enumerate()
        .map(|(idx, event)| {
            let mut value: serde_json::Value = serde_json::from_str(&event).expect("json");
            if idx * 10 >= n * 6 {
                let ms = 1_732_407_000_000_i64 + idx as i64 * 7;
                let dt =
                    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                        .expect("time")
                        .format(&time::format_description::well_known::Rfc3339)
                        .expect("format");
                value["meta"]["dt"] = dt.into();
            }
            if idx == 9 {
                value["meta"]["dt"] = "yesterday".into();
            }
            serde_json::to_string(&value).expect("json")
        })
        .collect()
}

/// The checkpoint id part of the last of `n` events.
fn last_id(n: usize) -> String {
    format!("\"offset\":{}}}", 5_000_000_000 + n as u64 - 1)
}

/// The archiver on `scenario`, shipping to `endpoint` (Garage or a proxy before it).
fn shipping(scenario: &Scenario, garage: &Garage, endpoint: &str, extra: &[&str]) -> Command {
    let mut flags = garage.flags(PREFIX);
    flags[3] = endpoint.to_string();
    let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
    all.extend(["--checkpoint-interval", "0.1", "--rotate-events", "40"]);
    all.extend(extra);
    let mut cmd = scenario.command(&all);
    garage.env(&mut cmd);
    cmd
}

/// The archiver shipping as `shipping` says, with a status port: the child and the port.
fn watched(scenario: &Scenario, garage: &Garage, endpoint: &str, extra: &[&str]) -> (Running, u16) {
    let mut flags = vec!["--status-port", "0"];
    flags.extend(extra);
    let running = Running::start(
        shipping(scenario, garage, endpoint, &flags),
        scenario.path(),
        "run",
    );
    let port = util::health_port(&running);
    (running, port)
}

/// Waits until the checkpoint holds the last of the scenario's `n` events.
fn wait_archived(scenario: &Scenario, n: usize) {
    util::wait_for("all events", Duration::from_secs(30), || {
        checkpoint_id(&scenario.output_dir).contains(&last_id(n))
    });
}

/// Waits until the journal lists `n` confirmed files and marks (its `+` lines, net).
fn wait_journal(dir: &Path, n: usize, running: Option<&Running>) {
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let confirmed = journal_keys(dir).len();
        if confirmed >= n {
            return;
        }
        assert!(
            Instant::now() < until,
            "{confirmed} of {n} confirmed; log:\n{}",
            running.map(Running::stderr).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The keys the S3 journal of `dir` lists as confirmed, in the order confirmed.
fn journal_keys(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir.join(".ship")) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("s3-") && name.ends_with(".journal")) {
            continue;
        }
        let text = fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines().skip(1) {
            if let Some(key) = line.strip_prefix('+') {
                keys.push(key.to_string());
            } else if let Some(key) = line.strip_prefix('-') {
                keys.retain(|k| k != key);
            }
        }
    }
    keys
}

/// The completed files of the archive (what must reach the bucket).
fn completed(dir: &Path) -> usize {
    util::data_files(dir)
        .iter()
        .filter(|f| !f.ends_with(".part"))
        .count()
}

/// Runs `scenario`'s archiver through `n` events and a clean stop, shipping as `cmd` says.
fn archive_all(scenario: &Scenario, cmd: Command, n: usize) -> String {
    util::events::finish_run(cmd, scenario.path(), &scenario.output_dir, &last_id(n))
}

#[test]
fn every_completed_file_reaches_the_bucket_once_with_the_day_mark_and_rejects() {
    let garage = Garage::start();
    let events = two_days(300);
    let scenario =
        Scenario::events(events.clone()).serve(&["--disconnect-every", "70", "--retry", "10"]);
    let cmd = shipping(
        &scenario,
        &garage,
        &garage.endpoint(),
        &["--status-port", "0"],
    );
    let log = archive_all(&scenario, cmd, 300);
    let dir = &scenario.output_dir;
    assert!(
        util::data_files(dir)
            .iter()
            .any(|f| f.starts_with("_rejects/")),
        "a rejects file"
    );
    garage.assert_exact(PREFIX, dir, &[DAY_MARK]);
    // The mark follows the day's files.
    let keys = journal_keys(dir);
    let mark_at = keys
        .iter()
        .position(|k| k == DAY_MARK)
        .expect("the mark is confirmed");
    let day_files = keys.iter().enumerate().filter(|(_, k)| {
        k.starts_with("recentchange/date=2024-11-23/") && !k.ends_with("_SUCCESS")
    });
    assert!(day_files.clone().count() >= 4);
    assert!(
        day_files.into_iter().all(|(idx, _)| idx < mark_at),
        "{keys:?}"
    );
    assert!(!log.contains(&garage.secret), "no secret in the log");
    // A second run ships nothing again.
    let again = shipping(&scenario, &garage, &garage.endpoint(), &[]);
    let log = archive_all(&scenario, again, 300);
    garage.assert_exact(PREFIX, dir, &[DAY_MARK]);
    assert!(
        !log.contains("shipped recentchange/date=2024-11-23/"),
        "{log}"
    );
    util::assert_same_events(
        &util::archive_lines(dir),
        &util::expected_archive(&events)
            .into_iter()
            .filter(|e| !e.contains("\"yesterday\""))
            .collect::<Vec<_>>(),
    );
}

#[test]
fn an_outage_of_the_server_is_waited_out_and_check_says_so() {
    let mut garage = Garage::start();
    garage.down();
    let scenario = Scenario::events(make_events(200, 1)).serve(&["--retry", "10"]);
    let cmd = shipping(
        &scenario,
        &garage,
        &garage.endpoint(),
        &["--status-port", "0", "--max-ship-lag", "1"],
    );
    let running = Running::start(cmd, scenario.path(), "run");
    let port = util::health_port(&running);
    util::wait_for("a failed upload", Duration::from_secs(30), || {
        running.stderr().contains("failed (network)")
    });
    util::wait_for("the lag check", Duration::from_secs(30), || {
        let (code, body) = util::http(port, "GET", "/check");
        code == 500
            && body.contains("shipping to s3://wikistream/archive/")
            && body.contains("behind")
    });
    let status = util::status(port);
    assert!(
        status["shipping"]["pending_files"].as_u64().unwrap_or(0) >= 1,
        "{status}"
    );
    let (_, metrics) = util::http(port, "GET", "/metrics");
    assert!(
        util::metric_sum(
            &metrics,
            "wikistream_ship_failures_total",
            "reason=\"network\""
        ) >= 1,
        "{metrics}"
    );
    assert!(
        metrics.contains("wikistream_ship_pending_files "),
        "{metrics}"
    );
    garage.up();
    let n = completed(&scenario.output_dir);
    wait_journal(&scenario.output_dir, n, Some(&running));
    util::wait_for("a healthy check", Duration::from_secs(10), || {
        util::http(port, "GET", "/check").0 == 200
    });
    running.signal("TERM");
    running.wait(Duration::from_secs(20));
    garage.assert_exact(PREFIX, &scenario.output_dir, &[]);
}

#[test]
fn slow_down_with_retry_after_a_cut_upload_and_a_damaged_body_are_retried() {
    let garage = Garage::start();
    let proxy = Proxy::start(garage.port, |idx, line| match idx {
        0 | 1 if line.starts_with("PUT") => Fault::Unavailable { retry_after: 1 },
        2 => Fault::CutAfter(1500),
        // A body damaged on the way: the server checks it against the signed SHA-256.
        3 => Fault::Flip(700),
        _ => Fault::Pass,
    });
    let scenario = Scenario::events(make_events(120, 1)).serve(&["--retry", "10"]);
    let (running, port) = watched(&scenario, &garage, &proxy.endpoint(), &[]);
    wait_archived(&scenario, 120);
    running.signal("USR1");
    util::wait_for("three files", Duration::from_secs(30), || {
        completed(&scenario.output_dir) >= 3
    });
    wait_journal(
        &scenario.output_dir,
        completed(&scenario.output_dir),
        Some(&running),
    );
    let (_, metrics) = util::http(port, "GET", "/metrics");
    assert_eq!(
        util::metric_sum(
            &metrics,
            "wikistream_ship_failures_total",
            "reason=\"throttled\""
        ),
        2,
        "{metrics}"
    );
    assert_eq!(
        util::metric_sum(
            &metrics,
            "wikistream_ship_failures_total",
            "reason=\"network\""
        ),
        1,
        "{metrics}"
    );
    assert_eq!(
        util::metric_sum(
            &metrics,
            "wikistream_ship_failures_total",
            "reason=\"server\""
        ),
        1,
        "the damaged body is refused: {metrics}"
    );
    running.signal("TERM");
    running.wait(Duration::from_secs(20));
    let log = fs::read_to_string(scenario.path().join("run.stderr")).expect("log");
    assert!(
        log.contains("trying again in 1 s"),
        "Retry-After is honoured: {log}"
    );
    garage.assert_exact(PREFIX, &scenario.output_dir, &[]);
}

#[test]
fn wrong_credentials_then_right_ones_without_a_restart() {
    let garage = Garage::start();
    let scenario = Scenario::events(make_events(100, 1)).serve(&["--retry", "10"]);
    let creds = scenario.path().join("s3-credentials");
    fs::write(
        &creds,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = not-the-secret\n",
            garage.key_id
        ),
    )
    .expect("creds");
    let mut flags = garage.flags(PREFIX);
    flags.extend([
        "--s3-credentials".into(),
        creds.display().to_string(),
        "--status-port".into(),
        "0".into(),
        "--rotate-events".into(),
        "30".into(),
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut cmd = scenario.command(&flags);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let running = Running::start(cmd, scenario.path(), "run");
    let port = util::health_port(&running);
    util::wait_for("/check names the refusal", Duration::from_secs(30), || {
        let (code, body) = util::http(port, "GET", "/check");
        code == 500 && body.contains("HTTP 403")
    });
    fs::write(
        &creds,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            garage.key_id, garage.secret
        ),
    )
    .expect("creds");
    wait_archived(&scenario, 100);
    wait_journal(&scenario.output_dir, 3, Some(&running));
    util::wait_for("a healthy check", Duration::from_secs(40), || {
        util::http(port, "GET", "/check").0 == 200
    });
    let seen = [
        util::http(port, "GET", "/status").1,
        util::http(port, "GET", "/metrics").1,
        util::http(port, "GET", "/").1,
    ];
    running.signal("TERM");
    let finished = running.wait(Duration::from_secs(20));
    assert!(
        finished
            .stderr
            .contains("shipping to s3://wikistream/archive/ at"),
        "{}",
        finished.stderr
    );
    assert!(
        finished.stderr.contains("works again"),
        "{}",
        finished.stderr
    );
    for text in seen.iter().chain([&finished.stderr]) {
        assert!(
            !text.contains(&garage.secret) && !text.contains("not-the-secret"),
            "a secret shows: {text}"
        );
    }
    garage.assert_exact(PREFIX, &scenario.output_dir, &[]);
}

#[test]
fn a_skewed_clock_is_named_and_shipping_resumes_once_it_is_right() {
    let mut garage = Garage::start();
    // Garage refuses a request dated more than a day before its clock (S3 does 15 minutes).
    garage.skew_clock(Some("+2d"));
    let scenario = Scenario::events(make_events(80, 1)).serve(&["--retry", "10"]);
    let (running, port) = watched(&scenario, &garage, &garage.endpoint(), &[]);
    util::wait_for("/check names the clock", Duration::from_secs(30), || {
        let (code, body) = util::http(port, "GET", "/check");
        code == 500 && body.contains("clock is wrong")
    });
    garage.skew_clock(None);
    wait_archived(&scenario, 80);
    wait_journal(&scenario.output_dir, 2, Some(&running));
    running.signal("TERM");
    running.wait(Duration::from_secs(40));
    garage.assert_exact(PREFIX, &scenario.output_dir, &[]);
}

#[test]
fn kill_9_while_uploading_ships_the_file_again_and_once() {
    let garage = Garage::start();
    // About 40 KB a second: each file takes a second or two on the way.
    let proxy = Proxy::start(garage.port, |_, _| Fault::Slow(40_000));
    let scenario = Scenario::events(make_events(1200, 1)).serve(&["--retry", "10"]);
    let cmd = shipping(
        &scenario,
        &garage,
        &proxy.endpoint(),
        &["--rotate-events", "300"],
    );
    let running = Running::start(cmd, scenario.path(), "first");
    util::wait_for("an upload under way", Duration::from_secs(60), || {
        let puts = proxy
            .requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.starts_with("PUT"))
            .count();
        puts > journal_keys(&scenario.output_dir).len()
    });
    running.signal("KILL");
    let _ = running.wait(Duration::from_secs(10));
    let cmd = shipping(
        &scenario,
        &garage,
        &garage.endpoint(),
        &["--rotate-events", "300"],
    );
    archive_all(&scenario, cmd, 1200);
    garage.assert_exact(PREFIX, &scenario.output_dir, &[]);
}

#[test]
fn a_backlog_of_hundreds_drains_oldest_first_in_bounded_memory() {
    let mut garage = Garage::start();
    garage.down();
    let n = 1500;
    let scenario = Scenario::events(make_events(n, 1)).serve(&["--retry", "10"]);
    let cmd = shipping(
        &scenario,
        &garage,
        &garage.endpoint(),
        &["--rotate-events", "5"],
    );
    archive_all(&scenario, cmd, n);
    let files = completed(&scenario.output_dir);
    assert!(files >= 300, "{files} files");
    garage.up();
    let cmd = shipping(
        &scenario,
        &garage,
        &garage.endpoint(),
        &["--rotate-events", "5"],
    );
    let running = Running::start(cmd, scenario.path(), "drain");
    let pid = running.child.id();
    let mut peak_kb = 0;
    let until = Instant::now() + Duration::from_secs(120);
    while journal_keys(&scenario.output_dir).len() < files {
        assert!(Instant::now() < until, "not drained: {}", running.stderr());
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    running.signal("TERM");
    running.wait(Duration::from_secs(20));
    // Oldest first: the order of the journal is the order of completion (file times, names).
    let keys = journal_keys(&scenario.output_dir);
    let mut by_age = keys.clone();
    by_age.sort_by_key(|k| {
        let modified = fs::metadata(scenario.output_dir.join(k))
            .and_then(|m| m.modified())
            .expect("mtime");
        (modified, k.clone())
    });
    assert_eq!(keys, by_age, "shipped oldest first");
    assert!(
        peak_kb > 0 && peak_kb < 24 * 1024,
        "peak RSS {peak_kb} KB while draining {files} files"
    );
    garage.assert_exact(PREFIX, &scenario.output_dir, &[]);
}

#[test]
fn keep_days_0_deletes_only_what_the_bucket_confirmed() {
    let mut garage = Garage::start();
    garage.down();
    let events = make_events(200, 1);
    let scenario = Scenario::events(events.clone()).serve(&["--retry", "10"]);
    let cmd = shipping(
        &scenario,
        &garage,
        &garage.endpoint(),
        &["--keep-days", "0"],
    );
    let running = Running::start(cmd, scenario.path(), "run");
    wait_archived(&scenario, 200);
    running.signal("USR1");
    util::wait_for("completed files", Duration::from_secs(30), || {
        completed(&scenario.output_dir) >= 5
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        completed(&scenario.output_dir) >= 5,
        "nothing unshipped is deleted"
    );
    garage.up();
    util::wait_for("shipped and deleted", Duration::from_secs(60), || {
        completed(&scenario.output_dir) == 0
    });
    running.signal("TERM");
    running.wait(Duration::from_secs(20));
    // The bucket holds every event once, in order.
    let mut lines = Vec::new();
    let scratch = scenario.path().join("object");
    let objects = garage.objects(&format!("{PREFIX}/"));
    assert!(
        objects.iter().all(|(k, _)| k.ends_with(".ndjson.gz")),
        "{objects:?}"
    );
    let mut keys: Vec<String> = objects.into_iter().map(|(k, _)| k).collect();
    keys.sort();
    for key in keys {
        garage.get(&key, &scratch);
        lines.extend(util::gz_lines(&scratch));
    }
    util::assert_same_events(&lines, &util::expected_archive(&events));
}

#[test]
fn ship_uploads_an_existing_archive_and_check_finds_what_is_missing() {
    let garage = Garage::start();
    let scenario = Scenario::events(two_days(200)).serve(&["--retry", "10"]);
    archive_all(
        &scenario,
        scenario.command(&["--checkpoint-interval", "0.1", "--rotate-events", "30"]),
        200,
    );
    let dir = scenario.output_dir.to_str().expect("utf-8");
    let endpoint = garage.endpoint();
    let to = format!("s3://{}/{PREFIX}", util::garage::BUCKET);
    let ship = |extra: &[&str]| {
        let mut cmd = util::command();
        cmd.args([
            "ship",
            "--to",
            &to,
            "--s3-endpoint",
            &endpoint,
            "--s3-region",
            util::garage::REGION,
        ])
        .args(extra)
        .arg(dir);
        garage.env(&mut cmd);
        Running::start(cmd, scenario.path(), "ship").wait(Duration::from_secs(60))
    };
    let dry = ship(&["--dry-run"]);
    dry.expect(0, &["would upload"]);
    let n_files = completed(&scenario.output_dir);
    // The day's mark comes once its files are in the bucket.
    assert_eq!(
        dry.stdout.lines().count(),
        n_files,
        "every file: {}",
        dry.stdout
    );
    assert!(
        garage.objects(&format!("{PREFIX}/")).is_empty(),
        "a dry run uploads nothing"
    );
    ship(&["--check"]).expect(1, &["0 identical"]);
    ship(&[]).expect(0, &["nothing is left to upload"]);
    garage.assert_exact(PREFIX, &scenario.output_dir, &[DAY_MARK]);
    let checked = ship(&["--check"]);
    checked.expect(0, &[&format!("{n_files} identical, 0 missing")]);
    // A file changed here is different there.
    let first = util::data_files(&scenario.output_dir)
        .into_iter()
        .find(|f| f.ends_with(".ndjson.gz"))
        .expect("a file");
    let path = scenario.output_dir.join(&first);
    let mut bytes = fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, bytes).expect("write");
    let changed = ship(&["--check"]);
    changed.expect(1, &["1 missing or different"]);
    assert!(
        changed.stdout.contains("another SHA-256"),
        "{}",
        changed.stdout
    );
}

/// An `--on-ready` program that fails its first try of each key, hangs on its second (killed
/// by `--on-ready-timeout`) and copies the file into `delivered/` on the third.
fn flaky_hook(dir: &Path) -> std::path::PathBuf {
    let hook = dir.join("hook.sh");
    let state = dir.join("tries");
    let delivered = dir.join("delivered");
    fs::create_dir_all(&state).expect("mkdir");
    fs::create_dir_all(&delivered).expect("mkdir");
    fs::write(
        &hook,
        format!(
            "#!/bin/sh\nset -e\nname=$(echo \"$2\" | tr / _)\nn=$(cat \"{state}/$name\" 2>/dev/null || echo 0)\n\
             echo $((n + 1)) > \"{state}/$name\"\ncase $n in\n  0) exit 3 ;;\n  1) exec sleep 60 ;;\nesac\n\
             cp \"$1\" \"{delivered}/$name\"\necho \"$2\" >> \"{delivered}/log\"\n",
            state = state.display(),
            delivered = delivered.display()
        ),
    )
    .expect("hook");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod");
    hook
}

#[test]
fn on_ready_is_retried_until_it_exits_0_across_a_restart() {
    let scenario = Scenario::events(make_events(120, 1)).serve(&["--retry", "10"]);
    let hook = flaky_hook(scenario.path());
    let hook_arg = hook.display().to_string();
    let flags = [
        "--on-ready",
        &hook_arg,
        "--on-ready-timeout",
        "1",
        "--rotate-events",
        "40",
        "--checkpoint-interval",
        "0.1",
        "--status-port",
        "0",
    ];
    let running = Running::start(scenario.command(&flags), scenario.path(), "first");
    let port = util::health_port(&running);
    util::wait_for("a failed try", Duration::from_secs(30), || {
        running.stderr().contains("failed (command)")
    });
    util::wait_for("a killed try", Duration::from_secs(30), || {
        let (_, metrics) = util::http(port, "GET", "/metrics");
        util::metric_sum(
            &metrics,
            "wikistream_ship_failures_total",
            "reason=\"timeout\"",
        ) >= 1
    });
    running.signal("KILL");
    let _ = running.wait(Duration::from_secs(10));
    // Restarted: the files not delivered are tried again, each until its program exits 0.
    let mut running = Running::start(scenario.command(&flags), scenario.path(), "second");
    // Its signal handlers are in place once it says what it archives.
    running.wait_for_log("archiving", Duration::from_secs(20));
    wait_archived(&scenario, 120);
    running.signal("USR1");
    let delivered = scenario.path().join("delivered");
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let n = fs::read_to_string(delivered.join("log"))
            .unwrap_or_default()
            .lines()
            .count();
        let files = util::data_files(&scenario.output_dir);
        if !files.iter().any(|f| f.ends_with(".part")) && n >= files.len() {
            break;
        }
        assert!(
            Instant::now() < until,
            "{n} of {files:?} delivered; exit {:?}; log:\n{}",
            running.child.try_wait(),
            running.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    running.signal("TERM");
    running.wait(Duration::from_secs(20));
    let log = fs::read_to_string(delivered.join("log")).unwrap_or_default();
    let mut keys: Vec<&str> = log.lines().collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "each file delivered once: {log}");
    let completed: Vec<String> = util::data_files(&scenario.output_dir)
        .into_iter()
        .filter(|f| !f.ends_with(".part"))
        .collect();
    assert_eq!(keys.len(), completed.len(), "every completed file: {log}");
    for rel in completed {
        let copy = delivered.join(rel.replace('/', "_"));
        assert_eq!(
            fs::read(&copy).expect("copy"),
            fs::read(scenario.output_dir.join(&rel)).expect("file"),
            "{rel}"
        );
    }
}

#[test]
#[ignore = "needs root: mounts a small tmpfs (make test runs it as root)"]
fn a_full_disk_while_shipping_is_down_loses_nothing() {
    util::require_root("mounting a small tmpfs");
    let mut garage = Garage::start();
    garage.down();
    let dir = util::temp_dir();
    let small = dir.path().join("small");
    fs::create_dir_all(&small).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&small)
        .status();
    assert!(mounted.is_ok_and(|s| s.success()), "mount -t tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&small);
    let events = make_events(3000, 1);
    let serve = util::events::serve_events(
        dir.path(),
        &events,
        &[
            "--rate",
            "1500",
            "--disconnect-every",
            "500",
            "--retry",
            "10",
        ],
    );
    let output_dir = small.join("archive");
    let mut flags = garage.flags(PREFIX);
    flags.extend(
        [
            "--keep-days",
            "0",
            "--rotate-events",
            "100",
            "--checkpoint-interval",
            "0.2",
        ]
        .map(String::from),
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut cmd = archiver(&serve.url(), &output_dir, &flags);
    garage.env(&mut cmd);
    let running = Running::start(cmd, dir.path(), "run");
    running.wait_for_log("No space left on device", Duration::from_secs(60));
    garage.up();
    util::wait_for("every event, shipped", Duration::from_secs(120), || {
        checkpoint_id(&output_dir).contains(&last_id(3000))
    });
    running.signal("TERM");
    running.wait(Duration::from_secs(30));
    let scratch = dir.path().join("object");
    let mut keys: Vec<String> = garage
        .objects(&format!("{PREFIX}/"))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    keys.sort_by_key(|k| k.rsplit('-').next().map(str::to_string));
    let mut lines = Vec::new();
    for key in &keys {
        garage.get(key, &scratch);
        lines.extend(util::gz_lines(&scratch));
    }
    // Whatever is still on the board (the last files) and the bucket together hold every
    // event once.
    for rel in util::data_files(&output_dir) {
        if !journal_keys(&output_dir).contains(&rel) {
            lines.extend(util::gz_lines(&output_dir.join(&rel)));
        }
    }
    util::assert_same_events(&lines, &util::expected_archive(&events));
}
