//! Helpers shared by the integration tests: temp dirs, spawning the binary (optionally through
//! `CROSS_RUNNER`, e.g. `qemu-aarch64`), a `serve` child, reading archives, readable diffs.

#![allow(dead_code)] // Each test module uses a different subset.

pub mod events;
pub mod garage;
pub mod proxy;
pub mod scenario;
pub mod scripted;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wikistream-archiver"))
}

/// A command for the binary, run through `CROSS_RUNNER` when that is set.
pub fn command() -> Command {
    match std::env::var_os("CROSS_RUNNER").filter(|r| !r.is_empty()) {
        Some(runner) => {
            let mut cmd = Command::new(runner);
            cmd.arg(std::env::var_os("CROSS_BIN").map_or_else(bin, PathBuf::from));
            cmd
        }
        None => Command::new(bin()),
    }
}

/// The repository's fixtures folder.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Fails the test, saying why, unless it runs as root: such tests are `#[ignore]`d with the
/// reason, and `make test` includes them when it runs as root (as CI does).
pub fn require_root(what: &str) {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .expect("running id -u");
    let is_root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    assert!(
        is_root,
        "{what} needs root: run this test as root, or leave it ignored"
    );
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wsa-test-")
        .tempdir()
        .expect("creating a temp dir")
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    /// Asserts the exit code and that stderr says each of `needles`, showing stderr if not.
    pub fn expect(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.status.code(), Some(code), "{}", self.stderr);
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "no {needle:?} in stderr:\n{}",
                self.stderr
            );
        }
    }
}

/// A running child whose output goes to files (no pipe can fill up and block it).
pub struct Running {
    pub child: Child,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    started: Instant,
}

impl Running {
    /// Starts `cmd`, with stdout and stderr captured in `log_dir`.
    pub fn start(mut cmd: Command, log_dir: &Path, name: &str) -> Running {
        let stdout_path = log_dir.join(format!("{name}.stdout"));
        let stderr_path = log_dir.join(format!("{name}.stderr"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).expect("creating stdout file"))
            .stderr(File::create(&stderr_path).expect("creating stderr file"))
            .spawn()
            .expect("spawning the binary");
        Running {
            child,
            stdout_path,
            stderr_path,
            started: Instant::now(),
        }
    }

    /// Whether the child is still running.
    pub fn child_alive(&self) -> bool {
        fs::metadata(format!("/proc/{}", self.child.id())).is_ok()
            && !fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
                .unwrap_or_default()
                .contains(") Z ")
    }

    /// Standard output so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Standard error so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends `signal` (e.g. "TERM", "KILL", "USR1") to the child.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits until stderr contains `needle`, or panics after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.stderr().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no '{needle}' in the log within {timeout:?}; stderr:\n{}",
            self.stderr()
        );
    }

    /// Waits for the exit, killing the child and panicking after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Finished {
        let until = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the child") {
                return Finished {
                    status,
                    stdout: fs::read_to_string(&self.stdout_path).unwrap_or_default(),
                    stderr: fs::read_to_string(&self.stderr_path).unwrap_or_default(),
                    elapsed: self.started.elapsed(),
                };
            }
            if Instant::now() >= until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the binary did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `done` every 20 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < until,
            "{what} did not happen within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines the checkpoint in `dir` says the open event file holds (0 without one).
pub fn checkpoint_lines(dir: &Path) -> u64 {
    fs::read_to_string(checkpoint_path(dir))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| {
            v["files"].as_array()?.iter().find_map(|f| {
                (f["kind"] != "rejects")
                    .then(|| f["n_lines"].as_u64())
                    .flatten()
            })
        })
        .unwrap_or(0)
}

/// The sum of the samples of metric `name` whose labels include `label` (`key="value"`).
pub fn metric_sum(metrics: &str, name: &str, label: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// `/status` of a running archiver as JSON.
pub fn status(port: u16) -> serde_json::Value {
    let (code, body) = http(port, "GET", "/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("/status is JSON")
}

/// Runs the binary with `args` to completion (at most `timeout`).
pub fn run_binary(args: &[&str], log_dir: &Path, timeout: Duration) -> Finished {
    let mut cmd = command();
    cmd.args(args);
    Running::start(cmd, log_dir, "run").wait(timeout)
}

/// Runs the archiver on `url` into `output_dir` with `extra` flags, to completion (at most 60 s).
pub fn run_archiver(url: &str, output_dir: &Path, extra: &[&str], log_dir: &Path) -> Finished {
    let mut cmd = command();
    cmd.args(["--url", url, "--output-dir"])
        .arg(output_dir)
        .args(extra);
    Running::start(cmd, log_dir, "run").wait(Duration::from_secs(60))
}

/// A `serve` child on a free port; killed when dropped.
pub struct Serve {
    running: Running,
    pub port: u16,
}

impl Serve {
    /// Starts `serve --input input` with `extra` flags and waits for its `listening on` line.
    pub fn start(input: &Path, extra: &[&str], log_dir: &Path) -> Serve {
        let mut cmd = command();
        cmd.arg("serve").arg("--input").arg(input).args(extra);
        // These tests check positions by offset; timestamp ids are tested where asked for.
        if !extra.contains(&"--id-timestamps") {
            cmd.arg("--id-offsets");
        }
        let running = Running::start(cmd, log_dir, "serve");
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let stdout = fs::read_to_string(&running.stdout_path).unwrap_or_default();
            if let Some(line) = stdout.lines().next()
                && stdout.contains('\n')
            {
                let addr = line
                    .strip_prefix("listening on ")
                    .expect("first line is 'listening on ADDR:PORT'");
                let port = addr
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("a port");
                return Serve { running, port };
            }
            assert!(
                Instant::now() < until,
                "serve did not start; stderr:\n{}",
                running.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The stream URL on this server.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v2/stream/recentchange", self.port)
    }

    /// The server's log so far.
    pub fn stderr(&self) -> String {
        self.running.stderr()
    }

    /// Stops the server explicitly.
    pub fn stop(self) {
        drop(self.running);
    }
}

/// All lines of a (possibly multi-member, possibly torn) gzip file.
pub fn gz_lines(path: &Path) -> Vec<String> {
    let mut text = String::new();
    MultiGzDecoder::new(File::open(path).expect("opening gzip file"))
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines().map(String::from).collect()
}

/// File names in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("reading the archive dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Data files in `dir`, in either layout: their paths relative to `dir`
/// (`recentchange/date=…/…`, `_rejects/…`, or plain names when flat), sorted by file name.
/// Everything but the lock, the checkpoint and `_damaged/`.
pub fn data_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    collect_files(dir, "", &mut found);
    found.retain(|rel| {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        name != ".lock"
            && !name.starts_with("checkpoint.json")
            && !name.starts_with("_checkpoint.json")
            && !rel.starts_with("_damaged/")
            && !rel.starts_with(".ship/")
    });
    // In writing order: by sequence number (partitioned names start with their first event's
    // time, which a late event can make earlier than the file before's), then by name.
    let key = |rel: &String| (seq_of(rel).unwrap_or(u64::MAX), base_name(rel).to_string());
    found.sort_by_key(key);
    found
}

/// The sequence number in an event file's name (`…-000012.ndjson.gz`, `…_000000012.gz`).
fn seq_of(rel: &str) -> Option<u64> {
    let name = base_name(rel);
    let stem = name
        .strip_suffix(".part")
        .or_else(|| name.strip_suffix(".ready"))
        .unwrap_or(name);
    let stem = stem
        .strip_suffix(".ndjson.gz")
        .or_else(|| stem.strip_suffix(".gz"))?;
    stem.rsplit(['-', '_']).next()?.parse().ok()
}

/// The file name of a relative path.
pub fn base_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

fn collect_files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = format!("{prefix}{name}");
        match entry.file_type().expect("file type") {
            t if t.is_dir() => collect_files(&entry.path(), &format!("{rel}/"), out),
            t if t.is_file() => out.push(rel),
            _ => {}
        }
    }
}

/// The checkpoint of `dir`, in either layout.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    match dir.join("_checkpoint.json").exists() {
        true => dir.join("_checkpoint.json"),
        false => dir.join("checkpoint.json"),
    }
}

/// Whether a data file (a relative path) is a rejects file.
pub fn is_rejects(rel: &str) -> bool {
    base_name(rel).starts_with("rejects-")
}

/// Archive lines of every completed segment in `dir` (not rejects), in file name order.
pub fn archive_lines(dir: &Path) -> Vec<String> {
    data_files(dir)
        .iter()
        .filter(|n| n.ends_with(".ndjson.gz") && !is_rejects(n))
        .flat_map(|n| gz_lines(&dir.join(n)))
        .collect()
}

/// Rejects of every completed rejects file in `dir`, parsed.
pub fn rejects(dir: &Path) -> Vec<serde_json::Value> {
    data_files(dir)
        .iter()
        .filter(|n| is_rejects(n) && n.ends_with(".ndjson.gz"))
        .flat_map(|n| gz_lines(&dir.join(n)))
        .map(|line| serde_json::from_str(&line).expect("rejects lines are JSON"))
        .collect()
}

/// Non-empty lines of a text file.
pub fn lines_of(path: &Path) -> Vec<String> {
    BufReader::new(File::open(path).expect("opening input"))
        .lines()
        .map(|l| l.expect("reading input"))
        .filter(|l| !l.is_empty())
        .collect()
}

/// The lines the archiver should keep from `input`: JSON objects that are not canaries.
pub fn expected_archive(input: &[String]) -> Vec<String> {
    input
        .iter()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .is_ok_and(|v| v.is_object() && v["meta"]["domain"] != "canary")
        })
        .cloned()
        .collect()
}

/// Asserts two event sequences are equal, explaining the first difference, missing and repeated
/// lines in a readable way instead of dumping megabytes.
pub fn assert_same_events(actual: &[String], expected: &[String]) {
    if actual == expected {
        return;
    }
    let short = |s: &str| s.chars().take(120).collect::<String>();
    let mut report = format!(
        "archive has {} events, expected {}\n",
        actual.len(),
        expected.len()
    );
    let mut seen = HashSet::new();
    let repeated: Vec<&String> = actual.iter().filter(|l| !seen.insert(*l)).collect();
    if !repeated.is_empty() {
        report += &format!(
            "{} duplicated, first: {}\n",
            repeated.len(),
            short(repeated[0])
        );
    }
    let actual_set: HashSet<&String> = actual.iter().collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|l| !actual_set.contains(l))
        .collect();
    if !missing.is_empty() {
        report += &format!("{} missing, first: {}\n", missing.len(), short(missing[0]));
    }
    if let Some(idx) = actual.iter().zip(expected).position(|(a, e)| a != e) {
        report += &format!(
            "first difference at line {idx}:\n  actual:   {}\n  expected: {}\n",
            short(&actual[idx]),
            short(&expected[idx])
        );
    }
    panic!("{report}");
}

/// One HTTP/1.0 request; returns (status code, body), or `None` when the connection was
/// refused, closed without an answer, or the answer had no status line.
pub fn try_http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).ok()?;
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(socket, "{method} {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut response = String::new();
    socket.read_to_string(&mut response).ok()?;
    let code = response.split(' ').nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// One HTTP/1.0 request that must be answered; returns (status code, body).
pub fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    try_http(port, method, path)
        .unwrap_or_else(|| panic!("no HTTP answer to {method} {path} on port {port}"))
}

/// The health port a running archiver logged (it was started with `--status-port 0`).
pub fn health_port(running: &Running) -> u16 {
    running.wait_for_log("serving /check", Duration::from_secs(20));
    running
        .stderr()
        .split("on http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("health port in the log")
}
